"""PN532 frames: building the host's frames and reading the chip's from a byte stream.

The first layer of the PN532 driver (NXP UM0701-02, section 6.2 "Host controller
communication protocol"); the transports (HSU, I2C, SPI) move these bytes, the
chipset layer above gives them meaning. No I/O here: bytes in, frames out.

    >>> bytes(frame(b"\\x02")).hex()          # GetFirmwareVersion
    '0000ff02fed4022a00'
    >>> r = FrameReader()
    >>> r.feed(ACK_FRAME + bytes.fromhex("0000ff06fad50332010607e800"))
    >>> r.next() == ACK, r.next() == INFO, bytes(r.info()).hex()
    (True, True, 'd50332010607')
    >>> r.next() == NONE
    True

Frames on the wire:
- normal information frame: 00 00 FF LEN LCS TFI PD0..PDn DCS 00, LEN counts TFI
  and PD (1..255), LEN + LCS = 0 and TFI + PD + DCS = 0 (mod 256);
- extended information frame (LEN over 255): 00 00 FF FF FF LENM LENL LCS TFI ...;
- ACK 00 00 FF 00 FF 00, NACK 00 00 FF FF 00 00, and the "application level
  error" frame 00 00 FF 01 FF 7F 81 00 (a normal frame whose TFI is 7F).
TFI is D4 from the host to the PN532 and D5 back.
"""
from protocol.compat import const

TFI_HOST = const(0xD4)  # host controller to PN532
TFI_PN532 = const(0xD5)  # PN532 to host controller
_TFI_ERROR = const(0x7F)

ACK_FRAME = b"\x00\x00\xff\x00\xff\x00"
NACK_FRAME = b"\x00\x00\xff\xff\x00\x00"
ERROR_FRAME = b"\x00\x00\xff\x01\xff\x7f\x81\x00"

# What FrameReader.next() found.
NONE = const(0)  # nothing complete yet: feed more bytes
ACK = const(1)
NACK = const(2)
ERROR = const(3)  # the application level error frame
INFO = const(4)  # an information frame: TFI + data in info()

# The largest TFI + data the PN532 sends: 265 bytes (InDataExchange answer of a
# 262-byte APDU response plus TFI, command code and status).
MAX_INFO = const(265)
_MAX_LEN = const(0xFFFF)  # the largest LEN an extended frame can carry

# Reader states; after the start code the raw frame bytes go into buf from index 0.
_HUNT = const(0)  # looking for the start code 00 FF
_LEN = const(1)
_LCS = const(2)
_LENM = const(3)
_LENL = const(4)
_XLCS = const(5)
_BODY = const(6)  # TFI and data
_DCS = const(7)


class FrameError(Exception):
    """A frame that cannot be used: `code` says why, `detail` says where.

    Codes: pn532.checksum (LCS or DCS wrong), pn532.length (a length of zero or over
    the buffer), pn532.tfi (a sound frame in the wrong direction).
    """

    def __init__(self, code, detail=""):
        super().__init__(code, detail)
        self.code = code
        self.detail = detail


def frame_size(n):
    """Bytes of the information frame carrying `n` bytes of data (command code and parameters)."""
    return n + (8 if n < 255 else 11)


def frame_into(buf, data, tfi=TFI_HOST):
    """Writes the information frame carrying `data` into `buf`; returns its length.

    `data` is PD0..PDn (the command code, then its parameters). Nothing is allocated,
    so the driver can keep one output buffer for all its commands.
    """
    n = len(data) + 1  # LEN counts TFI
    if n > _MAX_LEN:
        raise FrameError("pn532.length", "data over %d bytes" % (_MAX_LEN - 1))
    if len(buf) < frame_size(n - 1):
        raise FrameError("pn532.length", "buffer of %d bytes for %d of data" % (len(buf), n - 1))
    buf[0] = 0
    buf[1] = 0
    buf[2] = 0xFF
    if n <= 255:
        buf[3] = n
        buf[4] = -n & 0xFF
        i = 5
    else:
        buf[3] = 0xFF
        buf[4] = 0xFF
        buf[5] = n >> 8
        buf[6] = n & 0xFF
        buf[7] = -((n >> 8) + (n & 0xFF)) & 0xFF
        i = 8
    buf[i] = tfi
    total = tfi
    i += 1
    for k in range(n - 1):  # an index loop: iterating `data` would allocate an iterator
        b = data[k]
        buf[i] = b
        total += b
        i += 1
    buf[i] = -total & 0xFF
    buf[i + 1] = 0
    return i + 2


def frame(data, tfi=TFI_HOST):
    """The information frame carrying `data`, as a new bytearray (for tests and the host side)."""
    buf = bytearray(frame_size(len(data)))
    frame_into(buf, data, tfi)
    return buf


class FrameReader:
    """Finds frames in the bytes coming from the PN532, however they are cut into reads.

    `feed(data)` hands over the bytes of one read; `next()` then returns ACK, NACK,
    ERROR, INFO (TFI + data in `info()`, or `buf[start:start + length]`) or NONE once
    the bytes are used up. A bad frame raises FrameError from `next()`; the reader
    has already resynchronised, so calling `next()` again goes on with the bytes
    after the bad frame's start code. Garbage before a start code is skipped and
    counted in `skipped`.

    One buffer, allocated here; reading a frame allocates nothing. The data of an
    INFO frame stays valid until the next call of `next()`.
    """

    def __init__(self, size=MAX_INFO, tfi=TFI_PN532):
        self._size = size  # the longest TFI + data accepted
        self._tfi = tfi  # TFI_HOST for the PN532 simulator, which reads the host's frames
        # raw frame after the start code: LEN LCS [LENM LENL LCS] TFI data DCS
        self.buf = bytearray(size + 6)
        self.skipped = 0
        self.start = 0
        self.length = 0
        self.reset()

    def reset(self):
        """Forgets the unread bytes and a half-read frame (after a timeout: the rest will never come)."""
        self._state = _HUNT
        self._zero = False  # the last byte seen while hunting was 00
        self._w = 0  # next free index in buf
        self._stop = 0  # index of DCS in buf
        self._sum = 0
        self._src = b""
        self._at = 0
        self._end = 0
        # bytes of a bad frame read again, from buf[_rp:_rend], before the fed bytes
        self._rp = 0
        self._rend = 0

    def feed(self, data, n=-1):
        """Hands over the first `n` bytes (all by default) of `data` to read with `next()`.

        `data` is not copied: keep it unchanged until `next()` returns NONE. A driver
        passes its read buffer and the count `readinto` returned.
        """
        if self._at < self._end:
            raise ValueError("feed() before next() returned NONE")
        self._src = data
        self._at = 0
        self._end = len(data) if n < 0 else n

    def info(self):
        """TFI and data of the INFO frame `next()` just returned (a view into the buffer)."""
        return memoryview(self.buf)[self.start:self.start + self.length]

    def next(self):
        """The next frame found in the bytes fed so far: ACK, NACK, ERROR, INFO or NONE."""
        buf = self.buf
        while True:
            if self._rp < self._rend:
                b = buf[self._rp]
                self._rp += 1
            elif self._at < self._end:
                b = self._src[self._at]
                self._at += 1
            else:
                return NONE
            state = self._state
            if state == _HUNT:
                if b == 0:
                    self._zero = True  # preamble, postamble or the first start code byte
                    continue
                if b == 0xFF and self._zero:
                    self._state = _LEN
                    self._w = 0
                else:
                    self.skipped += 1
                self._zero = False
                continue
            w = self._w
            buf[w] = b
            self._w = w + 1
            if state == _BODY:
                self._sum += b
                if w + 1 == self._stop:
                    self._state = _DCS
            elif state == _LEN:
                self._state = _LCS
            elif state == _LCS:
                n = buf[0]
                if n == 0 and b == 0xFF:
                    self._state = _HUNT
                    return ACK
                if n == 0xFF and b == 0:
                    self._state = _HUNT
                    return NACK
                if n == 0xFF and b == 0xFF:
                    self._state = _LENM
                elif (n + b) & 0xFF:
                    self._fail("pn532.checksum", "LCS")
                else:
                    self._body(n, 2)
            elif state == _LENM:
                self._state = _LENL
            elif state == _LENL:
                self._state = _XLCS
            elif state == _XLCS:
                if (buf[2] + buf[3] + b) & 0xFF:
                    self._fail("pn532.checksum", "extended LCS")
                self._body((buf[2] << 8) | buf[3], 5)
            else:  # _DCS
                self._state = _HUNT
                self._zero = False
                if (self._sum + b) & 0xFF:
                    self._fail("pn532.checksum", "DCS")
                tfi = buf[self.start]
                if tfi == _TFI_ERROR and self.length == 1:
                    return ERROR
                if tfi != self._tfi:
                    raise FrameError("pn532.tfi", "TFI %02X" % tfi)
                return INFO

    def _body(self, n, start):
        if n == 0 or n > self._size:
            self._fail("pn532.length", "LEN %d" % n)
        self.start = start
        self.length = n
        self._stop = start + n
        self._sum = 0
        self._state = _BODY

    def _fail(self, code, detail):
        # The start code may have been a chance 00 FF, and a real frame may begin
        # inside what we took for this one (a truncated answer followed by the next):
        # hunt again through every byte after the start code. Bytes still waiting to
        # be read again move down behind them; they sit at least two bytes further
        # on, so nothing unread is overwritten, here or while the replay fills buf.
        buf = self.buf
        n = self._w
        rp = self._rp
        tail = self._rend - rp
        for i in range(tail):
            buf[n + i] = buf[rp + i]
        self._rp = 0
        self._rend = n + tail
        self._state = _HUNT
        self._zero = False
        raise FrameError(code, detail)
