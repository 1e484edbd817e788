"""Who is this card? The one card-reading procedure of the reader and the host tools.

`identify(tag, keys, nonce, buf)` takes a card in the field and returns its identity, or
raises CardError. The tag object is the driver's (PN532 on the reader, nfcpy on the
host): `sak`, `uid`, `ats`, `thru(cmd)` for raw Type 2 commands and `apdu(cmd)` for
ISO-DEP, each returning the card's answer (None if the card said nothing).

Kinds are told apart by the SAK and by selecting the loyalty applet, never by UID length:
  SAK bit 0x20 (ISO-DEP)   SELECT the applet, then AUTHENTICATE with the caller's nonce;
                           without the applet, a fixed UID makes it a UID card
  SAK 00 (Type 2)          an NTAG21x: the loyalty NDEF record, its MAC bound to the UID;
                           without a record it is a UID card
  anything else            MIFARE Classic and friends: a UID card
A random UID (a phone's) is never an identity. The NTAG originality signature is
checked when the caller asks for it (the rules' "cards": {"ntag_signature": true}).

    ident = identify(tag, keys.get, os.urandom(16), buf)   # buf = bytearray(ntag.BUF_SIZE)
    {"card": "6001000000000042", "kind": "ntag", "verified": True, "epoch": 1, "counter": 0}
"""
from . import loyaltycard, ndef, ntag
from .compat import const
from .loyaltycard import CardError

_ISO_DEP = const(0x20)
_READ = const(0x30)
_FAST_READ = const(0x3A)
_READ_SIG = const(0x3C)
_GET_VERSION = const(0x60)


def _identity(card, kind, epoch=0, counter=0):
    return {"card": card, "kind": kind, "verified": True, "epoch": epoch, "counter": counter}


def _answer(data):
    # a card that stops answering in the middle of a read has most likely left the field
    if data is None:
        raise CardError("card.removed", "card", "no answer")
    return data


def _uid_card(uid, why):
    card = loyaltycard.uid_card(uid)
    if card is None:
        raise CardError("card.not_registered", "uid", why)
    return _identity(card, "uid")


def identify(tag, keys, nonce, buf, check_signature=False):
    """The identity of the card in the field: {"card", "kind" ("ntag", "applet" or "uid"),
    "verified": True, "epoch", "counter"}; CardError (card.*) if it has none.

    `keys(epoch)` gives the issuer key of an epoch or None; `nonce` is 16 fresh random
    bytes; `buf` a preallocated bytearray of ntag.BUF_SIZE for the NTAG's memory."""
    uid = bytes(tag.uid)
    if tag.sak & _ISO_DEP:
        return _applet(tag, uid, keys, nonce)
    if tag.sak == 0x00:
        return _ntag(tag, uid, keys, buf, check_signature)
    return _uid_card(uid, "UID card with no number")


def identify_applet(apdu, keys, nonce, kind="applet"):
    """The identity behind the loyalty applet, for cards without a UID to fall back on
    (contact smart cards, kind "contact"): SELECT, then AUTHENTICATE with `nonce`.
    `apdu(cmd)` returns the card's answer with SW1SW2, or None if it said nothing."""
    loyaltycard.check_select(_answer(apdu(loyaltycard.SELECT)))
    return _authenticate(apdu, keys, nonce, kind)


def _authenticate(apdu, keys, nonce, kind):
    answer = _answer(apdu(loyaltycard.auth_command(nonce)))
    card, epoch, counter = loyaltycard.check_auth(answer, nonce, keys)
    return _identity(card, kind, epoch, counter)


def _applet(tag, uid, keys, nonce):
    try:
        loyaltycard.check_select(_answer(tag.apdu(loyaltycard.SELECT)))
    except CardError as e:
        if e.code != "card.no_applet" or loyaltycard.is_random_uid(uid):
            raise  # a phone without the app: its random UID says nothing
        return _uid_card(uid, "no applet, and no number for this UID")
    return _authenticate(tag.apdu, keys, nonce, "applet")


def _ntag(tag, uid, keys, buf, check_signature):
    version = _answer(tag.thru(bytes([_GET_VERSION])))
    if len(version) == 1:
        # NAK: a Type 2 tag older than the NTAG21x (MIFARE Ultralight). The NAK has sent
        # it to IDLE, and we issue only NTAGs: its UID is all it can be. A clone could
        # NAK on purpose, so when signatures are asked for, a tag without one is refused.
        if check_signature:
            raise CardError("card.signature", "signature", "Type 2 tag without GET_VERSION")
        return _uid_card(uid, "Type 2 tag with no number")
    model = ntag.parse_version(version)
    if check_signature:
        sig = _answer(tag.thru(bytes([_READ_SIG, 0])))
        if len(sig) != 32:
            raise CardError("card.unreadable", "signature", "READ_SIG answer is not 32 bytes")
        # imported only here: most chains never ask for it, and its curve code costs heap
        from . import ntagsig

        if not ntagsig.verify(uid, sig):
            raise CardError("card.signature", "signature", "not NXP's signature of this UID")
    if model:
        last_user = ntag.model_info(model)[2]
        message = ntag.read_message(buf, fast_read=lambda a, b: _answer(tag.thru(bytes([_FAST_READ, a, b]))),
                                    last_page=last_user)
    else:
        message = ntag.read_message(buf, read=lambda p: _answer(tag.thru(bytes([_READ, p]))))
    payload = None
    if message is not None:
        payload = ndef.find(message, ndef.TNF_EXTERNAL, loyaltycard.NTAG_TYPE)
    if payload is None:
        return _uid_card(uid, "no loyalty record, and no number for this UID")
    card, epoch = loyaltycard.check_ntag_payload(payload, uid, keys)
    return _identity(card, "ntag", epoch)
