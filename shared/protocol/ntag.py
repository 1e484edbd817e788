"""NTAG21x memory: finding the NDEF message on a tag, and the pages that put one there.

The reader gives `read_message` one of two callables, `read(page)` (READ: 16 bytes, four
pages) or `fast_read(first, last)` (FAST_READ, NTAG21x only), and a buffer it allocated
once: BUF_SIZE bytes hold the largest data area (NTAG216, 888 bytes of user memory).
It reads the capability container (page 3), then walks the TLVs from page 4 and reads
only as far as the NDEF message goes. The message comes back as a memoryview of `buf`.

The issuing desk asks `pages_to_write(message, model)` for the (page, 4 bytes) WRITEs
that store a message: the CC, the NDEF TLV and a terminator. `parse_version` tells the
models apart from their GET_VERSION answer (NXP NTAG213/215/216 datasheet, section 10.1).

    >>> pages_to_write(b"\\xd0\\x00\\x00", 213)[:2]
    [(3, b'\\xe1\\x10\\x12\\x00'), (4, b'\\x03\\x03\\xd0\\x00')]
"""
from .compat import const
from .errors import ProtocolError

BUF_SIZE = const(888)  # NTAG216's user memory, the largest data area of the family
CC_PAGE = const(3)
DATA_PAGE = const(4)
FIRST_FAST = const(16)  # pages in the first FAST_READ: CC and 60 bytes, a loyalty record's TLV
MAX_FAST = const(60)  # pages per FAST_READ: 240 bytes keep the PN532's frame under 255 bytes

_TLV_NULL = const(0x00)
_TLV_LOCK = const(0x01)
_TLV_MEMORY = const(0x02)
_TLV_NDEF = const(0x03)
_TLV_PROPRIETARY = const(0xFD)
_TLV_END = const(0xFE)

# model, GET_VERSION storage byte, factory CC size byte, last user page (datasheet, table 4)
_MODELS = ((213, 0x0F, 0x12, 0x27), (215, 0x11, 0x3E, 0x81), (216, 0x13, 0x6D, 0xE1))


class TagError(ProtocolError):
    """A tag whose memory cannot be read as Type 2 NDEF: card.unreadable at field "ntag"."""

    def __init__(self, detail):
        super().__init__("card.unreadable", "ntag", detail)


def model_info(model):
    """(storage byte, CC size byte, last user page, last page) of NTAG `model` (213, 215, 216)."""
    for m in _MODELS:
        if m[0] == model:
            # after the user memory: dynamic lock bytes, CFG0, CFG1, PWD, PACK
            return m[1], m[2], m[3], m[3] + 5
    raise ValueError("unknown NTAG model %r" % (model,))


def parse_version(answer):
    """The NTAG model (213, 215, 216) from a GET_VERSION answer; 0 for another tag that
    answered (another vendor, product or size). TagError if it is not 8 bytes."""
    if answer is None or len(answer) != 8 or answer[0] != 0:
        raise TagError("GET_VERSION answer is not 8 bytes")
    if answer[1] != 0x04 or answer[2] != 0x04:  # NXP, NTAG
        return 0
    for m in _MODELS:
        if m[1] == answer[6]:
            return m[0]
    return 0


class _Pages:
    # the data area (from page 4) as far as it has been read into buf
    def __init__(self, buf, read, fast_read, last_page):
        self.buf = buf
        self.read = read
        self.fast_read = fast_read
        self.last_page = last_page
        self.have = 0
        self.limit = len(buf)

    def take(self, data, skip):
        # copy the answer's bytes after `skip` to the end of what is loaded, within limit
        n = min(len(data) - skip, self.limit - self.have)
        if n > 0:
            self.buf[self.have:self.have + n] = memoryview(data)[skip:skip + n]
            self.have += n

    def need(self, n):
        if n > self.limit:
            raise TagError("TLV runs past the data area")
        while self.have < n:
            page = DATA_PAGE + self.have // 4
            if self.fast_read is None:
                data = self.read(page)
                if data is None or len(data) < 16:
                    raise TagError("READ answer shorter than 16 bytes")
            else:
                last = min(DATA_PAGE + (n + 3) // 4 - 1, page + MAX_FAST - 1)
                data = self.fast_read(page, last)
                if data is None or len(data) != (last - page + 1) * 4:
                    raise TagError("FAST_READ answer of the wrong length")
            self.take(data, 0)


def read_message(buf, read=None, fast_read=None, last_page=0):
    """The NDEF message on the tag, as a memoryview of `buf`; None if the tag holds none
    (not NDEF formatted, no NDEF TLV, or an empty one). TagError for a CC or TLVs that
    break the Type 2 Tag rules, answers too short, or a message larger than `buf`.

    `last_page`, when the model is known (GET_VERSION), keeps FAST_READ inside the tag."""
    p = _Pages(buf, read, fast_read, last_page)
    if fast_read is None:
        data = read(CC_PAGE)
        if data is None or len(data) < 16:
            raise TagError("READ answer shorter than 16 bytes")
    else:
        last = CC_PAGE + FIRST_FAST - 1
        if last_page:
            last = min(last, last_page)
        data = fast_read(CC_PAGE, last)
        if data is None or len(data) != (last - CC_PAGE + 1) * 4:
            raise TagError("FAST_READ answer of the wrong length")
    if data[0] != 0xE1:
        return None  # not NDEF formatted: a blank or foreign tag
    if data[1] >> 4 != 1:
        raise TagError("CC: NDEF mapping version %d.x" % (data[1] >> 4))
    if data[3] >> 4 != 0:
        raise TagError("CC: NDEF read access refused")
    limit = data[2] * 8
    if last_page:
        limit = min(limit, (last_page - CC_PAGE) * 4)
    p.limit = min(limit, len(buf))
    p.take(data, 4)
    b = buf
    at = 0
    while at < p.limit:
        p.need(at + 1)
        t = b[at]
        if t == _TLV_NULL:
            at += 1
            continue
        if t == _TLV_END:
            return None
        p.need(at + 2)
        n = b[at + 1]
        head = 2
        if n == 0xFF:
            p.need(at + 4)
            n = b[at + 2] << 8 | b[at + 3]
            head = 4
        if t == _TLV_NDEF:
            if n == 0:
                return None
            p.need(at + head + n)
            return memoryview(buf)[at + head:at + head + n]
        if t not in (_TLV_LOCK, _TLV_MEMORY, _TLV_PROPRIETARY):
            raise TagError("unknown TLV %02X" % t)
        at += head + n
        if at > p.limit:
            raise TagError("TLV %02X runs past the data area" % t)
    return None  # TLVs fill the data area without a message: allowed without a terminator


def tlv(message):
    """The NDEF message TLV (03, length, message) and the terminator FE."""
    n = len(message)
    if n < 0xFF:
        head = bytes([_TLV_NDEF, n])
    elif n <= 0xFFFE:
        head = bytes([_TLV_NDEF, 0xFF, n >> 8, n & 0xFF])
    else:
        raise ValueError("NDEF message of %d bytes is too long for a TLV" % n)
    return head + bytes(message) + bytes([_TLV_END])


def cc(model):
    """The factory capability container of NTAG `model`: E1, version 1.0, size, read/write free."""
    return bytes([0xE1, 0x10, model_info(model)[1], 0x00])


def pages_to_write(message, model=215, prefix=b""):
    """(page, 4 bytes) for each WRITE that stores `message` on a blank NTAG `model`:
    the CC (page 3), then `prefix` TLVs (lock or memory control), the NDEF TLV and the
    terminator from page 4, zero-padded to a whole page. ValueError if it does not fit."""
    data = bytes(prefix) + tlv(message)
    room = model_info(model)[1] * 8
    if len(data) > room:
        raise ValueError("NDEF message of %d bytes does not fit NTAG%d (%d bytes)" % (len(message), model, room))
    data += bytes(-len(data) % 4)
    out = [(CC_PAGE, cc(model))]
    for i in range(0, len(data), 4):
        out.append((DATA_PAGE + i // 4, data[i:i + 4]))
    return out
