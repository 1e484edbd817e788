"""T=0 byte by byte (drivers/iso7816t0.py): every procedure byte of ISO/IEC 7816-3 10.3.3 and
the APDU mapping of 12.2, over a scripted half-duplex line on a virtual clock
(cardline.Script). The expected bytes are written from the standard.
"""
from cardline import Script, hx
from check import eq, raises
from protocol.errors import ProtocolError

from drivers.iso7816line import Line
from drivers.iso7816t0 import T0


def t0(steps, wt=100, **kw):
    s = Script(steps, **kw)
    line = Line(s, clock=s.clock())
    return s, T0(line, wt)



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
    p = T0(Line(s, echo=False, clock=s.clock()), 100)
    eq(p.transmit(hx("00 70 00 00")), hx("90 00"))


def test_inverse_convention_on_the_wire():
    # 00 -> FF; 70 = 01110000 -> reversed 00001110 = 0E -> complemented F1;
    # 90 = 10010000 -> 00001001 = 09 -> F6
    s = Script([("r", hx("FF F1 FF FF FF")), ("c", hx("F6 FF"))])
    line = Line(s, clock=s.clock())
    line.inverse = True
    eq(T0(line, 100).transmit(hx("00 70 00 00")), hx("90 00"))
    s.done()


def test_apdus_that_are_not_short_are_refused():
    s, p = t0([])
    for bad in (hx("00 70 00"), hx("00 D6 00 00 03 AA"), hx("00 D6 00 00 00 01 02")):
        raises(ValueError, p.transmit, bad)
