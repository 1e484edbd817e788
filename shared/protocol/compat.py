"""Feature detection: the only module that knows which runtime it runs on.

Everything else imports `const`, `sha256`, `crc32` and friends from here, so the
same source runs on the ESP32's MicroPython and on the backend's CPython. No clock:
shared/protocol keeps no time (the firmware's drivers have theirs, in drivers/__init__.py).

    >>> sha256(b"abc").digest()[:2]
    b'\\xbax'
"""
import sys

MICROPYTHON = sys.implementation.name == "micropython"

try:
    from micropython import const
except ImportError:  # CPython

    def const(value):
        return value


from hashlib import sha256  # both runtimes have it
from binascii import crc32, hexlify, unhexlify  # both runtimes have them


if MICROPYTHON:
    plain_ascii = None  # no str.isascii or str.isprintable here
else:

    def plain_ascii(s):
        """Is `s` printable ASCII only? CPython's C string methods answer in one pass,
        which the backend's record checks want (a Python loop per character costs more
        than the rest of a record's check)."""
        return s.isascii() and s.isprintable()


def hexstr(data):
    """Lower-case hex text of `data` (bytes), the same on both runtimes."""
    return hexlify(data).decode()
