"""The card task's NFC reader (firmware/nfcreader.py) over a scripted device: a card lying
on the reader counts once, each card problem is reported once per tap, and a silent
controller is reported once and then brought back without the loop dying.

The device stands in for drivers.pn532.NfcDevice (whose bytes are tested on their own);
the cards are sim/cardmodels.py's, so cardread runs for real.
"""
import asyncio

from check import eq, raises
from protocol.errors import ProtocolError

import nfcreader
from cardmodels import NtagCard, PhoneCard

ISSUER = bytes(range(32))
UID1 = b"\x04\x01\x02\x03\x04\x05\x06"
UID2 = b"\x04\x01\x02\x03\x04\x05\x07"
nfcreader.POLL_PAUSE = 0.001
nfcreader.RETRY_PAUSE = 0.001


class Keys:
    def get(self, epoch):
        return ISSUER if epoch == 1 else None


class Rules:
    rules = {"cards": {"ntag_signature": False}}


class Target:
    def __init__(self, card):
        self.sak, self.uid, self.ats = card.sak, card.uid, card.ats


class Device:
    """A script of what each poll() finds: a card model, None (empty field), or an
    exception to raise; answers come from the card model."""

    def __init__(self, script):
        self.script = list(script)
        self.card = None
        self.inits = self.polls = self.releases = 0
        self.target = None

    def init(self):
        self.inits += 1

    def poll(self):
        self.polls += 1
        step = self.script.pop(0) if self.script else None
        if isinstance(step, Exception):
            raise step
        self.card = step
        self.target = Target(step) if step is not None else None
        return self.target

    def thru(self, cmd):
        return self.card.answer(cmd)

    def exchange(self, apdu):
        return self.card.apdu(apdu)

    def release(self):
        self.releases += 1


def _reader(script):
    dev = Device(script)
    return nfcreader.NfcCardReader(dev, Keys(), Rules()), dev


def _next(reader):
    return asyncio.run(reader.wait_card())


def test_a_card_lying_on_the_reader_counts_once():
    tag = NtagCard.loyalty("6001000000000042", 1, ISSUER, UID1)
    reader, dev = _reader([None, tag, tag, tag, None, tag])
    eq(_next(reader)["card"], "6001000000000042", "first tap")
    eq(_next(reader)["kind"], "ntag", "the tap after the field was empty")
    eq(dev.polls, 6, "the card lying there was polled and skipped")
    eq(dev.releases, 4, "every card found is released")
    eq(dev.inits, 1, "initialised once")


def test_another_card_is_read_at_once():
    a = NtagCard.loyalty("6001000000000042", 1, ISSUER, UID1)
    b = NtagCard.loyalty("6001000000000017", 1, ISSUER, UID2)
    reader, _ = _reader([a, b])
    eq((_next(reader)["card"], _next(reader)["card"]), ("6001000000000042", "6001000000000017"), "two cards")


def test_a_forged_card_is_reported_once_per_tap():
    good = NtagCard.loyalty("6001000000000042", 1, ISSUER, UID1)
    copy = NtagCard(UID2, memory=good.user_memory())
    phone = PhoneCard("6001000000000017", 1, ISSUER)
    reader, _ = _reader([copy, copy, copy, None, phone])
    eq(raises(ProtocolError, _next, reader).code, "card.forged", "the copy")
    ident = _next(reader)  # the copy lying there is not reported again
    eq((ident["card"], ident["kind"]), ("6001000000000017", "applet"), "then the phone")


def test_two_cards_are_reported_once_while_they_stay():
    tag = NtagCard.loyalty("6001000000000042", 1, ISSUER, UID1)
    two = ProtocolError("card.two", "InListPassiveTarget", "2 cards")
    reader, _ = _reader([two, two, two, tag])
    eq(raises(ProtocolError, _next, reader).code, "card.two", "two cards")
    eq(_next(reader)["card"], "6001000000000042", "one card again")


def test_a_silent_controller_is_reported_once_and_brought_back():
    tag = NtagCard.loyalty("6001000000000042", 1, ISSUER, UID1)
    down = ProtocolError("nfc.timeout", "InListPassiveTarget", "no answer")
    reader, dev = _reader([down, down, down, down, tag])
    eq(raises(ProtocolError, _next, reader).code, "nfc.timeout", "reported")
    eq(_next(reader)["card"], "6001000000000042", "back, and the card is read")
    eq(dev.inits, 5, "initialised again after each failure")
    eq(reader.last_error, "nfc.timeout", "kept for the status")


def test_a_card_pulled_away_can_be_tapped_again():
    tag = NtagCard.loyalty("6001000000000042", 1, ISSUER, UID1)

    class Pulled(NtagCard):
        def answer(self, cmd):
            return None if cmd[0] == 0x3A else NtagCard.answer(self, cmd)  # gone after GET_VERSION

    pulled = Pulled(UID1, memory=tag.user_memory())
    reader, _ = _reader([pulled, tag])
    eq(raises(ProtocolError, _next, reader).code, "card.removed", "pulled away mid-read")
    eq(_next(reader)["card"], "6001000000000042", "the same card, tapped again, reads")
