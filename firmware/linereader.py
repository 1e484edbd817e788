"""Reads bounded lines from a byte stream (the till's UART, a socket on the simulated board).

A till that goes mad, or noise on the line, must not fill the heap: a line longer than
the limit is skipped up to its newline and reported as TillError('till.too_long').
The buffer is allocated once.

    lr = LineReader(stream, bytearray(8192))
    line = await lr.readline()   # bytes without the newline; b"" at end of stream
                                 # (empty lines are skipped, so b"" means only that)
"""
from protocol.errors import TillError


class LineReader:
    def __init__(self, stream, buffer):
        self.stream = stream
        self.limit = len(buffer)
        self.buf = buffer
        self.n = 0  # bytes of the current line in buf
        self.rest = b""  # bytes read past the last newline
        self.overflow = False

    async def readline(self):
        while True:
            if not self.rest:
                self.rest = await self.stream.read(512)
                if not self.rest:
                    return b""
            chunk, self.rest = self.rest, b""
            nl = chunk.find(b"\n")
            part = chunk if nl < 0 else chunk[:nl]
            if nl >= 0:
                self.rest = chunk[nl + 1:]
            if not self.overflow:
                if self.n + len(part) > self.limit:
                    self.overflow = True
                else:
                    self.buf[self.n:self.n + len(part)] = part
                    self.n += len(part)
            if nl >= 0:
                n, self.n = self.n, 0
                if self.overflow:
                    self.overflow = False
                    raise TillError("till.too_long", "", "line over %d bytes skipped" % self.limit)
                if n:  # an empty line would read as end of stream: skip it
                    # one copy, not two (slicing the bytearray would copy it first)
                    return bytes(memoryview(self.buf)[:n])
