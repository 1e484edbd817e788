"""NXP originality signature of NTAG21x tags: ECDSA on secp128r1 over the tag's UID.

NXP signs each tag's 7-byte UID at the factory (application note AN11350): the message
is the UID itself, not a hash of it, and READ_SIG returns r || s, 16 bytes each. A tag
whose UID was copied onto a clone has no valid signature for it, unless the clone also
copies the signature; the record's MAC stops copied records, this stops forged chips.

Pure Python integers, for MicroPython too: Jacobian coordinates, so the only modular
inverse is the last one, taken by Fermat (pow(z, p - 2, p)).

    >>> verify(bytes(7), bytes(32))
    False
"""
from .compat import unhexlify

# secp128r1, SEC 2 version 1.0 section 2.3.1: p = 2^128 - 2^97 - 1, a = p - 3
P = 0xFFFFFFFDFFFFFFFFFFFFFFFFFFFFFFFF
A = 0xFFFFFFFDFFFFFFFFFFFFFFFFFFFFFFFC
B = 0xE87579C11079F43DD824993C2CEE5ED3
GX = 0x161FF7528B899B2D0C28607CA52C5B86
GY = 0xCF5AC8395BAFEB13C02DA292DDED7A83
N = 0xFFFFFFFE0000000075A30D1B9038A115

# NXP's key for NTAG21x (AN11350), uncompressed: 04 || x || y
NTAG21X_KEY = unhexlify(b"04494E1A386D3D3CFE3DC10E5DE68A499B1C202DB5B132393E89ED19FE5BE8BC61")


def on_curve(x, y):
    """Is (x, y) a point of secp128r1?"""
    return 0 <= x < P and 0 <= y < P and (y * y - (x * x * x + A * x + B)) % P == 0


def _key_point(key):
    key = bytes(key)
    if len(key) != 33 or key[0] != 4:
        raise ValueError("public key must be 04 || x || y, 33 bytes")
    x = int.from_bytes(key[1:17], "big")
    y = int.from_bytes(key[17:], "big")
    if not on_curve(x, y):
        raise ValueError("public key is not a point of secp128r1")
    return x, y


def _double(pt):
    # dbl-2001-b for a = -3: 3M + 5S
    if pt is None:
        return None
    x, y, z = pt
    if y == 0:
        return None
    delta = z * z % P
    gamma = y * y % P
    beta = x * gamma % P
    alpha = 3 * (x - delta) * (x + delta) % P
    x3 = (alpha * alpha - 8 * beta) % P
    z3 = ((y + z) * (y + z) - gamma - delta) % P
    y3 = (alpha * (4 * beta - x3) - 8 * gamma * gamma) % P
    return x3, y3, z3


def _add_affine(pt, q):
    # Jacobian pt + affine q
    if q is None:
        return pt
    if pt is None:
        return q[0], q[1], 1
    x1, y1, z1 = pt
    zz = z1 * z1 % P
    u2 = q[0] * zz % P
    s2 = q[1] * zz * z1 % P
    h = (u2 - x1) % P
    r = (s2 - y1) % P
    if h == 0:
        return _double(pt) if r == 0 else None
    hh = h * h % P
    hhh = hh * h % P
    v = x1 * hh % P
    x3 = (r * r - hhh - 2 * v) % P
    y3 = (r * (v - x3) - y1 * hhh) % P
    return x3, y3, z1 * h % P


def _affine(pt):
    if pt is None:
        return None
    x, y, z = pt
    zi = pow(z, P - 2, P)  # Fermat: z^(p-2) is z's inverse mod the prime p
    zi2 = zi * zi % P
    return x * zi2 % P, y * zi2 * zi % P


def verify(uid, signature, key=NTAG21X_KEY):
    """Is `signature` (r || s, 32 bytes) NXP's signature of `uid` under `key`?

    False for any signature that does not verify, including r or s outside 1..n-1;
    ValueError only for a `key` that is not a point of the curve."""
    q = _key_point(key)
    if len(signature) != 32:
        return False
    sig = bytes(signature)
    r = int.from_bytes(sig[:16], "big")
    s = int.from_bytes(sig[16:], "big")
    if not (0 < r < N and 0 < s < N):
        return False
    msg = bytes(uid)[:16]  # ECDSA keeps the leftmost bits of n's length: 128 bits
    e = int.from_bytes(msg, "big") if msg else 0
    w = pow(s, N - 2, N)  # Fermat again: n is prime
    u1 = e * w % N
    u2 = r * w % N
    g = (GX, GY)
    gq = _affine(_add_affine((GX, GY, 1), q))
    # Shamir's trick: u1*G + u2*Q in one pass of doublings
    pt = None
    for i in range(128, -1, -1):
        pt = _double(pt)
        b1 = (u1 >> i) & 1
        b2 = (u2 >> i) & 1
        if b1 and b2:
            pt = _add_affine(pt, gq)
        elif b1:
            pt = _add_affine(pt, g)
        elif b2:
            pt = _add_affine(pt, q)
    xy = _affine(pt)
    return xy is not None and xy[0] % N == r
