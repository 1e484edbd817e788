"""HMAC-SHA256 (RFC 2104), because MicroPython's hashlib has sha256 but no hmac.

    >>> from .compat import hexstr  # bytes.hex() is not on every MicroPython
    >>> hexstr(hmac_sha256(b"key", b"The quick brown fox jumps over the lazy dog"))[:16]
    'f7bc83f430538424'
"""
from .compat import sha256

_BLOCK = 64


def hmac_sha256(key, message):
    """The 32-byte HMAC-SHA256 of `message` (bytes) under `key` (bytes)."""
    if len(key) > _BLOCK:
        key = sha256(key).digest()
    key = key + bytes(_BLOCK - len(key))
    inner = sha256(bytes(b ^ 0x36 for b in key))
    inner.update(message)
    outer = sha256(bytes(b ^ 0x5C for b in key))
    outer.update(inner.digest())
    return outer.digest()


def equal(a, b):
    """Compare two MACs in time that does not depend on where they differ."""
    if len(a) != len(b):
        return False
    diff = 0
    for x, y in zip(a, b):
        diff |= x ^ y
    return diff == 0
