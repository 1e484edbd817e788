"""Feature detection: the only module that knows which runtime it runs on.

Everything else imports `const`, `sha256`, `crc32` and friends from here, so the
same source runs on the ESP32's MicroPython and on the backend's CPython.

    >>> from protocol.compat import sha256
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


def hexstr(data):
    """Lower-case hex text of `data` (bytes), the same on both runtimes."""
    return hexlify(data).decode()

try:
    from time import sleep_ms, ticks_diff, ticks_ms
except ImportError:  # CPython: the same wrap-around arithmetic as MicroPython's ticks
    import time as _time

    _TICKS_PERIOD = 1 << 30
    _TICKS_HALF = _TICKS_PERIOD // 2

    def ticks_ms():
        return (_time.monotonic_ns() // 1000000) & (_TICKS_PERIOD - 1)

    def ticks_diff(end, start):
        """end - start in ms, right across one wrap-around of the counter."""
        return ((end - start + _TICKS_HALF) & (_TICKS_PERIOD - 1)) - _TICKS_HALF

    def sleep_ms(ms):
        _time.sleep(ms / 1000)
