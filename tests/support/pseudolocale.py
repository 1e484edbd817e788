"""A pseudo-locale that shows which texts went through a translation, and which did not.

`build(folder)` writes a catalogue in which every message of the Italian one is the
English message with each of its fixed parts bracketed and its placeholders left out of
the brackets ("⟦cannot audit: ⟧%(error)s"), compiled, under folder/it/...: point
loyalty.i18n at it (LOYALTY_TRANSLATIONS, or its LOCALE_DIR in-process) and speak
Italian, and every translated text is bracketed, while Italian formats (dates, euro)
stay. `leftovers(text, allowed)` is what is left of a page or an output once the
bracketed texts, numbers, punctuation and the `allowed` words (user data, codes) are
taken out: words that no translation touched, the values put into a translated text
included (an English detail inside an Italian sentence shows).

    >>> leftovers("⟦Stores⟧ 12 ⟦receipts⟧ Milano", {"Milano"})
    []
    >>> leftovers("⟦Stores⟧ Updated 12:00", set())
    ['Updated']
"""
import re
from html.parser import HTMLParser
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from loyalty import i18n

OPEN, CLOSE = "⟦", "⟧"
_INNER = re.compile("%s[^%s%s]*%s" % (OPEN, OPEN, CLOSE, CLOSE))
# a word: anything with a letter in it (numbers, times, amounts and punctuation are not)
_WORD = re.compile(r"[^\W\d_][\w'’.:/@-]*", re.UNICODE)


# what a message's values go into: %(name)s, %s, %d, %r, %% and click's {name}
_PLACE = re.compile(r"(%\(\w+\)[-+ #0-9.]*[a-zA-Z]|%[-+ #0-9.]*[sdrfi%]|\{[^{}]*\})")


def _mark(text):
    """`text` with each fixed part between brackets, its placeholders outside them."""
    return "".join(part if _PLACE.fullmatch(part) or not part else OPEN + part + CLOSE
                   for part in _PLACE.split(text))


def build(folder):
    """The pseudo-locale's catalogue under folder (as Italian); returns folder."""
    source = i18n.LOCALE_DIR / "it" / "LC_MESSAGES" / (i18n.DOMAIN + ".po")
    with open(source, "rb") as f:
        italian = read_po(f)
    pseudo = Catalog(locale="it")
    for m in italian:
        if not m.id:
            continue
        if isinstance(m.id, (list, tuple)):
            forms = tuple(_mark(m.id[0] if i == 0 else m.id[1]) for i in range(italian.num_plurals))
            pseudo.add(m.id, forms, flags=m.flags)
        else:
            pseudo.add(m.id, _mark(m.id), flags=m.flags)
    out = Path(folder) / "it" / "LC_MESSAGES"
    out.mkdir(parents=True, exist_ok=True)
    with open(out / (i18n.DOMAIN + ".mo"), "wb") as f:
        write_mo(f, pseudo)
    return Path(folder)


def leftovers(text, allowed):
    """The words of `text` outside every ⟦...⟧ that are not in `allowed`."""
    while True:
        stripped = _INNER.sub(" ", text)
        if stripped == text:
            break
        text = stripped
    # click shortens a command's help to its first sentence in a list: "⟦Add a store…"
    text = re.sub("%s[^\n]*" % OPEN, " ", text)
    found = []
    for word in _WORD.findall(text):
        word = word.rstrip(".:/-")
        if "/" in word.strip("/") or "@" in word:
            continue  # a path, a URL, a time zone: code, never prose
        if word and word not in allowed and word.strip("'’") not in allowed:
            found.append(word)
    return found


class _Visible(HTMLParser):
    """The text a person sees on a page: text outside script/style, and the attributes a
    browser shows (title, aria-label, placeholder, alt)."""

    SHOWN = ("title", "aria-label", "placeholder", "alt")

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts, self._hidden = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._hidden += 1
        for name, value in attrs:
            if name in self.SHOWN and value:
                self.parts.append(value)

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._hidden:
            self._hidden -= 1

    def handle_data(self, data):
        if not self._hidden:
            self.parts.append(data)


def visible_text(html):
    parser = _Visible()
    parser.feed(html)
    parser.close()
    return "\n".join(parser.parts)
