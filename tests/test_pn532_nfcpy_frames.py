"""Our PN532 frames against nfcpy's (nfc/clf/pn53x.py Chipset.command builds them, and
reads the chip's): the same bytes for every command and data length nfcpy accepts,
normal and extended frames, and each side reads what the other writes.

nfcpy's Chipset runs on a fake transport that records its writes and answers each
command with an ACK and a valid answer, so `command()` returns normally.
"""
import logging
import random

import nfc.clf.pn532 as nfcpy_pn532
import pytest

from drivers.pn532 import HSU, PN532, NfcDevice
from drivers.pn532frames import INFO, TFI_HOST, TFI_PN532, FrameReader, frame

ACK = bytes.fromhex("0000ff00ff00")


class Recorder:
    """nfcpy's transport: keeps what the chipset writes, hands back ACK then the answer."""

    def __init__(self):
        self.written = []
        self.pending = []

    def write(self, data):
        data = bytes(data)
        self.written.append(data)
        if data != ACK:
            code = data[6] if data[3:5] != b"\xff\xff" else data[9]
            self.pending = [ACK, self.answer(code)]

    def answer(self, code):
        # status 00 for the commands that have one, enough for nfcpy's checks
        data = {0x02: b"\x32\x01\x06\x07", 0x4A: b"\x00"}.get(code, b"\x00")
        return bytearray(frame(bytes([code + 1]) + data, TFI_PN532))

    def read(self, timeout):
        return bytearray(self.pending.pop(0))


def nfcpy_chipset():
    rec = Recorder()
    return nfcpy_pn532.Chipset(rec, logging.getLogger("test-nfcpy")), rec


LENGTHS = list(range(0, 12)) + [100, 200, 251, 252, 253, 254, 255, 256, 262, 263]


@pytest.mark.parametrize("n", LENGTHS)
def test_command_frames_are_nfcpys(n):
    chipset, rec = nfcpy_chipset()
    rnd = random.Random(n)
    for code in (0x00, 0x02, 0x32, 0x40, 0x42, 0x4A, 0x52, 0x8C):
        data = bytes(rnd.randrange(256) for _ in range(n))
        chipset.command(code, data, timeout=0.1)
        theirs = rec.written[-1]
        assert bytes(frame(bytes([code]) + data)) == theirs, (code, n)
        # the chipset's own builder, as the driver uses it
        ours = PN532(None).build(code, data)
        assert bytes(ours) == theirs, (code, n)
        # and the PN532 simulator's side reads nfcpy's frame back
        r = FrameReader(300, TFI_HOST)
        r.feed(theirs)
        assert r.next() == INFO
        assert bytes(r.info()) == bytes([TFI_HOST, code]) + data
    if n + 2 > 255:
        assert rec.written[-1][3:5] == b"\xff\xff", "nfcpy wrote an extended frame too"


@pytest.mark.parametrize("n", [0, 1, 5, 60, 250, 253, 254, 262])
def test_nfcpy_reads_our_answer_frames(n):
    chipset, rec = nfcpy_chipset()
    data = bytes(random.Random(n).randrange(256) for _ in range(n))
    rec.answer = lambda code: bytearray(frame(bytes([code + 1]) + data, TFI_PN532))
    assert bytes(chipset.command(0x00, b"", timeout=0.1)) == data


class Uart:
    """HSU bus for our device: writes recorded, each command answered with ACK and `answer`."""

    def __init__(self, answers):
        self.answers = answers
        self.frames = []
        self.stream = b""

    def write(self, data):
        data = bytes(data)
        if data.startswith(b"\x00\x00\xff"):
            self.frames.append(data)
            self.stream += ACK + bytes(frame(self.answers.pop(0), TFI_PN532))

    def any(self):
        return len(self.stream)

    def readinto(self, buf):
        n = min(len(buf), len(self.stream))
        buf[:n] = self.stream[:n]
        self.stream = self.stream[n:]
        return n


def test_device_commands_match_nfcpys_chipset_methods():
    uid = bytes.fromhex("04112233445566")
    apdu = bytes.fromhex("00a4040008f0534f4e544f0100")
    uart = Uart([b"\x15", b"\x33", b"\x03\x32\x01\x06\x07",
                 b"\x4b\x01\x01\x00\x44\x20\x07" + uid + b"\x05\x78\x80\x70\x02",
                 b"\x41\x00\x90\x00", b"\x43\x00\x01\x02", b"\x53\x00"])
    dev = NfcDevice(HSU(uart), two_cards=False)
    dev.init()
    dev.poll()
    dev.exchange(apdu)
    dev.thru(b"\x30\x04")
    dev.release()

    chipset, rec = nfcpy_chipset()
    chipset.sam_configuration("normal", timeout=0x14, irq=True)
    chipset.rf_configuration(0x05, b"\x02\x01\x02")
    chipset.get_firmware_version()
    chipset.in_list_passive_target(1, 0, b"")
    rec.answer = lambda code: bytearray(frame(bytes([code + 1, 0]), TFI_PN532))
    chipset.in_data_exchange(apdu, timeout=0.1)
    chipset.in_communicate_thru(b"\x30\x04", timeout=0.1)
    chipset.command(0x52, b"\x01", timeout=0.1)  # nfcpy has no InRelease method
    assert uart.frames == rec.written

