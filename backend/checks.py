"""The checks an input must pass, each written once: an integer in a range, decimal digits.

The integer rules are the protocol's (shared/protocol/checks.py: an integer in a range,
1 to 19 ASCII digits, never int()'s "1_000", " 7" or "²"), so that the backend and
the readers refuse the same values in the same words; this module adds what only the
backend needs: integers written as text (query strings, CSV files) and its error shape.

Head office's functions, the sync API and ingestion call these and raise their own
error class, which names the field at fault and the rule it broke (`fail(field, rule)`:
HeadOfficeError subclasses take that as it is). The one-schema work grows this module.

    >>> integer(5, 1, 9, "qty")
    5
    >>> from loyalty.i18n import using
    >>> with using("it"):
    ...     integer(True, 0, 1, "ntag_signature")
    Traceback (most recent call last):
    ...
    loyalty.backend.checks.CheckFailed: ntag_signature: deve essere un intero da 0 a 1
    >>> integer_text("0042", 0, 99, "since"), digits("1_000"), integer_or_none("7", 0, 9)
    (42, None, None)
"""
import unicodedata

from loyalty.i18n import _
from loyalty.protocol.checks import digits, integer_rule, is_integer  # the reader's rules, and their words


class CheckFailed(ValueError):
    """`field` broke `rule` (the default error of the checks here)."""

    def __init__(self, field, rule):
        super().__init__("%s: %s" % (field, rule))
        self.field = field
        self.rule = rule


def integer(value, lo, hi, field, fail=CheckFailed):
    """`value` if is_integer(value, lo, hi); else raises fail(field, rule), the rule in the
    current language (head office's commands and pages show it to a person)."""
    if not is_integer(value, lo, hi):
        raise fail(field, _("must be an integer from %(lo)d to %(hi)d", lo=lo, hi=hi))
    return value


def integer_or_none(value, lo, hi):
    """`value` if is_integer(value, lo, hi), else None: for what a reader reports about
    itself, where a bad value is left out rather than refused."""
    return value if is_integer(value, lo, hi) else None


def integer_text(text, lo, hi, field, fail=CheckFailed):
    """The int written by `text` (digits()) if from lo to hi; else raises fail(field, rule), the
    rule in the protocol's words (the sync API's query strings: readers read codes)."""
    value = digits(text)
    if value is None or not lo <= value <= hi:
        raise fail(field, integer_rule(lo, hi))
    return value


def name_key(text):
    """A name as search compares it: accents, case, apostrophes and other marks dropped,
    words kept apart by one space ("D’Angelo  Niccolò" -> "dangelo niccolo"). Kept beside
    the name (customers.name_key) so that a search finds "D'Angelo" typed as "dangelo".

    >>> name_key("D’Angelo  Niccolò")
    'dangelo niccolo'
    """
    if text is None:
        return None
    plain = unicodedata.normalize("NFKD", text).casefold()
    words = ("".join(ch for ch in word if ch.isalnum()) for word in plain.split())
    return " ".join(w for w in words if w)
