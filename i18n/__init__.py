"""The host side's languages (`loyalty.i18n`): Italian first, English by choice.

One message catalogue (`i18n/locale/<lang>/LC_MESSAGES/messages.po`, English msgids) serves
the backend's pages (through Flask-Babel), its commands, and the operator's programs in
tools/. The reader's own texts and the error codes shared with it stay in
shared/protocol/errortexts.py; `error_text()` here reads them in the current language.

The language of a process or a request:
  - a request's, chosen by the dashboard (the manager's setting, the browser's before login)
    and set here with `use()`, so that domain code (no Flask) speaks it too;
  - otherwise the process's: LOYALTY_LANG, then the usual LANGUAGE, LC_ALL, LC_MESSAGES,
    LANG; Italian when none of them names a language we have.

    >>> with using("en"):
    ...     euro(123456), gettext("Stores")
    ('€1,234.56', 'Stores')
    >>> with using("it"):
    ...     euro(123456), gettext("Stores")
    ('1.234,56\\xa0€', 'Negozi')

The catalogues are compiled by the build (`make`: `.mo` files are never committed); a
catalogue whose `.po` is newer than its `.mo` is compiled again when first used.
"""
import contextlib
import contextvars
import functools
import gettext as _stdlib_gettext
import os
from datetime import time as _stdlib_time
from decimal import Decimal
from pathlib import Path

from babel import Locale, dates, numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import LazyProxy, Translations
from markupsafe import escape

LANGUAGES = ("it", "en")
DEFAULT = "it"
DOMAIN = "messages"
# the catalogues; LOYALTY_TRANSLATIONS points elsewhere (the pseudo-locale test does)
LOCALE_DIR = Path(os.environ.get("LOYALTY_TRANSLATIONS") or Path(__file__).resolve().parent / "locale")

_current = contextvars.ContextVar("loyalty_language", default=None)
_loaded = {}


def N_(message):
    """Marks `message` for the catalogue where it is defined; translated where it is shown."""
    return message


def N_plural(singular, plural):
    """Marks a text with its plural for the catalogue (translated with ngettext where shown)."""
    return singular, plural


def compile_catalogues(folder=None):
    """Write the `.mo` of every `.po` under `folder` that is missing or older; the paths written."""
    written = []
    for po in sorted(Path(folder or LOCALE_DIR).glob("*/LC_MESSAGES/%s.po" % DOMAIN)):
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            with open(po, "rb") as f:
                catalog = read_po(f)
            tmp = mo.with_suffix(".mo.%d" % os.getpid())  # two processes may compile at once
            try:
                with open(tmp, "wb") as f:
                    write_mo(f, catalog)
                os.replace(tmp, mo)  # whole: another process may be reading the old one
            except OSError:
                # a read-only install: the build's .mo stands (make compiles them)
                tmp.unlink(missing_ok=True)
                continue
            written.append(mo)
    return written


def translations(lang):
    """The catalogue of `lang` (compiled first if its .po changed)."""
    t = _loaded.get(lang)
    if t is None:
        compile_catalogues()
        t = Translations.load(str(LOCALE_DIR), [lang], DOMAIN)
        _loaded[lang] = t
    return t


def supported(lang):
    """`lang` ("en", "en_GB", "it-IT") as one of LANGUAGES, or None."""
    if not lang:
        return None
    base = lang.replace("-", "_").split("_")[0].split(".")[0].lower()
    return base if base in LANGUAGES else None


def language_name(lang):
    """A language's name in itself ("italiano", "English"): CLDR's, never translated."""
    name = Locale.parse(lang).get_display_name(lang)
    return name[:1].upper() + name[1:]


# what a process's language is read from, first to last
VARIABLES = ("LOYALTY_LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")


def process_language(environ=None):
    """The process's language: LOYALTY_LANG, then LANGUAGE, LC_ALL, LC_MESSAGES, LANG; else
    Italian. Of the process (environ None) it is read once: every text shown outside a
    request asks for it (the commands, the auditor), and os.environ is slow to read."""
    if environ is None:
        return _this_process()
    return _first_supported(tuple(environ.get(name) for name in VARIABLES))


@functools.lru_cache(maxsize=1)
def _this_process():
    return process_language(dict(os.environ))


def _first_supported(values):
    for value in values:
        for part in (value or "").split(":"):  # LANGUAGE may list several
            found = supported(part)
            if found:
                return found
    return DEFAULT


def language():
    """The language now: the request's (use()) or the process's."""
    return _current.get() or process_language()


def use(lang):
    """Speak `lang` in this context (a request, a thread) from now on; returns a token for reset()."""
    return _current.set(supported(lang) or DEFAULT)


def reset(token):
    _current.reset(token)


@contextlib.contextmanager
def using(lang):
    token = use(lang)
    try:
        yield
    finally:
        _current.reset(token)


def for_commands():
    """Make a command-line program speak the process's language: argparse's and click's own
    texts ("usage:", "Show this message and exit.") come through the standard library's
    gettext, which reads LANGUAGE; it is set to the language chosen here, and pointed at
    this catalogue."""
    lang = process_language()
    os.environ["LANGUAGE"] = lang
    compile_catalogues()
    _stdlib_gettext.bindtextdomain(DOMAIN, str(LOCALE_DIR))
    _stdlib_gettext.textdomain(DOMAIN)
    return lang


def gettext(message, **values):
    """`message` in the current language, with `values` put into its %(name)s places."""
    text = translations(language()).gettext(message)
    return text % values if values else text


def ngettext(singular, plural, n, **values):
    """The form for `n` (given to the text as %(num)s, as in templates)."""
    text = translations(language()).ngettext(singular, plural, n)
    return text % dict(values, num=n)


def template_gettext(message):
    """For Jinja (newstyle gettext), which puts in the values itself, escaping them. Jinja
    takes what this returns as markup: the translation is escaped here, so that a "<" or a
    quote in a catalogue is text on the page, never HTML."""
    return escape(translations(language()).gettext(message))


def template_ngettext(singular, plural, n):
    return escape(translations(language()).ngettext(singular, plural, n))


_ = gettext


def lazy(message):
    """`message` translated when it is shown, not when it is defined (click's help texts)."""
    return LazyProxy(gettext, message, enable_cache=False)


# -- formats (CLDR's, through Babel) ------------------------------------------------------
# Each language's patterns are parsed once: the stores page formats a time and a share for
# each of thousands of readers, and Babel's format_*() parse their pattern at every call.

@functools.lru_cache(maxsize=None)
def _patterns(lang):
    locale = Locale.parse(lang)
    return {
        "locale": locale,
        "date": dates.parse_pattern(dates.get_date_format("medium", locale=locale).pattern),
        "time": dates.parse_pattern(dates.get_time_format("medium", locale=locale).pattern),
        "hour": dates.parse_pattern(dates.get_time_format("short", locale=locale).pattern),
        "datetime": dates.get_datetime_format("medium", locale=locale),
        "percent": numbers.parse_pattern("#,##0.#%"),
    }


def euro(cents):
    """`cents` as an amount in euro: 1.234,56 € in Italian, €1,234.56 in English."""
    return numbers.format_currency(Decimal(cents) / 100, "EUR", locale=language())


def number(n):
    return numbers.format_decimal(n, locale=language())


def percent(fraction):
    """`fraction` (0.925) as a percentage with at most one decimal: '92,5%' in Italian,
    '35%' (not '35,0%')."""
    return _percent(language(), round(fraction, 3))


@functools.lru_cache(maxsize=4096)
def _percent(lang, fraction):
    # a page shows a share per reader, and there are only so many tenths of a percent
    p = _patterns(lang)
    return p["percent"].apply(fraction, p["locale"])


def date(moment):
    """A day (a datetime in the store's zone): 14 nov 2023."""
    return _date(language(), moment.date())


@functools.lru_cache(maxsize=1024)
def _date(lang, day):
    p = _patterns(lang)
    return p["date"].apply(day, p["locale"])


@functools.lru_cache(maxsize=8192)
def _time(lang, hour, minute, second):
    # CLDR's medium time (HH:mm:ss, h:mm:ss a) names no zone: the clock's reading decides it
    p = _patterns(lang)
    return p["time"].apply(_stdlib_time(hour, minute, second), p["locale"])


def hour(moment):
    """A time of day to the minute (a chart's axis): 18:00, 6:00 PM."""
    p = _patterns(language())
    return p["hour"].apply(moment, p["locale"])


def datetime(moment):
    """A moment (an aware datetime, shown in its own zone): 14 nov 2023, 23:13:20 CET.

    The zone by its abbreviation (CET, CEST, GMT): CLDR has no short names for most
    zones in Italian or English, and its "GMT+1" says less to a store manager."""
    lang = language()
    both = _patterns(lang)["datetime"].replace("{1}", _date(lang, moment.date()))
    return both.replace("{0}", _time(lang, moment.hour, moment.minute, moment.second)) + " " + moment.strftime("%Z")


def error_text(code):
    """The text of a shared error code (shared/protocol/errortexts.py) in the current language."""
    from loyalty.protocol import errors

    return errors.text(code, language())
