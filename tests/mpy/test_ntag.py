"""NTAG21x memory (protocol.ntag) and the NTAG model (cardmodels.NtagCard).

Expected bytes come from the NTAG213/215/216 datasheet (NXP, rev. 3.2): CC E1 10 12 00,
E1 10 3E 00, E1 10 6D 00 (section 8.5); GET_VERSION 00 04 04 02 01 00 0F/11/13 03
(section 10.1); and from the Type 2 Tag spec for the TLVs (NULL 00, lock control 01,
memory control 02, NDEF 03, proprietary FD, terminator FE; FF and two length bytes).
"""
from cardmodels import NtagCard
from check import eq, raises
from protocol import ntag
from protocol.ntag import TagError

UID = b"\x04\x01\x02\x03\x04\x05\x06"
MSG = b"\xd1\x01\x08T\x02enHello"  # an NDEF Text record, 12 bytes


class _Reader:
    # the tag behind READ / FAST_READ callables, counting what was asked
    def __init__(self, tag):
        self.tag = tag
        self.asked = []

    def read(self, page):
        self.asked.append(("read", page))
        return self.tag.answer(bytes([0x30, page]))

    def fast_read(self, first, last):
        self.asked.append(("fast", first, last))
        return self.tag.answer(bytes([0x3A, first, last]))


def _tag(memory, model=215):
    return _Reader(NtagCard(UID, model, memory))


def _read(memory, model=215, fast=False, buf=None):
    r = _tag(memory, model)
    buf = buf if buf is not None else bytearray(ntag.BUF_SIZE)
    if fast:
        m = ntag.read_message(buf, fast_read=r.fast_read, last_page=ntag.model_info(model)[2])
    else:
        m = ntag.read_message(buf, read=r.read)
    return (None if m is None else bytes(m)), r.asked


def test_factory_cc_per_model():
    eq(ntag.cc(213), b"\xe1\x10\x12\x00", "213")
    eq(ntag.cc(215), b"\xe1\x10\x3e\x00", "215")
    eq(ntag.cc(216), b"\xe1\x10\x6d\x00", "216")


def test_parse_version():
    eq(ntag.parse_version(b"\x00\x04\x04\x02\x01\x00\x0f\x03"), 213, "213")
    eq(ntag.parse_version(b"\x00\x04\x04\x02\x01\x00\x11\x03"), 215, "215")
    eq(ntag.parse_version(b"\x00\x04\x04\x02\x01\x00\x13\x03"), 216, "216")
    eq(ntag.parse_version(b"\x00\x04\x03\x01\x01\x00\x0b\x03"), 0, "Ultralight EV1")
    eq(ntag.parse_version(b"\x00\x04\x04\x02\x01\x00\x0b\x03"), 0, "NTAG210")
    e = raises(TagError, ntag.parse_version, b"\x00\x04\x04\x02")
    eq(e.code, "card.unreadable", "code")
    raises(TagError, ntag.parse_version, None)


def test_blank_tag_has_an_empty_message():
    eq(_read(None), (None, [("read", 3)]), "one READ, no message")


def test_message_in_the_first_read():
    msg, asked = _read(b"\x03\x0c" + MSG + b"\xfe")
    eq(msg, MSG, "message")
    eq(asked, [("read", 3), ("read", 7)], "CC read, then one more for the tail")


def test_reads_only_the_pages_needed():
    msg = b"\xd5\x00\x28" + bytes(range(40))  # 43-byte message: data bytes 0..44
    got, asked = _read(b"\x03\x2b" + msg + b"\xfe" + b"\xaa" * 200)
    eq(got, msg, "message")
    eq(asked, [("read", 3), ("read", 7), ("read", 11), ("read", 15)], "READs")


def test_fast_read_reads_to_the_message_end():
    msg = b"\xd5\x00\x50" + bytes(range(80))  # 83 bytes, TLV ends at data byte 85
    got, asked = _read(b"\x03\x53" + msg + b"\xfe", fast=True)
    eq(got, msg, "message")
    eq(asked, [("fast", 3, 18), ("fast", 19, 25)], "FAST_READs")


def test_fast_read_stays_inside_a_small_tag():
    got, asked = _read(b"\x03\x0c" + MSG + b"\xfe", model=213, fast=True)
    eq(got, MSG, "message")
    eq(asked, [("fast", 3, 18)], "one FAST_READ")


def test_tlvs_skipped_before_the_message():
    # NULL padding, lock control, memory control, proprietary with a 3-byte length
    mem = b"\x00\x00\x01\x03\xa0\x0c\x34\x02\x03\x00\x00\x00\xfd\xff\x00\x02pp\x03\x0c" + MSG + b"\xfe"
    eq(_read(mem)[0], MSG, "message after the TLVs")
    eq(_read(mem, fast=True)[0], MSG, "the same with FAST_READ")


def test_three_byte_length():
    msg = b"\xc5\x00\x00\x00\x01\x2c" + bytes(300)
    eq(_read(b"\x03\xff\x01\x32" + msg + b"\xfe")[0], msg, "306-byte message")


def test_no_message():
    eq(_read(b"\xfe\x03\x0c" + MSG)[0], None, "terminator before the NDEF TLV")
    eq(_read(b"\x01\x03\xa0\x0c\x34\x03\x00\xfe")[0], None, "empty NDEF TLV")
    eq(_read(b"\x00" * 496)[0], None, "only NULL padding to the end of the area")


def _refused(memory, why, model=215, cc=None, buf=None):
    r = _tag(memory, model)
    if cc is not None:
        r.tag.pages[12:16] = cc
    e = raises(TagError, ntag.read_message, buf if buf is not None else bytearray(ntag.BUF_SIZE), r.read)
    eq(e.code, "card.unreadable", why)
    return e


def test_capability_container():
    r = _tag(b"\x03\x0c" + MSG + b"\xfe")
    r.tag.pages[12:16] = b"\x00\x00\x00\x00"
    eq(ntag.read_message(bytearray(ntag.BUF_SIZE), read=r.read), None, "not NDEF formatted")
    _refused(None, "version 2.0", cc=b"\xe1\x20\x3e\x00")
    _refused(None, "read access proprietary", cc=b"\xe1\x10\x3e\x80")
    r = _tag(b"\x03\x0c" + MSG + b"\xfe")
    r.tag.pages[12:16] = b"\xe1\x11\x3e\x0f"  # version 1.1, write access none: still readable
    eq(bytes(ntag.read_message(bytearray(ntag.BUF_SIZE), read=r.read)), MSG, "1.1 read-only")


def test_message_past_the_data_area():
    # CC of an NTAG213 says 144 bytes: a TLV claiming 150 runs past it
    _refused(b"\x03\x96" + bytes(150), "NDEF longer than the area", model=216, cc=b"\xe1\x10\x12\x00")
    _refused(b"\x01\xff\x02\x00", "lock TLV longer than the area")
    _refused(b"\x03\x0c" + MSG, "buffer too small", buf=bytearray(8))


def test_unknown_tlv():
    e = _refused(b"\x42\x01\x00\x03\x0c" + MSG + b"\xfe", "TLV 42")
    eq("42" in e.detail, True, "detail names it")


def test_short_answers():
    buf = bytearray(ntag.BUF_SIZE)
    raises(TagError, ntag.read_message, buf, lambda p: b"\xe1\x10\x3e\x00")
    raises(TagError, ntag.read_message, buf, lambda p: None)
    raises(TagError, ntag.read_message, buf, None, lambda a, b: b"\x00")
    tag = NtagCard(UID, 215, b"\x03\x20" + bytes(32) + b"\xfe")
    cut = lambda p: tag.answer(bytes([0x30, p]))[:15 if p > 3 else 16]  # noqa: E731
    raises(TagError, ntag.read_message, buf, cut)


def test_pages_to_write():
    eq(ntag.pages_to_write(b"\xd0\x00\x00", 213),
       [(3, b"\xe1\x10\x12\x00"), (4, b"\x03\x03\xd0\x00"), (5, b"\x00\xfe\x00\x00")], "empty record")
    pages = ntag.pages_to_write(bytes(300), 216)
    eq(pages[1], (4, b"\x03\xff\x01\x2c"), "3-byte length")
    eq(pages[-1], (4 + 304 // 4, b"\xfe\x00\x00\x00"), "terminator, zero-padded page")
    eq(len(pages), 1 + (4 + 300 + 1 + 3) // 4, "page count")
    e = raises(ValueError, ntag.pages_to_write, bytes(200), 213)
    eq("NTAG213" in str(e), True, "says which tag")


def test_written_pages_read_back():
    msg = b"\xd4\x0f\x05sconto.org:card" + b"12345"
    for model in (213, 215, 216):
        tag = NtagCard(UID, model, bytes(16))
        tag.pages[12:16] = bytes(4)  # a blank CC: writing it must set it
        for page, data in ntag.pages_to_write(msg, model):
            eq(tag.answer(bytes([0xA2, page]) + data), b"\x0a", "ACK")
        got = ntag.read_message(bytearray(ntag.BUF_SIZE), read=lambda p: tag.answer(bytes([0x30, p])))
        eq(bytes(got), msg, "NTAG%d" % model)


# -- the model -------------------------------------------------------------------------
def test_model_uid_pages():
    tag = NtagCard(UID, 213)
    # BCC0 = 88 ^ UID0 ^ UID1 ^ UID2 = 88^04^01^02 = 8F; BCC1 = 03^04^05^06 = 04
    eq(tag.answer(b"\x30\x00"), b"\x04\x01\x02\x8f\x03\x04\x05\x06\x04\x48\x00\x00\xe1\x10\x12\x00", "pages 0-3")
    eq(tag.answer(b"\x30\x04")[:4], b"\x03\x00\xfe\x00", "factory empty NDEF TLV")


def test_model_version_and_signature():
    eq(NtagCard(UID, 216).answer(b"\x60"), b"\x00\x04\x04\x02\x01\x00\x13\x03", "GET_VERSION")
    eq(NtagCard(UID, 215, signature=b"\x11" * 32).answer(b"\x3c\x00"), b"\x11" * 32, "READ_SIG")


def test_model_read_wraps_and_naks():
    tag = NtagCard(UID, 213)  # pages 0x00 to 0x2C
    eq(tag.answer(b"\x30\x2b")[8:], tag.answer(b"\x30\x00")[:8], "READ rolls over to page 0")
    eq(tag.answer(b"\x30\x2b")[:8], bytes(8), "PWD and PACK read as zeros")
    eq(tag.answer(b"\x30\x2d"), b"\x00", "READ past the end: NAK")
    eq(tag.answer(b"\x3a\x2c\x2d"), b"\x00", "FAST_READ past the end: NAK")
    eq(tag.answer(b"\x3a\x05\x04"), b"\x00", "FAST_READ backwards: NAK")
    eq(len(tag.answer(b"\x3a\x00\x2c")), 45 * 4, "FAST_READ of everything")
    eq(tag.answer(b"\xa2\x01\x00\x00\x00\x00"), b"\x00", "WRITE to the UID: NAK")
    eq(tag.answer(b"\x55"), b"\x00", "unknown command: NAK")


def test_loyalty_tag_layout():
    tag = NtagCard.loyalty("42", 1, bytes(32), UID, 213)
    eq(tag.answer(b"\x30\x04")[:7], b"\x01\x03\xa0\x0c\x34\x03\x27", "lock control TLV, then NDEF")
    eq(tag.answer(b"\x30\x05")[3:6], b"\xd4\x0f\x15", "external type record, 21-byte payload")
