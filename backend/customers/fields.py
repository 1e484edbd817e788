"""The checks of what a desk types about a customer, and how a command names one.

Each check returns the value as it is kept, or raises headoffice's InvalidValue /
NotFound naming the field, in the current language (the CLI prints them as they are).

    name("Maria Rossi")                 # 'Maria Rossi'
    contact(" +39 02 1234 5678 ")       # '+390212345678'
    contact("maria@example.it")         # 'maria@example.it'
    customer(db, "7")                   # the row of customer 7
    customer(db, "6001000000000042")    # the customer who holds that card
"""
import re
import secrets

from loyalty.backend.headoffice.common import InvalidValue, NotFound, card_text, need_text
from loyalty.i18n import _
from loyalty.protocol.checks import is_int, is_integer, text_fault

CHANNELS = ("desk", "web", "phone")
MAX_NAME = 100
MAX_OPERATOR = 64
MAX_ID_DIGITS = 9  # a longer number names a card (cards have 10 to 19 digits in practice)
_EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}"
                    r"[A-Za-z0-9])?)+$")
_PHONE = re.compile(r"^\+?[0-9]{6,15}$")  # E.164: at most 15 digits
_PHONE_MARKS = re.compile(r"[\s().-]")  # what people write between digits


def plain_text(value, hi, field):
    """`value` if it is text of 1 to `hi` characters with no control or bidirectional
    characters (protocol.checks.text_fault: they would reach a terminal or a CSV export)."""
    if not isinstance(value, str) or not 1 <= len(value.strip()) <= hi or text_fault(value) is not None:
        raise InvalidValue(field, _("must be text of 1 to %(hi)d characters, without control characters", hi=hi))
    return value.strip()


def note_text(value, hi, field):
    """A free-text note as kept: line ends as "\n", stripped, at most `hi` characters;
    its line breaks and tabs are its own, any other control or bidirectional character is
    refused (InvalidValue naming `field`). Missing or empty: ""."""
    note = "" if value is None else value
    note = note.replace("\r\n", "\n").strip() if isinstance(note, str) else None
    if note is None or len(note) > hi or text_fault(note.replace("\n", " ").replace("\t", " ")) is not None:
        raise InvalidValue(field, _("must be plain text of at most %(n)d characters", n=hi))
    return note


def name(value):
    return plain_text(value, MAX_NAME, "name")


def operator(value):
    return plain_text(value, MAX_OPERATOR, "operator")


def contact(value):
    """An e-mail address or a phone number (spaces, dots, dashes and brackets dropped)."""
    if isinstance(value, str):
        value = value.strip()
        if "@" in value:
            if len(value) <= 254 and _EMAIL.match(value) and text_fault(value) is None:
                return value
        else:
            phone = _PHONE_MARKS.sub("", value)
            if _PHONE.match(phone):
                return phone
    raise InvalidValue("contact", _("must be an e-mail address (name@example.it) or a phone number of 6 to 15 "
                                    "digits (+39 02 1234 5678)"))


def channel(value):
    if value not in CHANNELS:
        raise InvalidValue("channel", _("must be one of %(choices)s", choices=", ".join(CHANNELS)))
    return value


def store(db, value):
    need_text(value, 1, 32, "store")
    if not db.execute("SELECT 1 FROM stores WHERE id = ?", [value]).fetchone():
        raise NotFound("store", _("no store %(store)s: add it first (add-store)", store=value))
    return value


def pseudonym():
    """A fresh random name for the audit trail: nothing in it points at the person."""
    return "C-" + secrets.token_hex(6)


_COLUMNS = "id, pseudonym, status, age_ok, household_id"


def customer(db, ref, field="customer"):
    """The customer `ref` names (id, pseudonym, status, age_ok, household_id): a customer id
    (up to 9 digits), a pseudonym (C-...), or a card number (longer, or written card:N)."""
    row = None
    if is_int(ref):
        ref = str(ref)
    if not isinstance(ref, str):
        raise InvalidValue(field, _("give a customer id, a pseudonym (C-...) or a card number"))
    ref = ref.strip()
    if ref.startswith("C-"):
        row = db.execute("SELECT %s FROM customers WHERE pseudonym = ?" % _COLUMNS, [ref]).fetchone()
    elif ref.isascii() and ref.isdigit() and len(ref) <= MAX_ID_DIGITS and not ref.startswith("0"):
        row = db.execute("SELECT %s FROM customers WHERE id = ?" % _COLUMNS, [int(ref)]).fetchone()
    elif ref.isascii() and (ref.isdigit() or ref.startswith("card:")):
        card = card_text(ref[5:] if ref.startswith("card:") else ref, field)
        row = db.execute("SELECT %s FROM customers WHERE id = (SELECT customer_id FROM cards WHERE card = ?)"
                         % _COLUMNS, [card]).fetchone()
    else:
        raise InvalidValue(field, _("give a customer id, a pseudonym (C-...) or a card number"))
    if row is None:
        raise NotFound(field, _("no customer %(ref)s", ref=ref))
    return dict(zip(("id", "pseudonym", "status", "age_ok", "household_id"), row))


def active_customer(db, ref, field="customer"):
    """customer(), refusing a closed or erased one."""
    return need_active(customer(db, ref, field), field)


def need_active(found, field):
    """`found` (a customer() row) unless the customer is closed or erased."""
    if found["status"] != "active":
        raise InvalidValue(field, _("customer %(ref)s is %(status)s: nothing can change", ref=found["pseudonym"],
                                    status=found["status"]))
    return found


def notice(db, version):
    """`version` if a privacy notice of that version was published."""
    if isinstance(version, str) and version.strip().isdigit():
        version = int(version.strip())
    if not is_integer(version, 1, 2 ** 63 - 1) or not db.execute("SELECT 1 FROM notices WHERE version = ?", [version]).fetchone():
        raise NotFound("notice", _("no privacy notice %(version)s: give a published version (publish-notice)",
                                   version=version))
    return version
