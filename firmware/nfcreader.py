"""The till's NFC card reader: the PN532 polled for cards, each tap identified once.

`wait_card()` is what the reader's card task awaits (as with the simulated board's simcard.py): it
polls the controller between short asyncio sleeps, so the till link and sync go on
while nobody taps, and returns the identity of the next card put on the reader
(protocol.cardread: NTAG record, loyalty applet or registered UID). A card left lying
on the reader counts once; it is read again only after it has left the field.

Errors: what the cashier must hear (a forged card, a card pulled away, two cards at
once, an unknown card) is raised as the card's ProtocolError, once per tap, and the
card task tells the till. Trouble with the controller itself (nfc.*, pn532.*: no
answer, garbled frames) is raised once too, so the till shows that the reader is not
reading (and the reader's status keeps it as its last error); then the controller is
initialised again every second until it answers. A card whose read failed (pulled
away, an RF error) is read again at once, not only after it has left the field.

    cards = NfcCardReader(NfcDevice(HSU(uart)), keys, rules)
    identity = await cards.wait_card()
"""
import asyncio
import os

from protocol import cardread, ntag
from protocol.errors import ProtocolError

_GET_VERSION = 0x60
_NAK = b"\x00"
POLL_PAUSE = 0.05  # seconds between polls: a tap is caught within ~60 ms, the loop stays free
RETRY_PAUSE = 1  # seconds between attempts to bring a silent controller back


def _chip_trouble(code):
    return code.startswith("nfc.") or code.startswith("pn532.")


class _Tag:
    """The card in the field, as cardread sees a tag: the PN532 device's target."""

    def __init__(self, device):
        t = device.target
        self.sak, self.uid, self.ats = t.sak, t.uid, t.ats
        self.dev = device
        self.apdu = device.exchange

    def thru(self, cmd):
        try:
            return self.dev.thru(cmd)
        except ProtocolError as e:
            # a Type 2 tag that does not know GET_VERSION (a MIFARE Ultralight) answers a
            # 4-bit NAK, which the PN532, checking the CRC of what it receives, reports as
            # status 02; cardread expects the NAK itself
            if cmd[0] == _GET_VERSION and e.detail.endswith("status 02"):
                return _NAK
            raise


class NfcCardReader:
    def __init__(self, device, keys, rules):
        self.dev, self.keys, self.rules = device, keys, rules
        self.buf = bytearray(ntag.BUF_SIZE)  # the NTAG's data area, taken once
        self._seen = bytearray(11)  # the UID (length first) of the card read last, while it stays
        self._ready = False
        self._down = False  # the controller's failure was reported; quiet until it is back
        self.last_error = ""
        self.reads = 0

    def _signature_wanted(self):
        rules = self.rules.rules
        return bool(rules and rules.get("cards", {}).get("ntag_signature"))

    def _same_card(self, uid):
        n = len(uid)
        seen = self._seen
        if seen[0] != n:
            return False
        for i in range(n):
            if seen[i + 1] != uid[i]:
                return False
        return True

    def _remember(self, uid):
        self._seen[0] = len(uid)
        for i in range(len(uid)):
            self._seen[i + 1] = uid[i]

    def _poll(self):
        if not self._ready:
            self.dev.init()
            self._ready = True
        return self.dev.poll()

    async def wait_card(self):
        while True:
            try:
                target = self._poll()
            except ProtocolError as e:
                if e.code == "card.two":
                    if self._seen[0] == 255:
                        await asyncio.sleep(POLL_PAUSE)
                        continue
                    self._seen[0] = 255  # shown once while both stay
                    raise
                self._ready = False
                self._seen[0] = 0  # whatever was on the reader may have gone meanwhile
                self.last_error = e.code
                if not self._down:
                    self._down = True
                    raise  # the till hears it once
                await asyncio.sleep(RETRY_PAUSE)
                continue
            self._down = False
            if target is None:
                self._seen[0] = 0  # the field is empty: the next card is a new tap
                await asyncio.sleep(POLL_PAUSE)
                continue
            if self._same_card(target.uid):
                self._release()
                await asyncio.sleep(POLL_PAUSE)
                continue
            self._remember(target.uid)
            try:
                identity = cardread.identify(_Tag(self.dev), self.keys.get, os.urandom(16), self.buf,
                                             self._signature_wanted())
            except ProtocolError as e:
                if e.code in ("card.removed", "card.unreadable") or _chip_trouble(e.code):
                    self._seen[0] = 0  # a failed read, not a verdict: the card is read again
                if _chip_trouble(e.code):
                    self._ready = False
                    self.last_error = e.code
                raise
            finally:
                self._release()
            self.reads += 1
            return identity

    def close(self):
        self.dev.close()

    def _release(self):
        try:
            self.dev.release()
        except ProtocolError:
            self._ready = False  # the controller lost track: initialise it before the next poll
