"""NTAG originality signature (protocol.ntagsig): ECDSA on secp128r1 over the raw UID.

Vectors: a real NTAG21x's UID and READ_SIG answer, published with the
nxp_originality_verifier package (its test verifies them with NXP's key); and a UID
signed by python-ecdsa (SECP128r1, secret 0x0123...cdef, RFC 6979 nonce) on CPython.
Curve constants from SEC 2 v1.0, section 2.3.1.
"""
from check import eq, raises
from protocol import ntagsig
from protocol.compat import unhexlify

REAL_UID = unhexlify(b"04ab87f2ca1190")
REAL_SIG = unhexlify(b"67b1750bcceb1174f9a33bf20e0226551a6366939b31f949848c3c087350fa90")

ECDSA_KEY = unhexlify(b"041bb9273d32cfcd5bb09750dd50af91b3cbc8ec11842eca82183475b8454441a5")
ECDSA_UID = unhexlify(b"04a1b2c3d4e5f6")
ECDSA_SIG = unhexlify(b"ef557bb89b0e3c78edbd020e1cd72262494954fee4793b6308d8292b5cb24d26")

N = 0xFFFFFFFE0000000075A30D1B9038A115


def test_curve_points():
    eq(ntagsig.on_curve(0x161FF7528B899B2D0C28607CA52C5B86, 0xCF5AC8395BAFEB13C02DA292DDED7A83), True, "G")
    eq(ntagsig.on_curve(0x161FF7528B899B2D0C28607CA52C5B86, 0xCF5AC8395BAFEB13C02DA292DDED7A84), False, "G+1")
    key = ntagsig.NTAG21X_KEY
    eq(ntagsig.on_curve(int.from_bytes(key[1:17], "big"), int.from_bytes(key[17:], "big")), True, "NXP key")


def test_real_tag():
    eq(ntagsig.verify(REAL_UID, REAL_SIG), True, "genuine tag")


def test_real_signature_on_another_uid():
    eq(ntagsig.verify(b"\x04\xab\x87\xf2\xca\x11\x91", REAL_SIG), False, "last UID bit changed")
    eq(ntagsig.verify(REAL_UID[:4], REAL_SIG), False, "4-byte UID")


def test_real_signature_altered():
    for i in (0, 15, 16, 31):
        sig = bytearray(REAL_SIG)
        sig[i] ^= 0x01
        eq(ntagsig.verify(REAL_UID, sig), False, "byte %d" % i)


def test_other_key():
    eq(ntagsig.verify(ECDSA_UID, ECDSA_SIG, ECDSA_KEY), True, "python-ecdsa's signature")
    eq(ntagsig.verify(ECDSA_UID, ECDSA_SIG), False, "under NXP's key")
    eq(ntagsig.verify(REAL_UID, REAL_SIG, ECDSA_KEY), False, "NXP's signature under another key")


def test_r_and_s_out_of_range():
    r, s = REAL_SIG[:16], REAL_SIG[16:]
    n = N.to_bytes(16, "big")
    for sig in (bytes(16) + s, r + bytes(16), n + s, r + n, b"\xff" * 32):
        eq(ntagsig.verify(REAL_UID, sig), False, "r=%s" % sig[:2])
    eq(ntagsig.verify(REAL_UID, REAL_SIG[:31]), False, "31 bytes")
    eq(ntagsig.verify(REAL_UID, b""), False, "empty")


def test_bad_key():
    raises(ValueError, ntagsig.verify, REAL_UID, REAL_SIG, b"\x04" + bytes(32))
    raises(ValueError, ntagsig.verify, REAL_UID, REAL_SIG, ntagsig.NTAG21X_KEY[:17])
