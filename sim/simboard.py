"""The simulated board: the real firmware on the MicroPython unix port, with a simulated
till and a simulated card reader on the other ends of its byte streams.

The firmware connects to two TCP ports: the till link (framed messages, as on the
UART) and the card reader. `TillSim` listens for the till link; the card reader is
either the PN532 simulator (`nfc=True`: sim/pn532sim.py speaks PN532 frames to the
firmware's driver, and tests tap card models from sim/cardmodels.py), or `CardSim`,
which hands over identities as lines (for tests about everything but the card).

    with SimReader("R1", key_hex, backend_url, folder) as r:
        r.till.send({"type": "basket", "receipt": "T1-1", "lines": [...]})
        r.till.expect("ready")
        r.cards.tap("6001000000000042")
        quote = r.till.expect("quote")
"""
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

from loyalty.protocol import till


def wait_for(cond, timeout=20, what="condition", every=0.05):
    """Poll `cond` until it returns something true; that value, or AssertionError on timeout."""
    end = time.time() + timeout
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(every)  # the pause between two looks, not a wait: the loop waits on `cond`
    raise AssertionError("timed out waiting for " + what)


def micropython():
    here = Path(sys.executable).parent / "micropython"
    return str(here) if here.exists() else "micropython"


# The heap the simulated board runs with: 352 KB. With the NFC stack and the contact slot
# the board's end-to-end tests (reader flows, NFC, contact, sync faults, backend) pass at
# 296 KB and 288 KB, and fail at 272 KB (a contact board's first sync: MemoryError), so
# the 320 KB of before had under 15 % to spare; 352 KB has 16 %. The ESP32's budget is
# about 100 KB: see docs/memory.md for the figures and the plan.
HEAP = "352k"
BUILD = "build/mpy"  # mpybuild.DEFAULT_OUT, relative to ROOT, where the board runs
SIM_BUILD = "build/mpysim"  # mpybuild.SIM_OUT: the stand-ins for the ESP32's parts (sim/board/)

# The PN532 driver's bounds on the simulated board (board.py's "nfc_ms"). On the ESP32 the
# chip answers on its own bus within milliseconds, and the driver waits 50 ms for an ACK;
# here the chip is a thread of the test's process, which a loaded machine may not run for
# longer than that (a missing ACK was seen on a busy 2-core machine). Generous bounds cost
# nothing when the simulator answers; only the faults that withhold an answer on purpose
# ("lost_ack", "timeout") wait them out.
NFC_MS = {"ack_ms": 2000, "timeout_ms": 5000, "poll_ms": 5000, "exchange_ms": 5000}

# The contact slot's line on the simulated board (board.py's "contact_ms"; simslot.py's own
# SLACK_MS is 100). The card's times are milliseconds (the ATR must begin 11 ms after
# reset), and the simulator in another process adds the slack to each: at 100 ms a loaded
# machine made a card mute. The slack is also added to the waits for a quiet line (three
# per activation), and the contact reader gives activation and each APDU 2 s in all
# (contactreader.STEP_MS), so it cannot grow without bound: 250 ms leaves more than a
# second of that for the bytes themselves. An echo that does not come is a fault of the
# line, never of the card: waiting longer for it costs nothing when it comes.
CONTACT_MS = {"slack_ms": 250, "echo_ms": 1000}

# How often the reader's card tasks look at the NFC field and the contact slot between
# sleeps (POLL_PAUSE in firmware/nfcreader.py and contactreader.py), and four times that:
# the reader time that must pass for the contact task to have looked (SimReader.card_out).
POLL_PAUSE = 0.05
LOOK = 4 * POLL_PAUSE


class _Listener:
    """Accepts the firmware's connection (again after a reconnect) on a loopback port."""

    def __init__(self):
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(1)
        self.port = self.srv.getsockname()[1]
        self.conn = None

    def connection(self, timeout=20):
        if self.conn is None:
            self.srv.settimeout(timeout)
            self.conn, _ = self.srv.accept()
            self.conn.settimeout(timeout)
        return self.conn

    def close(self):
        for s in (self.conn, self.srv):
            if s is not None:
                s.close()


class TillSim(_Listener):
    """The till (ECR): sends baskets, commits and voids; reads the reader's answers."""

    def __init__(self):
        super().__init__()
        self.buf = b""
        self.quote = None  # the last quote the reader sent, until it is committed or voided

    def send(self, msg):
        self.send_raw(till.encode_frame(msg))

    def send_raw(self, data):
        self.connection().sendall(data)

    def recv(self, timeout=20):
        conn = self.connection()
        deadline = time.time() + timeout
        while b"\n" not in self.buf:
            conn.settimeout(max(0.01, deadline - time.time()))
            chunk = conn.recv(4096)
            if not chunk:
                raise EOFError("reader closed the till link")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        msg = till.decode_answer(line + b"\n")
        kind = msg.get("type")
        if kind == "quote":
            self.quote = msg
        elif kind in ("committed", "voided") and self.quote and msg.get("quote") == self.quote["quote"]:
            self.quote = None
        return msg

    def expect(self, kind, timeout=20):
        msg = self.recv(timeout)
        if msg.get("type") != kind:
            raise AssertionError("expected %s, got %r" % (kind, msg))
        return msg


class CardSim(_Listener):
    """The card reader: a shopper taps a card and its identity goes to the firmware."""

    def tap(self, card, kind="applet", verified=True):
        self.send_raw(json.dumps({"card": card, "kind": kind, "verified": verified}).encode() + b"\n")

    def send_raw(self, data):
        self.connection().sendall(data)


class SimReader:
    """One reader: its folder (the flash), its config, the firmware process and its simulators."""

    def __init__(self, reader, key_hex, backend, folder, lang="it", heap=os.environ.get("READER_HEAP", HEAP), sync_interval=2,
                 journal_capacity=512 * 1024, log=None, nfc=False, contact=False, builds=None):
        self.reader = reader
        # where MicroPython imports from: the firmware's build, then the stand-ins' (by
        # default the checkout's, built at start(); a test may give folders of its own)
        self.builds = builds
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.till = TillSim()
        self.cfg = {"reader": reader, "key": key_hex, "backend": backend, "lang": lang, "board": "sim",
                    "root": str(self.folder / "flash"), "till": "127.0.0.1:%d" % self.till.port,
                    "sync_interval": sync_interval, "journal_capacity": journal_capacity}
        # nfc: the firmware's PN532 driver talks to sim/pn532sim.py (tap card models on
        # self.nfc); otherwise identities arrive as lines (self.cards.tap(number))
        self.cards = self.nfc = None
        if nfc:
            from loyalty.sim.pn532sim import PN532Sim

            self.nfc = PN532Sim().start()
            self.cfg["nfc"] = "127.0.0.1:%d" % self.nfc.port
            self.cfg["nfc_ms"] = dict(NFC_MS)
        else:
            self.cards = CardSim()
            self.cfg["cards"] = "127.0.0.1:%d" % self.cards.port
        # contact: a contact-card slot too, answered by sim/iso7816sim.py (self.slot)
        self.slot = None
        if contact:
            from loyalty.sim.iso7816sim import ContactSim

            self.slot = ContactSim().start()
            self.cfg["contact"] = "127.0.0.1:%d" % self.slot.port
            self.cfg["contact_ms"] = dict(CONTACT_MS)
        self.config_path = self.folder / "config.json"
        self.heap = heap
        self.log = log
        self.proc = None

    def start(self):
        self.config_path.write_text(json.dumps(self.cfg))
        env = dict(os.environ)
        if self.builds is None:
            from loyalty.tools import mpybuild

            mpybuild.build()
            mpybuild.build_sim()
            assert (mpybuild.DEFAULT_OUT, mpybuild.SIM_OUT) == (ROOT / BUILD, ROOT / SIM_BUILD)
        # Relative to the board's working folder (the checkout): MicroPython keeps every
        # imported module's path on its heap, so an absolute path would leave a board in a
        # deeper checkout less heap. On the ESP32 the paths are as short ("/protocol/...").
        # The firmware first, as on the device; the board's stand-ins after it.
        env["MICROPYPATH"] = ":".join([str(b) for b in self._builds()] + [".frozen"])
        env["READER_CONFIG"] = str(self.config_path)
        if self.log:
            with open(self.log, "ab") as out:  # the child keeps its own copy of the descriptor
                self.proc = subprocess.Popen(self._command(), env=env, stdout=out, stderr=subprocess.STDOUT, cwd=str(ROOT))
        else:
            self.proc = subprocess.Popen(self._command(), env=env, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.STDOUT, cwd=str(ROOT))
        self.till.connection()
        if self.cards is not None:
            self.cards.connection()
        return self

    def _builds(self):
        return self.builds or (BUILD, SIM_BUILD)

    def _command(self):
        return [micropython(), "-X", "heapsize=" + self.heap, "%s/main.py" % self._builds()[0]]

    def power_cut(self):
        """Kill the firmware at once (SIGKILL): what a pulled plug does to the reader."""
        self.proc.kill()
        self.proc.wait()
        for sim in (self.till, self.cards):
            if sim is not None and sim.conn is not None:
                sim.conn.close()
                sim.conn = None
        self.till.buf = b""
        self.till.quote = None  # the reader's RAM is gone, and its waiting quote with it

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.till.close()
        if self.cards is not None:
            self.cards.close()
        if self.nfc is not None:
            self.nfc.stop()
        if self.slot is not None:
            self.slot.stop()

    def status(self):
        """The reader's status answer, asked over the till link."""
        self.till.send({"type": "status"})
        return self.till.expect("status")

    def answers_then_status(self, timeout=20):
        """Asks for the status and reads up to its answer: (the answers that came first, the status).

        The reader answers the till in order, so whatever it sent before it took the
        request (a quote of a read under way, an error) is in the first list."""
        self.till.send({"type": "status"})
        early = []
        while True:
            msg = self.till.recv(timeout)
            if msg.get("type") == "status":
                return early, msg
            early.append(msg)

    def tap_out(self, timeout=30):
        """Every card leaves the NFC field; returns once the reader has seen the field empty.

        Then the next card tapped is a new tap, even the same card (a hand takes a card away
        for longer than the reader's poll pause): the simulator has answered one of the
        reader's polls with "no card" since the cards left."""
        self.nfc.remove()
        looked = self.nfc.polls_empty
        wait_for(lambda: self.nfc.polls_empty > looked, timeout, "the reader to see the NFC field empty", 0.01)

    def card_out(self, timeout=30):
        """The card leaves the contact slot; returns once the reader has looked at the empty
        slot (the next card inserted is a new one), with the till answers that came meanwhile.

        The contact task looks at the slot's presence pin every POLL_PAUSE and the
        simulator cannot see it look, so the proof is the reader's loop: once the reader
        answers a status request, its contact task is asleep for at most POLL_PAUSE (a
        read blocks the loop, so one under way has ended and its answer was sent first;
        after a fault of the slot itself it sleeps a second, and this does not cover that).
        A second request sent LOOK later is taken only after that task has run again
        (asyncio runs the task whose time came first), and it finds the pin low: a slow
        machine only delays both answers."""
        self.slot.remove()
        early, _ = self.answers_then_status(timeout)
        time.sleep(LOOK)  # reader time that must pass (see above), not a wait for an event
        more, _ = self.answers_then_status(timeout)
        return early + more

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
