"""HMAC-SHA256 of protocol.hmac256 against CPython's own hmac on the RFC 4231 cases and random inputs."""
import hashlib
import hmac
import random

from mpy.test_hmac256 import RFC4231
from loyalty.protocol.hmac256 import hmac_sha256


def test_rfc4231_against_cpython_hmac():
    for key, data, _ in RFC4231:
        assert hmac_sha256(key, data) == hmac.new(key, data, hashlib.sha256).digest()


def test_random_keys_and_lengths():
    rng = random.Random(4231)
    for n in range(300):
        key = rng.randbytes(rng.randrange(0, 200))
        data = rng.randbytes(rng.randrange(0, 300))
        assert hmac_sha256(key, data) == hmac.new(key, data, hashlib.sha256).digest(), n
