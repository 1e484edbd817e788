"""identify() (protocol.cardread) against the card models of sim/cardmodels.py: each kind
of card, forged and copied records, wrong keys, phones, cards that stop answering.

The expected card numbers are the issued ones, or UID numbers written out by hand from
docs/cards.md ("9" and the UID in decimal); the real NTAG UID and signature are the ones
in test_ntagsig.
"""
from cardmodels import AppletCard, NtagCard, PhoneCard, UidCard
from check import eq, raises
from protocol import loyaltycard, ndef, ntag
from protocol.cardread import identify
from protocol.compat import unhexlify
from protocol.errors import ProtocolError

ISSUER = b"\x5a" * 32
KEYS = {1: ISSUER, 2: b"\x33" * 32}.get
CARD = "6001000000000042"
UID = unhexlify(b"04010203040506")
UID_NUMBER = "901127008059000070"
REAL_UID = unhexlify(b"04ab87f2ca1190")
REAL_SIG = unhexlify(b"67b1750bcceb1174f9a33bf20e0226551a6366939b31f949848c3c087350fa90")
NONCE = bytes(range(16))


class Field:
    """A card in the field as a driver shows it: thru() and apdu(), with a log and faults.

    `cut` = (n, length): the n-th exchange's answer is cut to `length` bytes (None: no answer)."""

    def __init__(self, card, cut=None):
        self.card = card
        self.sak = card.sak
        self.uid = card.uid
        self.ats = card.ats
        self.cut = cut
        self.log = []

    def _fault(self, answer):
        n = len(self.log) - 1
        if self.cut is not None and self.cut[0] == n:
            return None if self.cut[1] is None else answer[:self.cut[1]]
        return answer

    def thru(self, cmd):
        self.log.append(bytes(cmd))
        return self._fault(self.card.answer(cmd))

    def apdu(self, cmd):
        self.log.append(bytes(cmd))
        return self._fault(self.card.apdu(cmd))


def _identify(card, keys=KEYS, check_signature=False, cut=None):
    field = Field(card, cut)
    return identify(field, keys, NONCE, bytearray(ntag.BUF_SIZE), check_signature), field.log


def _refused(card, code, keys=KEYS, check_signature=False, cut=None):
    e = raises(ProtocolError, _identify, card, keys, check_signature, cut)
    eq(e.code, code, "error code (%s)" % e)
    return e


class NoApplet(AppletCard):
    # a contactless smart card or a phone without the loyalty applet: SELECT says 6A82
    def apdu(self, cmd):
        return b"\x6a\x82"


def test_ntag_each_model():
    for model in (213, 215, 216):
        ident, log = _identify(NtagCard.loyalty(CARD, 1, ISSUER, UID, model))
        eq(ident, {"card": CARD, "kind": "ntag", "verified": True, "epoch": 1, "counter": 0}, "NTAG%d" % model)
        # pages 3-18 come in the first FAST_READ (the CC and 60 bytes); the loyalty
        # record (55 bytes with its TLV and terminator, 60 behind an NTAG213's lock
        # control TLV) fits in them, so no second FAST_READ
        eq([c[0] for c in log], [0x60, 0x3A], "GET_VERSION then one FAST_READ (NTAG%d)" % model)


def test_ntag_record_after_other_records():
    text = (ndef.TNF_WELL_KNOWN, b"T", b"", b"\x02enHi")
    uri = (ndef.TNF_WELL_KNOWN, b"U", b"", b"\x04sconto.org")
    payload = loyaltycard.ntag_payload(ISSUER, 1, CARD, UID)
    msg = ndef.encode([text, uri, (ndef.TNF_EXTERNAL, loyaltycard.NTAG_TYPE, b"", payload)])
    ident, _ = _identify(NtagCard(UID, 215, ntag.tlv(msg)))
    eq(ident["card"], CARD, "found after a text and a URI record")


def test_ntag_record_copied_to_another_tag():
    genuine = NtagCard.loyalty(CARD, 1, ISSUER, UID)
    clone = NtagCard(b"\x04\x99\x02\x03\x04\x05\x06", 215, genuine.user_memory())
    _refused(clone, "card.forged")


def test_ntag_wrong_mac():
    tag = NtagCard.loyalty(CARD, 1, ISSUER, UID)
    tag.pages[16 + 2 + 3 + 15 + 3 + 16 + 2] ^= 0x01  # a byte of the MAC
    _refused(tag, "card.forged")
    _refused(NtagCard.loyalty(CARD, 1, b"\x11" * 32, UID), "card.forged")  # another issuer key


def test_ntag_unknown_epoch():
    _refused(NtagCard.loyalty(CARD, 9, ISSUER, UID), "card.key")


def test_ntag_without_record_is_a_uid_card():
    eq(_identify(NtagCard(UID, 213))[0], {"card": UID_NUMBER, "kind": "uid", "verified": True, "epoch": 0,
                                          "counter": 0}, "blank NTAG")
    other = ndef.encode([(ndef.TNF_WELL_KNOWN, b"U", b"", b"\x04example.com")])
    eq(_identify(NtagCard(UID, 215, ntag.tlv(other)))[0]["kind"], "uid", "URL only")
    tag = NtagCard(UID, 215)
    tag.pages[12:16] = bytes(4)
    eq(_identify(tag)[0]["card"], UID_NUMBER, "not NDEF formatted")


def test_ntag_malformed_memory():
    bad = NtagCard(UID, 215, b"\x03\x10\xd1\x01")  # NDEF TLV of 16 bytes, header cut short
    _refused(bad, "card.unreadable")
    _refused(NtagCard(UID, 215, b"\x42\x00"), "card.unreadable")  # unknown TLV


def test_signature_checked_when_asked():
    genuine = NtagCard.loyalty(CARD, 1, ISSUER, REAL_UID, signature=REAL_SIG)
    ident, log = _identify(genuine, check_signature=True)
    eq(ident["card"], CARD, "genuine signature")
    eq(b"\x3c\x00" in log, True, "READ_SIG sent")
    ident, log = _identify(genuine)
    eq(b"\x3c\x00" in log, False, "no READ_SIG unless asked")
    unsigned = NtagCard.loyalty(CARD, 1, ISSUER, UID)
    eq(_identify(unsigned)[0]["card"], CARD, "signature off: not looked at")
    _refused(unsigned, "card.signature", check_signature=True)
    clone = NtagCard.loyalty(CARD, 1, ISSUER, UID, signature=REAL_SIG)  # another tag's signature
    _refused(clone, "card.signature", check_signature=True)
    _refused(NtagCard(UID, 215, signature=REAL_SIG), "card.signature", check_signature=True)


def test_applet_card():
    card = AppletCard(b"\x04\x11\x22\x33\x44\x55\x66", card=CARD, epoch=2, issuer_key=b"\x33" * 32)
    ident, log = _identify(card)
    eq(ident, {"card": CARD, "kind": "applet", "verified": True, "epoch": 2, "counter": 1}, "first tap")
    eq(log, [loyaltycard.SELECT, b"\x80\x10\x00\x00\x10" + NONCE + b"\x00"], "SELECT, AUTHENTICATE")
    eq(_identify(card)[0]["counter"], 2, "second tap")


def test_phone():
    phone = PhoneCard(CARD, 1, ISSUER)
    eq(_identify(phone)[0]["card"], CARD, "phone with the app")
    eq(phone.uid[0], 0x08, "random UID")


def test_applet_wrong_key_and_epoch():
    _refused(AppletCard(UID, card=CARD, epoch=1, issuer_key=b"\x11" * 32), "card.forged")
    _refused(AppletCard(UID, card=CARD, epoch=5, issuer_key=ISSUER), "card.key")


def test_applet_not_personalised():
    e = _refused(AppletCard(UID), "card.unreadable")
    eq("personalised" in e.detail, True, "detail says why")


def test_applet_personalised_at_the_desk():
    card = AppletCard(UID)
    eq(card.apdu(loyaltycard.SELECT), b"\x01\x90\x00", "SELECT")
    key = loyaltycard.card_key(ISSUER, CARD)
    eq(card.apdu(loyaltycard.personalise_command(1, CARD, key)), b"\x90\x00", "PERSONALISE")
    eq(card.apdu(loyaltycard.personalise_command(1, CARD, key)), b"\x69\x85", "only once")
    eq(_identify(card)[0]["card"], CARD, "then identified")


def test_applet_status_words():
    card = AppletCard(UID, card=CARD, epoch=1, issuer_key=ISSUER)
    eq(card.apdu(loyaltycard.auth_command(NONCE)), b"\x6d\x00", "AUTHENTICATE before SELECT")
    eq(card.apdu(b"\x00\xa4\x04\x00\x02\xa0\x00\x00"), b"\x6a\x82", "another AID")
    card.apdu(loyaltycard.SELECT)
    eq(card.apdu(b"\x80\x10\x00\x00\x0f" + NONCE[:15] + b"\x00"), b"\x67\x00", "15-byte nonce")
    eq(card.apdu(b"\x80\x30\x00\x00\x00"), b"\x6d\x00", "unknown INS")
    eq(card.apdu(b"\x90\x10\x00\x00\x00"), b"\x6e\x00", "unknown class")


def test_card_without_applet():
    eq(_identify(NoApplet(UID))[0], {"card": UID_NUMBER, "kind": "uid", "verified": True, "epoch": 0,
                                      "counter": 0}, "JavaCard with a fixed UID")
    _refused(NoApplet(b"\x08\x12\x34\x56"), "card.no_applet")  # a phone without the app
    _refused(NoApplet(bytes(range(1, 11))), "card.not_registered")  # 10-byte UID: no number


def test_uid_cards():
    eq(_identify(UidCard(b"\x01\x02\x03\x04"))[0]["card"], "90016909060", "MIFARE Classic 1K")
    eq(_identify(UidCard(UID, sak=0x18))[0]["card"], UID_NUMBER, "MIFARE Classic 4K, 7-byte UID")
    _refused(UidCard(b"\x08\x01\x02\x03"), "card.not_registered")
    eq(_identify(UidCard(b"\x01\x02\x03\x04"))[1], [], "nothing sent to a UID card")


def test_kind_is_not_told_by_uid_length():
    # a 4-byte UID with SAK 20 is still asked for the applet, a 7-byte one with SAK 08 is not
    card = AppletCard(b"\x01\x02\x03\x04", card=CARD, epoch=1, issuer_key=ISSUER)
    eq(_identify(card)[0]["kind"], "applet", "4-byte applet card")
    eq(_identify(UidCard(UID, sak=0x08))[0]["kind"], "uid", "7-byte Classic")


def _every_cut(make, check_signature=False):
    # cut each exchange's answer to each length: a named card error or an identity, never a crash
    exchanges = len(_identify(make(), check_signature=check_signature)[1])
    for n in range(exchanges):
        for length in (None, 0, 1, 2, 3, 7, 15, 16, 17, 31):
            try:
                ident, _ = _identify(make(), check_signature=check_signature, cut=(n, length))
            except ProtocolError as e:
                eq(e.code[:5], "card.", "code")
                if length is None:
                    eq(e.code, "card.removed", "no answer at exchange %d" % n)
            else:
                eq(ident["verified"], True, "identity")


def test_truncated_answers_ntag():
    _every_cut(lambda: NtagCard.loyalty(CARD, 1, ISSUER, REAL_UID, signature=REAL_SIG), True)


def test_truncated_answers_applet():
    _every_cut(lambda: AppletCard(UID, card=CARD, epoch=1, issuer_key=ISSUER))
