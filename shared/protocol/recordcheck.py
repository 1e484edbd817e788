"""The schema of a journal record (docs/protocol.md section 3), checked field by field.

The reader checks each record with `check_content` before it journals it (firmware/app.py):
a till message that would make a bad record gets no discount. The backend checks every
record of a batch with it too (protocol.batchcheck), so the receipts it stores are clean.
It lives apart from protocol.records because it needs the engine's basket rules, which
the modules that only build and send records (the journal, the sync client) do not.

    >>> from .records import make_record, GENESIS
    >>> rec = make_record("sale", reader="R1", seq=1, prev=GENESIS, t=1700000000, card="42", tier=1,
    ...                   lines=[{"sku": "8001", "cat": "", "qty": 1, "price": 250}], gross=250,
    ...                   discount=0, disc=[], rules=1, receipt="T1-1", quote="Q1")
    >>> check_content(rec) is rec
    True
    >>> check_content(dict(rec, card="12ab"))
    Traceback (most recent call last):
    ...
    loyalty.protocol.errors.ProtocolError: batch.record at record.card: must be 1 to 19 digits
"""
from .checks import MAX_RULE, integer, is_digits, text
from .engine import check_lines
from .errors import ProtocolError, TillError
from .records import FORMAT, KINDS

MAX_RECORDS = 200  # per batch (docs/protocol.md)
MAX_TEXT = 32  # receipt and quote ids, as the till link
MAX_MONEY = 2 ** 40
_COMMON = ("card", "disc", "discount", "gross", "kind", "lines", "prev", "quote", "reader", "receipt",
           "rules", "seq", "t", "tier", "v")
_REVERSAL = ("ref", "returned", "returning")
_DISC_KEYS = ("cents", "line", "rule")


def _bad(where, name, rule):
    raise ProtocolError("batch.record", where + "." + name if name else where, rule)


def _int(rec, name, lo, hi, where):
    return integer(rec.get(name), lo, hi, where + "." + name, ProtocolError, "batch.record")


def _text(rec, name, lo, hi, where):
    return text(rec.get(name), lo, hi, where + "." + name, ProtocolError, "batch.record")


def check_content(rec, where="record"):
    """Everything of a record but its seq and prev, which the journal fills in: the
    reader checks a record with this before it journals it, the backend as part of
    check_record. Every key, type and range; the card's digits; text without control or
    bidirectional characters; a sale's gross is the sum of its lines and its discount the
    sum of its discount lines; a return or a voided sale names a sale (`ref`) and
    reverses at most what is left of it; a cancelled quote moves no money."""
    if not isinstance(rec, dict):
        raise ProtocolError("batch.record", where, "must be an object")
    v = rec.get("v")
    if v != FORMAT or v is True:  # True == 1: a bool is not the format's number
        _bad(where, "v", "must be %d" % FORMAT)
    kind = rec.get("kind")
    if kind not in KINDS:
        _bad(where, "kind", "must be one of " + ",".join(KINDS))
    reversal = kind == "return" or (kind == "void" and "ref" in rec)
    for k in rec:
        if k not in _COMMON and not (reversal and k in _REVERSAL):
            _bad(where, str(k), "unknown key")
    _int(rec, "t", 0, 2 ** 40, where)
    _int(rec, "tier", 0, 255, where)
    _int(rec, "rules", 0, 2 ** 53, where)
    if not is_digits(rec.get("card")):
        _bad(where, "card", "must be 1 to 19 digits")
    lines = rec.get("lines")
    try:
        check_lines(lines, where + ".lines")
    except TillError as e:
        raise ProtocolError("batch.record", e.field, e.detail)
    n = len(lines)
    if not n:
        _bad(where, "lines", "must have at least one line")
    gross = _int(rec, "gross", -MAX_MONEY, MAX_MONEY, where)
    discount = _int(rec, "discount", -MAX_MONEY, MAX_MONEY, where)
    if reversal:
        _text(rec, "receipt", 0, MAX_TEXT, where)
        _text(rec, "quote", 0, MAX_TEXT, where)
        _int(rec, "ref", 1, 2 ** 53, where)
        returned = _quantities(rec, "returned", n, where)
        returning = _quantities(rec, "returning", n, where)
        room = []  # cents each line may have reversed: its units returned now
        units = 0
        for i in range(n):
            qty = lines[i]["qty"]
            if returned[i] + returning[i] > qty:
                _bad(where, "returning[%d]" % i, "%d returned before + %d now > %d sold"
                     % (returned[i], returning[i], qty))
            if kind == "void" and returned[i] + returning[i] != qty:
                _bad(where, "returning[%d]" % i, "a voided sale returns all that is left of each line")
            units += returning[i]
            room.append(returning[i] * lines[i]["price"])
        if not units:
            _bad(where, "returning", "must return at least one unit")
        want = -sum(room)
        sign = -1
    else:
        _text(rec, "receipt", 1, MAX_TEXT, where)
        _text(rec, "quote", 1, MAX_TEXT, where)
        room = [line["qty"] * line["price"] for line in lines]
        if kind == "void":  # a cancelled quote: nothing was sold, nothing discounted
            want = 0
            room = [0] * n
        else:
            want = sum(room)
        sign = 1
    if gross != want:
        _bad(where, "gross", "must be %d (the %s)" % (want, "sum of the lines" if kind == "sale" else
                                                       "lines returned, negative" if reversal else "nothing sold"))
    _check_disc(rec.get("disc"), room, sign, discount, where)
    return rec


def _quantities(rec, name, n, where):
    v = rec.get(name)
    if not isinstance(v, list) or len(v) != n:
        _bad(where, name, "must list a quantity for each of the %d lines" % n)
    for i in range(n):
        integer(v[i], 0, 9999, "%s.%s[%d]" % (where, name, i), ProtocolError, "batch.record")
    return v


def _check_disc(disc, room, sign, discount, where):
    """Discount lines {cents, line, rule}: a line of the record, a rule's name, cents of
    `sign` (positive granted, negative reversed), at most `room[line]` in all per line;
    their sum is the record's discount."""
    if not isinstance(disc, list) or len(disc) > 4 * len(room):
        _bad(where, "disc", "must be a list of at most %d discount lines" % (4 * len(room)))
    given = [0] * len(room)
    total = 0
    for k in range(len(disc)):
        d = disc[k]
        at = "%s.disc[%d]" % (where, k)
        if not isinstance(d, dict) or len(d) != 3:
            raise ProtocolError("batch.record", at, "must be {cents, line, rule}")
        for key in _DISC_KEYS:
            if key not in d:
                _bad(at, key, "missing")
        i = integer(d["line"], 0, len(room) - 1, at + ".line", ProtocolError, "batch.record")
        text(d["rule"], 1, MAX_RULE, at + ".rule", ProtocolError, "batch.record")
        cents = d["cents"]
        if sign > 0:
            integer(cents, 1, room[i], at + ".cents", ProtocolError, "batch.record")
        else:
            integer(cents, -room[i], -1, at + ".cents", ProtocolError, "batch.record")
        given[i] += cents * sign
        if given[i] > room[i]:
            _bad(at, "cents", "line %d discounted beyond its %d cents" % (i, room[i]))
        total += cents
    if total != discount:
        _bad(where, "discount", "must equal the sum of disc (%d)" % total)
