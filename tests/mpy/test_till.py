# heapsize: 128k
# (the longest frame needs three 8 KB blocks at once: the frame, the line as the line reader
# hands it over, the body split_frame cuts out; beside the engine and this module the 96 KB
# heap of the 64-bit unix port has ~45 KB free but no hole over ~14 KB. 112k is enough for
# that test alone, 128k when the whole module runs in one process. Everything else fits 96k.)
"""The till link (protocol.till): framing, every named error, every till -> reader message.

Each refusal is checked for its code and for the exact field it names, because the
reader sends both back to the till and the cashier's screen shows them.
"""
import gc


from check import eq, raises
from protocol.canonical import encode
from protocol.errors import TillError, known
from protocol.till import MAX_FRAME, check_message, decode_answer, decode_frame, encode_frame, split_frame


def _crc32(data):
    # bit by bit, straight from the definition in docs/protocol.md (reflected 0x04C11DB7,
    # init and final XOR 0xFFFFFFFF), so the frame's CRC is not checked against itself
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0xEDB88320 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def _framed(body):
    """A line with a correct CRC around any bytes (to reach the checks after the CRC)."""
    return b"".join((body, b"*", ("%08X" % _crc32(body)).encode(), b"\n"))


def _refused(code, field, line):
    e = raises(TillError, decode_frame, line)
    eq(e.code, code, "code for %r" % (line[:60],))
    eq(e.field, field, "field for %r" % (line[:60],))
    assert known(e.code), e.code
    return e


def _short_line(i):
    return {"sku": "%d" % (i % 10), "cat": "", "qty": 1 + i % 9, "price": i % 10}


def _basket(n=3):
    return {"type": "basket", "receipt": "T1-0001", "lines": [
        {"sku": "80%02d" % i, "cat": "dairy" if i % 2 else "", "qty": 1 + i, "price": 99 + 50 * i}
        for i in range(n)]}


def _sale():
    # what the till kept of a committed sale: two lines, both discounted
    return {"lines": [{"sku": "1001", "cat": "dairy", "qty": 2, "price": 150},
                      {"sku": "8001", "cat": "coffee", "qty": 1, "price": 400}],
            "disc": [{"line": 0, "rule": "tier:gold", "cents": 15},
                     {"line": 1, "rule": "CAFFE30", "cents": 30}],
            "card": "6001000000000042", "tier": 2}


def _with(msg, **changes):
    out = dict(msg)
    for k in changes:
        if changes[k] is None:
            out.pop(k, None)
        else:
            out[k] = changes[k]
    return out


# -- framing -------------------------------------------------------------------------

def test_crc_reference_is_crc32():
    # the check value of CRC-32/ISO-HDLC: the test's own CRC is the one the docs name
    eq(_crc32(b"123456789"), 0xCBF43926, "CRC-32 check value")


def test_frame_round_trip_and_layout():
    for msg in (_basket(), {"type": "status"}, {"type": "commit", "quote": "Q7", "paid": 0},
                {"type": "return", "seq": 9, "sale": _sale(), "qty": [1, 0], "returned": [0, 0]}):
        frame = encode_frame(msg)
        body = encode(msg)
        eq(frame, body + b"*" + ("%08X" % _crc32(body)).encode() + b"\n", "frame bytes")
        eq(decode_frame(frame), msg, "round trip")
        # without the LF (as the line reader hands it over) and with CRLF from a till
        eq(decode_frame(frame[:-1]), msg, "no LF")
        eq(decode_frame(frame[:-1] + b"\r\n"), msg, "CRLF")


def test_frame_errors():
    body = encode({"type": "status"})
    crc = ("%08X" % _crc32(body)).encode()
    _refused("till.frame", "", body + b"\n")  # no CRC at all
    _refused("till.frame", "", body + b"*" + crc[:7] + b"\n")  # 7 digits
    _refused("till.frame", "", body + b"*" + crc + b"0\n")  # 9 digits
    _refused("till.frame", "", body + b"*ZZZZZZZZ\n")  # not hex
    _refused("till.frame", "", b"")
    _refused("till.checksum", "", body + b"*" + ("%08X" % (_crc32(body) ^ 1)).encode() + b"\n")
    # one bit flipped in the message, the CRC left as it was
    flipped = bytearray(body)
    flipped[3] ^= 0x01
    _refused("till.checksum", "", bytes(flipped) + b"*" + crc + b"\n")
    # a correct CRC around what is not JSON, or not an object
    _refused("till.frame", "", _framed(b'{"type":'))
    _refused("till.frame", "", _framed(b"\xff\xfe\x00"))
    _refused("till.frame", "", _framed(b'["type","status"]'))
    _refused("till.frame", "", _framed(b'"status"'))
    _refused("till.frame", "", _framed(b"17"))


def test_crc_must_be_eight_hex_digits():
    # CRC fields that int(x, 16) would read as the right value but that are not 8 hex
    # digits: a space, a sign, an underscore. The value must match for the test to mean
    # anything, so find a message whose CRC fits in 7 digits.
    n = 0
    while True:
        body = encode({"type": "status", "n": n})
        crc = _crc32(body)
        if crc < 0x10000000:
            break
        n += 1
    seven = "%07X" % crc
    eq(decode_frame(body + b"*0" + seven.encode() + b"\n")["n"], n, "the CRC as 8 digits")
    for text in (" " + seven, "+" + seven, seven + " ", seven[0] + "_" + seven[1:]):
        _refused("till.frame", "", body + b"*" + text.encode() + b"\n")


def test_frame_length_limit():
    # a status message padded (extra keys are ignored) so that the frame without its LF
    # is exactly MAX_FRAME bytes: accepted; one byte more: till.too_long, before anything
    # is parsed
    def padded(total):
        head, tail = b'{"pad":"', b'","type":"status"}'
        line = bytearray(total)
        line[:len(head)] = head
        for i in range(len(head), total - 9 - len(tail)):
            line[i] = 0x78  # "x"
        line[total - 9 - len(tail):total - 9] = tail
        line[total - 9:] = ("*%08X" % _crc32(memoryview(line)[:total - 9])).encode()
        line = bytes(line)  # as the line reader hands it over
        gc.collect()
        return line

    line = padded(MAX_FRAME)
    eq(len(line), MAX_FRAME, "frame length")
    eq(decode_frame(line)["type"], "status", "frame at the limit")
    line = None
    gc.collect()
    line = padded(MAX_FRAME + 1)
    eq(len(line), MAX_FRAME + 1, "frame length")
    _refused("till.too_long", "", line)
    line = None
    _refused("till.too_long", "", b"x" * (MAX_FRAME + 1))  # garbage: length comes first


def test_message_type():
    _refused("till.type", "type", encode_frame({"type": "refund"}))
    _refused("till.type", "type", encode_frame({"receipt": "T1"}))
    _refused("till.type", "type", encode_frame({"type": None}))
    _refused("till.type", "type", encode_frame({"type": 1}))
    # a type that is not text must be refused by name, not crash the till task
    _refused("till.type", "type", encode_frame({"type": ["basket"]}))
    _refused("till.type", "type", encode_frame({"type": {"basket": 1}}))


# -- till -> reader messages ------------------------------------------------------------

def test_basket_valid():
    eq(decode_frame(encode_frame(_basket(1))), _basket(1), "basket of 1 line")
    # the longest basket is checked as a message, not a frame: on the 64-bit unix port 200
    # decoded lines take ~30 KB, and a frame with its copies beside them does not fit in
    # the 96 KB heap next to this module (the longest frame is test_frame_length_limit)
    gc.collect()
    msg = {"type": "basket", "receipt": "T1-0002", "lines": [_short_line(i) for i in range(200)]}
    eq(len(check_message(msg)["lines"]), 200, "lines of the longest basket")
    msg["lines"].append(_short_line(200))
    e = raises(TillError, check_message, msg)
    eq((e.code, e.field), ("till.field", "lines"), "201 lines")
    msg = None
    edge = {"type": "basket", "receipt": "R" * 32, "lines": [
        {"sku": "S" * 32, "cat": "", "qty": 9999, "price": 10000000},
        {"sku": "1", "cat": "c" * 32, "qty": 1, "price": 0}]}
    eq(decode_frame(encode_frame(edge)), edge, "basket at the limits")


def test_basket_invalid():
    b = _basket()
    bad_line = dict(b["lines"][2])
    bad_line["qty"] = 0
    _refused("till.field", "lines[2].qty", encode_frame(_with(b, lines=b["lines"][:2] + [bad_line])))
    cases = [
        ("receipt", _with(b, receipt=None)),
        ("receipt", _with(b, receipt="")),
        ("receipt", _with(b, receipt="R" * 33)),
        ("receipt", _with(b, receipt=12)),
        ("lines", _with(b, lines=None)),
        ("lines", _with(b, lines=[])),
        ("lines", _with(b, lines={"sku": "1"})),
        ("lines[0]", _with(b, lines=["8001"])),
    ]
    for field, msg in cases:
        _refused("till.field", field, encode_frame(msg))
    for i, (key, value) in enumerate([("sku", ""), ("sku", "S" * 33), ("cat", None), ("cat", 5),
                                      ("qty", 10000), ("qty", True), ("qty", "2"),
                                      ("price", -1), ("price", 10000001), ("price", None)]):
        line = dict(b["lines"][1])
        if value is None:
            del line[key]
        else:
            line[key] = value
        _refused("till.field", "lines[1].%s" % key,
                 encode_frame(_with(b, lines=[b["lines"][0], line, b["lines"][2]])))
    # a key the engine does not know would be journaled for nothing
    line = dict(b["lines"][0])
    line["note"] = "offerta"
    _refused("till.field", "lines[0].note", encode_frame(_with(b, lines=[line])))


def test_commit():
    ok = {"type": "commit", "quote": "Q12", "paid": 1234}
    eq(decode_frame(encode_frame(ok)), ok, "commit")
    for field, msg in [("quote", _with(ok, quote=None)), ("quote", _with(ok, quote="")),
                       ("quote", _with(ok, quote=12)), ("paid", _with(ok, paid=None)),
                       ("paid", _with(ok, paid=-1)), ("paid", _with(ok, paid="1234")),
                       ("paid", _with(ok, paid=True)), ("paid", _with(ok, paid=2000000001))]:
        _refused("till.field", field, encode_frame(msg))


def test_void_by_quote():
    ok = {"type": "void", "quote": "Q12"}
    eq(decode_frame(encode_frame(ok)), ok, "void of a quote")
    _refused("till.field", "quote", encode_frame({"type": "void"}))
    _refused("till.field", "quote", encode_frame({"type": "void", "quote": ""}))


def test_void_by_seq_with_sale():
    ok = {"type": "void", "seq": 41, "sale": _sale()}
    eq(decode_frame(encode_frame(ok)), ok, "void of a sale")
    later = _with(ok, returned=[1, 0])
    eq(decode_frame(encode_frame(later)), later, "void of a partly returned sale")
    # a void reverses everything left: no qty needed, and none is looked at
    eq(decode_frame(encode_frame(_with(ok, qty="ignored")))["seq"], 41, "qty ignored")
    _refused("till.field", "seq", encode_frame(_with(ok, seq=0)))
    _refused("till.field", "sale", encode_frame(_with(ok, sale=None)))
    _refused("till.field", "returned", encode_frame(_with(ok, returned=[0])))
    _refused("till.field", "returned[1]", encode_frame(_with(ok, returned=[0, -1])))


def _sale_with(**changes):
    return _with(_sale(), **changes)


def test_sale_fields_named_exactly():
    ret = {"type": "return", "seq": 41, "sale": _sale(), "qty": [1, 0]}
    lines = _sale()["lines"]
    bad_price = dict(lines[1])
    bad_price["price"] = "4,00"
    d0 = _sale()["disc"][0]
    cases = [
        ("sale", _with(ret, sale=[1, 2])),
        ("sale.lines", _with(ret, sale=_sale_with(lines=None))),
        ("sale.lines", _with(ret, sale=_sale_with(lines=[]))),
        ("sale.lines[1].price", _with(ret, sale=_sale_with(lines=[lines[0], bad_price]))),
        ("sale.disc", _with(ret, sale=_sale_with(disc=None))),
        ("sale.disc", _with(ret, sale=_sale_with(disc={"line": 0}))),
        ("sale.disc[0].cents", _with(ret, sale=_sale_with(disc=[_with(d0, cents=-15)]))),
        ("sale.disc[0].cents", _with(ret, sale=_sale_with(disc=[_with(d0, cents="15")]))),
        ("sale.disc[1].line", _with(ret, sale=_sale_with(disc=[d0, _with(d0, line=2)]))),
        ("sale.disc[0].line", _with(ret, sale=_sale_with(disc=[_with(d0, line=None)]))),
        ("sale.disc[0].rule", _with(ret, sale=_sale_with(disc=[_with(d0, rule="")]))),
        ("sale.disc[0].line", _with(ret, sale=_sale_with(disc=["tier:gold"]))),
        ("sale.card", _with(ret, sale=_sale_with(card=None))),
        ("sale.card", _with(ret, sale=_sale_with(card=6001000000000042))),
        ("sale.card", _with(ret, sale=_sale_with(card="6001ab"))),
        ("sale.disc[0].rule", _with(ret, sale=_sale_with(disc=[_with(d0, rule="threshold:" + "P" * 33)]))),
        ("sale.disc[0].rule", _with(ret, sale=_sale_with(disc=[_with(d0, rule="tier:\u202egold")]))),
        ("sale.tier", _with(ret, sale=_sale_with(tier=256))),
        ("sale.tier", _with(ret, sale=_sale_with(tier="2"))),
    ]
    for field, msg in cases:
        _refused("till.field", field, encode_frame(msg))


def test_return():
    ok = {"type": "return", "seq": 41, "sale": _sale(), "qty": [1, 0], "returned": [1, 0]}
    eq(decode_frame(encode_frame(ok)), ok, "return")
    first = _with(ok, returned=None)  # returned defaults to zeros
    eq(decode_frame(encode_frame(first)), first, "first return")
    cases = [
        ("seq", _with(ok, seq=None)),
        ("seq", _with(ok, seq=0)),
        ("seq", _with(ok, seq="41")),
        ("sale", _with(ok, sale=None)),
        ("qty", _with(ok, qty=None)),
        ("qty", _with(ok, qty=[1])),
        ("qty", _with(ok, qty=[1, 0, 0])),
        ("qty", _with(ok, qty=1)),
        ("qty[1]", _with(ok, qty=[1, -1])),
        ("qty[1]", _with(ok, qty=[1, 10000])),
        ("qty[0]", _with(ok, qty=[True, 0])),
        ("returned", _with(ok, returned=[0, 0, 0])),
        ("returned", _with(ok, returned="none")),
        ("returned[0]", _with(ok, returned=[None, 0])),
    ]
    for field, msg in cases:
        _refused("till.field", field, encode_frame(msg))


def test_status():
    eq(decode_frame(encode_frame({"type": "status"})), {"type": "status"}, "status")


def _wrong_crc(frame):
    last = b"1" if frame[-2:-1] == b"0" else b"0"
    return frame[:-2] + last + b"\n"


def test_decode_answer():
    quote = {"type": "quote", "quote": "Q3", "receipt": "T1-0001", "card": "************0042",
             "tier": 2, "gross": 997, "discount": 50, "disc": [], "capped": [], "note": ""}
    eq(decode_answer(encode_frame(quote)), quote, "quote answer")
    err = {"type": "error", "code": "till.field", "field": "lines[2].qty", "detail": "x", "text": "y"}
    eq(decode_answer(encode_frame(err)), err, "error answer")
    for line, code in [(encode_frame({"code": "x"}), "till.type"),
                       (encode_frame({"type": 5}), "till.type"),
                       (_framed(b"[1]"), "till.type"),
                       (_framed(b'{"type":"quo'), "till.frame"),
                       (_wrong_crc(encode_frame({"type": "ready"})), "till.checksum"),
                       (b'{"type":"ready"}\n', "till.frame")]:
        eq(raises(TillError, decode_answer, line).code, code, "answer %r" % (line,))


def test_split_frame_returns_body():
    body = encode({"type": "status"})
    eq(split_frame(_framed(body)), body, "body between start and *")
    # a * inside the message is part of the message: the CRC is after the last one
    starred = encode({"type": "basket", "receipt": "A*B", "lines": [
        {"sku": "1", "cat": "", "qty": 1, "price": 1}]})
    eq(split_frame(_framed(starred)), starred, "star in a field")
