"""T=0 byte by byte (drivers/iso7816.py): every procedure byte of ISO/IEC 7816-3 10.3.3 and
the APDU mapping of 12.2, over a scripted half-duplex line on a virtual clock.

`Script` is the card's side of the wire: ("r", bytes) the reader must send (and hears back:
the echo), ("c", bytes) the card sends, ("t", ms) the card stays silent that long (or until the reader,
tired of waiting, speaks, when an "r" follows), ("w", None) the card waits for RST to rise
(`release()`, for the slot tests). Time is
virtual: the driver's sleep_ms moves it, so timeouts are exact and cost nothing. The
expected bytes are written from the standard; the T=1 and slot tests use Script too.
"""
from check import eq, raises
from protocol.errors import ProtocolError

from drivers import iso7816


class Script:
    def __init__(self, steps, echo=True, echo_as=None):
        self.steps = list(steps)
        self.echo = echo
        self.echo_as = echo_as  # a wrong echo: what the line gives back instead
        self.rx = bytearray()
        self.sent = bytearray()
        self.now = 0
        self.until = 0  # a silence ("t") ends at this virtual time
        self._advance()

    # the clock ------------------------------------------------------------------------------
    def clock(self):
        return (lambda: self.now, lambda a, b: a - b, self.sleep_ms)

    def sleep_ms(self, ms):
        self.now += ms
        self._advance()

    def _advance(self):
        while self.steps:
            kind, value = self.steps[0]
            if kind == "c":
                self.rx += value
            elif kind == "w":
                return  # until release(): the card waits for its reset
            elif kind == "t":
                if self.until == 0:
                    self.until = self.now + value
                if self.now < self.until:
                    return
                self.until = 0
            else:
                return
            self.steps.pop(0)

    def release(self):
        """RST went high: a card waiting for its reset ("w") goes on."""
        if self.steps and self.steps[0][0] == "w":
            self.steps.pop(0)
        self._advance()

    # the UART -------------------------------------------------------------------------------
    def write(self, data):
        data = bytes(data)
        if self.steps and self.steps[0][0] == "t" and len(self.steps) > 1 and self.steps[1][0] == "r":
            self.steps.pop(0)  # the reader gave up waiting and speaks: the silence is over
            self.until = 0
        for b in data:
            if not self.steps or self.steps[0][0] != "r":
                raise AssertionError("reader sent %02X, script has %r" % (b, self.steps[:1]))
            want = self.steps[0][1]
            if want[0] != b:
                raise AssertionError("reader sent %02X, expected %02X (%r)" % (b, want[0], want))
            self.sent.append(b)
            if len(want) == 1:
                self.steps.pop(0)
            else:
                self.steps[0] = ("r", want[1:])
        if self.echo:
            self.rx += self.echo_as if self.echo_as is not None else data
        self._advance()

    def any(self):
        return len(self.rx)

    def readinto(self, buf):
        if not self.rx:
            return None
        buf[0] = self.rx[0]
        self.rx = self.rx[1:]  # MicroPython's bytearray has no slice deletion
        return 1

    def done(self):
        while self.steps and self.steps[-1][0] == "t":
            self.steps.pop()  # a card that stays silent at the end
        eq(self.steps, [], "script left")
        eq(bytes(self.rx), b"", "bytes left unread")


def t0(steps, wt=100, **kw):
    s = Script(steps, **kw)
    line = iso7816.Line(s, clock=s.clock())
    return s, iso7816.T0(line, wt)


def hx(text):
    return bytes.fromhex(text.replace(" ", ""))


def test_case_1_header_only():
    s, p = t0([("r", hx("00 70 00 00 00")), ("c", hx("90 00"))])
    eq(p.transmit(hx("00 70 00 00")), hx("90 00"))
    s.done()


def test_case_2_ack_sends_all_bytes():
    s, p = t0([("r", hx("00 B0 00 00 04")), ("c", hx("B0 01 02 03 04 90 00"))])
    eq(p.transmit(hx("00 B0 00 00 04")), hx("01 02 03 04 90 00"))
    s.done()


def test_case_2_complemented_ins_one_byte_at_a_time():
    # ~B0 = 4F: one byte each
    s, p = t0([("r", hx("00 B0 00 00 02")), ("c", hx("4F 01 4F 02 90 00"))])
    eq(p.transmit(hx("00 B0 00 00 02")), hx("01 02 90 00"))
    s.done()


def test_case_3_ack_then_all_data():
    s, p = t0([("r", hx("00 D6 00 00 02")), ("c", hx("D6")), ("r", hx("AA BB")), ("c", hx("90 00"))])
    eq(p.transmit(hx("00 D6 00 00 02 AA BB")), hx("90 00"))
    s.done()


def test_case_3_complemented_ins_then_ack_for_the_rest():
    # ~D6 = 29: one byte, then D6: all remaining
    s, p = t0([("r", hx("00 D6 00 00 03")), ("c", hx("29")), ("r", hx("AA")), ("c", hx("D6")),
               ("r", hx("BB CC")), ("c", hx("90 00"))])
    eq(p.transmit(hx("00 D6 00 00 03 AA BB CC")), hx("90 00"))
    s.done()


def test_case_4_without_le_then_get_response_after_61xx():
    # Le is not sent in T=0; 61 03 says three bytes wait: GET RESPONSE 00 C0 00 00 03
    s, p = t0([("r", hx("00 A4 04 00 02")), ("c", hx("A4")), ("r", hx("3F 00")), ("c", hx("61 03")),
               ("r", hx("00 C0 00 00 03")), ("c", hx("C0 01 02 03 90 00"))])
    eq(p.transmit(hx("00 A4 04 00 02 3F 00 00")), hx("01 02 03 90 00"))
    s.done()


def test_61xx_more_than_once_collects_everything():
    s, p = t0([("r", hx("80 10 00 00 01")), ("c", hx("10")), ("r", hx("55")), ("c", hx("61 02")),
               ("r", hx("00 C0 00 00 02")), ("c", hx("C0 01 02 61 01")),
               ("r", hx("00 C0 00 00 01")), ("c", hx("C0 03 90 00"))])
    eq(p.transmit(hx("80 10 00 00 01 55 00")), hx("01 02 03 90 00"))
    s.done()


def test_6cxx_sends_the_command_again_with_the_right_le():
    s, p = t0([("r", hx("00 B0 00 00 00")), ("c", hx("6C 02")), ("r", hx("00 B0 00 00 02")),
               ("c", hx("B0 AA BB 90 00"))])
    eq(p.transmit(hx("00 B0 00 00 00")), hx("AA BB 90 00"))
    s.done()


def test_status_word_without_data():
    s, p = t0([("r", hx("00 A4 04 00 02")), ("c", hx("A4")), ("r", hx("3F 01")), ("c", hx("6A 82"))])
    eq(p.transmit(hx("00 A4 04 00 02 3F 01 00")), hx("6A 82"))
    s.done()


def test_null_bytes_restart_the_waiting_time():
    # WT 100 ms: three NULLs 80 ms apart, 320 ms in all, each gap within WT
    s, p = t0([("r", hx("00 70 00 00 00")), ("t", 80), ("c", hx("60")), ("t", 80), ("c", hx("60")),
               ("t", 80), ("c", hx("60")), ("t", 80), ("c", hx("90 00"))])
    eq(p.transmit(hx("00 70 00 00")), hx("90 00"))
    eq(p.nulls, 3)
    s.done()


def test_silence_longer_than_the_waiting_time_is_card_mute():
    s, p = t0([("r", hx("00 70 00 00 00")), ("c", hx("60")), ("t", 150), ("c", hx("90 00"))])
    e = raises(ProtocolError, p.transmit, hx("00 70 00 00"))
    eq(e.code, "card.mute")
    eq(s.now >= 100, True, "gave up only after WT")


def test_silence_within_a_data_transfer_is_card_mute():
    s, p = t0([("r", hx("00 B0 00 00 02")), ("c", hx("B0 01")), ("t", 500)])
    eq(raises(ProtocolError, p.transmit, hx("00 B0 00 00 02")).code, "card.mute")


def test_a_procedure_byte_that_is_none_is_card_protocol():
    s, p = t0([("r", hx("00 70 00 00 00")), ("c", hx("42"))])
    e = raises(ProtocolError, p.transmit, hx("00 70 00 00"))
    eq((e.code, e.detail), ("card.protocol", "procedure byte 42"))


def test_ack_with_nothing_left_is_card_protocol():
    s, p = t0([("r", hx("00 D6 00 00 01")), ("c", hx("D6")), ("r", hx("AA")), ("c", hx("D6"))])
    eq(raises(ProtocolError, p.transmit, hx("00 D6 00 00 01 AA")).code, "card.protocol")


def test_the_echo_must_come_back_unchanged():
    s, p = t0([("r", hx("00 70 00 00 00"))], echo_as=hx("00 70 00 00 01"))
    e = raises(ProtocolError, p.transmit, hx("00 70 00 00"))
    eq(e.code, "slot.fault")
    s, p = t0([("r", hx("00 70 00 00 00"))], echo=False)
    eq(raises(ProtocolError, p.transmit, hx("00 70 00 00")).code, "slot.fault")


def test_no_echo_expected_on_a_full_duplex_board():
    s = Script([("r", hx("00 70 00 00 00")), ("c", hx("90 00"))], echo=False)
    p = iso7816.T0(iso7816.Line(s, echo=False, clock=s.clock()), 100)
    eq(p.transmit(hx("00 70 00 00")), hx("90 00"))


def test_inverse_convention_on_the_wire():
    # 00 -> FF; 70 = 01110000 -> reversed 00001110 = 0E -> complemented F1;
    # 90 = 10010000 -> 00001001 = 09 -> F6
    s = Script([("r", hx("FF F1 FF FF FF")), ("c", hx("F6 FF"))])
    line = iso7816.Line(s, clock=s.clock())
    line.inverse = True
    eq(iso7816.T0(line, 100).transmit(hx("00 70 00 00")), hx("90 00"))
    s.done()


def test_apdus_that_are_not_short_are_refused():
    s, p = t0([])
    for bad in (hx("00 70 00"), hx("00 D6 00 00 03 AA"), hx("00 D6 00 00 00 01 02")):
        raises(ValueError, p.transmit, bad)
