"""The PN532 simulator (sim/pn532sim.py) driven over a real socket with hand-built frames.

Expected bytes come from NXP UM0701-02 (frame layout 6.2.1, commands chapter 7); the
short frames are spelled out, longer ones come from `ref_frame` below, a third
implementation of the frame layout checked against the spelled-out ones first.
"""
import socket
import time

import pytest

from loyalty.sim.cardmodels import AppletCard, NtagCard, PhoneCard, UidCard
from loyalty.sim.pn532sim import PN532Sim, crc_a
from loyalty.sim.simboard import wait_for

NTAG_UID = bytes.fromhex("04010203040506")
ACK = bytes.fromhex("0000ff00ff00")
NACK = bytes.fromhex("0000ffff0000")
ERROR = bytes.fromhex("0000ff01ff7f8100")

GET_FIRMWARE = bytes.fromhex("0000ff02fed4022a00")
FIRMWARE_ANSWER = bytes.fromhex("0000ff06fad50332010607e800")
SAM_CONFIGURATION = bytes.fromhex("0000ff05fbd4140100001700")  # normal mode, as nfcpy sends it
SAM_ANSWER = bytes.fromhex("0000ff02fed5151600")
LIST_ONE = bytes.fromhex("0000ff04fcd44a0100e100")  # InListPassiveTarget MaxTg 1, 106 kbps A
LIST_TWO = bytes.fromhex("0000ff04fcd44a0200e000")
LIST_NONE = bytes.fromhex("0000ff03fdd54b00e000")  # NbTg 0

READ_WAIT = 10  # seconds an answer the simulator owes may take (its thread may wait for a CPU)


def ref_frame(data, tfi=0xD5):
    """UM0701-02 6.2.1.1 and 6.2.1.2: 00 00 FF LEN LCS (or FF FF LENM LENL LCS) TFI data DCS 00."""
    body = [tfi] + list(data)
    n = len(body)
    if n < 256:
        head = [0x00, 0x00, 0xFF, n, 256 - n]
    else:
        head = [0x00, 0x00, 0xFF, 0xFF, 0xFF, n // 256, n % 256, (256 - (n // 256 + n % 256)) % 256]
    return bytes(head + body + [(256 - sum(body) % 256) % 256, 0x00])


def cmd(hexdata):
    return ref_frame(bytes.fromhex(hexdata), 0xD4)


def answer(hexdata):
    return ref_frame(bytes.fromhex(hexdata))


class Host:
    """The host controller's end of the UART."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=READ_WAIT)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.chunks = 0

    def send(self, data):
        self.s.sendall(data)

    def read(self, n):
        out = b""
        while len(out) < n:
            got = self.s.recv(n - len(out))
            assert got, "simulator closed the connection"
            self.chunks += 1
            out += got
        return out

    def quiet(self, seconds=0.2):
        """Nothing arrives within `seconds` (the chip stays silent): a window, not a wait (a
        slow machine can only make it see less)."""
        self.s.settimeout(seconds)
        try:
            got = self.s.recv(100)
        except socket.timeout:
            got = b""
        finally:
            self.s.settimeout(READ_WAIT)
        assert got == b"", "unexpected bytes %s" % got.hex()

    def command(self, frame, expect):
        self.send(frame)
        got = self.read(len(ACK) + len(expect))
        assert got == ACK + expect, got.hex()

    def close(self):
        self.s.close()


@pytest.fixture
def sim():
    s = PN532Sim(attempt_time=0.001).start()
    yield s
    s.stop()
    assert s.errors == []


@pytest.fixture
def host(sim):
    h = Host(sim.port)
    yield h
    h.close()


def set_retries(host, n):
    host.command(cmd("3205ff01%02x" % n), bytes.fromhex("0000ff02fed533f800"))


def test_reference_frame_matches_the_manual_examples():
    assert cmd("02") == GET_FIRMWARE
    assert answer("0332010607") == FIRMWARE_ANSWER
    assert cmd("14010000") == SAM_CONFIGURATION
    assert cmd("4a0100") == LIST_ONE
    assert answer("4b00") == LIST_NONE
    # extended frame: 300 bytes of TFI + data -> FF FF 01 2C, LCS = -(01 + 2C)
    assert ref_frame(bytes(299))[:8] == bytes.fromhex("0000ffffff012cd3")


# -- host link -----------------------------------------------------------------------
def test_firmware_version_after_hsu_wakeup_and_long_preamble(host):
    host.command(bytes.fromhex("5555000000000000000000000000") + GET_FIRMWARE, FIRMWARE_ANSWER)


def test_sam_configuration(host):
    host.command(SAM_CONFIGURATION, SAM_ANSWER)


def test_a_command_sent_byte_by_byte(host):
    for i in range(len(GET_FIRMWARE)):
        host.send(GET_FIRMWARE[i:i + 1])
        time.sleep(0.002)  # what is tested (bytes in separate segments), not a wait
    assert host.read(19) == ACK + FIRMWARE_ANSWER


def test_two_commands_in_one_write(host):
    host.send(GET_FIRMWARE + SAM_CONFIGURATION)
    assert host.read(19 + 15) == ACK + FIRMWARE_ANSWER + ACK + SAM_ANSWER


def test_extended_frames_both_ways(host):
    # Diagnose line test (NumTst 00): the chip sends NumTst and the data back (nfcpy's
    # chipset test compares them), D5 01 00 + data
    data = bytes(range(256)) + bytes(6)  # 262 bytes: TFI + 00 00 + 262 = 265, the most
    frame = ref_frame(b"\x00\x00" + data, 0xD4)
    assert frame[3:5] == b"\xff\xff"
    host.command(frame, ref_frame(b"\x01\x00" + data))


def test_extended_frame_for_a_short_command(host):
    # UM0701-02 6.2.1.2: the host may use the extended frame for any length
    body = bytes([0xD4, 0x02])
    frame = bytes([0, 0, 0xFF, 0xFF, 0xFF, 0x00, 0x02, 0xFE]) + body + bytes([0x2A, 0])
    host.command(frame, FIRMWARE_ANSWER)


@pytest.mark.parametrize("bad,why", [
    ("0000ff02fdd4022a00", "LCS"),  # LCS wrong
    ("0000ff02fed4022b00", "DCS"),  # DCS wrong
    ("0000ff02fed5022900", "TFI D5"),  # a chip-to-host frame
    ("0000ffffff0002ffd4022a00", "extended LCS"),
])
def test_a_bad_frame_is_ignored_and_the_next_one_answered(sim, host, bad, why):
    host.send(bytes.fromhex(bad))
    host.quiet()
    host.command(GET_FIRMWARE, FIRMWARE_ANSWER)
    assert why in sim.ignored


def test_frame_over_the_chip_limit_is_ignored(sim, host):
    host.send(ref_frame(bytes(266), 0xD4))  # TFI + 266 bytes: over 265
    host.quiet()
    wait_for(lambda: sim.ignored, what="the simulator to take the frame")
    assert sim.ignored == ["length 267"]
    host.command(GET_FIRMWARE, FIRMWARE_ANSWER)


@pytest.mark.parametrize("data", [
    "99",  # no such command
    "4a0300",  # MaxTg 3 (1 or 2 only)
    "4a01",  # BrTy missing
    "4a0109",  # BrTy 9
    "4a0100010203",  # a UID of 3 bytes to select
    "3205ff01",  # MaxRetries with 2 bytes instead of 3
    "3277",  # unknown configuration item
    "40",  # InDataExchange without Tg
    "1405",  # SAM mode 5
    "0201",  # GetFirmwareVersion takes no parameters
])
def test_malformed_command_gets_ack_then_the_error_frame(host, data):
    host.command(cmd(data), ERROR)


def test_nack_from_host_repeats_the_last_answer(sim, host):
    host.command(GET_FIRMWARE, FIRMWARE_ANSWER)
    host.send(NACK)
    assert host.read(len(FIRMWARE_ANSWER)) == FIRMWARE_ANSWER
    assert sim.nacks == 1


def test_a_new_connection_is_served(sim, host):
    host.close()
    h2 = Host(sim.port)
    try:
        h2.command(GET_FIRMWARE, FIRMWARE_ANSWER)
    finally:
        h2.close()


# -- InListPassiveTarget ----------------------------------------------------------------
def test_list_ntag(sim, host):
    sim.tap(NtagCard(NTAG_UID))
    # Tg 1, SENS_RES 00 44, SEL_RES 00, NFCIDLength 7, UID; no ATS (SAK bit 0x20 clear)
    host.command(LIST_ONE, answer("4b 01 01 0044 00 07 04010203040506"))


def test_list_iso_dep_card_gives_its_ats(sim, host):
    sim.tap(AppletCard(bytes.fromhex("04a1b2c3d4e5f6"), ats=bytes.fromhex("0578807002")))
    host.command(LIST_ONE, answer("4b 01 01 0044 20 07 04a1b2c3d4e5f6 0578807002"))


@pytest.mark.parametrize("uid,atqa", [("deadbeef", "0004"), ("04112233445566", "0044"),
                                      ("0411223344556677889a", "0084")])
def test_list_uid_cards_of_4_7_10_bytes(sim, host, uid, atqa):
    sim.tap(UidCard(bytes.fromhex(uid)))
    host.command(LIST_ONE, answer("4b0101%s08%02x%s" % (atqa, len(uid) // 2, uid)))


def test_phone_has_a_new_random_uid_at_each_tap(sim, host):
    phone = PhoneCard()
    sim.tap(phone)
    first = phone.uid
    host.command(LIST_ONE, answer("4b01010004200408%s0578807002" % first[1:].hex()))
    sim.remove()
    sim.tap(phone)
    assert phone.uid != first and phone.uid[0] == 0x08


def test_two_cards(sim, host):
    a, b = UidCard(bytes.fromhex("01020304")), NtagCard(NTAG_UID)
    sim.tap_two(a, b)
    both = "4b02" + "01 0004 08 04 01020304" + "02 0044 00 07 04010203040506"
    host.command(LIST_TWO, answer(both.replace(" ", "")))
    # MaxTg 1 with two cards: the chip resolves the collision and selects one (the first)
    host.command(LIST_ONE, answer("4b0101000408 04 01020304".replace(" ", "")))


def test_uid_in_initiator_data_selects_that_card(sim, host):
    sim.tap_two(UidCard(bytes.fromhex("01020304")), NtagCard(NTAG_UID))
    # 7-byte UID after the cascade tag 88 (UM0701-02 InListPassiveTarget, InitiatorData)
    host.command(cmd("4a0100 88 04010203040506".replace(" ", "")),
                 answer("4b01 01 0044 00 07 04010203040506".replace(" ", "")))
    host.command(cmd("4a010001020304"), answer("4b0101000408 04 01020304".replace(" ", "")))


def test_empty_field_with_finite_retries_answers_none(sim, host):
    set_retries(host, 3)
    host.command(LIST_ONE, LIST_NONE)


def test_empty_field_with_retries_ff_waits_until_a_card_comes(sim, host):
    host.send(LIST_ONE)  # MaxRetries FF, the chip's default: it never gives up
    assert host.read(6) == ACK
    host.quiet()
    sim.tap(NtagCard(NTAG_UID))
    assert host.read(22) == answer("4b01010044000704010203040506")


def test_ack_from_host_cancels_the_waiting_command(sim, host):
    host.send(LIST_ONE)
    assert host.read(6) == ACK
    host.send(ACK)
    wait_for(lambda: sim.cancelled == [0x4A], what="the simulator to take the cancel")
    sim.tap(NtagCard(NTAG_UID))  # comes after the cancel: nothing answers it
    host.quiet()
    assert sim.cancelled == [0x4A]
    host.command(GET_FIRMWARE, FIRMWARE_ANSWER)


def test_new_command_aborts_the_waiting_one(sim, host):
    host.send(LIST_ONE)
    assert host.read(6) == ACK
    host.command(GET_FIRMWARE, FIRMWARE_ANSWER)
    sim.tap(NtagCard(NTAG_UID))
    host.quiet()


# -- exchanges ------------------------------------------------------------------------------
SELECT = "00a4040008f053434f4e544f0100"


def listed(sim, host, card):
    sim.tap(card)
    set_retries(host, 1)
    host.send(LIST_ONE)
    head = host.read(6 + 8)
    assert head[:6] == ACK and head[6 + 5:6 + 8] == bytes.fromhex("d54b01")
    rest = head[9] - 3  # LEN counts TFI + 4B + NbTg, already read
    host.read(rest + 2)


def test_apdu_to_applet(sim, host):
    listed(sim, host, AppletCard(bytes.fromhex("04a1b2c3d4e5f6"), card="6001000000000042", epoch=1,
                                 issuer_key=bytes(32)))
    host.command(cmd("4001" + SELECT), answer("4100 01 9000".replace(" ", "")))


def test_raw_type2_commands_through_in_communicate_thru(sim, host):
    listed(sim, host, NtagCard(NTAG_UID, model=215))
    # READ page 3: CC of an NTAG215 E1 10 3E 00 (NTAG213/215/216 datasheet), then the empty
    # NDEF TLV 03 00 FE of a blank tag
    host.command(cmd("42 3003".replace(" ", "")), answer("4300 e1103e00 0300fe00 00000000 00000000".replace(" ", "")))
    # GET_VERSION: 00 04 04 02 01 00 11 03 (NTAG215: storage size 11h)
    host.command(cmd("4260"), answer("4300 0004040201001103".replace(" ", "")))
    # READ past the last page: the tag NAKs with 4 bits, the chip reports a CRC error
    host.command(cmd("4230ff"), answer("4302"))


def test_raw_type2_commands_through_in_data_exchange(sim, host):
    listed(sim, host, NtagCard(NTAG_UID, model=213))
    host.command(cmd("40013003"), answer("4100 e1101200 0300fe00 00000000 00000000".replace(" ", "")))


def test_crc_a_when_the_host_turns_rx_crc_off(sim, host):
    listed(sim, host, NtagCard(NTAG_UID, model=215))
    host.command(cmd("08630300"), answer("09"))  # WriteRegister CIU_RxMode = 00
    host.command(cmd("06 6303".replace(" ", "")), answer("0700"))
    page3 = bytes.fromhex("e1103e000300fe000000000000000000")
    assert crc_a(b"\x00\x00") == b"\xa0\x1e"  # ISO/IEC 14443-3 annex B example
    assert crc_a(b"\x12\x34") == b"\x26\xcf"
    host.command(cmd("423003"), ref_frame(b"\x43\x00" + page3 + crc_a(page3)))
    host.command(cmd("4230ff"), answer("430000"))  # the NAK itself


def test_long_answer_is_chained_with_mi(sim, host):
    sim.max_answer = 16

    class Echo:
        uid, sak, atqa, ats = b"\x08\x01\x02\x03", 0x20, b"\x00\x04", b"\x05\x78\x80\x70\x02"

        def __init__(self):
            self.seen = []

        def apdu(self, c):
            self.seen.append(c)
            return bytes(range(40))

    card = Echo()
    listed(sim, host, card)
    host.command(cmd("4001aa"), ref_frame(b"\x41\x40" + bytes(range(16))))
    host.command(cmd("4001"), ref_frame(b"\x41\x40" + bytes(range(16, 32))))
    host.command(cmd("4001"), ref_frame(b"\x41\x00" + bytes(range(32, 40))))
    # the host chains too: Tg with MI, the chip forwards the whole command at the end
    host.command(cmd("4041 0102".replace(" ", "")), answer("4100"))
    host.command(cmd("4001 0304".replace(" ", "")), ref_frame(b"\x41\x40" + bytes(range(16))))
    assert card.seen == [b"\xaa", b"\x01\x02\x03\x04"]


def test_unknown_released_and_deselected_targets(sim, host):
    listed(sim, host, AppletCard(bytes.fromhex("04a1b2c3d4e5f6")))
    host.command(cmd("4002" + SELECT), answer("4127"))  # no target 2
    host.command(cmd("4401"), answer("4500"))  # InDeselect
    host.command(cmd("4001" + SELECT), answer("4127"))
    host.command(cmd("5401"), answer("5500"))  # InSelect
    host.command(cmd("4001" + SELECT), answer("4100019000"))
    host.command(cmd("5201"), answer("5300"))  # InRelease
    host.command(cmd("4001" + SELECT), answer("4127"))
    host.command(cmd("5201"), answer("5327"))
    host.command(cmd("5200"), answer("5300"))  # Tg 0: all targets


def test_uid_card_answers_nothing(sim, host):
    listed(sim, host, UidCard(bytes.fromhex("01020304")))
    host.command(cmd("4001" + SELECT), answer("4101"))
    host.command(cmd("423003"), answer("4301"))


def test_removed_card_times_out(sim, host):
    listed(sim, host, AppletCard(bytes.fromhex("04a1b2c3d4e5f6")))
    sim.remove()
    host.command(cmd("4001" + SELECT), answer("4101"))
    # tapped again, the card is not selected any more: the old target stays silent
    sim.tap(AppletCard(bytes.fromhex("04a1b2c3d4e5f6")))
    host.command(cmd("4001" + SELECT), answer("4101"))


def test_pull_after(sim, host):
    listed(sim, host, NtagCard(NTAG_UID))
    sim.pull_after(2)
    host.command(cmd("4260"), answer("4300 0004040201001103".replace(" ", "")))
    host.command(cmd("4260"), answer("4300 0004040201001103".replace(" ", "")))
    host.command(cmd("4260"), answer("4301"))
    assert sim.cards == []
    host.command(cmd("4260"), answer("4301"))
    host.command(LIST_ONE, LIST_NONE)


def test_field_off_makes_cards_forget(sim, host):
    listed(sim, host, NtagCard(NTAG_UID))
    host.command(cmd("320100"), answer("33"))  # RF field off
    host.command(cmd("4260"), answer("4301"))


# -- faults ---------------------------------------------------------------------------------
def test_fault_garbage_before_the_ack(sim, host):
    sim.inject("garbage")
    host.send(GET_FIRMWARE)
    got = b""
    while not got.endswith(FIRMWARE_ANSWER):
        chunk = host.s.recv(100)
        assert chunk, "simulator closed the connection"
        got += chunk
    noise = got[:-19]
    assert got[-19:] == ACK + FIRMWARE_ANSWER
    assert 3 <= len(noise) < 12 and b"\x00" not in noise


def test_fault_lost_ack(sim, host):
    sim.inject("lost_ack")
    host.send(GET_FIRMWARE)
    host.quiet()
    host.command(GET_FIRMWARE, FIRMWARE_ANSWER)


def test_fault_stale_answer_first(sim, host):
    host.command(SAM_CONFIGURATION, SAM_ANSWER)
    sim.inject("stale")
    host.send(GET_FIRMWARE)
    assert host.read(9 + 6 + 13) == SAM_ANSWER + ACK + FIRMWARE_ANSWER


def test_fault_nack_instead_of_ack(sim, host):
    sim.inject("nack")
    host.send(GET_FIRMWARE)
    assert host.read(6) == NACK
    host.quiet()
    host.command(GET_FIRMWARE, FIRMWARE_ANSWER)


def test_fault_timeout_then_cancel(sim, host):
    sim.inject("timeout")
    host.send(GET_FIRMWARE)
    assert host.read(6) == ACK
    host.quiet()
    host.send(ACK)
    host.quiet()
    wait_for(lambda: sim.cancelled == [0x02], what="the simulator to take the cancel")
    host.command(GET_FIRMWARE, FIRMWARE_ANSWER)


def test_fault_bad_checksum_then_nack_gets_the_good_answer(sim, host):
    sim.inject("bad_checksum")
    host.send(GET_FIRMWARE)
    assert host.read(19) == ACK + bytes.fromhex("0000ff06fad50332010607e900")
    host.send(NACK)
    assert host.read(13) == FIRMWARE_ANSWER


def test_fault_split(sim, host):
    sim.inject("split")
    host.send(GET_FIRMWARE)
    assert host.read(6) == ACK
    host.chunks = 0
    assert host.read(13) == FIRMWARE_ANSWER
    assert host.chunks > 1


def test_faults_queue_one_per_command(sim, host):
    sim.inject("lost_ack")
    sim.inject("nack")
    host.send(GET_FIRMWARE)
    host.quiet()
    host.send(GET_FIRMWARE)
    assert host.read(6) == NACK
    host.command(GET_FIRMWARE, FIRMWARE_ANSWER)


def test_unknown_fault_is_refused(sim):
    with pytest.raises(ValueError):
        sim.inject("gremlins")


# -- counting -------------------------------------------------------------------------------
def test_log_counts_bytes_per_command(sim, host):
    host.command(bytes(5) + GET_FIRMWARE, FIRMWARE_ANSWER)  # a 5-byte preamble counts
    sim.inject("timeout")
    host.send(SAM_CONFIGURATION)
    assert host.read(6) == ACK
    host.send(ACK)  # the cancel is counted with the command it cancels
    host.quiet()
    wait_for(lambda: sim.cancelled, what="the simulator to take the cancel")
    assert sim.log == [(0x02, 14, 19), (0x14, 12 + 6, 6)]
    assert (sim.bytes_in, sim.bytes_out) == (14 + 18, 19 + 6)


def test_in_process_handle(sim):
    assert sim.handle(b"\x02") == bytes.fromhex("0332010607")
    sim.tap(NtagCard(NTAG_UID))
    assert sim.handle(b"\x4a\x01\x00") == bytes.fromhex("4b01010044000704010203040506")
    assert sim.targets()[0][0] == 1


def test_set_parameters_without_automatic_rats_lists_no_ats(sim, host):
    host.command(cmd("1200"), answer("13"))  # SetParameters: fAutomaticRATS (bit 4) off
    sim.tap(AppletCard(bytes.fromhex("04a1b2c3d4e5f6")))
    host.command(LIST_ONE, answer("4b 01 01 0044 20 07 04a1b2c3d4e5f6".replace(" ", "")))


# -- an independent driver: nfcpy's PN532 driver over a pseudo-terminal ---------------------
def _bridge(master, port):
    """Copies bytes between the pty master (nfcpy's "UART") and the simulator's socket."""
    import os
    import select
    import threading

    s = socket.create_connection(("127.0.0.1", port))

    def run():
        while True:
            try:
                ready, _, _ = select.select([master, s], [], [], 5)
                if not ready:
                    return
                if master in ready:
                    data = os.read(master, 4096)
                    if not data:
                        return
                    s.sendall(data)
                if s in ready:
                    data = s.recv(4096)
                    if not data:
                        return
                    os.write(master, data)
            except (OSError, ValueError):
                return  # the test closed the pty or the socket under this thread: it is over

    threading.Thread(target=run, daemon=True).start()
    return s


def test_nfcpy_pn532_driver_reads_cards_through_the_simulator(sim):
    import os
    import tty

    nfc = pytest.importorskip("nfc")
    import nfc.clf
    import nfc.clf.pn532
    import nfc.clf.transport
    import nfc.tag

    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    path = os.ttyname(slave)
    link = _bridge(master, sim.port)
    transport = nfc.clf.transport.TTY(path)
    try:
        device = nfc.clf.pn532.init(transport)  # wake-up, version, SAM, line test, RF settings
        clf = nfc.ContactlessFrontend()
        clf.device = device

        sim.tap(NtagCard.loyalty("6001000000000042", 1, bytes(32), NTAG_UID))
        target = clf.sense(nfc.clf.RemoteTarget("106A"))
        assert bytes(target.sdd_res) == NTAG_UID and bytes(target.sel_res) == b"\x00"
        tag = nfc.tag.activate(clf, target)
        assert tag.product == "NXP NTAG215"  # nfcpy asked GET_VERSION itself
        record = tag.ndef.records[0]
        assert record.type == "urn:nfc:ext:sconto.org:card"
        assert bytes(record.data)[:19] == b"\x01\x01\x106001000000000042"

        sim.remove()
        sim.tap(AppletCard(bytes.fromhex("04a1b2c3d4e5f6")))
        target = clf.sense(nfc.clf.RemoteTarget("106A"))
        tag = nfc.tag.activate(clf, target)  # nfcpy sends RATS itself (automatic RATS off)
        assert tag.type == "Type4Tag"
        assert bytes(tag.transceive(bytes.fromhex(SELECT))) == b"\x01\x90\x00"
    finally:
        transport.close()
        link.close()
        os.close(master)
        os.close(slave)
