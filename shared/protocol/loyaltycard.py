"""Loyalty cards: card keys, the NTAG record's payload and the loyalty applet's APDUs.

The formats are in docs/cards.md; this is their reference implementation, run by the
reader (verifying), the issuing desk and the card emulators (making), on both runtimes.
Bytes in, values out; no radio, no files.

    >>> issuer = bytes(32)
    >>> uid = bytes.fromhex("04a1b2c3d4e5f6")
    >>> payload = ntag_payload(issuer, 1, "6001000000000042", uid)
    >>> check_ntag_payload(payload, uid, {1: issuer}.get)
    ('6001000000000042', 1)
"""
from .checks import is_digits
from .compat import const
from .errors import ProtocolError
from .hmac256 import equal, hmac_sha256

VERSION = const(1)
MAC_LEN = const(16)
NONCE_LEN = const(16)
MAX_CARD = const(19)

# the NDEF record on an NTAG: NFC Forum external type (TNF 4)
NTAG_TYPE = b"sconto.org:card"
# the applet's AID: proprietary (first nibble F), "SCONTO", version 1
AID = b"\xf0SCONTO\x01"

INS_AUTH = const(0x10)
INS_PERSONALISE = const(0x20)
SELECT = b"\x00\xa4\x04\x00" + bytes([len(AID)]) + AID + b"\x00"

SW_OK = const(0x9000)
SW_NOT_FOUND = const(0x6A82)  # no such application
SW_NOT_PERSONALISED = const(0x6985)  # conditions of use not satisfied
SW_WRONG_LENGTH = const(0x6700)
SW_INS = const(0x6D00)


class CardError(ProtocolError):
    """A card that cannot be used: code card.* and a detail (what the reader saw)."""


def card_key(issuer_key, card):
    """The card's own key, diversified from the issuer key of its epoch."""
    return hmac_sha256(issuer_key, b"sconto-card" + card.encode())


def wrap_issuer_key(reader_key, epoch, key):
    """An issuer key as it travels to one reader: XORed with a pad only that reader's key
    makes. Unwrapping is the same operation. The sync answer that carries it is signed."""
    pad = hmac_sha256(reader_key, b"sconto-epoch" + bytes([epoch]))
    return bytes(a ^ b for a, b in zip(key, pad))


unwrap_issuer_key = wrap_issuer_key


def _check_card(card):
    if not is_digits(card, MAX_CARD):
        raise CardError("card.unreadable", "card", "card number must be 1 to 19 digits")


def _issuer(keys, epoch):
    key = keys(epoch)
    if key is None:
        raise CardError("card.key", "epoch", "no key for epoch %d" % epoch)
    return key


def _card_part(data, at):
    # len(card) then the digits; returns (card, index after it)
    if at >= len(data):
        raise CardError("card.unreadable", "card", "record too short")
    n = data[at]
    card = bytes(data[at + 1:at + 1 + n])
    if len(card) != n or not 1 <= n <= MAX_CARD:
        raise CardError("card.unreadable", "card", "bad card number length")
    try:
        text = card.decode()
    except UnicodeError:
        text = ""
    if not is_digits(text, MAX_CARD):
        raise CardError("card.unreadable", "card", "card number must be digits")
    return text, at + 1 + n


# -- NTAG record -----------------------------------------------------------------------
def ntag_payload(issuer_key, epoch, card, uid):
    """The payload of the loyalty NDEF record for the tag whose UID is `uid`."""
    _check_card(card)
    body = bytes([VERSION, epoch, len(card)]) + card.encode()
    mac = hmac_sha256(card_key(issuer_key, card), b"ntag" + bytes(uid) + body)[:MAC_LEN]
    return body + mac


def check_ntag_payload(payload, uid, keys):
    """(card, epoch) from a loyalty record read off the tag `uid`, or CardError.

    `keys(epoch)` gives the issuer key of an epoch, or None. A record copied onto
    another tag fails: the MAC covers the UID.
    """
    if len(payload) < 3 + 1 + MAC_LEN or payload[0] != VERSION:
        raise CardError("card.unreadable", "record", "not a version-1 loyalty record")
    epoch = payload[1]
    card, end = _card_part(payload, 2)
    if end + MAC_LEN != len(payload):
        raise CardError("card.unreadable", "record", "record length does not match")
    mac = hmac_sha256(card_key(_issuer(keys, epoch), card), b"ntag" + bytes(uid) + bytes(payload[:end]))
    if not equal(mac[:MAC_LEN], bytes(payload[end:])):
        raise CardError("card.forged", "mac", "record MAC does not match this tag")
    return card, epoch


# -- the applet ------------------------------------------------------------------------
def auth_command(nonce):
    """AUTHENTICATE: the reader's fresh nonce; the card answers with card, counter, MAC."""
    if len(nonce) != NONCE_LEN:
        raise ValueError("nonce must be %d bytes" % NONCE_LEN)
    return bytes([0x80, INS_AUTH, 0, 0, NONCE_LEN]) + bytes(nonce) + b"\x00"


def _auth_mac(key, nonce, body):
    return hmac_sha256(key, b"appl" + bytes(nonce) + body)[:MAC_LEN]


def auth_answer(issuer_key, epoch, card, counter, nonce):
    """What a personalised applet answers to AUTHENTICATE (data, without the status word)."""
    return card_auth_answer(card_key(issuer_key, card), epoch, card, counter, nonce)


def card_auth_answer(key, epoch, card, counter, nonce):
    """The same answer made with the card's own key, the only key an applet holds."""
    _check_card(card)
    body = bytes([epoch]) + counter.to_bytes(4, "big") + bytes([len(card)]) + card.encode()
    return body + _auth_mac(key, nonce, body)


def status_word(answer):
    """The status word SW1SW2 at the end of an APDU answer, or CardError."""
    if len(answer) < 2:
        raise CardError("card.unreadable", "apdu", "answer shorter than a status word")
    return answer[-2] << 8 | answer[-1]


def check_select(answer):
    """Did the card SELECT the loyalty applet? CardError says why not."""
    sw = status_word(answer)
    if sw == SW_NOT_FOUND:
        raise CardError("card.no_applet", "apdu", "no loyalty applet on this card")
    if sw != SW_OK:
        raise CardError("card.unreadable", "apdu", "SELECT answered %04X" % sw)
    if len(answer) >= 3 and answer[0] != VERSION:
        raise CardError("card.unreadable", "apdu", "applet version %d" % answer[0])


def check_auth(answer, nonce, keys):
    """(card, epoch, counter) from the applet's answer to AUTHENTICATE with `nonce`."""
    sw = status_word(answer)
    if sw == SW_NOT_PERSONALISED:
        raise CardError("card.unreadable", "apdu", "card not personalised")
    if sw != SW_OK:
        raise CardError("card.unreadable", "apdu", "AUTHENTICATE answered %04X" % sw)
    data = answer[:-2]
    if len(data) < 6 + 1 + MAC_LEN:
        raise CardError("card.unreadable", "apdu", "answer too short")
    epoch = data[0]
    counter = int.from_bytes(bytes(data[1:5]), "big")
    card, end = _card_part(data, 5)
    if end + MAC_LEN != len(data):
        raise CardError("card.unreadable", "apdu", "answer length does not match")
    mac = _auth_mac(card_key(_issuer(keys, epoch), card), nonce, bytes(data[:end]))
    if not equal(mac, bytes(data[end:])):
        raise CardError("card.forged", "mac", "answer MAC does not match the nonce")
    return card, epoch, counter


def personalise_command(epoch, card, key):
    """PERSONALISE: card number and card key into a blank applet (issuing desk)."""
    _check_card(card)
    data = bytes([len(card)]) + card.encode() + bytes(key)
    return bytes([0x80, INS_PERSONALISE, epoch, 0, len(data)]) + data


# -- UID-only legacy cards ---------------------------------------------------------------
def is_random_uid(uid):
    """A random UID (ISO/IEC 14443-3: 4 bytes, first byte 08), as phones send: never an identity."""
    return len(uid) == 4 and uid[0] == 0x08


def uid_card(uid):
    """The directory number of a UID-only card: '9' and the UID as a zero-padded decimal
    (11 digits for 4-byte UIDs, 18 for 7-byte); None for random or 10-byte UIDs."""
    if is_random_uid(uid):
        return None
    width = {4: 10, 7: 17}.get(len(uid))
    if width is None:
        return None
    digits = str(int.from_bytes(bytes(uid), "big"))
    return "9" + "0" * (width - len(digits)) + digits
