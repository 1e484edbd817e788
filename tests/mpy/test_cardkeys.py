"""The reader's card keys (firmware/cardkeys.py): kept wrapped on flash, unwrapped on use,
and a damaged key file means no keys until the next sync, never a crash."""
from check import eq
from protocol.hmac256 import hmac_sha256
from tmpfs import rmtree, temp_dir

from cardkeys import CardKeys

READER_KEY = bytes(range(32))
ISSUER_1, ISSUER_2 = b"\x11" * 32, b"\x22" * 32


def _wrap(epoch, key):
    # docs/cards.md: the key XOR HMAC-SHA256(reader key, "sconto-epoch" || epoch)
    pad = hmac_sha256(READER_KEY, b"sconto-epoch" + bytes([epoch]))
    return bytes(a ^ b for a, b in zip(key, pad))


def test_keys_survive_a_reboot_wrapped():
    root = temp_dir("keys-")
    try:
        keys = CardKeys(root + "/keys.json", READER_KEY)
        eq((keys.version, keys.get(1)), (0, None), "a new reader has none")
        keys.replace(3, [(1, _wrap(1, ISSUER_1)), (2, _wrap(2, ISSUER_2))])
        eq((keys.get(1), keys.get(2), keys.get(3)), (ISSUER_1, ISSUER_2, None), "unwrapped")
        again = CardKeys(root + "/keys.json", READER_KEY)
        eq((again.version, again.get(2)), (3, ISSUER_2), "after a reboot")
        with open(root + "/keys.json", "rb") as f:
            data = f.read()
        assert ISSUER_1.hex().encode() not in data and b"11" * 32 not in data, "never in clear on flash"
        other = CardKeys(root + "/keys.json", bytes(32))
        assert other.get(1) != ISSUER_1, "useless without the reader's key"
    finally:
        rmtree(root)


def test_a_damaged_key_file_means_no_keys():
    root = temp_dir("keys-")
    try:
        for junk in (b'{"keys":[[1,"zz"]],"version":1}', b"{", b'{"version":1}', b'{"keys":[1],"version":1}'):
            with open(root + "/keys.json", "wb") as f:
                f.write(junk)
            keys = CardKeys(root + "/keys.json", READER_KEY)
            eq((keys.version, keys.get(1), keys.error), (0, None, "flash.io"), repr(junk))
    finally:
        rmtree(root)
