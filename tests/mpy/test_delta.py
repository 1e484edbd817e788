"""Down-sync pages: round trip, and a named error for every way a page can be wrong."""
from check import eq, raises
from protocol import errors
from protocol.canonical import decode, encode
from protocol.delta import (ACTIVE, BLOCKED, REMOVED, entries, make_page, pack_entries, parse_page,
                            write_page)
from protocol.errors import DeltaError

_BIG = 1 << 20


def _page(entries, frm=7, to=9, more=False):
    """Page bytes written by the general canonical encoder, not by make_page."""
    return encode({"from": frm, "to": to, "more": more, "entries": entries})


def _fails(code, field, data, current=7, limit=_BIG):
    e = raises(DeltaError, parse_page, data, current, limit)
    # field None: where a cut or garbled page breaks depends on the cut.
    eq((e.code, e.field if field is not None else None), (code, field), "error for %r" % (data[:60],))
    assert errors.known(code), code
    return e


def test_round_trip_and_canonical_bytes():
    entries_in = [("0", 0, ACTIVE), ("42", 3, BLOCKED), (1000, 255, REMOVED),
                  ("9999999999999999999", 1, ACTIVE)]
    data = make_page(7, 12, entries_in, more=True)
    # make_page formats by hand; the general encoder must agree byte for byte.
    assert decode(data, strict=True)["to"] == 12
    page = parse_page(data, 7, len(data))
    eq(page["from"], 7)
    eq(page["to"], 12)
    eq(page["more"], True)
    eq(list(entries(page["entries"])),
       [(0, 0, 0), (42, 3, 1), (1000, 255, 2), (9999999999999999999, 1, 0)])
    eq(bytes(page["entries"]), bytes(pack_entries(entries_in)))
    eq(len(page["entries"]), 40)


def test_leading_zeros_and_numeric_order():
    data = make_page(1, 2, [("0042", 1, ACTIVE)])
    assert b'"42"' in data and b"0042" not in data, data
    # "9" < "10" as numbers although not as text: ascending is numeric.
    page = parse_page(_page([["9", 0, 0], ["0010", 0, 0]]), 7, _BIG)
    eq(list(entries(page["entries"])), [(9, 0, 0), (10, 0, 0)])
    _fails("delta.order", "entries[1][0]", _page([["10", 0, 0], ["9", 0, 0]]))
    _fails("delta.order", "entries[1][0]", _page([["42", 0, 0], ["0042", 1, 0]]))


def test_empty_page_keeps_version():
    page = parse_page(make_page(7, 7, []), 7, _BIG)
    eq((page["from"], page["to"], page["more"], len(page["entries"])), (7, 7, False, 0))


def test_truncated_and_garbled():
    good = make_page(7, 9, [("1", 0, 0), ("2", 1, 1)])
    for cut in (1, 5, len(good) // 2, len(good) - 1):
        _fails("delta.format", None, good[:cut])
    _fails("delta.format", "", b"")
    _fails("delta.format", "", b"\xff\xfe{garbage")
    _fails("delta.format", "entries[0]", good.replace(b",", b";", 1))
    _fails("delta.format", "entries[1][0]", good.replace(b'"2"', b'"\xc3\xa8"'))


def test_wrong_types_name_the_field():
    _fails("delta.format", "", b"[1,2,3]")
    _fails("delta.format", "from", _page([], frm="7"))
    _fails("delta.format", "to", _page([], to=-1))
    _fails("delta.format", "more", encode({"from": 7, "to": 9, "more": 1, "entries": []}))
    _fails("delta.format", "entries", encode({"from": 7, "to": 9, "more": False, "entries": {}}))
    _fails("delta.format", "more", encode({"from": 7, "to": 9, "entries": []}))
    # An unknown field shifts the canonical order: the field expected there is named.
    _fails("delta.format", "from", encode({"from": 7, "to": 9, "more": False, "entries": [], "extra": 1}))
    _fails("delta.format", "", encode({"from": 7, "to": 9, "more": False, "entries": [], "zz": 1}))
    _fails("delta.format", "to", b'{"entries":[],"from":7,"more":false,"to":9.5}')
    _fails("delta.format", "to", b'{"entries":[],"from":7,"more":false,"to":9e3}')
    _fails("delta.format", "from", b'{"entries":[],"from":07,"more":false,"to":9}')
    _fails("delta.format", "entries[0][1]", b'{"entries":[["1",2.0,0]],"from":7,"more":false,"to":9}')
    # Valid JSON but not the canonical encoding (white space): refused too.
    _fails("delta.format", "entries", b'{"entries": [], "from": 7, "more": false, "to": 9}')
    _fails("delta.format", "entries", b'{"entries":[["1",2,0] ],"from":7,"more":false,"to":9}')
    thirteen = [[str(100 + i), 0, 0] for i in range(13)]
    thirteen[12][1] = 256
    _fails("delta.format", "entries[12][1]", _page(thirteen))
    bad_entries = [
        ([[5, 0, 0]], "entries[0][0]"),  # card as a JSON number
        ([["12a4", 0, 0]], "entries[0][0]"),
        ([["", 0, 0]], "entries[0][0]"),
        ([["-5", 0, 0]], "entries[0][0]"),
        ([["12345678901234567890", 0, 0]], "entries[0][0]"),  # 20 digits
        ([["\u0661\u0662", 0, 0]], "entries[0][0]"),  # Arabic-Indic digits
        ([["1", -1, 0]], "entries[0][1]"),
        ([["1", True, 0]], "entries[0][1]"),
        ([["1", "2", 0]], "entries[0][1]"),
        ([["1", 0, 3]], "entries[0][2]"),
        ([["1", 0, None]], "entries[0][2]"),
        ([["1", 0]], "entries[0]"),
        ([["1", 0, 0, 0]], "entries[0]"),
        ([["1", 0, 0], "2"], "entries[1]"),
    ]
    for entries, field in bad_entries:
        _fails("delta.format", field, _page(entries))


def test_unsorted():
    _fails("delta.order", "entries[2][0]", _page([["1", 0, 0], ["5", 0, 0], ["3", 0, 0]]))
    _fails("delta.order", "entries[1][0]", _page([["5", 0, 0], ["5", 1, 0]]))


def test_oversized():
    data = make_page(7, 9, [(str(1000 + i), i % 4, ACTIVE) for i in range(50)])
    eq(len(list(entries(parse_page(data, 7, len(data))["entries"]))), 50)
    e = _fails("delta.too_long", "", data, 7, len(data) - 1)
    assert str(len(data)) in e.detail, e.detail


def test_wrong_version():
    _fails("delta.version", "from", _page([["1", 0, 0]], frm=6, to=9))
    _fails("delta.version", "from", _page([["1", 0, 0]], frm=8, to=9))
    _fails("delta.version", "to", _page([["1", 0, 0]], frm=7, to=6))
    # Entries without a new version would give two directories the same version.
    _fails("delta.version", "to", _page([["1", 0, 0]], frm=7, to=7))


def test_make_page_refuses_what_readers_refuse():
    for args, code, field in [
        ((1, 2, [("2", 0, 0), ("1", 0, 0)]), "delta.order", "entries[1][0]"),
        ((1, 2, [("x", 0, 0)]), "delta.format", "entries[0][0]"),
        ((1, 2, [(10 ** 19, 0, 0)]), "delta.format", "entries[0][0]"),
        ((1, 2, [(1, 300, 0)]), "delta.format", "entries[0][1]"),
        ((2, 1, []), "delta.version", "to"),
        ((1, 1, [(1, 0, 0)]), "delta.version", "to"),
        ((-1, 1, []), "delta.format", "from"),
    ]:
        e = raises(DeltaError, make_page, *args)
        eq((e.code, e.field), (code, field), repr(args))
    eq(raises(DeltaError, make_page, 1, 2, [], "yes").field, "more")


def test_preallocated_buffers():
    """A reader receives into buffers allocated once: write_page, parse_page(size, records)."""
    made = make_page(3, 4, [(i * 1000, i % 3, i % 2) for i in range(1, 30)])
    buf = bytearray(len(made) + 100)
    buf[len(made):] = b"x" * 100  # stale bytes after the page must not matter
    size = write_page(buf, 3, 4, [(i * 1000, i % 3, i % 2) for i in range(1, 30)])
    eq(size, len(made))
    eq(bytes(buf[:size]), made)
    records = bytearray(40 * 10)
    page = parse_page(buf, 3, size, size, records)
    eq(list(entries(page["entries"])), [(i * 1000, i % 3, i % 2) for i in range(1, 30)])
    eq(bytes(records[:290]), bytes(pack_entries((i * 1000, i % 3, i % 2) for i in range(1, 30))))
    # A memoryview of a receive buffer works too.
    eq(parse_page(memoryview(buf)[:size], 3, size)["to"], 4)
    e = raises(DeltaError, parse_page, buf, 3, size, size, bytearray(28 * 10))
    eq((e.code, e.field), ("delta.too_long", "entries"))
    eq(raises(DeltaError, parse_page, buf, 3, size - 1, size).code, "delta.too_long")
    small = bytearray(size - 1)
    eq(raises(DeltaError, write_page, small, 3, 4, [(i * 1000, 0, 0) for i in range(1, 30)]).code,
       "delta.too_long")
    # Without size, the stale bytes after the page are part of it: refused.
    eq(raises(DeltaError, parse_page, buf, 3, len(buf)).code, "delta.format")
