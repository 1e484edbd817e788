"""ATR, PPS and timing of drivers/iso7816atr.py, against ISO/IEC 7816-3 by hand.

The ATRs are real cards' from pcsc-tools' list (a JCOP 4.1 and a YubiKey NEO) and small ones
written from clause 8; the expected fields are read off the bytes by hand, not produced by
the parser. The inverse-convention bytes are worked out bit by bit in the comments.
"""
from check import eq, raises
from protocol.errors import ProtocolError

from drivers import iso7816atr

JCOP = bytes.fromhex("3BF81300008131FE454A434F5076323431B7")
NEO = bytes.fromhex("3BDA18FF81B1FE751F030031C573C001400090000C")


def test_t1_atr_with_every_group_read_by_hand():
    # T0 F8: TA1 TB1 TC1 TD1, 8 historical; TD1 81: TD2, T=1; TD2 31: TA3 TB3, T=1
    a = iso7816atr.parse_atr(JCOP)
    eq(a.convention, "direct")
    eq(a.ta, [0x13, None, 0xFE])
    eq(a.tb, [0x00, None, 0x45])
    eq(a.tc, [0x00, None, None])
    eq(a.td, [0x81, 0x31, None])
    eq(a.protocols, [1])
    eq(a.historical, b"JCOPv241")
    eq((a.tck, a.tck_ok, a.problems, a.usable), (0xB7, True, [], True))
    eq(a.fi_di(), (372, 4))
    eq(a.t1(), (254, 4, 5, False))  # IFSC FE, BWI 4, CWI 5, LRC
    eq(a.specific(), None)


def test_t15_global_bytes_are_not_a_protocol():
    # TD1 81 (T=1), TD2 B1 (TA3 TB3 TD3, T=1), TD3 1F (TA4, T=15: global), 10 historical
    a = iso7816atr.parse_atr(NEO)
    eq(a.protocols, [1])
    eq(a.td, [0x81, 0xB1, 0x1F, None])
    eq(a.ta[3], 0x03)
    eq(a.historical, bytes.fromhex("0031C573C00140009000"))
    eq(a.tck_ok, True)


def test_t0_only_has_no_tck():
    a = iso7816atr.parse_atr(b"\x3b\x02\x14\x50")  # Schlumberger Multiflex 3k
    eq((a.protocols, a.historical, a.tck, a.tck_ok, a.problems), ([0], b"\x14\x50", None, None, []))
    eq(a.wi(), 10)


def test_tc2_gives_t0_its_waiting_time():
    # T0 80: TD1 only; TD1 40: TC2, T=0; TC2 = 20
    a = iso7816atr.parse_atr(b"\x3b\x80\x40\x14")
    eq((a.protocols, a.wi(), a.tck), ([0], 20, None))


def test_inverse_convention_as_the_uart_reads_it():
    # 3F read by a direct UART is 03 (7816-3 8.1). 02: bits reversed 40, complemented BF;
    # 14 = 00010100 -> 00101000 = 28 -> D7; 50 = 01010000 -> 00001010 = 0A -> F5
    a = iso7816atr.parse_atr(b"\x03\xbf\xd7\xf5")
    eq((a.convention, a.historical, a.raw), ("inverse", b"\x14\x50", b"\x3f\x02\x14\x50"))
    eq(iso7816atr.inverse(b"\x3f\x02\x14\x50"), b"\x03\xbf\xd7\xf5")


def test_inverse_convention_as_pc_sc_reports_it():
    a = iso7816atr.parse_atr(b"\x3f\x02\x14\x50")
    eq((a.convention, a.usable, a.historical), ("inverse", True, b"\x14\x50"))


def test_wrong_tck_and_extra_bytes_are_tolerated_and_reported():
    a = iso7816atr.parse_atr(JCOP[:-1] + b"\xb6")
    eq((a.tck_ok, a.usable, a.problems), (False, True, ["TCK wrong"]))
    a = iso7816atr.parse_atr(b"\x3b\x02\x14\x50\x44")  # T=0 with a stray check byte
    eq((a.extra, a.usable, a.problems), (b"\x44", True, ["1 extra bytes after the ATR"]))
    a = iso7816atr.parse_atr(JCOP[:-1])
    eq((a.tck, a.usable, a.problems), (None, True, ["TCK missing"]))


def test_broken_atrs_say_why_and_never_raise():
    for raw, why in ((b"", "ATR shorter than TS and T0"), (b"\x3b", "ATR shorter than TS and T0"),
                     (b"\x3a\x00", "TS 3A is neither 3B nor 3F"),
                     (b"\x3b\xf8\x13", "ATR ends inside the interface bytes"),
                     (b"\x3b\x05\x01", "ATR ends inside the historical bytes (1 of 5)")):
        a = iso7816atr.parse_atr(raw)
        eq((a.usable, a.problems), (False, [why]), raw)


def test_atr_length_knows_when_the_atr_is_whole():
    for n in range(len(JCOP)):
        eq(iso7816atr.atr_length(JCOP[:n]), 0, n)
    eq(iso7816atr.atr_length(JCOP), len(JCOP))
    eq(iso7816atr.atr_length(b"\x3b\x02\x14\x50\x99"), 4)  # T=0 only: no TCK to wait for


def test_pps_request_and_answers():
    # PPSS FF, PPS0 11 (PPS1 follows, T=1), PPS1 13, PCK = FF ^ 11 ^ 13 = FD
    req = iso7816atr.pps_request(1, 0x13)
    eq(req, b"\xff\x11\x13\xfd")
    eq(iso7816atr.pps_request(0), b"\xff\x00\xff")
    eq(iso7816atr.pps_agreed(req, req), 0x13)
    eq(iso7816atr.pps_agreed(req, b"\xff\x01\xfe"), 0x11)  # PPS1 left out: the defaults
    for bad in (b"\xff\x11\x13\xfc", b"\xff\x10\x13\xfc", b"\xff\x11\x12\xfc", b"\xfe", b""):
        e = raises(ProtocolError, iso7816atr.pps_agreed, req, bad)
        eq(e.code, "card.protocol", bad)
    # PPS0 31: PPS1 and PPS2 (PPS2 = 00), a PPS2 the request never had; PCK FF^31^13^00 = DD
    e = raises(ProtocolError, iso7816atr.pps_agreed, req, b"\xff\x31\x13\x00\xdd")
    eq((e.code, "PPS2" in e.detail), ("card.protocol", True), "PPS2 not asked for")
    eq(iso7816atr.pps_answer_length(b"\xff\x11\x13"), 0)
    eq(iso7816atr.pps_answer_length(b"\xff\x11\x13\xfd"), 4)


def test_waiting_times_from_the_standard():
    a = iso7816atr.parse_atr(JCOP)
    # WT = 10 x 960 x 372 / 4 MHz = 892.8 ms
    eq(iso7816atr.wt_ms(iso7816atr.parse_atr(b"\x3b\x00"), 4000000), 893)
    eq(iso7816atr.etu_us(372, 1, 4000000), 93)
    # BWT = 11 etu + 2^4 x 960 x 372 / 4 MHz = 1.023 ms + 1428.48 ms; CWT = (11 + 2^5) x 93 us
    eq(iso7816atr.t1_times(a, 4000000, (372, 1)), (1430, 4))
