"""T=1 block by block (drivers/iso7816t1.py, ISO/IEC 7816-3 clause 11): I-blocks with N(S) and
chaining both ways, R-blocks with and without errors, S(IFS), S(WTX), S(ABORT), S(RESYNCH),
LRC and CRC, timeouts, retries and resynchronisation, over the scripted line of
cardline (virtual clock).

Blocks are written as NAD PCB LEN INF by hand from the standard's PCB coding (I: 0 N(S) M;
R: 10 0 N(R) error; S: 11 response type); the check byte is the standard's definition
written here (LRC: XOR; CRC: the same CRC as the driver's, in another formulation).
The card's ATR: TD1 81, TD2 31 (or 71), TA3 IFSC, TB3 00 (BWI 0, CWI 0), TC3 01 for CRC:
at 4 MHz BWT = 11 etu + 960 x 372 / f = 91 ms, CWT = 12 etu = 2 ms.
"""
from cardline import Script, hx
from check import eq, raises
from protocol.errors import ProtocolError

from drivers.iso7816atr import parse_atr
from drivers.iso7816line import Line
from drivers.iso7816t1 import T1, crc16, lrc

BWT = 91


def atr(ifsc=32, crc=False):
    body = bytearray([0x3B, 0x80, 0x81, 0x71 if crc else 0x31, ifsc, 0x00])
    if crc:
        body.append(0x01)
    x = 0
    for b in body[1:]:
        x ^= b
    return parse_atr(bytes(body) + bytes([x]))


def crc_ref(data):
    # CRC-16/MCRF4XX byte-wise (the CRC_B update without its final complement)
    crc = 0xFFFF
    for ch in data:
        ch ^= crc & 0xFF
        ch = (ch ^ (ch << 4)) & 0xFF
        crc = (crc >> 8) ^ (ch << 8) ^ (ch << 3) ^ (ch >> 4)
    return bytes([crc >> 8, crc & 0xFF])


def b(text, crc=False):
    data = hx(text)
    if crc:
        return data + crc_ref(data)
    x = 0
    for c in data:
        x ^= c
    return data + bytes([x])


def t1(steps, ifsc=32, crc=False):
    s = Script(steps)
    line = Line(s, clock=s.clock())
    p = T1(line, atr(ifsc, crc), 4000000, (372, 1))
    eq(p.bwt_ms, BWT)
    return s, p


def test_reference_crc_matches_the_catalogue():
    eq(crc_ref(b"123456789"), b"\x6f\x91")


def test_check_codes():
    eq(crc16(b"123456789", 9), 0x6F91)  # CRC-16/MCRF4XX check value
    eq(lrc(b"\x00\xc1\x01\xfe", 4), 0x3E)


def test_ifsd_announced_with_an_s_block():
    s, p = t1([("r", b("00 C1 01 FE")), ("c", b("00 E1 01 FE"))])
    eq(p.negotiate_ifsd(), 254)
    s.done()


def test_ifsd_stays_32_when_the_card_does_not_answer():
    steps = []
    for _ in range(3):
        steps += [("r", b("00 C1 01 FE")), ("t", BWT + 5)]
    s, p = t1(steps)
    eq(p.negotiate_ifsd(), 32)
    s.done()


def test_i_blocks_alternate_their_send_sequence_number():
    s, p = t1([("r", b("00 00 05 00 B0 00 00 02")), ("c", b("00 00 04 AA BB 90 00")),
               ("r", b("00 40 04 00 70 00 00")), ("c", b("00 40 02 90 00"))])
    eq(p.transmit(hx("00 B0 00 00 02")), hx("AA BB 90 00"))
    eq(p.transmit(hx("00 70 00 00")), hx("90 00"))
    s.done()


def test_crc_instead_of_lrc():
    s, p = t1([("r", b("00 00 04 00 70 00 00", True)), ("c", b("00 00 02 90 00", True))], crc=True)
    eq(p.transmit(hx("00 70 00 00")), hx("90 00"))
    s.done()


def test_reader_chains_in_blocks_of_ifsc():
    # IFSC 4: I(0, M) with 4 bytes, the card's R(1) asks for the next, I(1) with the rest
    s, p = t1([("r", b("00 20 04 00 A4 04 00")), ("c", b("00 90 00")),
               ("r", b("00 40 02 01 3F")), ("c", b("00 00 02 90 00"))], ifsc=4)
    eq(p.transmit(hx("00 A4 04 00 01 3F")), hx("90 00"))
    s.done()


def test_card_chains_and_the_reader_asks_for_each_part():
    s, p = t1([("r", b("00 00 04 00 70 00 00")), ("c", b("00 20 02 AA BB")),
               ("r", b("00 90 00")), ("c", b("00 40 02 90 00"))])
    eq(p.transmit(hx("00 70 00 00")), hx("AA BB 90 00"))
    s.done()


def test_bad_check_byte_gets_an_r_block_with_the_edc_error():
    s, p = t1([("r", b("00 00 04 00 70 00 00")), ("c", hx("00 00 02 90 00 00")),
               ("r", b("00 81 00")), ("c", b("00 00 02 90 00"))])
    eq(p.transmit(hx("00 70 00 00")), hx("90 00"))
    s.done()


def test_card_asks_for_the_block_again():
    s, p = t1([("r", b("00 00 04 00 70 00 00")), ("c", b("00 81 00")),
               ("r", b("00 00 04 00 70 00 00")), ("c", b("00 00 02 90 00"))])
    eq(p.transmit(hx("00 70 00 00")), hx("90 00"))
    s.done()


def test_block_waiting_time_exceeded_gets_an_r_block():
    s, p = t1([("r", b("00 00 04 00 70 00 00")), ("t", BWT + 5),
               ("r", b("00 82 00")), ("c", b("00 00 02 90 00"))])
    eq(p.transmit(hx("00 70 00 00")), hx("90 00"))
    s.done()


def test_after_our_r_block_the_card_gets_our_i_block_again_not_the_r_block():
    # I(0) lost on the way: the BWT runs out, we send R(0) with an error; the card, which
    # never saw I(0), answers R(0): it wants I(0), which must be rebuilt (rule 7.2 resends
    # only R-blocks), not our R-block again
    s, p = t1([("r", b("00 00 04 00 70 00 00")), ("t", BWT + 5),
               ("r", b("00 82 00")), ("c", b("00 80 00")),
               ("r", b("00 00 04 00 70 00 00")), ("c", b("00 00 02 90 00"))])
    eq(p.transmit(hx("00 70 00 00")), hx("90 00"))
    s.done()


def test_wrong_sequence_number_from_the_card_gets_an_r_block():
    s, p = t1([("r", b("00 00 04 00 70 00 00")), ("c", b("00 40 02 90 00")),
               ("r", b("00 82 00")), ("c", b("00 00 02 90 00"))])
    eq(p.transmit(hx("00 70 00 00")), hx("90 00"))
    s.done()


def test_waiting_time_extension_is_answered_and_waited_for():
    # S(WTX request, 2), the reader's S(WTX response, 2), then 150 ms: over BWT, within 2 x BWT
    s, p = t1([("r", b("00 00 04 00 70 00 00")), ("c", b("00 C3 01 02")),
               ("r", b("00 E3 01 02")), ("t", 150), ("c", b("00 00 02 90 00"))])
    eq(p.transmit(hx("00 70 00 00")), hx("90 00"))
    eq(p.wtx, 1)
    s.done()


def test_card_changes_its_ifsc():
    s, p = t1([("r", b("00 00 04 00 70 00 00")), ("c", b("00 C1 01 02")), ("r", b("00 E1 01 02")),
               ("c", b("00 00 02 90 00")),
               ("r", b("00 60 02 00 D6")), ("c", b("00 80 00")),
               ("r", b("00 20 02 00 00")), ("c", b("00 90 00")),
               ("r", b("00 40 01 00")), ("c", b("00 40 02 90 00"))])
    eq(p.transmit(hx("00 70 00 00")), hx("90 00"))
    eq(p.ifsc, 2)
    eq(p.transmit(hx("00 D6 00 00 00")), hx("90 00"))
    s.done()


def test_card_aborts_a_chain():
    s, p = t1([("r", b("00 20 04 00 A4 04 00")), ("c", b("00 C2 00")), ("r", b("00 E2 00"))], ifsc=4)
    e = raises(ProtocolError, p.transmit, hx("00 A4 04 00 01 3F"))
    eq((e.code, e.detail), ("card.protocol", "the card aborted the chain"))
    s.done()


def test_three_errors_resynchronise_and_the_apdu_is_sent_again():
    # error 1: R(0, EDC); error 2: the same R-block again (rule 7.2); error 3: S(RESYNCH)
    s, p = t1([("r", b("00 40 04 00 70 00 00")), ("c", hx("00 00 02 90 00 00")),
               ("r", b("00 81 00")), ("c", hx("00 00 02 90 00 00")),
               ("r", b("00 81 00")), ("c", hx("00 00 02 90 00 00")),
               ("r", b("00 C0 00")), ("c", b("00 E0 00")),
               ("r", b("00 00 04 00 70 00 00")), ("c", b("00 00 02 90 00"))])
    p.ns = 1  # mid-session: resynchronisation puts it back to 0
    eq(p.transmit(hx("00 70 00 00")), hx("90 00"))
    eq((p.resyncs, p.ns, p.nr), (1, 1, 1))
    s.done()


def test_failed_resynchronisation_is_card_protocol():
    steps = [("r", b("00 00 04 00 70 00 00")), ("c", hx("00 00 02 90 00 00")),
             ("r", b("00 81 00")), ("c", hx("00 00 02 90 00 00")),
             ("r", b("00 81 00")), ("c", hx("00 00 02 90 00 00"))]
    for _ in range(3):
        steps += [("r", b("00 C0 00")), ("t", BWT + 5)]
    s, p = t1(steps)
    e = raises(ProtocolError, p.transmit, hx("00 70 00 00"))
    eq((e.code, e.detail), ("card.protocol", "T=1 resynchronisation failed"))
    s.done()


def test_a_silent_card_is_card_mute_after_three_tries():
    s, p = t1([("r", b("00 00 04 00 70 00 00")), ("t", BWT + 5), ("r", b("00 82 00")), ("t", BWT + 5),
               ("r", b("00 82 00")), ("t", BWT + 5)])
    eq(raises(ProtocolError, p.transmit, hx("00 70 00 00")).code, "card.mute")
    s.done()


def test_a_resynch_request_from_the_card_is_answered_by_resynchronising():
    s, p = t1([("r", b("00 00 04 00 70 00 00")), ("c", b("00 C0 00")),
               ("r", b("00 C0 00")), ("c", b("00 E0 00")),
               ("r", b("00 00 04 00 70 00 00")), ("c", b("00 00 02 90 00"))])
    eq(p.transmit(hx("00 70 00 00")), hx("90 00"))
    s.done()


def test_a_block_cut_short_is_an_error_not_a_hang():
    # LEN says 4, two bytes come: the character waiting time runs out
    s, p = t1([("r", b("00 00 04 00 70 00 00")), ("c", hx("00 00 04 90 00")), ("t", 20),
               ("r", b("00 82 00")), ("c", b("00 00 02 90 00"))])
    eq(p.transmit(hx("00 70 00 00")), hx("90 00"))
    s.done()


def test_a_card_pulled_out_ends_the_wait_at_once():
    s, p = t1([("r", b("00 00 04 00 70 00 00")), ("t", BWT + 5)])
    looks = []

    def gone():  # the slot's presence pin: the card leaves while the reader waits
        looks.append(1)
        return len(looks) > 3

    p.line.gone = gone
    eq(raises(ProtocolError, p.transmit, hx("00 70 00 00")).code, "card.removed")
    assert len(looks) < BWT, "no waiting out the block waiting time"


def test_an_apdu_over_its_time_budget_is_card_mute():
    # a card that asks for more time for ever (S(WTX) again and again) meets the budget
    steps = [("r", b("00 00 04 00 70 00 00"))]
    for _ in range(30):
        steps += [("c", b("00 C3 01 01")), ("r", b("00 E3 01 01")), ("t", BWT - 5)]
    s, p = t1(steps)
    p.line.budget(500)
    eq(raises(ProtocolError, p.transmit, hx("00 70 00 00")).code, "card.mute")
