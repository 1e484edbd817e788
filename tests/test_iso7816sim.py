"""The contact-card simulator (sim/iso7816sim.py) on its own wire, and the reader's contact
stack through it end to end on MicroPython.

The first tests speak to the simulator as a board would, with bytes written here from
ISO/IEC 7816-3 (the ATRs worked out from clause 8, T=0 procedure bytes from clause 10, a
T=1 S-block from clause 11), so the simulator is checked independently of the firmware.
The last runs firmware/contactreader.py, drivers/contactslot.py, drivers/iso7816*.py and
sim/board/simslot.py on the MicroPython unix port (96 KB heap) against the simulator: every
card kind gets its verified identity, a card left in the slot counts once, a card pulled
out mid-command is card.removed and the next card reads.
"""
import queue
import socket
import subprocess
import threading
import time

import pytest

from loyalty.testing import runtimes
from loyalty.sim.cardmodels import AppletCard
from loyalty.sim.iso7816sim import ContactCard, ContactSim

ISSUER = bytes(range(32))


def applet(n, epoch=1):
    return AppletCard(b"\x01\x02\x03\x04", card="60010000000000%02d" % n, epoch=epoch, issuer_key=ISSUER)


@pytest.fixture
def sim():
    s = ContactSim().start()
    yield s
    s.stop()
    assert s.errors == []


class Board:
    """The board's side of the wire, by hand."""

    def __init__(self, sim):
        self.line = socket.create_connection(("127.0.0.1", sim.port))
        self.line.sendall(b"L")
        self.pins = socket.create_connection(("127.0.0.1", sim.port))
        self.pins.sendall(b"C")

    def read(self, sock, n, timeout=10):
        sock.settimeout(timeout)
        out = b""
        while len(out) < n:
            out += sock.recv(n - len(out))
        return out

    def silent(self, sock, wait=0.3):
        sock.settimeout(wait)
        try:
            return sock.recv(100) == b""
        except socket.timeout:
            return True

    def power_up(self):
        self.pins.sendall(b"R\x00K\x01V\x00R\x01")

    def send(self, data):
        """Sends on the line and checks that the line gave it back (one wire)."""
        self.line.sendall(data)
        assert self.read(self.line, len(data)) == data

    def close(self):
        self.line.close()
        self.pins.close()


def test_t0_card_on_the_wire(sim):
    board = Board(sim)
    try:
        assert board.read(board.pins, 4) == b"P\x00F\x00"  # empty slot
        sim.insert(ContactCard.t0(applet(1)))
        assert board.read(board.pins, 4) == b"P\x01F\x01"
        board.power_up()
        # TS 3B, T0 86 (TD1, 6 historical), TD1 40 (TC2, T=0), TC2 0A (WI 10), "SCONTO"; no TCK
        assert board.read(board.line, 10) == bytes.fromhex("3B86400A") + b"SCONTO"
        board.send(bytes.fromhex("00A4040008"))
        assert board.read(board.line, 1) == b"\xa4"  # ACK: all the data
        board.send(bytes.fromhex("F053434F4E544F01"))
        assert board.read(board.line, 2) == b"\x61\x01"  # one byte waits
        board.send(bytes.fromhex("00C0000002"))
        assert board.read(board.line, 2) == b"\x6c\x01"  # wrong Le: one
        board.send(bytes.fromhex("00C0000001"))
        assert board.read(board.line, 4) == bytes.fromhex("C0019000")
        board.send(bytes.fromhex("80B2000000"))  # not an applet command: status only
        assert board.read(board.line, 2) == bytes.fromhex("6D00")
    finally:
        board.close()


def test_t0_card_one_byte_at_a_time_and_slow(sim):
    board = Board(sim)
    try:
        sim.insert(ContactCard.t0(applet(1), ack_each=True, slow=True, slow_delay=0.2))
        board.power_up()
        board.read(board.line, 10)
        board.send(bytes.fromhex("00A4040002"))
        assert board.read(board.line, 1) == b"\x5b"  # ~A4: one byte
        board.send(b"\xf0")
        assert board.read(board.line, 1) == b"\x5b"
        board.send(b"\x53")
        assert board.read(board.line, 5) == bytes.fromhex("606060 6A82".replace(" ", ""))  # NULLs, then no such applet
    finally:
        board.close()


def test_inverse_card_sends_its_atr_inverted(sim):
    board = Board(sim)
    try:
        sim.insert(ContactCard.t0(applet(1), inverse=True))
        board.power_up()
        # 3F -> 03; 86 = 10000110 -> reversed 01100001 = 61 -> complemented 9E
        assert board.read(board.line, 2) == b"\x03\x9e"
    finally:
        board.close()


def test_t1_card_pps_and_ifs(sim):
    board = Board(sim)
    try:
        sim.insert(ContactCard.t1(applet(1)))
        board.power_up()
        # T0 96 (TA1 TD1, 6 historical), TA1 13, TD1 81, TD2 31 (TA3 TB3, T=1), TA3 20 (IFSC 32),
        # TB3 25 (BWI 2, CWI 5), "SCONTO", TCK
        body = bytes.fromhex("96138131 2025".replace(" ", "")) + b"SCONTO"
        tck = 0
        for b in body:
            tck ^= b
        assert board.read(board.line, 14) == b"\x3b" + body + bytes([tck])
        board.send(bytes.fromhex("FF1113FD"))
        assert board.read(board.line, 4) == bytes.fromhex("FF1113FD")  # PPS accepted: echoed
        board.send(bytes.fromhex("00C101FE3E"))
        assert board.read(board.line, 5) == bytes.fromhex("00E101FE1E")
        board.send(bytes.fromhex("00C101FE3F"))  # bad LRC: R-block, N(R) 0, EDC error
        assert board.read(board.line, 4) == bytes.fromhex("00810081")
    finally:
        board.close()


def test_card_pulled_out_goes_silent_and_the_pins_say_so(sim):
    board = Board(sim)
    try:
        assert board.read(board.pins, 4) == b"P\x00F\x00"
        sim.insert(ContactCard.t0(applet(1)))
        assert board.read(board.pins, 4) == b"P\x01F\x01"
        board.power_up()
        board.read(board.line, 10)
        sim.pull_after(3)
        board.send(bytes.fromhex("00A4040008"))  # the echo still comes: it is the board's own wire
        assert board.read(board.pins, 4) == b"P\x00F\x00"
        assert board.silent(board.line)
    finally:
        board.close()


RUNNER = """
import sys, asyncio
from simslot import SimSlot
import contactreader
from protocol.compat import unhexlify
from protocol.errors import ProtocolError
contactreader.POLL_PAUSE = 0.01
contactreader.RETRY_PAUSE = 0.05
ISSUER = unhexlify(sys.argv[2])
class Keys:
    def get(self, epoch):
        return ISSUER if epoch == 1 else None
class Slot(SimSlot):
    # "out" when the reader first finds the slot empty (and unpowered) after a card: the
    # test puts the next card in only then, whatever the machine's speed
    had = False
    def present(self):
        p = SimSlot.present(self)
        if p:
            self.had = True
        elif self.had and not self.powered:
            self.had = False
            print("out")
        return p
async def main(port, n):
    slot = Slot("127.0.0.1", port)
    slot.line.echo_ms = 1000  # the echo comes from the simulator, in another process
    reader = contactreader.ContactCardReader(slot, Keys())
    print("ready")
    for _ in range(n):
        try:
            ident = await reader.wait_card()
            print("card", ident["card"], ident["kind"], ident["verified"], ident["epoch"], ident["counter"])
        except ProtocolError as e:
            print("error", e.code)
    reader.close()
asyncio.run(main(int(sys.argv[1]), int(sys.argv[3])))
"""


def test_contact_cards_end_to_end_on_micropython(sim, tmp_path):
    script = tmp_path / "contact_runner.py"
    script.write_text(RUNNER)
    bad_edc = ContactCard.t1(applet(10))
    steps = [
        (ContactCard.t0(applet(1)), None, "card 6001000000000001 contact True 1 1"),
        (ContactCard.t1(applet(2)), None, "card 6001000000000002 contact True 1 1"),
        (ContactCard.t0(applet(3), inverse=True), None, "card 6001000000000003 contact True 1 1"),
        (ContactCard.t1(applet(4), crc=True), None, "card 6001000000000004 contact True 1 1"),
        (ContactCard.t0(applet(5), slow=True), None, "card 6001000000000005 contact True 1 1"),
        (ContactCard.t1(applet(6), slow=True), None, "card 6001000000000006 contact True 1 1"),
        # SELECT (13 bytes), GET RESPONSE (5), then out in AUTHENTICATE's data
        (ContactCard.t0(applet(7)), 20, "error card.removed"),
        (ContactCard.t1(applet(8)), None, "card 6001000000000008 contact True 1 1"),
        (ContactCard.t1(applet(9), pps="mute"), None, "card 6001000000000009 contact True 1 1"),
        (bad_edc, "bad_edc", "card 6001000000000010 contact True 1 1"),
        (ContactCard.t0(applet(11, epoch=2)), None, "error card.key"),
    ]
    # the contact stack's heap, as in tests/mpy/test_contactreader.py (run in 85 % of it)
    cmd = runtimes.command("micropython", str(script), str(sim.port), ISSUER.hex(), str(len(steps)), heap="128k")
    proc = subprocess.Popen(cmd, env=runtimes.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, cwd=str(runtimes.ROOT))
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x.strip()) for x in proc.stdout], daemon=True).start()
    try:
        assert lines.get(timeout=60) == "ready"
        for i, (card, fault, want) in enumerate(steps):
            if fault == "bad_edc":
                sim.inject("bad_edc")  # for the card's next block: before the reader can start
            sim.insert(card, pull_after=None if fault == "bad_edc" else fault)
            got = lines.get(timeout=30)
            out = got == "out"  # pulled out mid-read: the reader saw the slot empty before it said so
            if out:
                got = lines.get(timeout=30)
            assert got == want, (i, sim.log[-20:])
            if i == 0:
                # left in the slot: it must not be read again. A window, not a wait: a slow
                # machine can only make it look less, never fail it
                time.sleep(0.5)
                assert lines.empty()
            sim.remove()
            if not out and i + 1 < len(steps):  # the reader sees the empty slot before the next card
                assert lines.get(timeout=30) == "out", i
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    assert len(sim.pps) >= 5  # the T=1 cards offer TA1 13: each was asked
