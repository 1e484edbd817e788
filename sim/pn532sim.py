"""A PN532 NFC controller, simulated: the chip as the reader's firmware sees it over HSU (UART).

What it is for: the simulated board's PN532 driver talks to this over a TCP socket as if
it were the chip's UART, so the driver code that runs in tests and in `make demo` is the
code that runs on the ESP32 (DESIGN.md section 5). Cards are models (sim/cardmodels.py)
put into and taken out of the field by the test or the demo:

    sim = PN532Sim().start()           # sim.port: the board's "UART" (TCP, loopback)
    sim.tap(NtagCard.loyalty(...))     # a card in the field
    sim.inject("stale")                # the next command gets an old answer first
    sim.pull_after(2)                  # the card leaves after two more exchanges
    sim.tap(card, pull_after=2)        # the same, for a card a reader may be reading already
    sim.remove()
    sim.polls_empty                    # polls answered "no card": the reader has seen the field empty
    sim.log                            # [(command code, bytes in, bytes out), ...]
    sim.stop()

What it models (NXP UM0701-02, PN532 user manual, firmware V1.6):
- host link (6.2): preambles of any length and HSU wake-up bytes (0x55) are skipped while
  hunting the start code 00 FF; normal and extended information frames; an ACK for every
  good frame, then the answer frame (extended when TFI + data is over 255 bytes); an ACK
  from the host cancels the command in progress (no answer follows); a new command aborts
  the one in progress; a NACK from the host makes the chip send its last answer again (the
  manual's only use of NACK: host to chip, "asking for the retransmission of the last
  response frame"); a frame with a bad LCS or DCS, a TFI other than D4 or data over 264
  bytes is ignored: no ACK, so the host times out and sends again (6.2.2: "In the case the
  host controller does not detect an ACK frame within these 15 ms, the host controller
  should resend the same command frame"). A malformed command (unknown code, parameters
  missing or out of range) gets the ACK, then the application level error frame
  00 00 FF 01 FF 7F 81 00.
- commands: GetFirmwareVersion (IC 32, version 1.6, support 07), SAMConfiguration,
  RFConfiguration (field on/off, timings, MaxRetries, analog settings), InListPassiveTarget
  at 106 kbps type A (up to two targets, an optional UID to pick one), InDataExchange
  (APDUs to ISO-DEP targets, raw commands to Type 2 targets, chaining both ways with the MI
  bit 0x40; the rest of a chained answer comes with an InDataExchange carrying only Tg),
  InCommunicateThru (raw Type 2 commands), InDeselect, InSelect, InRelease;
  also Diagnose (line test), SetParameters (fAutomaticRATS: without it no ATS is listed and
  the host sends RATS itself, as nfcpy does), SetSerialBaudrate, ReadRegister, WriteRegister
  and PowerDown with plausible answers: nfcpy's own PN532 driver (tty transport) starts
  on it and reads NTAGs and ISO-DEP cards (tests/test_pn532sim.py, over a pseudo-terminal).
- the field: `tap(card)`, `tap_two(a, b)`, `remove()`, `pull_after(n)`. InListPassiveTarget
  with no card tries MaxRetries + 1 times (`attempt_time` seconds each) and answers NbTg 0,
  or waits until a card comes or the host cancels when MaxRetries is FF (the chip's
  default). Two cards and MaxTg 1: the first is selected (a real chip resolves the
  collision and picks one). A card that left answers nothing: status 01 (timeout).
- faults, one per `inject(kind)`, each for the next command: "garbage" (random bytes
  before the ACK), "lost_ack" (the command is lost: no ACK, no answer), "stale" (an answer
  frame of the previous command before the ACK), "nack" (a NACK instead of the ACK, the
  command not run), "timeout" (ACK, then no answer until the host cancels), "bad_checksum"
  (the answer's DCS is wrong), "split" (the answer dribbled byte by byte).

What it does not model: I2C and SPI (their status bytes and prefixes), baud rates, power
modes and the LowVbat state (any command is answered at once), RF timing, type B, FeliCa
and DEP, MIFARE Classic authentication, ISO-DEP below the APDU (frame sizes, WTX) except a
minimal block layer for InCommunicateThru to an ISO-DEP target. Status codes where the
manual is silent are choices, marked "chosen" below: 27 (command not acceptable in the
current context) for a target number that is not listed, 14 for a Type 2 NAK through
InDataExchange, 07 for a Type 2 answer over the chip's buffer.
"""
import random
import select
import socket
import time

from loyalty.sim.loopserver import LoopbackServer

ACK = b"\x00\x00\xff\x00\xff\x00"
NACK = b"\x00\x00\xff\xff\x00\x00"
ERROR = b"\x00\x00\xff\x01\xff\x7f\x81\x00"  # application level (syntax) error frame

TFI_HOST = 0xD4
TFI_CHIP = 0xD5
MAX_DATA = 264  # the chip's limit for PD0..PDn (265 bytes with TFI), UM0701-02 6.2.1.2
MAX_ANSWER = 262  # the most card data one InDataExchange answer carries (D5 41 status + 262)

# Commands (UM0701-02 chapter 7).
DIAGNOSE = 0x00
GET_FIRMWARE_VERSION = 0x02
READ_REGISTER = 0x06
WRITE_REGISTER = 0x08
SET_SERIAL_BAUDRATE = 0x10
SET_PARAMETERS = 0x12
SAM_CONFIGURATION = 0x14
POWER_DOWN = 0x16
RF_CONFIGURATION = 0x32
IN_DATA_EXCHANGE = 0x40
IN_COMMUNICATE_THRU = 0x42
IN_DESELECT = 0x44
IN_LIST_PASSIVE_TARGET = 0x4A
IN_RELEASE = 0x52
IN_SELECT = 0x54

# Status byte values (UM0701-02 7.1, error codes).
OK = 0x00
TIMEOUT = 0x01  # the target has not answered
CRC_ERROR = 0x02
BUFFER = 0x07  # insufficient communication buffer size
MIFARE_ERROR = 0x14
WRONG_CONTEXT = 0x27  # command not acceptable in the current context
MI = 0x40  # more information: chaining

FIRMWARE = b"\x32\x01\x06\x07"  # PN532, version 1.6, ISO 14443 A + B + ISO 18092

FAULTS = ("garbage", "lost_ack", "stale", "nack", "timeout", "bad_checksum", "split")

# RFConfiguration items and the length of their data.
_RF_ITEMS = {0x01: 1, 0x02: 3, 0x04: 1, 0x05: 3, 0x0A: 11, 0x0B: 8, 0x0C: 3, 0x0D: 9}

# CIU_RxMode (6303h): bit 7 RxCRCEn. nfcpy clears it to receive Type 2 ACK/NAK and CRC_A.
_RX_MODE = 0x6303
_REGISTER_DEFAULTS = {0x6302: 0x80, 0x6303: 0x80, 0x6305: 0x00}


class SyntaxFault(Exception):
    """A command the chip cannot parse: answered with the application level error frame."""


def information_frame(data, tfi=TFI_CHIP):
    """The frame carrying TFI + `data`, built from UM0701-02 6.2.1.1/6.2.1.2 (own code on purpose:
    an implementation of its own catches what a shared one would hide)."""
    body = bytes([tfi]) + bytes(data)
    n = len(body)
    if n <= 255:
        head = bytes([0, 0, 0xFF, n, (0x100 - n) & 0xFF])
    else:
        hi, lo = n >> 8, n & 0xFF
        head = bytes([0, 0, 0xFF, 0xFF, 0xFF, hi, lo, (0x100 - hi - lo) & 0xFF])
    return head + body + bytes([(0x100 - sum(body)) & 0xFF, 0])


def crc_a(data):
    """ISO/IEC 14443-3 CRC_A (initial 6363h, reflected polynomial 8408h), low byte first."""
    crc = 0x6363
    for b in data:
        b ^= crc & 0xFF
        b ^= (b << 4) & 0xFF
        crc = (crc >> 8) ^ (b << 8) ^ (b << 3) ^ (b >> 4)
    return bytes([crc & 0xFF, crc >> 8])


class HostFrames:
    """Splits the bytes from the host into frames: ("ack",), ("nack",), ("info", data) with
    data = PD0..PDn, or ("bad", why) for a frame the chip ignores. Bytes outside frames
    (preambles, postambles, the HSU wake-up 55 55 00 ...) are skipped."""

    def __init__(self):
        self.buf = bytearray()

    def feed(self, data):
        self.buf += data

    def frames(self):
        out = []
        while True:
            got = self._one()
            if got is None:
                return out
            out.append(got)

    def _one(self):
        buf = self.buf
        i = buf.find(b"\x00\xff")
        if i < 0:
            # keep a trailing 00: it may be the first half of a start code
            del buf[:len(buf) - 1 if buf.endswith(b"\x00") else len(buf)]
            return None
        del buf[:i]
        if len(buf) < 4:
            return None
        ln, lcs = buf[2], buf[3]
        if ln == 0x00 and lcs == 0xFF:
            del buf[:4]
            return ("ack",)
        if ln == 0xFF and lcs == 0x00:
            del buf[:4]
            return ("nack",)
        if ln == 0xFF and lcs == 0xFF:
            if len(buf) < 7:
                return None
            hi, lo, xlcs = buf[4], buf[5], buf[6]
            if (hi + lo + xlcs) & 0xFF:
                del buf[:2]  # hunt again from the byte after the start code
                return ("bad", "extended LCS")
            n, start = (hi << 8) | lo, 7
        elif (ln + lcs) & 0xFF:
            del buf[:2]
            return ("bad", "LCS")
        else:
            n, start = ln, 4
        if n == 0 or n > MAX_DATA + 1:
            del buf[:2]
            return ("bad", "length %d" % n)
        if len(buf) < start + n + 1:
            return None
        body = bytes(buf[start:start + n])
        dcs = buf[start + n]
        if (sum(body) + dcs) & 0xFF:
            del buf[:2]
            return ("bad", "DCS")
        del buf[:start + n + 1]
        if body[0] != TFI_HOST:
            return ("bad", "TFI %02X" % body[0])
        return ("info", body[1:])


class _Target:
    """A card the chip has listed: its number, the card, and whether it is still reachable."""

    def __init__(self, tg, card, presence):
        self.tg = tg
        self.card = card
        self.presence = presence  # the field's presence token when the card was listed
        self.selected = True
        self.chained_out = bytearray()  # host data sent with MI, not yet complete
        self.chained_in = b""  # card answer not yet given to the host
        self.block = 0  # ISO-DEP block number, for the minimal block layer


class PN532Sim(LoopbackServer):
    """The simulated PN532 on a loopback TCP port (`port`), one host connection at a time."""

    def __init__(self, host="127.0.0.1", attempt_time=0.003, max_answer=MAX_ANSWER, seed=532):
        LoopbackServer.__init__(self, "pn532sim", host)
        self.attempt_time = attempt_time  # seconds per passive activation attempt
        self.max_answer = max_answer  # card bytes per InDataExchange answer before MI chaining
        self._rng = random.Random(seed)
        self._conn = None
        self.reset()

    # -- life cycle -------------------------------------------------------------
    def reset(self):
        """The chip after power-on: no targets, default settings, empty field, log cleared."""
        with self._lock:
            self.cards = []  # in the field, in the order they came
            self._presence = 0  # changes whenever the field changes
            self._targets = []
            self._max_retries = 0xFF  # MxRtyPassiveActivation: the chip's default, for ever
            self._auto_rats = True  # SetParameters fAutomaticRATS (bit 4), on by default
            self._rf_on = False
            self._registers = dict(_REGISTER_DEFAULTS)
            self._faults = []
            self._pull_after = None
            self._pending = None  # (code, deadline or None) of a command still running
            self._last_answer = None
            self.ignored = []  # why frames were ignored (bad checksum, TFI ...)
            self.cancelled = []  # codes of commands the host cancelled with an ACK
            self.nacks = 0  # NACKs received from the host
            self.commands = []  # every command received: its data PD0..PDn
            # InListPassiveTarget answers: what the reader has seen of the field, for tests
            # that must wait until it noticed a card come or go (never a fixed sleep)
            self.polls_found = 0  # a card (or two) listed
            self.polls_empty = 0  # no card answered
            self._log = []
            self._rx_count = 0  # bytes received not yet given to a command
            self.bytes_in = 0
            self.bytes_out = 0
            self.parser = HostFrames()

    def _sockets(self):
        return (self._conn,)

    # -- the field and the faults (thread-safe) ----------------------------------
    def tap(self, card, pull_after=None):
        """`card` comes into the field (alone, unless another is already there); with
        `pull_after`, it leaves again after that many exchanges (see pull_after())."""
        with self._lock:
            if hasattr(card, "enter_field"):
                card.enter_field()  # a phone draws a new random UID each time
            self.cards.append(card)
            self._presence += 1
            self._pull_after = pull_after  # at once: a reader may start reading it now
        self._wake()

    def tap_two(self, a, b):
        """Two cards at once (a shopper's wallet)."""
        with self._lock:
            self.cards = []
        self.tap(a)
        self.tap(b)

    def remove(self):
        """Every card leaves the field; listed targets stop answering (status 01)."""
        with self._lock:
            self.cards = []
            self._presence += 1
            self._pull_after = None

    def pull_after(self, n):
        """The cards leave after `n` more exchanges with a target; the next one times out."""
        with self._lock:
            self._pull_after = n

    def inject(self, kind):
        """A fault for the next command (several queue up, one per command)."""
        if kind not in FAULTS:
            raise ValueError("fault %r: one of %s" % (kind, ", ".join(FAULTS)))
        with self._lock:
            self._faults.append(kind)
        self._wake()

    def clear_faults(self):
        """Forget the faults injected and not yet used (a test that ended before its fault came)."""
        with self._lock:
            self._faults = []

    @property
    def log(self):
        """(command code, bytes in, bytes out) per command, oldest first."""
        with self._lock:
            return [tuple(e) for e in self._log]

    @property
    def max_retries(self):
        return self._max_retries

    def targets(self):
        """(Tg, card) of the listed targets."""
        with self._lock:
            return [(t.tg, t.card) for t in self._targets]

    # -- in-process command layer -------------------------------------------------
    def handle(self, data):
        """Runs one command (PD0..PDn, no framing) and returns PD0..PDn of the answer, or
        None when the chip would keep waiting (InListPassiveTarget with no card and
        MaxRetries FF). Raises SyntaxFault for a malformed command."""
        with self._lock:
            return self._run(bytes(data))

    # -- server ---------------------------------------------------------------------
    def _on_error(self):
        self._drop_conn()

    def _drop_conn(self):
        if self._conn is not None:
            try:
                self._conn.close()
            except OSError:
                pass
            self._conn = None

    def _loop_once(self):
        socks = [self._srv, self._wake_r] + ([self._conn] if self._conn else [])
        timeout = None
        with self._lock:
            if self._pending is not None and self._pending[1] is not None:
                timeout = max(0.0, self._pending[1] - time.monotonic())
        ready, _, _ = select.select(socks, [], [], timeout)
        if self._stopping:
            return
        if self._wake_r in ready:
            self._wake_r.recv(4096)
        if self._srv in ready:
            conn, _ = self._srv.accept()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._drop_conn()  # a new connection is a board that restarted
            self._conn = conn
            with self._lock:
                self.parser = HostFrames()
                self._pending = None
        if self._conn is not None and self._conn in ready:
            try:
                data = self._conn.recv(4096)
            except OSError:  # reset by the host (a board that died with bytes unread)
                data = b""
            if not data:
                self._drop_conn()
                return
            with self._lock:
                self.bytes_in += len(data)
                self._rx_count += len(data)
                self.parser.feed(data)
                for f in self.parser.frames():
                    self._on_frame(f)
        with self._lock:
            self._poll_pending()

    def _send(self, data, entry=None, split=False):
        if self._conn is None:
            return
        self.bytes_out += len(data)
        if entry is not None:
            entry[2] += len(data)
        try:
            if split:
                for i in range(len(data)):
                    self._conn.sendall(data[i:i + 1])
                    time.sleep(0.001)  # the "split" fault itself (a byte at a time), not a wait
            else:
                self._conn.sendall(data)
        except OSError:
            self._drop_conn()

    def _on_frame(self, f):
        kind = f[0]
        entry = self._log[-1] if self._log else None
        if kind == "ack":
            if entry is not None:  # a cancel belongs to the command it cancels
                entry[1] += self._rx_count
                self._rx_count = 0
            if self._pending is not None:
                self.cancelled.append(self._pending[0])
                self._pending = None
            return
        if kind == "nack":
            self.nacks += 1
            if entry is not None:
                entry[1] += self._rx_count
                self._rx_count = 0
            if self._last_answer is not None:
                self._send(self._last_answer, entry)
            return
        if kind == "bad":
            self.ignored.append(f[1])
            return
        data = f[1]
        self.commands.append(data)
        entry = [data[0] if data else -1, self._rx_count, 0]
        self._rx_count = 0
        self._log.append(entry)
        self._pending = None  # a new command aborts the one in progress
        fault = self._faults.pop(0) if self._faults else None
        if fault in ("lost_ack", "nack"):
            if fault == "nack":
                self._send(NACK, entry)
            return
        if fault == "stale":
            old = self._last_answer or information_frame(b"\x03" + FIRMWARE)
            self._send(old, entry)
        if fault == "garbage":
            noise = bytes(self._rng.randrange(1, 256) for _ in range(self._rng.randrange(3, 12)))
            self._send(noise, entry)
        self._send(ACK, entry)
        if fault == "timeout":
            self._pending = (data[0] if data else -1, None, entry, None)
            return
        self._execute(data, entry, fault)

    def _execute(self, data, entry, fault):
        try:
            answer = self._run(data)
        except SyntaxFault:
            frame = ERROR
        else:
            if answer is None:  # waiting for a card: _poll_pending answers later
                return
            frame = information_frame(answer)
        self._answer(frame, entry, fault)

    def _answer(self, frame, entry, fault=None):
        self._last_answer = frame
        if fault == "bad_checksum":
            frame = frame[:-2] + bytes([(frame[-2] + 1) & 0xFF]) + frame[-1:]
        self._send(frame, entry, split=(fault == "split"))

    def _poll_pending(self):
        """A waiting InListPassiveTarget: answer when a card came or the retries ran out."""
        p = self._pending
        if p is None or p[3] is None:
            return
        code, deadline, entry, args = p
        found = self._list(*args)
        if found is None and (deadline is None or time.monotonic() < deadline):
            return
        self._pending = None
        self._count_poll(found)
        self._answer(information_frame(found if found is not None else b"\x4b\x00"), entry)

    def _count_poll(self, found):
        if found is None:
            self.polls_empty += 1
        else:
            self.polls_found += 1

    # -- commands -----------------------------------------------------------------
    def _run(self, data):
        if not data:
            raise SyntaxFault()
        code, p = data[0], data[1:]
        if code == GET_FIRMWARE_VERSION and not p:
            return b"\x03" + FIRMWARE
        if code == SAM_CONFIGURATION and 1 <= len(p) <= 3 and 1 <= p[0] <= 4:
            return b"\x15"
        if code == RF_CONFIGURATION and p and _RF_ITEMS.get(p[0]) == len(p) - 1:
            return self._rf_configuration(p)
        if code == IN_LIST_PASSIVE_TARGET:
            return self._in_list_passive_target(p)
        if code == IN_DATA_EXCHANGE and p:
            return self._in_data_exchange(p[0], p[1:])
        if code == IN_COMMUNICATE_THRU and p:
            return b"\x43" + self._thru(p)
        if code in (IN_DESELECT, IN_RELEASE, IN_SELECT) and len(p) == 1:
            return bytes([code + 1, self._target_state(code, p[0])])
        if code == DIAGNOSE and p and p[0] == 0x00:
            return b"\x01" + p  # communication line test: the data comes back
        if code == SET_PARAMETERS and len(p) == 1:
            self._auto_rats = bool(p[0] & 0x10)
            return b"\x13"
        if code == SET_SERIAL_BAUDRATE and len(p) == 1 and p[0] <= 8:
            return b"\x11"
        if code == POWER_DOWN and len(p) in (1, 2):
            return b"\x17\x00"
        if code == READ_REGISTER and p and len(p) % 2 == 0:
            regs = [(p[i] << 8) | p[i + 1] for i in range(0, len(p), 2)]
            return b"\x07" + bytes(self._registers.get(r, 0) for r in regs)
        if code == WRITE_REGISTER and p and len(p) % 3 == 0:
            for i in range(0, len(p), 3):
                self._registers[(p[i] << 8) | p[i + 1]] = p[i + 2]
            return b"\x09"
        raise SyntaxFault()

    def _rf_configuration(self, p):
        item = p[0]
        if item == 0x01:
            self._rf_on = bool(p[1] & 0x01)
            if not self._rf_on:  # no field: the cards lose power and forget their state
                self._presence += 1
        elif item == 0x05:
            self._max_retries = p[3]
        return b"\x33"

    def _in_list_passive_target(self, p):
        if len(p) < 2 or not 1 <= p[0] <= 2 or p[1] > 4:
            raise SyntaxFault()
        max_tg, brty, uid = p[0], p[1], p[2:]
        if brty == 0 and uid:
            uid = _strip_cascade(uid)
        self._targets = []  # a new list releases the old targets
        self._rf_on = True
        # the firmware sets the CIU up for 106 kbps type A with CRC on both ways (nfcpy
        # turns the receive CRC off after it, to see a Type 2 tag's ACK and NAK)
        self._registers[0x6302] = self._registers.get(0x6302, 0) | 0x80
        self._registers[_RX_MODE] = self._registers.get(_RX_MODE, 0) | 0x80
        found = self._list(max_tg, brty, uid)
        if found is not None:
            self._count_poll(found)
            return found
        if self._max_retries == 0xFF:
            self._pending = (IN_LIST_PASSIVE_TARGET, None, self._log[-1] if self._log else None,
                             (max_tg, brty, uid))
            return None
        # each attempt takes attempt_time; a card tapped meanwhile is still found
        deadline = time.monotonic() + (self._max_retries + 1) * self.attempt_time
        self._pending = (IN_LIST_PASSIVE_TARGET, deadline, self._log[-1] if self._log else None,
                         (max_tg, brty, uid))
        return None

    def _list(self, max_tg, brty, uid):
        """The InListPassiveTarget answer when cards answer, else None."""
        if brty != 0:
            return None  # only 106 kbps type A cards are simulated
        cards = [c for c in self.cards if not uid or bytes(c.uid) == uid][:max_tg]
        if not cards:
            return None
        out = bytearray([0x4B, len(cards)])
        self._targets = []
        for i, card in enumerate(cards):
            t = _Target(i + 1, card, self._presence)
            self._targets.append(t)
            out.append(t.tg)
            out += bytes(card.atqa)
            out.append(card.sak)
            out.append(len(card.uid))
            out += bytes(card.uid)
            if card.sak & 0x20 and card.ats is not None and self._auto_rats:
                out += bytes(card.ats)  # the ATS starts with its length byte TL
        return bytes(out)

    def _target(self, tg):
        for t in self._targets:
            if t.tg == tg:
                return t
        return None

    def _target_state(self, code, tg):
        if tg == 0 and code in (IN_RELEASE, IN_DESELECT):
            targets = list(self._targets)
        else:
            t = self._target(tg)
            if t is None:
                return WRONG_CONTEXT  # chosen: no such target listed
            targets = [t]
        for t in targets:
            if code == IN_RELEASE:
                self._targets.remove(t)
            else:
                t.selected = code == IN_SELECT
        return OK

    def _reachable(self, t):
        """Counts one exchange with `t`; False when its card is gone (status 01)."""
        if t.presence != self._presence or t.card not in self.cards:
            return False
        if self._pull_after is not None:
            if self._pull_after <= 0:
                self.cards = []  # the card is pulled away now
                self._presence += 1
                self._pull_after = None
                return False
            self._pull_after -= 1
        return True

    def _in_data_exchange(self, tg_byte, out):
        tg, more = tg_byte & 0x3F, tg_byte & MI
        t = self._target(tg)
        if t is None or not t.selected:
            return bytes([0x41, WRONG_CONTEXT])
        if not more and not out and t.chained_in:
            # the host asks for the rest of an answer that did not fit (MI chaining)
            return b"\x41" + self._chunk(t)
        t.chained_in = b""
        if not self._reachable(t):
            t.chained_out = bytearray()
            return bytes([0x41, TIMEOUT])
        if more:  # the host chains: the rest of the command follows
            t.chained_out += out
            return bytes([0x41, OK])
        cmd = bytes(t.chained_out) + bytes(out)
        t.chained_out = bytearray()
        card = t.card
        if card.sak & 0x20 and hasattr(card, "apdu"):
            answer = card.apdu(cmd)
        elif hasattr(card, "answer"):
            answer = card.answer(cmd)
            if answer is not None and len(answer) == 1:  # a 4-bit ACK or NAK
                return bytes([0x41, OK if answer[0] == 0x0A else MIFARE_ERROR])  # chosen
        else:
            answer = None
        if answer is None:
            return bytes([0x41, TIMEOUT])
        t.chained_in = bytes(answer)
        return b"\x41" + self._chunk(t)

    def _chunk(self, t):
        part, rest = t.chained_in[:self.max_answer], t.chained_in[self.max_answer:]
        t.chained_in = rest
        return bytes([MI if rest else OK]) + part

    def _thru(self, out):
        """InCommunicateThru: raw bytes to the selected target; status + its answer."""
        t = self._targets[0] if self._targets else None
        if t is None or not t.selected:
            # no target listed: nothing was activated, so nothing in the field answers
            return bytes([TIMEOUT])
        if not self._reachable(t):
            return bytes([TIMEOUT])
        card = t.card
        crc_on = bool(self._registers.get(_RX_MODE, 0x80) & 0x80)
        if card.sak & 0x20 and hasattr(card, "apdu"):
            answer = self._iso_dep_block(t, bytes(out))
        elif hasattr(card, "answer"):
            answer = card.answer(bytes(out))
        else:
            answer = None
        if answer is None:
            return bytes([TIMEOUT])
        answer = bytes(answer)
        if len(answer) == 1:  # a 4-bit ACK or NAK carries no CRC
            return bytes([CRC_ERROR]) if crc_on else bytes([OK]) + answer
        if len(answer) > MAX_ANSWER:
            return bytes([BUFFER])  # chosen: over the chip's buffer
        if not crc_on:
            answer += crc_a(answer)  # the host asked for the CRC_A bytes too
        return bytes([OK]) + answer

    def _iso_dep_block(self, t, block):
        """The minimal ISO-DEP block layer (ISO/IEC 14443-4) that nfcpy uses through
        InCommunicateThru: RATS, I-blocks without chaining, DESELECT."""
        if not block:
            return None
        pcb = block[0]
        if pcb == 0xE0:  # RATS: the card answers with its ATS
            return bytes(t.card.ats) if t.card.ats is not None else None
        if pcb & 0xE2 == 0x02 and not pcb & 0x10:  # I-block, no chaining
            skip = 1 + (1 if pcb & 0x08 else 0) + (1 if pcb & 0x04 else 0)
            answer = t.card.apdu(block[skip:])
            return bytes(block[:skip]) + bytes(answer)
        if pcb & 0xF7 == 0xC2:  # S(DESELECT)
            return block
        return None


def _strip_cascade(uid):
    """The UID of InListPassiveTarget's InitiatorData with its cascade tags (88) taken out."""
    uid = bytes(uid)
    if len(uid) == 4:
        return uid
    if len(uid) == 8 and uid[0] == 0x88:
        return uid[1:]
    if len(uid) == 12 and uid[0] == 0x88 and uid[4] == 0x88:
        return uid[1:4] + uid[5:]
    raise SyntaxFault()
