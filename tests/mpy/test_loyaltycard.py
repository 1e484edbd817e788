"""Loyalty card formats (protocol.loyaltycard) against docs/cards.md.

MACs expected here were computed with CPython's own `hmac` module from the formulas in
docs/cards.md (issuer key bytes 0..31, card 6001000000000042, UID 04A1B2C3D4E5F6,
nonce bytes 100..115), not with the module under test; APDUs are written out by hand.
"""
from check import eq, raises
from protocol import loyaltycard as lc
from protocol.compat import unhexlify
from protocol.loyaltycard import CardError

ISSUER = bytes(range(32))
CARD = "6001000000000042"
UID = unhexlify(b"04a1b2c3d4e5f6")
NONCE = bytes(range(100, 116))
CARD_KEY = unhexlify(b"775362c87138736d15914f8d90bf43c4a12dd8fc3a10bc75f319d41c273cb785")
NTAG_PAYLOAD = unhexlify(b"010710363030313030303030303030303034325f9c21073c6f095e2b0d858a0c9cc4de")
AUTH = unhexlify(b"07000000051036303031303030303030303030303432e2bd887d221d742a6dcf6b9bbef9747d")


def _keys(epoch):
    return ISSUER if epoch == 7 else None


def test_card_key():
    eq(lc.card_key(ISSUER, CARD), CARD_KEY, "card key")


def test_ntag_payload():
    eq(lc.ntag_payload(ISSUER, 7, CARD, UID), NTAG_PAYLOAD, "payload")
    eq(lc.check_ntag_payload(NTAG_PAYLOAD, UID, _keys), (CARD, 7), "checked")
    eq(lc.check_ntag_payload(memoryview(NTAG_PAYLOAD), memoryview(UID), _keys), (CARD, 7), "views")


def test_ntag_payload_refused():
    def code(payload, uid=UID, keys=_keys):
        return raises(CardError, lc.check_ntag_payload, payload, uid, keys).code

    eq(code(NTAG_PAYLOAD, b"\x04\xa1\xb2\xc3\xd4\xe5\xf7"), "card.forged", "copied to another tag")
    eq(code(NTAG_PAYLOAD[:-1] + b"\x00"), "card.forged", "MAC altered")
    eq(code(NTAG_PAYLOAD, keys=lambda e: None), "card.key", "no key for epoch 7")
    eq(code(b"\x02" + NTAG_PAYLOAD[1:]), "card.unreadable", "version 2")
    eq(code(NTAG_PAYLOAD[:-1]), "card.unreadable", "a byte short")
    eq(code(NTAG_PAYLOAD + b"\x00"), "card.unreadable", "a byte long")
    eq(code(NTAG_PAYLOAD[:3]), "card.unreadable", "header only")
    eq(code(b"\x01\x07\x00" + bytes(16)), "card.unreadable", "no digits")
    eq(code(b"\x01\x07\x02\xd9\xa1" + bytes(16)), "card.unreadable", "Arabic-Indic digit one")
    eq(code(b"\x01\x07\x02\xff\xfe" + bytes(16)), "card.unreadable", "not UTF-8")


def test_select_apdu():
    eq(lc.SELECT, b"\x00\xa4\x04\x00\x08\xf0\x53\x43\x4f\x4e\x54\x4f\x01\x00", "from docs/cards.md")
    lc.check_select(b"\x01\x90\x00")
    eq(raises(CardError, lc.check_select, b"\x6a\x82").code, "card.no_applet", "6A82")
    eq(raises(CardError, lc.check_select, b"\x6d\x00").code, "card.unreadable", "6D00")
    eq(raises(CardError, lc.check_select, b"\x02\x90\x00").code, "card.unreadable", "version 2")
    eq(raises(CardError, lc.check_select, b"\x90").code, "card.unreadable", "1 byte")


def test_auth_apdu():
    eq(lc.auth_command(NONCE), b"\x80\x10\x00\x00\x10" + NONCE + b"\x00", "from docs/cards.md")
    raises(ValueError, lc.auth_command, NONCE[:15])
    eq(lc.auth_answer(ISSUER, 7, CARD, 5, NONCE), AUTH, "answer")
    eq(lc.card_auth_answer(CARD_KEY, 7, CARD, 5, NONCE), AUTH, "made with the card key")
    eq(lc.check_auth(AUTH + b"\x90\x00", NONCE, _keys), (CARD, 7, 5), "checked")


def test_auth_refused():
    def code(answer, nonce=NONCE, keys=_keys):
        return raises(CardError, lc.check_auth, answer, nonce, keys).code

    ok = b"\x90\x00"
    eq(code(AUTH + ok, bytes(16)), "card.forged", "answer to another nonce")
    eq(code(AUTH[:-1] + b"\x00" + ok), "card.forged", "MAC altered")
    eq(code(AUTH[:4] + b"\x06" + AUTH[5:] + ok), "card.forged", "counter 5 made 6")
    eq(code(AUTH + ok, keys=lambda e: None), "card.key", "no key")
    eq(code(b"\x69\x85"), "card.unreadable", "not personalised")
    eq(code(AUTH[:-1] + ok), "card.unreadable", "a byte short")
    eq(code(AUTH[:10] + ok), "card.unreadable", "cut")
    eq(code(b"\x00"), "card.unreadable", "no status word")


def test_personalise_apdu():
    key = bytes(range(32))
    eq(lc.personalise_command(3, "42", key), b"\x80\x20\x03\x00\x23\x02\x34\x32" + key, "from docs/cards.md")
    raises(CardError, lc.personalise_command, 3, "4a", key)
    raises(CardError, lc.personalise_command, 3, "\uff14", key)  # fullwidth digit four
    raises(CardError, lc.personalise_command, 3, "1" * 20, key)


def test_uid_card_numbers():
    eq(lc.uid_card(b"\x01\x02\x03\x04"), "90016909060", "4 bytes: 16909060, 10 digits")
    eq(lc.uid_card(unhexlify(b"04010203040506")), "901127008059000070", "7 bytes, 17 digits")
    eq(lc.uid_card(b"\xff\xff\xff\xff"), "94294967295", "largest 4-byte")
    eq(lc.uid_card(b"\x08\x01\x02\x03"), None, "random UID")
    eq(lc.uid_card(bytes(10)), None, "10 bytes")
    eq(lc.is_random_uid(b"\x08\x00\x00\x00"), True, "08 xx xx xx")
    eq(lc.is_random_uid(b"\x08\x00\x00\x00\x00\x00\x00"), False, "7 bytes starting 08")
