"""Card models: what an NTAG21x, a loyalty-applet card, a phone and a UID-only card answer.

The PN532 simulator, the nfcpy card emulators and the card tests all talk to these, so
one model of each card serves every layer. Plain classes that run on MicroPython too.

    NtagCard      raw Type 2 commands: answer(cmd) -> bytes (NAK b"\\x00") or None
    AppletCard    ISO-DEP APDUs: apdu(cmd) -> answer with SW1SW2 (docs/cards.md)
    PhoneCard     an AppletCard whose UID is random and new at every enter_field()
    UidCard       a legacy card that answers nothing beyond anticollision

    >>> tag = NtagCard.loyalty("6001000000000042", 1, bytes(32), b"\\x04\\x01\\x02\\x03\\x04\\x05\\x06")
    >>> tag.answer(b"\\x30\\x03")[:4]
    b'\\xe1\\x10>\\x00'
"""
import os

try:
    from loyalty.protocol import loyaltycard, ndef, ntag
except ImportError:  # on MicroPython (the card tests of tests/mpy): `protocol` as on the reader
    from protocol import loyaltycard, ndef, ntag

ACK = b"\x0a"
NAK = b"\x00"  # NAK 0: invalid argument (page out of range, unknown command)

READ = 0x30
FAST_READ = 0x3A
READ_SIG = 0x3C
GET_VERSION = 0x60
WRITE = 0xA2

# lock control TLV on factory NTAG213s: dynamic lock bits at byte 160 (page 0x28)
LOCK_TLV_213 = b"\x01\x03\xa0\x0c\x34"


def _atqa(uid):
    # ATQA b7b8 give the UID size: single (4), double (7), triple (10)
    return {4: b"\x00\x04", 7: b"\x00\x44", 10: b"\x00\x84"}.get(len(uid), b"\x00\x04")


def _sw(word):
    return bytes([word >> 8, word & 0xFF])


class NtagCard:
    """An NTAG213/215/216: its whole memory in `pages` (4 bytes per page), the UID in
    pages 0-2 with its check bytes, the factory CC in page 3, `memory` (or the factory
    empty NDEF TLV 03 00 FE) from page 4, configuration pages as delivered."""

    def __init__(self, uid, model=215, memory=None, signature=None):
        uid = bytes(uid)
        if len(uid) != 7:
            raise ValueError("an NTAG has a 7-byte UID")
        storage, cc_size, last_user, last = ntag.model_info(model)
        self.uid = uid
        self.model = model
        self.sak = 0x00
        self.atqa = b"\x00\x44"
        self.ats = None
        self.last_user_page = last_user
        self.last_page = last
        self.signature = bytes(signature) if signature is not None else bytes(32)
        self.version = bytes([0x00, 0x04, 0x04, 0x02, 0x01, 0x00, storage, 0x03])
        p = bytearray((last + 1) * 4)
        bcc0 = 0x88 ^ uid[0] ^ uid[1] ^ uid[2]  # CT 88 is part of the cascade check byte
        bcc1 = uid[3] ^ uid[4] ^ uid[5] ^ uid[6]
        p[0:4] = bytes([uid[0], uid[1], uid[2], bcc0])
        p[4:8] = uid[3:7]
        p[8:12] = bytes([bcc1, 0x48, 0x00, 0x00])
        p[12:16] = ntag.cc(model)
        data = b"\x03\x00\xfe" if memory is None else bytes(memory)
        if len(data) > (last_user - 3) * 4:
            raise ValueError("memory image larger than NTAG%d's user memory" % model)
        p[16:16 + len(data)] = data
        # dynamic lock bytes, CFG0 (AUTH0 FF: no password), CFG1; PWD and PACK read as 0
        p[(last - 4) * 4:(last - 2) * 4] = b"\x00\x00\x00\xbd\x04\x00\x00\xff"
        p[(last - 2) * 4:(last - 1) * 4] = b"\x00\x05\x00\x00"
        self.pages = p
        self.writes = 0

    def enter_field(self):
        """The tag comes near a reader (nothing to reset: the model keeps no session state)."""

    @classmethod
    def loyalty(cls, card, epoch, issuer_key, uid, model=215, extra_records=(), signature=None):
        """A tag as the issuing desk leaves it: the loyalty record (then `extra_records`,
        each (tnf, type, id, payload)) in the NDEF message, after the lock control TLV a
        factory NTAG213 carries."""
        payload = loyaltycard.ntag_payload(issuer_key, epoch, card, uid)
        records = [(ndef.TNF_EXTERNAL, loyaltycard.NTAG_TYPE, b"", payload)] + list(extra_records)
        prefix = LOCK_TLV_213 if model == 213 else b""
        return cls(uid, model, prefix + ntag.tlv(ndef.encode(records)), signature)

    def _read_pages(self, first, count):
        # READ rolls over from the last page to page 0; PWD and PACK always read as zeros
        out = bytearray()
        for i in range(count):
            page = (first + i) % (self.last_page + 1)
            if page >= self.last_page - 1:
                out.extend(b"\x00\x00\x00\x00")
            else:
                out.extend(self.pages[page * 4:page * 4 + 4])
        return bytes(out)

    def answer(self, cmd):
        """The tag's answer to a raw Type 2 command (without CRC), NAK b"\\x00" if refused."""
        cmd = bytes(cmd)
        if not cmd:
            return None
        op = cmd[0]
        if op == READ and len(cmd) == 2:
            if cmd[1] > self.last_page:
                return NAK
            return self._read_pages(cmd[1], 4)
        if op == FAST_READ and len(cmd) == 3:
            if cmd[1] > cmd[2] or cmd[2] > self.last_page:
                return NAK
            return self._read_pages(cmd[1], cmd[2] - cmd[1] + 1)
        if op == READ_SIG and len(cmd) == 2:
            return self.signature if cmd[1] == 0 else NAK
        if op == GET_VERSION and len(cmd) == 1:
            return self.version
        if op == WRITE and len(cmd) == 6:
            return self._write(cmd[1], cmd[2:6])
        return NAK

    def _write(self, page, data):
        if page < 2 or page > self.last_page - 2:
            return NAK
        at = page * 4
        if page == 2:  # only the static lock bytes, and bits are only ever set
            self.pages[at + 2] |= data[2]
            self.pages[at + 3] |= data[3]
        elif page == 3:  # the CC is one-time programmable: bits are only ever set
            for i in range(4):
                self.pages[at + i] |= data[i]
        else:
            self.pages[at:at + 4] = data
        self.writes += 1
        return ACK

    def user_memory(self):
        """The bytes from page 4 to the last user page (what the issuing desk wrote)."""
        return bytes(self.pages[16:(self.last_user_page + 1) * 4])


class AppletCard:
    """A contactless smart card running the loyalty applet (docs/cards.md): SELECT,
    AUTHENTICATE with a counter, PERSONALISE once. Personalised from the start if
    `card` is given (its key diversified from `issuer_key`)."""

    def __init__(self, uid, ats=b"\x05\x78\x80\x70\x02", card=None, epoch=0, issuer_key=None):
        self.uid = bytes(uid)
        self.sak = 0x20
        self.atqa = _atqa(self.uid)
        self.ats = bytes(ats)
        self.card = None
        self.epoch = 0
        self.key = None
        self.counter = 0
        self.selected = False
        if card is not None:
            self.card = card
            self.epoch = epoch
            self.key = loyaltycard.card_key(issuer_key, card)

    def enter_field(self):
        """The card comes near a reader: no application is selected yet."""
        self.selected = False

    def apdu(self, cmd):
        """The answer to one command APDU, data and SW1SW2."""
        cmd = bytes(cmd)
        if len(cmd) < 4:
            return _sw(loyaltycard.SW_WRONG_LENGTH)
        cla, ins = cmd[0], cmd[1]
        if cla == 0x00 and ins == 0xA4:
            return self._select(cmd)
        if cla != 0x80:
            return b"\x6e\x00"  # class not supported
        if not self.selected:
            return _sw(loyaltycard.SW_INS)
        if ins == loyaltycard.INS_AUTH:
            return self._authenticate(cmd)
        if ins == loyaltycard.INS_PERSONALISE:
            return self._personalise(cmd)
        return _sw(loyaltycard.SW_INS)

    def _select(self, cmd):
        aid = loyaltycard.AID
        body = cmd[5:5 + cmd[4]] if len(cmd) > 4 else b""
        self.selected = cmd[2:4] == b"\x04\x00" and body == aid and len(cmd) in (5 + len(aid), 6 + len(aid))
        if not self.selected:
            return _sw(loyaltycard.SW_NOT_FOUND)
        return bytes([loyaltycard.VERSION]) + _sw(loyaltycard.SW_OK)

    def _authenticate(self, cmd):
        n = loyaltycard.NONCE_LEN
        if cmd[4:5] != bytes([n]) or len(cmd) not in (5 + n, 6 + n):
            return _sw(loyaltycard.SW_WRONG_LENGTH)
        if self.key is None or self.counter >= 0xFFFFFFFF:
            return _sw(loyaltycard.SW_NOT_PERSONALISED)
        self.counter += 1
        answer = loyaltycard.card_auth_answer(self.key, self.epoch, self.card, self.counter, cmd[5:5 + n])
        return answer + _sw(loyaltycard.SW_OK)

    def _personalise(self, cmd):
        if self.key is not None:
            return _sw(loyaltycard.SW_NOT_PERSONALISED)
        data = cmd[5:]
        if len(cmd) < 6 or cmd[4] != len(data) or len(data) != 1 + data[0] + 32:
            return _sw(loyaltycard.SW_WRONG_LENGTH)
        digits = data[1:1 + data[0]]
        if not 1 <= len(digits) <= loyaltycard.MAX_CARD or not 1 <= cmd[2] <= 255:
            return b"\x6a\x80"  # incorrect data
        for c in digits:
            if not 0x30 <= c <= 0x39:
                return b"\x6a\x80"
        card = digits.decode()
        self.card = card
        self.epoch = cmd[2]
        self.key = bytes(data[1 + data[0]:])
        return _sw(loyaltycard.SW_OK)


class PhoneCard(AppletCard):
    """A phone doing host card emulation: a random UID (4 bytes, first 08), new each time
    it enters a field, as Android draws it."""

    def __init__(self, card=None, epoch=0, issuer_key=None, ats=b"\x05\x78\x80\x70\x02", rand=None):
        self.rand = rand or os.urandom
        AppletCard.__init__(self, b"\x08\x00\x00\x00", ats, card, epoch, issuer_key)
        self.enter_field()

    def enter_field(self):
        self.uid = b"\x08" + bytes(self.rand(3))
        self.selected = False


class UidCard:
    """A legacy card (MIFARE Classic and the like): a UID and a SAK, and no answer to
    Type 2 commands or APDUs."""

    def __init__(self, uid, sak=0x08):
        self.uid = bytes(uid)
        self.sak = sak
        self.atqa = _atqa(self.uid)
        self.ats = None

    def enter_field(self):
        pass

    def answer(self, cmd):
        return None

    def apdu(self, cmd):
        return None
