"""The integer rules every message of the protocol goes through, each written once: an
integer in a range, and a number written in decimal digits.

A bool is not an integer here: True is an int on CPython and would pass as a quantity
of 1. The message modules (till, records, syncmsg, delta, engine) raise their own error
class with `integer()`; the backend's checks (backend/checks.py) build on the same two
functions, so a reader and the backend refuse the same values with the same words.

    >>> is_integer(5, 1, 9), is_integer(True, 0, 1), is_integer(10, 1, 9), is_integer("5", 0, 9)
    (True, False, False, False)
    >>> from .errors import TillError
    >>> integer(7, 0, 255, "tier", TillError, "till.field")
    7
    >>> integer(256, 0, 255, "tier", TillError, "till.field")
    Traceback (most recent call last):
    ...
    loyalty.protocol.errors.TillError: till.field at tier: must be an integer from 0 to 255
    >>> digits("0042"), digits("1_000"), digits(" 7"), digits("\u00b2"), digits("9" * 20)
    (42, None, None, None, None)
"""


def is_int(v):
    """An int that is not a bool."""
    return isinstance(v, int) and not isinstance(v, bool)


def is_integer(v, lo, hi):
    """An int (not a bool) from lo to hi, both included."""
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi  # is_int, inline: the engine calls it per line


def integer_rule(lo, hi):
    return "must be an integer from %d to %d" % (lo, hi)


def integer(v, lo, hi, field, error, code, what=None):
    """`v` if is_integer(v, lo, hi); else raises error(code, field, the rule), the rule
    starting with `what` when given ("tier must be an integer from 0 to 255")."""
    if not is_integer(v, lo, hi):
        rule = integer_rule(lo, hi)
        raise error(code, field, what + " " + rule if what else rule)
    return v


def is_digits(text, most=19):
    """Is `text` 1 to `most` ASCII digits? (19 digits fit the reader's unsigned 64 bits.)"""
    # not str.isdigit(): on CPython it takes "\u00b2" or "\u0661", which MicroPython's
    # refuses, so the two runtimes would disagree about the same card or header
    if not isinstance(text, str) or not 0 < len(text) <= most:
        return False
    for ch in text:
        if ch < "0" or ch > "9":
            return False
    return True


def digits(text, most=19):
    """The int that `text` writes in 1 to `most` ASCII digits; None for anything else."""
    return int(text) if is_digits(text, most) else None
