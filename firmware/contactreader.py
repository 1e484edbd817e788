"""The till's contact-card reader: a card put into the slot is read once, with the loyalty applet.

`wait_card()` is what the reader's card task awaits (as with nfcreader.py): it looks at the
slot's presence pin between short asyncio sleeps, so the till link and sync go on while
the slot is empty. A card inserted is activated (ATR, PPS, T=0 or T=1), the applet of
docs/cards.md selected and asked to AUTHENTICATE a fresh nonce (protocol.cardread, the
same code as phones and contactless cards), and the card is powered down again. The
identity is {"card", "kind": "contact", "verified": True, "epoch", "counter"}.

A card left in the slot counts once, whatever came of it: it is read again only after it
has been taken out. A card pulled out in the middle of a read is card.removed (the slot is
powered down and ready for the next one). Card problems (card.mute, card.atr,
card.protocol, card.forged, card.no_applet, ...) are raised once per insertion. Trouble
with the slot itself (slot.fault: the interface chip's fault line, a line that does not
echo) is raised once, then the slot is tried again every second until it works.

    cards = ContactCardReader(slot, keys)        # slot: drivers.contactslot.ContactSlot
    identity = await cards.wait_card()
"""
import asyncio
import os

from protocol import cardread
from protocol.errors import ProtocolError

POLL_PAUSE = 0.05  # seconds between looks at the presence pin
RETRY_PAUSE = 1  # seconds between attempts on a faulty slot
STEP_MS = 2000  # activation and each APDU: three of them stay well inside the watchdog's 8 s
FAULTS_PER_CARD = 5  # slot faults on one insertion before the card is left alone


class ContactCardReader:
    def __init__(self, slot, keys, rules=None):
        self.slot, self.keys, self.rules = slot, keys, rules
        self._counted = False  # the card in the slot was read or refused: it counts once
        self._faults = 0  # slot faults on this insertion
        self._down = False  # the slot's fault was reported; quiet until it works again
        self.last_error = ""
        self.reads = 0

    def _power_down(self):
        try:
            self.slot.deactivate()
        except OSError:
            pass  # the simulated board's line is gone: the card task starts again

    async def wait_card(self):
        while True:
            if not self.slot.present():
                if self.slot.powered:
                    self._power_down()
                self._counted = False
                self._faults = 0
                await asyncio.sleep(POLL_PAUSE)
                continue
            if self._counted:
                await asyncio.sleep(POLL_PAUSE)
                continue
            self._counted = True
            try:
                identity = self._read()
            except ProtocolError as e:
                self._power_down()
                if not self.slot.present():
                    self._counted = False
                    raise ProtocolError("card.removed", "card", "taken out during the read (%s)" % e.code)
                if e.code.startswith("slot."):
                    self.last_error = e.code
                    self._faults += 1
                    # not the card's fault, or so it seems: try again, but a card that
                    # garbles the line would be powered up every second while it stays
                    self._counted = self._faults >= FAULTS_PER_CARD
                    if not self._down:
                        self._down = True
                        raise
                    await asyncio.sleep(RETRY_PAUSE)
                    continue
                raise
            except (OSError, MemoryError):
                self._power_down()
                raise  # the line is gone, or the heap: the card task starts again
            except Exception as e:  # a card no rule foresaw: named, powered down, counted
                self._power_down()
                raise ProtocolError("card.protocol", "card", "%s: %s" % (type(e).__name__, e))
            self._power_down()
            self._down = False
            self.reads += 1
            return identity

    def _read(self):
        """Activation, PPS, then SELECT and AUTHENTICATE, each within its time budget: the
        read blocks the loop, and the watchdog (8 s) must not bite however slow the card."""
        line = self.slot.line
        try:
            line.budget(STEP_MS)
            session = self.slot.start()

            def apdu(cmd):
                line.budget(STEP_MS)
                return session.transmit(cmd)

            return cardread.identify_applet(apdu, self.keys.get, os.urandom(16), "contact")
        finally:
            line.budget(0)

    def close(self):
        self.slot.close()
