# heapsize: 128k
"""The contact slot (drivers/contactslot.py) over a scripted line and recorded pins, and the
card task's contact reader (contactreader.py) over a scripted slot: activation in the
standard's order, the ATR read until whole, PPS and its fallback, a card counted once, a
card pulled out mid-command reported as card.removed with the slot ready again, slot
trouble reported once and retried. (128 KB: the loyalty applet model and HMAC run here too.)
"""
import asyncio

from check import eq, raises
from protocol.errors import ProtocolError
from cardline import Script, hx

import contactreader
from cardmodels import AppletCard
from drivers.contactslot import ContactSlot

ISSUER = bytes(range(32))
contactreader.POLL_PAUSE = 0.001
contactreader.RETRY_PAUSE = 0.001


class Pin:
    def __init__(self, log, name, level=0, on_high=None):
        self.log, self.name, self.level, self.on_high = log, name, level, on_high

    def value(self, level=None):
        if level is None:
            return self.level
        self.level = level
        self.log.append((self.name, level))
        if level and self.on_high is not None:
            self.on_high()


class Clock:
    def __init__(self, log):
        self.log = log

    def duty_u16(self, duty):
        self.log.append(("clk", 1 if duty else 0))


def slot_on(steps):
    s = Script([("w", None)] + steps)  # the card answers once RST rises
    log = []
    slot = ContactSlot(s, present=Pin(log, "pres", 1), cmdvcc=Pin(log, "vcc", 1), rst=Pin(log, "rst", 0, s.release),
                       clock=Clock(log), off=Pin(log, "off", 1), timer=s.clock())
    return s, slot, log


def test_activation_in_the_standards_order_and_the_atr():
    s, slot, log = slot_on([("c", hx("3B 02 14 50"))])
    atr = slot.activate()
    eq(atr.historical, hx("14 50"))
    # deactivated first, then RST low, clock, VCC (CMDVCCN low), and only then RST high
    eq(log[-4:], [("rst", 0), ("clk", 1), ("vcc", 0), ("rst", 1)])
    eq(slot.powered, True)
    slot.deactivate()
    eq(log[-3:], [("rst", 0), ("vcc", 1), ("clk", 0)])
    s.done()


def test_no_atr_is_card_mute_and_a_bad_ts_is_card_atr():
    s, slot, _ = slot_on([("t", 50)])
    eq(raises(ProtocolError, slot.activate).code, "card.mute")
    s, slot, _ = slot_on([("c", hx("3A 00"))])
    eq(raises(ProtocolError, slot.activate).code, "card.atr")


def test_inverse_card_switches_the_line():
    # 3F 02 14 50 in inverse convention as the UART reads it: 03 BF D7 F5 (see the ATR tests)
    s, slot, _ = slot_on([("c", hx("03 BF D7 F5"))])
    atr = slot.activate()
    eq((atr.convention, slot.line.inverse), ("inverse", True))


def test_t1_card_gets_its_pps_and_ifsd():
    # TA1 13 offered (negotiable mode): PPS FF 11 13 FD echoed; then S(IFS request, FE)
    atr = hx("3B 90 13 81 31 20 00")
    atr += bytes([0x90 ^ 0x13 ^ 0x81 ^ 0x31 ^ 0x20 ^ 0x00])
    s, slot, _ = slot_on([("c", atr), ("r", hx("FF 11 13 FD")), ("c", hx("FF 11 13 FD")),
                          ("r", hx("00 C1 01 FE 3E")), ("c", hx("00 E1 01 FE 1E"))])
    session = slot.start()
    eq((slot.protocol, slot.fi_di, session.ifsd, slot.pps_fallback), (1, (372, 4), 254, False))
    eq(s.baudrate, 4000000 * 4 // 372)  # the UART runs at the rate agreed: f x D / F
    s.done()


def test_a_card_that_ignores_the_pps_is_reset_and_used_at_the_defaults():
    atr = hx("3B 90 13 81 31 20 00")
    atr += bytes([0x90 ^ 0x13 ^ 0x81 ^ 0x31 ^ 0x20 ^ 0x00])
    s, slot, log = slot_on([("c", atr), ("r", hx("FF 11 13 FD")), ("w", None), ("c", atr),
                            ("r", hx("00 C1 01 FE 3E")), ("c", hx("00 E1 01 FE 1E"))])
    slot.start()
    eq((slot.protocol, slot.fi_di, slot.pps_fallback), (1, (372, 1), True))
    eq(s.baudrate, 4000000 // 372)
    eq(log.count(("rst", 1)), 2)
    s.done()


# -- the card task's reader over a scripted slot -----------------------------------------------
class Session:
    def __init__(self, slot):
        self.slot = slot

    def transmit(self, apdu):
        slot = self.slot
        if slot.pull_at is not None:
            slot.pull_at -= 1
            if slot.pull_at < 0:
                slot.card = None  # out of the slot: the line goes quiet
                raise ProtocolError("card.mute", "card", "no answer within the work waiting time")
        return slot.card.apdu(apdu)


class Budgets:
    """The line's time budgets as contactreader sets them."""

    def __init__(self):
        self.set = []

    def budget(self, ms):
        self.set.append(ms)


class FakeSlot:
    """The slot as contactreader sees it; `script` says what present() finds at each look."""

    def __init__(self):
        self.line = Budgets()
        self.card = None
        self.powered = False
        self.starts = self.deactivations = 0
        self.pull_at = None
        self.fault = None

    def present(self):
        return self.card is not None

    def start(self):
        self.starts += 1
        if self.fault:
            self.fault -= 1
            raise ProtocolError("slot.fault", "line", "no echo of what the reader sent")
        self.powered = True
        return Session(self)

    def deactivate(self):
        self.deactivations += 1
        self.powered = False


class Keys:
    def get(self, epoch):
        return ISSUER if epoch == 1 else None


def card(n):
    return AppletCard(b"\x01\x02\x03\x04", card="600100000000000%d" % n, epoch=1, issuer_key=ISSUER)


async def _wait(reader, polls=30):
    # wait_card with a bound: the identity, the ProtocolError, or None if it kept waiting
    out = []

    async def read():
        try:
            out.append(await reader.wait_card())
        except ProtocolError as e:
            out.append(e)

    task = asyncio.create_task(read())
    for _ in range(polls):
        await asyncio.sleep(0.002)
        if out:
            return out[0]
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    return None


def run(coro):
    return asyncio.run(coro)


def test_a_card_reads_once_and_is_powered_down():
    async def go():
        slot = FakeSlot()
        reader = contactreader.ContactCardReader(slot, Keys())
        slot.card = card(1)
        ident = await _wait(reader)
        eq(ident, {"card": "6001000000000001", "kind": "contact", "verified": True, "epoch": 1, "counter": 1})
        eq(slot.powered, False)
        eq(await _wait(reader), None, "the card left in the slot counts once")
        slot.card = None
        eq(await _wait(reader, 5), None)
        slot.card = card(2)
        eq((await _wait(reader))["card"], "6001000000000002")
        eq(slot.starts, 2)
    run(go())


def test_a_card_pulled_out_mid_command_is_card_removed_and_the_slot_ready():
    async def go():
        slot = FakeSlot()
        reader = contactreader.ContactCardReader(slot, Keys())
        slot.card = card(1)
        slot.pull_at = 1  # SELECT answered, out during AUTHENTICATE
        e = await _wait(reader)
        eq((e.code, slot.powered), ("card.removed", False))
        slot.pull_at = None
        slot.card = card(3)
        eq((await _wait(reader))["card"], "6001000000000003")
    run(go())


def test_card_problems_once_per_insertion():
    async def go():
        slot = FakeSlot()
        reader = contactreader.ContactCardReader(slot, Keys())
        slot.card = AppletCard(b"\x01\x02\x03\x04")  # not personalised
        eq((await _wait(reader)).code, "card.unreadable")
        eq(await _wait(reader), None, "reported once while it stays")
        slot.card = None
        eq(await _wait(reader, 5), None)
        slot.card = AppletCard(b"\x01\x02\x03\x04", card="6001000000000009", epoch=2, issuer_key=ISSUER)
        eq((await _wait(reader)).code, "card.key")  # another card: a new verdict
    run(go())


def test_slot_trouble_is_reported_once_then_retried():
    async def go():
        slot = FakeSlot()
        reader = contactreader.ContactCardReader(slot, Keys())
        slot.card = card(4)
        slot.fault = 3
        eq((await _wait(reader)).code, "slot.fault")
        eq((await _wait(reader, 60))["card"], "6001000000000004")  # quietly retried until it works
        eq((slot.starts, reader.last_error), (4, "slot.fault"))
    run(go())


def test_a_card_that_keeps_garbling_the_line_is_left_alone_until_reinserted():
    async def go():
        slot = FakeSlot()
        reader = contactreader.ContactCardReader(slot, Keys())
        slot.card = card(4)
        slot.fault = 99
        eq((await _wait(reader)).code, "slot.fault")
        eq(await _wait(reader, 80), None, "quiet after the first report")
        eq(slot.starts, contactreader.FAULTS_PER_CARD, "tried a few times, then left alone")
        slot.card = None
        eq(await _wait(reader, 5), None)
        slot.card, slot.fault = card(4), 0
        eq((await _wait(reader))["card"], "6001000000000004", "taken out and put back: read")
    run(go())


def test_every_step_of_a_read_has_a_time_budget():
    async def go():
        slot = FakeSlot()
        reader = contactreader.ContactCardReader(slot, Keys())
        slot.card = card(5)
        eq((await _wait(reader))["card"], "6001000000000005")
        # activation, SELECT and AUTHENTICATE each bounded, then the bound lifted
        s = contactreader.STEP_MS
        eq(slot.line.set, [s, s, s, 0], "budgets")
        assert 3 * s < 8000, "the three steps stay inside the watchdog's 8 s"
    run(go())


def test_a_card_no_rule_foresaw_is_named_and_powered_down():
    class Odd(FakeSlot):
        def start(self):
            self.powered = True
            return 1 // 0  # e.g. a reserved Fi/Di that slipped through

    async def go():
        slot = Odd()
        reader = contactreader.ContactCardReader(slot, Keys())
        slot.card = card(6)
        e = await _wait(reader)
        eq((e.code, slot.powered), ("card.protocol", False), "named, and the card powered down")
        eq(await _wait(reader), None, "once per insertion")
    run(go())
