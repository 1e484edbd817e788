"""NDEF messages (protocol.ndef): known messages written out by hand from NFC Forum NDEF 1.0
(section 3.2: MB 80, ME 40, CF 20, SR 10, IL 08, TNF in the low 3 bits), decoded and
encoded; every malformed header refused with NdefError (card.unreadable at "ndef")."""
from check import eq, raises
from protocol import ndef
from protocol.ndef import NdefError

# a Text record "Hello", language "en": MB ME SR, TNF 1, type "T" (RTD Text 1.0, 3.1)
HELLO = b"\xd1\x01\x08T\x02enHello"
# two records: MB SR TNF 1 "U" then ME SR TNF 4 with an ID "i1"
TWO = b"\x91\x01\x02U\x01a" + b"\x5c\x04\x01\x02ab:ci1Z"


def _plain(records):
    return [(t, bytes(ty), bytes(i), bytes(p)) for t, ty, i, p in records]


def test_text_record_decodes():
    eq(_plain(ndef.decode(HELLO)), [(1, b"T", b"", b"\x02enHello")], "records")


def test_text_record_encodes():
    eq(ndef.encode([(1, b"T", b"", b"\x02enHello")]), HELLO, "bytes")


def test_two_records_with_id():
    want = [(1, b"U", b"", b"\x01a"), (4, b"ab:c", b"i1", b"Z")]
    eq(_plain(ndef.decode(TWO)), want, "records")
    eq(ndef.encode(want), TWO, "bytes")


def test_empty_record():
    # the empty record (TNF 0, all lengths 0): what an empty NDEF message is made of
    eq(_plain(ndef.decode(b"\xd0\x00\x00")), [(0, b"", b"", b"")], "records")
    eq(ndef.encode([(0, b"", b"", b"")]), b"\xd0\x00\x00", "bytes")


def test_long_record_has_four_length_bytes():
    payload = bytes(range(256)) + b"x"
    msg = b"\xc2\x0a\x00\x00\x01\x01" + b"text/plain" + payload  # no SR: 4-byte length 257
    eq(ndef.encode([(2, b"text/plain", b"", payload)]), msg, "bytes")
    eq(_plain(ndef.decode(msg)), [(2, b"text/plain", b"", payload)], "records")


def test_long_form_allowed_for_short_payloads():
    # SR is optional: a writer may use 4 length bytes for a 2-byte payload
    eq(_plain(ndef.decode(b"\xc5\x00\x00\x00\x00\x02hi")), [(5, b"", b"", b"hi")], "records")


def test_payload_is_a_view_not_a_copy():
    buf = bytearray(HELLO)
    rec = ndef.decode(buf)[0]
    buf[-1] = ord("O")
    eq(bytes(rec[3]), b"\x02enHellO", "payload follows the buffer")


def test_find_first_of_type():
    msg = ndef.encode([(1, b"T", b"", b"x"), (4, b"a:b", b"", b"one"), (4, b"a:b", b"", b"two")])
    eq(bytes(ndef.find(msg, 4, b"a:b")), b"one", "first match")
    eq(ndef.find(msg, 4, b"a:c"), None, "no match")
    eq(ndef.find(msg, 1, b"a:b"), None, "same type, other TNF")


def test_find_checks_the_whole_message():
    msg = bytearray(ndef.encode([(4, b"a:b", b"", b"one"), (1, b"T", b"", b"x")]))
    msg[-4] |= 0x80  # MB on the second record
    e = raises(NdefError, ndef.find, msg, 4, b"a:b")
    eq((e.code, e.field), ("card.unreadable", "ndef"), "code")


def _bad(data, why):
    e = raises(NdefError, ndef.decode, data)
    eq(e.code, "card.unreadable", why)
    return e


def test_malformed_headers():
    _bad(b"", "empty")
    _bad(b"\xd1\x01", "header cut")
    _bad(b"\x51\x01\x01Tx", "first record without MB")
    _bad(b"\x91\x01\x01Tx", "message ends before ME")
    _bad(b"\x91\x01\x01Tx\xd1\x01\x01Ty", "MB on a later record")
    _bad(HELLO + b"\x00", "bytes after ME")
    _bad(b"\xd1\x01\x09T\x02enHello", "payload longer than the message")
    _bad(b"\xc1\x01\x00\x00\x00", "long length cut")
    _bad(b"\xd9\x01\x01", "ID length missing")
    _bad(b"\xd9\x01\x01\x05Tx", "ID longer than the message")
    _bad(b"\xd7\x00\x00", "TNF 7 reserved")
    _bad(b"\xd0\x01\x00T", "empty record with a type")
    _bad(b"\xd0\x00\x01x", "empty record with a payload")
    _bad(b"\xd5\x01\x00T", "unknown TNF with a type")
    _bad(b"\xd1\x00\x01x", "well-known record without type")


def test_chunks_refused():
    e = _bad(b"\xb1\x01\x01Ta\x56\x00\x01b", "CF set, TNF 6 follows")
    eq("chunk" in e.detail, True, "detail names chunks")
    _bad(b"\xd6\x00\x01b", "TNF 6 alone")


def test_encode_refuses_what_cannot_be_a_record():
    raises(ValueError, ndef.encode, [])
    raises(ValueError, ndef.encode, [(0, b"T", b"", b"")])
    raises(ValueError, ndef.encode, [(5, b"T", b"", b"")])
    raises(ValueError, ndef.encode, [(1, b"", b"", b"x")])
    raises(ValueError, ndef.encode, [(6, b"", b"", b"x")])
    raises(ValueError, ndef.encode, [(1, b"T" * 256, b"", b"x")])
