"""The rules every message of the protocol goes through, each written once: an integer
in a range, a number written in decimal digits, and text that may be stored.

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
    >>> text_fault("Caff\u00e8 d'orzo"), text_fault("a" + chr(0) + "b"), text_fault(chr(0x202E) + "gnp.exe")
    (None, 'holds a control character', 'holds a bidirectional control character')
"""

from .compat import plain_ascii

# a discount line's rule name: "threshold:", "promo:" or "tier:" and an id or a code of up
# to 32 characters (the till link's and the record's limit alike)
MAX_RULE = 42


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


def text_fault(s):
    """Why the str `s` may not be stored as text, or None when it may.

    Refused: control characters (C0, DEL and C1: a NUL or an escape sequence in a
    receipt would reach a terminal, a CSV export or a printer), the invisible
    characters that reorder text on screen (bidirectional marks, embeddings,
    overrides and isolates: "\u202e" makes a SKU or a receipt id read backwards), and
    lone surrogates, which UTF-8 cannot carry (MicroPython would write them anyway;
    CPython, the backend, would then refuse the record for good).
    """
    if plain_ascii is not None and plain_ascii(s):
        return None
    # The UTF-8 bytes, not the characters: on MicroPython every character taken out of a
    # str is interned for good, so a till sending exotic text would fill the heap.
    return _bytes_fault(utf8(s))


def utf8(s):
    """The UTF-8 bytes of `s`, a lone surrogate as its three bytes ED A0..BF xx, as
    MicroPython holds it (CPython's plain encode() refuses it)."""
    try:
        return s.encode()
    except UnicodeError:
        return s.encode("utf-8", "surrogatepass")


def _bytes_fault(b):
    n = len(b)
    i = 0
    while i < n:  # indexing bytes allocates nothing
        c = b[i]
        if c < 0x80:
            if c < 0x20 or c == 0x7F:
                return "holds a control character"
        elif i + 1 < n:
            d = b[i + 1]
            if c == 0xC2 and d <= 0x9F:  # U+0080 to U+009F
                return "holds a control character"
            if c == 0xED and d >= 0xA0:  # U+D800 to U+DFFF
                return "holds a character UTF-8 cannot carry"
            if (c == 0xD8 and d == 0x9C) or (c == 0xE2 and i + 2 < n and _bidi(d, b[i + 2])):
                return "holds a bidirectional control character"
        i += 1
    return None


def _bidi(d, e):
    # U+200E, U+200F, U+202A to U+202E (E2 80 xx), U+2066 to U+2069 (E2 81 xx)
    return (d == 0x80 and (e == 0x8E or e == 0x8F or 0xAA <= e <= 0xAE)) or (d == 0x81 and 0xA6 <= e <= 0xA9)


def text_rule(lo, hi):
    return "must be text of %d to %d characters" % (lo, hi)


def text(v, lo, hi, field, error, code):
    """`v` if it is a str of lo to hi characters with no text_fault(); else raises
    error(code, field, the rule)."""
    if not isinstance(v, str) or not lo <= len(v) <= hi:
        raise error(code, field, text_rule(lo, hi))
    fault = text_fault(v)
    if fault is not None:
        raise error(code, field, fault)
    return v
