"""What head office's modules share: their errors, their clock, the checks of ids, names
and card numbers.

Each error names the input at fault (`field`) and says what is wrong with it; the CLI
prints it as it is:

    >>> str(InvalidValue("tz", "'Mars/Base' is not a known time zone (e.g. Europe/Rome)"))
    "tz: 'Mars/Base' is not a known time zone (e.g. Europe/Rome)"
"""
import re
import time

from loyalty.protocol import delta
from loyalty.protocol.errors import DeltaError
from loyalty.i18n import _

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")


class HeadOfficeError(Exception):
    """A change head office asked for cannot be made; `field` names the input at fault."""

    def __init__(self, field, message):
        super().__init__("%s: %s" % (field, message) if field else message)
        self.field = field
        self.message = message


class NotFound(HeadOfficeError):
    """The store, reader, tier, promotion or card named does not exist."""


class AlreadyExists(HeadOfficeError):
    """The id is taken."""


class InvalidValue(HeadOfficeError):
    """A value breaks a rule (format, range, time zone)."""


class RulesRefused(HeadOfficeError):
    """The change would publish rules the engine refuses; `error` is the RulesError."""

    def __init__(self, error):
        super().__init__(error.field, "%s (%s)" % (error.detail, error.code))
        self.error = error


def now():
    """Epoch seconds: when a change is made (tests set it through this one name)."""
    return int(time.time())


def need_id(value, field):
    if not isinstance(value, str) or not _ID.match(value):
        raise InvalidValue(field, _("must be 1 to 32 letters, digits, '.', '_' or '-', starting with a letter or digit"))
    if value.lower().endswith(".json"):
        # /readers/<id>.json is the JSON twin of /readers/<id>: an id cannot end so
        raise InvalidValue(field, _("must not end in .json"))
    return value


def need_text(value, lo, hi, field):
    if not isinstance(value, str) or not lo <= len(value) <= hi:
        raise InvalidValue(field, _("must be text of %(lo)d to %(hi)d characters", lo=lo, hi=hi))
    return value


def card_text(card, field):
    try:
        return str(delta.card_number(card, field))  # without leading zeros: "0042" is card 42
    except DeltaError as e:
        raise InvalidValue(e.field, _("card number must be 1 to 19 digits"))
