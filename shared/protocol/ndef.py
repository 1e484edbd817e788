"""NDEF messages (NFC Forum NDEF 1.0): the records an NTAG holds, decoded and encoded.

The reader decodes the message it read off a tag, in the buffer it was read into: the
records' type, ID and payload come back as memoryview slices of that buffer, not copies.
The issuing desk and the card models encode records to bytes. Chunked records (CF) are
refused: the loyalty record is small and no tag we issue carries chunks.

    >>> msg = encode([(TNF_EXTERNAL, b"sconto.org:card", b"", b"\\x01\\x02")])
    >>> msg
    b'\\xd4\\x0f\\x02sconto.org:card\\x01\\x02'
    >>> bytes(find(msg, TNF_EXTERNAL, b"sconto.org:card"))
    b'\\x01\\x02'
"""
from .compat import const
from .errors import ProtocolError

TNF_EMPTY = const(0)
TNF_WELL_KNOWN = const(1)
TNF_MEDIA = const(2)
TNF_URI = const(3)
TNF_EXTERNAL = const(4)
TNF_UNKNOWN = const(5)
TNF_UNCHANGED = const(6)

_MB = const(0x80)
_ME = const(0x40)
_CF = const(0x20)
_SR = const(0x10)
_IL = const(0x08)


class NdefError(ProtocolError):
    """A message that breaks NDEF 1.0: code card.unreadable at field "ndef", and why."""

    def __init__(self, detail):
        super().__init__("card.unreadable", "ndef", detail)


def _header(data, at, first):
    # (tnf, type start, type length, id start, id length, payload start, payload length, last)
    # of the record at `at`; every length is checked against what is there
    end = len(data)
    if at + 3 > end:
        raise NdefError("record header truncated")
    flags = data[at]
    tnf = flags & 7
    if bool(flags & _MB) != first:
        raise NdefError("message begin flag misplaced")
    if flags & _CF or tnf == TNF_UNCHANGED:
        raise NdefError("chunked records not supported")
    if tnf == 7:
        raise NdefError("reserved TNF 7")
    type_len = data[at + 1]
    if flags & _SR:
        payload_len = data[at + 2]
        i = at + 3
    else:
        if at + 6 > end:
            raise NdefError("record header truncated")
        payload_len = data[at + 2] << 24 | data[at + 3] << 16 | data[at + 4] << 8 | data[at + 5]
        i = at + 6
    id_len = 0
    if flags & _IL:
        if i >= end:
            raise NdefError("record header truncated")
        id_len = data[i]
        i += 1
    if tnf == TNF_EMPTY and (type_len or id_len or payload_len):
        raise NdefError("empty record with content")
    if tnf == TNF_UNKNOWN and type_len:
        raise NdefError("unknown-type record with a type")
    if tnf in (TNF_WELL_KNOWN, TNF_MEDIA, TNF_URI, TNF_EXTERNAL) and not type_len:
        raise NdefError("record type missing")
    if i + type_len + id_len + payload_len > end:
        raise NdefError("record longer than the message")
    return tnf, i, type_len, i + type_len, id_len, i + type_len + id_len, payload_len, flags & _ME


def _walk(mv):
    """Each record's header (_header's tuple), in order; NdefError for a malformed message
    or bytes after its last record (raised once the walk reaches the end)."""
    at = 0
    first = True
    while True:
        h = _header(mv, at, first)
        yield h
        at = h[5] + h[6]
        first = False
        if h[7]:
            break
    if at != len(mv):
        raise NdefError("bytes after the last record")


def decode(data):
    """The records of an NDEF message: a list of (tnf, type, id, payload), memoryview slices
    of `data`. NdefError if the message is malformed or has bytes after its last record."""
    mv = memoryview(data)
    return [(tnf, mv[ts:ts + tl], mv[is_:is_ + il], mv[ps:ps + pl])
            for tnf, ts, tl, is_, il, ps, pl, _ in _walk(mv)]


def find(data, tnf, rtype):
    """The payload (memoryview of `data`) of the first record of TNF `tnf` and type `rtype`,
    or None. The whole message is checked first: a malformed one raises NdefError."""
    mv = memoryview(data)
    found = None
    for t, ts, tl, _, _, ps, pl, _ in _walk(mv):  # to the end: the whole message is checked
        if found is None and t == tnf and tl == len(rtype) and mv[ts:ts + tl] == rtype:
            found = mv[ps:ps + pl]
    return found


def encode(records):
    """Bytes of the NDEF message made of `records`, each (tnf, type, id, payload).

    Short records (SR) when the payload fits in one byte of length, else 4 bytes.
    ValueError for a record that cannot be encoded (a caller's mistake, not a card's)."""
    if not records:
        raise ValueError("an NDEF message has at least one record")
    out = bytearray()
    last = len(records) - 1
    for n, rec in enumerate(records):
        tnf, rtype, rid, payload = rec
        if not 0 <= tnf <= 5 or len(rtype) > 255 or len(rid) > 255 or len(payload) > 0xFFFFFFFF:
            raise ValueError("record %d cannot be encoded" % n)
        if tnf == TNF_EMPTY and (rtype or rid or payload):
            raise ValueError("record %d: an empty record has no type, id or payload" % n)
        if tnf == TNF_UNKNOWN and rtype:
            raise ValueError("record %d: an unknown-type record has no type" % n)
        if TNF_WELL_KNOWN <= tnf <= TNF_EXTERNAL and not rtype:
            raise ValueError("record %d: TNF %d needs a type" % (n, tnf))
        flags = tnf
        if n == 0:
            flags |= _MB
        if n == last:
            flags |= _ME
        if len(payload) < 256:
            flags |= _SR
        if rid:
            flags |= _IL
        out.append(flags)
        out.append(len(rtype))
        if flags & _SR:
            out.append(len(payload))
        else:
            out.extend(len(payload).to_bytes(4, "big"))
        if rid:
            out.append(len(rid))
        out.extend(rtype)
        out.extend(rid)
        out.extend(payload)
    return bytes(out)
