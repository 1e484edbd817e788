"""The till link: messages between the till (ECR) and the reader, framed and validated.

Each message is one line on the UART (a TCP stream on the simulated board):

    <canonical JSON object> "*" <CRC-32 of the JSON, 8 upper-case hex digits> "\\n"

Till to reader: basket, commit, void, return, status. Reader to till: ready, quote,
committed, voided, returned, status, error. docs/protocol.md lists every field.

    >>> frame = encode_frame({"type": "status"})
    >>> frame
    b'{"type":"status"}*31265AE3\\n'
    >>> decode_frame(frame)["type"]
    'status'
"""
from . import engine
from .canonical import decode, encode
from .checks import MAX_RULE, integer, is_digits, is_integer, text, text_fault
from .compat import const, crc32
from .errors import EncodingError, TillError

MAX_FRAME = const(8192)  # a 200-line basket is about 8 KB; anything longer is garbage
MAX_LINES = const(200)  # as engine.check_lines
MAX_QTY = const(9999)
MAX_PRICE = const(10000000)
MAX_TEXT = const(32)
_HEX = b"0123456789ABCDEFabcdef"


def encode_frame(msg):
    body = encode(msg)
    return body + b"*" + ("%08X" % (crc32(body) & 0xFFFFFFFF)).encode() + b"\n"


def split_frame(line):
    """The JSON bytes of one framed line, checked for length and CRC."""
    if len(line) > MAX_FRAME:
        raise TillError("till.too_long", "", "frame of %d bytes, limit %d" % (len(line), MAX_FRAME))
    line = bytes(line).rstrip(b"\r\n")
    star = line.rfind(b"*")
    if star < 0 or len(line) - star != 9:
        raise TillError("till.frame", "", "no *CRC at the end of the line")
    body = line[:star]
    digits = line[star + 1:]
    # int(x, 16) alone would also take a space, a sign or an underscore among the 8 digits
    for c in digits:
        if c not in _HEX:
            raise TillError("till.frame", "", "CRC is not 8 hex digits")
    want = int(digits, 16)
    if crc32(body) & 0xFFFFFFFF != want:
        raise TillError("till.checksum", "", "CRC-32 does not match the message")
    return body


def _decode(line):
    try:
        return decode(split_frame(line))
    except EncodingError as e:
        raise TillError("till.frame", "", e.detail)


def decode_frame(line):
    """Validated message dict from one framed line; TillError names what is wrong."""
    return check_message(_decode(line))


def decode_answer(line):
    """A reader's answer (for tills and the till simulator): framed like every message."""
    msg = _decode(line)
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        raise TillError("till.type", "type", "an answer names its type")
    return msg


# -- field rules -------------------------------------------------------------------------

def _int(msg, name, lo, hi, where=""):
    v = msg.get(name) if isinstance(msg, dict) else None
    return integer(v, lo, hi, where + name, TillError, "till.field")


def _text(msg, name, where="", empty=False):
    v = msg.get(name) if isinstance(msg, dict) else None
    if not isinstance(v, str) or len(v) > MAX_TEXT or (not v and not empty):
        raise TillError("till.field", where + name, "must be text of 1 to %d characters" % MAX_TEXT)
    fault = text_fault(v)
    if fault is not None:
        raise TillError("till.field", where + name, fault)
    return v


def _list(msg, name, lo, hi):
    v = msg.get(name)
    if not isinstance(v, list) or not lo <= len(v) <= hi:
        raise TillError("till.field", name, "must be a list of %d to %d items" % (lo, hi))
    return v


def check_lines(lines, name="lines"):
    """Basket lines as the engine defines them, at least one."""
    if isinstance(lines, list) and not lines:
        raise TillError("till.field", name, "must have at least one line")
    return engine.check_lines(lines, name)


def _check_basket(msg):
    _text(msg, "receipt")
    check_lines(msg.get("lines"))


def _check_commit(msg):
    _text(msg, "quote")
    _int(msg, "paid", 0, MAX_PRICE * MAX_LINES)


def _check_void(msg):
    # a quote not yet paid, or a committed receipt (its journal seq) voided afterwards
    if "seq" in msg:
        _int(msg, "seq", 1, 2 ** 53)
        _check_sale(msg)
    else:
        _text(msg, "quote")


def _check_sale(msg):
    sale = msg.get("sale")
    if not isinstance(sale, dict):
        raise TillError("till.field", "sale", "must be the original sale: lines, disc, card, tier")
    check_lines(sale.get("lines"), "sale.lines")
    disc = sale.get("disc")
    if not isinstance(disc, list) or len(disc) > 4 * MAX_LINES:
        raise TillError("till.field", "sale.disc", "must be a list of discount lines")
    for i, d in enumerate(disc):
        where = "sale.disc[%d]." % i
        _int(d, "line", 0, len(sale["lines"]) - 1, where)
        text(d.get("rule") if isinstance(d, dict) else None, 1, MAX_RULE, where + "rule", TillError, "till.field")
        _int(d, "cents", 0, MAX_PRICE * MAX_QTY, where)
    if not is_digits(sale.get("card")):
        raise TillError("till.field", "sale.card", "must be 1 to 19 digits")
    _int(sale, "tier", 0, 255, "sale.")
    n = len(sale["lines"])
    for name in ("returned", "qty"):
        if name == "qty" and msg.get("type") != "return":
            continue
        v = msg.get(name, [0] * n) if name == "returned" else msg.get(name)
        if not isinstance(v, list) or len(v) != n:
            raise TillError("till.field", name, "must list a quantity for each of the %d sale lines" % n)
        for i, q in enumerate(v):
            if not is_integer(q, 0, MAX_QTY):
                raise TillError("till.field", "%s[%d]" % (name, i), "must be an integer from 0 to %d" % MAX_QTY)


def _check_return(msg):
    _int(msg, "seq", 1, 2 ** 53)
    _check_sale(msg)


def _check_status(msg):
    pass


CHECKS = {"basket": _check_basket, "commit": _check_commit, "void": _check_void,
          "return": _check_return, "status": _check_status}


def check_message(msg):
    """Validate a message from the till; raise TillError naming the field and the rule."""
    if not isinstance(msg, dict):
        raise TillError("till.frame", "", "a message is a JSON object")
    kind = msg.get("type")
    # a list or an object as the type cannot even be looked up (unhashable)
    check = CHECKS.get(kind) if isinstance(kind, str) else None
    if check is None:
        raise TillError("till.type", "type", "must be one of " + ", ".join(sorted(CHECKS)))
    check(msg)
    return msg
