"""The privacy notice (informativa): its texts by version, published by head office.

A version has an Italian text (required) and may have an English one. Once published, a
version is never changed nor deleted: a consent names the version the customer saw, and
that text must be there to read for as long as the consent is kept. A new text is a new
version.

    publish(db, {"it": "Informativa ...", "en": "Privacy notice ..."}, "dpo.rossi", now)   # -> 1
    current(db)          # 1 (None before the first)
    texts(db, 1)         # {"en": "Privacy notice ...", "it": "Informativa ..."}
"""
from loyalty.backend.db import transaction
from loyalty.backend.headoffice.common import InvalidValue, NotFound
from loyalty.backend.customers import fields
from loyalty.i18n import _

LANGS = ("it", "en")
MAX_TEXT = 100000  # characters: a notice is a few pages


def _text(value, lang):
    field = "text_" + lang
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
        raise InvalidValue(field, _("must be a text of 1 to %(hi)d characters", hi=MAX_TEXT))
    if "\x00" in value:
        raise InvalidValue(field, _("must not hold NUL characters: is it a text file?"))
    return value


def publish(db, lang_texts, actor, now):
    """Publish the texts {lang: text} ("it" required, "en" optional) as the next version;
    returns it."""
    if not isinstance(lang_texts, dict) or "it" not in lang_texts:
        raise InvalidValue("text_it", _("the Italian text is required"))
    unknown = sorted(set(lang_texts) - set(LANGS))
    if unknown:
        raise InvalidValue("lang", _("languages are %(langs)s, not %(unknown)s", langs=", ".join(LANGS),
                                     unknown=", ".join(map(str, unknown))))
    rows = [(lang, _text(text, lang)) for lang, text in sorted(lang_texts.items()) if text is not None]
    actor = fields.operator(actor)
    with transaction(db):
        version = (db.execute("SELECT max(version) FROM notices").fetchone()[0] or 0) + 1
        for lang, text in rows:
            db.execute("INSERT INTO notices(version, lang, text, published_t, published_by) VALUES(?, ?, ?, ?, ?)",
                       [version, lang, text, now, actor])
    return version


def current(db):
    """The newest published version, or None."""
    return db.execute("SELECT max(version) FROM notices").fetchone()[0]


def texts(db, version):
    """{lang: text} of a published version (NotFound otherwise)."""
    found = dict(db.execute("SELECT lang, text FROM notices WHERE version = ?", [version]).fetchall())
    if not found:
        raise NotFound("notice", _("no privacy notice %(version)s", version=version))
    return found
