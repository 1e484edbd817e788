"""protocol.ntagsig against python-ecdsa: SECP128r1 keys sign UIDs (the digest is the raw
UID, as NXP's AN11350 has it), and our verifier must agree with ecdsa's own."""
import ecdsa
import pytest
from ecdsa.util import sigdecode_string, sigencode_string
from hypothesis import example, given, settings
from hypothesis import strategies as st

from loyalty.protocol import ntagsig

CURVE = ecdsa.SECP128r1


def _key(secret):
    sk = ecdsa.SigningKey.from_secret_exponent(secret, curve=CURVE)
    return sk, sk.get_verifying_key().to_string("uncompressed")


def _sign(sk, uid, k):
    return sk.sign_digest(uid, sigencode=sigencode_string, k=k, allow_truncate=True)


def _ecdsa_verifies(key, uid, sig):
    try:
        return ecdsa.VerifyingKey.from_string(key, curve=CURVE).verify_digest(sig, uid, sigdecode=sigdecode_string)
    except ecdsa.BadSignatureError:
        return False


def test_curve_is_secp128r1():
    # the constants in ntagsig are those python-ecdsa has for SEC 2's secp128r1
    c = CURVE.curve
    assert (ntagsig.P, ntagsig.A, ntagsig.B) == (c.p(), c.a() % c.p(), c.b())
    assert (ntagsig.GX, ntagsig.GY, ntagsig.N) == (CURVE.generator.x(), CURVE.generator.y(), CURVE.order)


def test_nxp_key_is_a_curve_point():
    ecdsa.VerifyingKey.from_string(ntagsig.NTAG21X_KEY, curve=CURVE)  # raises if not


def test_real_tag_agrees_with_ecdsa():
    uid = bytes.fromhex("04ab87f2ca1190")
    sig = bytes.fromhex("67b1750bcceb1174f9a33bf20e0226551a6366939b31f949848c3c087350fa90")
    vk = ecdsa.VerifyingKey.from_string(ntagsig.NTAG21X_KEY, curve=CURVE)
    assert vk.verify_digest(sig, uid, sigdecode=sigdecode_string)
    assert ntagsig.verify(uid, sig)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, CURVE.order - 1), st.binary(min_size=7, max_size=7), st.integers(1, CURVE.order - 1))
@example(secret=(CURVE.order - 1) // 2, uid=bytes(7), k=1)  # the other key is then n - d
def test_signed_uids(secret, uid, k):
    sk, key = _key(secret)
    sig = _sign(sk, uid, k)
    assert ntagsig.verify(uid, sig, key)
    other_uid = bytes([uid[0] ^ 1]) + uid[1:]
    assert not ntagsig.verify(other_uid, sig, key)
    # another key: ecdsa's verdict decides (for an all-zero UID the digest is 0, and the
    # negated key n - d then verifies too: test_zero_digest_verifies_under_the_negated_key)
    _, other_key = _key(secret % (CURVE.order - 1) + 1 if secret != 1 else 2)
    assert ntagsig.verify(uid, sig, other_key) == _ecdsa_verifies(other_key, uid, sig)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, CURVE.order - 1), st.binary(min_size=7, max_size=7), st.binary(min_size=32, max_size=32))
def test_random_signatures_agree(secret, uid, sig):
    _, key = _key(secret)
    assert ntagsig.verify(uid, sig, key) == _ecdsa_verifies(key, uid, sig)


@pytest.mark.parametrize("r,s", [(0, 1), (1, 0), (CURVE.order, 1), (1, CURVE.order), (2 ** 128 - 1, 1)])
def test_r_and_s_out_of_range(r, s):
    sk, key = _key(12345)
    good = _sign(sk, b"\x04" * 7, 777)
    assert ntagsig.verify(b"\x04" * 7, good, key)
    sig = r.to_bytes(16, "big") + s.to_bytes(16, "big")
    assert not ntagsig.verify(b"\x04" * 7, sig, key)


def test_s_negated_is_also_valid():
    # ECDSA accepts (r, n - s) as well: NXP's check has no low-s rule, nor do we
    sk, key = _key(99)
    sig = _sign(sk, b"\x04\x05\x06\x07\x08\x09\x0a", 4242)
    s = int.from_bytes(sig[16:], "big")
    flipped = sig[:16] + (CURVE.order - s).to_bytes(16, "big")
    assert ntagsig.verify(b"\x04\x05\x06\x07\x08\x09\x0a", flipped, key)


def test_zero_digest_verifies_under_the_negated_key():
    # found by hypothesis: a UID of zeros is the digest 0, so s = r*d/k and the check
    # u2*Q = (r/s)*Q has the x of k*G for Q and for -Q = (n - d)*G alike; ecdsa agrees
    d = (CURVE.order - 1) // 2
    uid = bytes(7)
    sk, key = _key(d)
    sig = _sign(sk, uid, 1)
    _, negated = _key(CURVE.order - d)
    _, other = _key(d + 2)
    assert ntagsig.verify(uid, sig, negated) and _ecdsa_verifies(negated, uid, sig)
    assert not ntagsig.verify(uid, sig, other) and not _ecdsa_verifies(other, uid, sig)
