"""The journal's frame: how one record (or the meta file's one entry) sits on flash.

    0xA5 | payload length: 2 bytes, big-endian | CRC32 of the payload: 4 bytes | payload

The payload is the record's canonical JSON, 1 to MAX_PAYLOAD bytes. The magic is
neither 0x00 nor 0xFF, what torn or erased flash usually holds. The journal writes and
checks its frames with this module, and the flash tool's `status` counts them on the
reader with it (tools/flash/device/status.py), so the two cannot disagree.

    hdr = bytearray(HEADER)
    put_header(hdr, payload)     # then write hdr and payload
    n = read(f, hdr, mv)         # the next frame: header into hdr, payload into mv
                                 # (a memoryview of MAX_PAYLOAD bytes); its length, or -1
"""
import struct

from protocol.compat import const, crc32

# Plain ints: journal.py and status read them, so they are module attributes anyway.
# Every name here costs heap on the reader (test_journal runs close to its limit).
HEADER = 7
MAX_PAYLOAD = 8192
_MAGIC = const(0xA5)


def fill(f, buf, n):
    # Read up to n bytes into buf (a bytearray or memoryview); the count read.
    got = 0
    mv = memoryview(buf)
    while got < n:
        k = f.readinto(mv[got:n])
        if not k:
            break
        got += k
    return got


def put_header(hdr, payload):
    # The header of `payload`'s frame, into hdr (HEADER bytes).
    struct.pack_into(">BHI", hdr, 0, _MAGIC, len(payload), crc32(payload) & 0xFFFFFFFF)


def read(f, hdr, mv):
    # The next frame of f: its header into hdr, its payload into mv. The payload's
    # length, or -1 at the end of f or where no intact frame starts (torn or damaged).
    if fill(f, hdr, HEADER) < HEADER:
        return -1
    magic, n, crc = struct.unpack_from(">BHI", hdr, 0)
    if magic != _MAGIC or not 0 < n <= MAX_PAYLOAD or fill(f, mv, n) < n or crc32(mv[:n]) & 0xFFFFFFFF != crc:
        return -1
    return n
