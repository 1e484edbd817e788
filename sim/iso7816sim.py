"""A contact smart card in a TDA8024-like slot, simulated: ISO/IEC 7816-3 bytes on a TCP socket.

What it is for: the simulated board's contact slot (sim/board/simslot.py) talks to
this as if it were the interface chip and the card, so the slot, T=0 and T=1 code that runs
in tests and in the demo is the code that runs on the ESP32 (DESIGN.md section 5). Cards
are models put into and taken out of the slot by the test or the demo; the loyalty applet
underneath is sim/cardmodels.py's AppletCard:

    sim = ContactSim().start()                     # sim.port: the board's line and pins
    sim.insert(ContactCard.t0(applet))             # T=0, direct convention
    sim.insert(ContactCard.t1(applet, crc=True))   # T=1, TA1 13 (PPS), IFSC 32, CRC
    sim.insert(ContactCard.t0(applet, inverse=True, slow=True))
    sim.pull_after(12)                             # out after 12 more bytes from the reader
    sim.insert(card, pull_after=12)                # the same, before the reader can start on it
    sim.remove(); sim.stop()

The wire (see simslot.py): a connection whose first byte is b"L" is the I/O line, b"C"
the pins. Every byte the reader sends on the line comes back to it (the half-duplex line
is one wire: the reader's UART hears itself), card or no card. Pins from the board: V
(CMDVCCN, 0 powers the card), R (RSTIN), K (clock running); to the board: P (PRES, 1 with a
card) and F (OFFN, 0 with no card or when the card is powered down by its removal).

What the cards do (7816-3): the ATR after RST rises with VCC and clock on; PPS (echoed when
the card takes it; `pps="mute"` ignores it); T=0 (clause 10): procedure bytes ACK (INS),
one byte at a time (~INS, `ack_each=True`), NULL (60) while slow, 61xx after case 4
commands and GET RESPONSE, 6Cxx for a GET RESPONSE with the wrong Le; T=1 (clause 11):
chaining both ways (`out_block` bytes per I-block sent), R-blocks, S(IFS), S(RESYNCH),
S(WTX) while slow, S(ABORT) answered; LRC or CRC. Faults for T=1, one per
`inject(kind)`: "bad_edc" (the card's next block has a wrong check), "drop" (the card
ignores the reader's next block).

Not modelled: electrical timing (guard times, rates: PPS is only recorded), parity errors
and T=0 character repetition, warm-reset differences, class B/C voltages.
"""
import select
import socket
import time

from loyalty.sim.loopserver import LoopbackServer

from loyalty.sim.cardmodels import AppletCard  # noqa: F401  (the applet the cards carry)

NULL = 0x60
FAULTS = ("bad_edc", "drop")


def _inverse(b):
    r = 0
    for i in range(8):
        if b & (1 << i):
            r |= 0x80 >> i
    return r ^ 0xFF


INVERSE = bytes(_inverse(b) for b in range(256))  # its own inverse


def lrc(data):
    x = 0
    for b in data:
        x ^= b
    return x


def crc16(data):
    """CRC-16 with polynomial 1021 reflected (8408), initial FFFF, no final XOR (OpenCT's and
    pcsc-lite ccid's T=1 CRC), high byte first."""
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return bytes([crc >> 8, crc & 0xFF])


def build_atr(protocol, ta1=None, wi=None, ifsc=None, bwi=None, cwi=None, crc=False,
              historical=b"SCONTO", inverse=False):
    """An ATR written from 7816-3 clause 8: TS, T0, TA1, TD1, TC2 (T=0's WI), then for T=1 TD2
    and TA3 (IFSC), TB3 (BWI/CWI), TC3 (CRC), the historical bytes and TCK (not for T=0)."""
    groups = [{}]
    if ta1 is not None:
        groups[0]["a"] = ta1
    if protocol == 0:
        if wi is not None:
            groups.append({"c": wi})
    else:
        groups.append({})
        t1 = {}
        if ifsc is not None:
            t1["a"] = ifsc
        if bwi is not None:
            t1["b"] = (bwi << 4) | (cwi if cwi is not None else 13)
        if crc:
            t1["c"] = 1
        groups.append(t1)
    out = bytearray([0x3F if inverse else 0x3B, 0])
    ys = []
    for g in groups:
        ys.append(sum(bit for key, bit in (("a", 1), ("b", 2), ("c", 4)) if key in g))
    for i in range(len(groups) - 1):
        ys[i] |= 8
    out[1] = (ys[0] << 4) | len(historical)
    for i, g in enumerate(groups):
        for key in "abc":
            if key in g:
                out.append(g[key])
        if i + 1 < len(groups):
            out.append((ys[i + 1] << 4) | protocol)
    out += historical
    if protocol != 0:
        out.append(lrc(out[1:]))
    return bytes(out)


class ContactCard:
    """A contact card: its ATR and protocol, how it behaves, and the applet it runs."""

    def __init__(self, applet, protocol, atr, inverse=False, slow=False, pps="echo",
                 ack_each=False, out_block=None, crc=False, ifsc=32, slow_delay=0.6):
        self.applet = applet
        self.protocol = protocol
        self.atr = atr
        self.inverse = inverse
        self.slow = slow
        self.pps = pps
        self.ack_each = ack_each
        self.out_block = out_block
        self.crc = crc
        self.ifsc = ifsc
        self.slow_delay = slow_delay  # seconds a slow card thinks before answering

    @classmethod
    def t0(cls, applet, inverse=False, slow=False, ack_each=False, wi=10, ta1=None, **kw):
        return cls(applet, 0, build_atr(0, ta1=ta1, wi=wi, inverse=inverse), inverse, slow,
                   ack_each=ack_each, **kw)

    @classmethod
    def t1(cls, applet, crc=False, slow=False, ifsc=32, ta1=0x13, out_block=16, bwi=2, **kw):
        atr = build_atr(1, ta1=ta1, ifsc=ifsc, bwi=bwi, cwi=5, crc=crc)
        return cls(applet, 1, atr, slow=slow, out_block=out_block, crc=crc, ifsc=ifsc, **kw)


class _T0Engine:
    """The card's side of T=0: headers in, procedure bytes and data out."""

    def __init__(self, sim, card):
        self.sim, self.card = sim, card
        self.head = bytearray()
        self.data = bytearray()
        self.want = 0  # data bytes still expected from the reader
        self.pending = b""  # answer data waiting for GET RESPONSE

    def feed(self, b):
        if self.want:
            self.data.append(b)
            self.want -= 1
            if self.want and self.card.ack_each:
                self.sim.emit(bytes([self.head[1] ^ 0xFF]))
            if not self.want:
                self._run()
            return
        self.head.append(b)
        if len(self.head) < 5:
            return
        ins, p3 = self.head[1], self.head[4]
        if ins == 0xC0:
            self._get_response(p3 or 256)
            return
        if p3 == 0:
            self._run()
            return
        self.want = p3
        self.data = bytearray()
        self.sim.emit(bytes([ins ^ 0xFF if self.card.ack_each else ins]))

    def _get_response(self, le):
        ins = self.head[1]
        self.head = bytearray()
        if not self.pending:
            self.sim.emit(b"\x6f\x00")
        elif le != len(self.pending):
            self.sim.emit(bytes([0x6C, len(self.pending) & 0xFF]))
        else:
            self.sim.emit(bytes([ins]) + self.pending + b"\x90\x00")
            self.pending = b""

    def _run(self):
        cmd = bytes(self.head) + bytes(self.data)
        self.head = bytearray()
        self.data = bytearray()
        answer = self.card.applet.apdu(cmd)
        delay = 0.0
        if self.card.slow:
            # NULL bytes, each well within WT, together longer than it
            for _ in range(3):
                delay += self.card.slow_delay / 2
                self.sim.emit(bytes([NULL]), delay)
        body, sw = answer[:-2], answer[-2:]
        if body and sw == b"\x90\x00":
            self.pending = body
            self.sim.emit(bytes([0x61, len(body) & 0xFF]), delay)
        else:
            self.sim.emit(sw, delay)


class _T1Engine:
    """The card's side of T=1: blocks in, blocks out."""

    def __init__(self, sim, card):
        self.sim, self.card = sim, card
        self.buf = bytearray()
        self.ns = 0  # N(S) of the card's next I-block
        self.nr = 0  # N(S) expected from the reader
        self.ifsd = 32
        self.chain = bytearray()
        self.out = b""  # answer not yet sent
        self.last = b""  # the last block sent, for retransmission
        self.waiting_wtx = None  # the answer held back until S(WTX response)

    def _edc(self, block):
        return crc16(block) if self.card.crc else bytes([lrc(block)])

    def send(self, pcb, inf=b"", delay=0.0):
        block = bytes([0, pcb, len(inf)]) + bytes(inf)
        block += self._edc(block)
        self.last = block
        if self.sim.take_fault("bad_edc"):
            block = block[:-1] + bytes([block[-1] ^ 0x55])
        self.sim.emit(block, delay)

    def feed(self, b):
        self.buf.append(b)
        n = 3 + (self.buf[2] if len(self.buf) >= 3 else 0) + (2 if self.card.crc else 1)
        if len(self.buf) < max(4, n):
            return
        block, self.buf = bytes(self.buf), bytearray()
        if self.sim.take_fault("drop"):
            return
        body, edc = block[:-2 if self.card.crc else -1], block[-2 if self.card.crc else -1:]
        if self._edc(body) != edc:
            self.send(0x80 | (self.nr << 4) | 1)
            return
        self._block(body[1], body[3:])

    def _block(self, pcb, inf):
        if pcb & 0x80 == 0:  # I-block
            if (pcb >> 6) & 1 != self.nr:
                self.sim.emit(self.last)  # the reader missed our answer and repeats
                return
            self.nr ^= 1
            self.chain += inf
            if pcb & 0x20:
                self.send(0x80 | (self.nr << 4))  # next part, please
                return
            answer = self.card.applet.apdu(bytes(self.chain))
            self.chain = bytearray()
            if self.card.slow:
                self.waiting_wtx = answer
                self.send(0xC3, b"\x03")  # S(WTX request): three times BWT
                return
            self._answer(answer)
        elif pcb & 0xC0 == 0x80:  # R-block
            if self.out and (pcb >> 4) & 1 == self.ns:
                self._next_part()
            else:
                self.sim.emit(self.last)
        else:  # S-block
            kind = pcb & 0x1F
            if pcb & 0x20:
                if kind == 3 and self.waiting_wtx is not None:
                    answer, self.waiting_wtx = self.waiting_wtx, None
                    self._answer(answer, self.card.slow_delay)
                return
            if kind == 0:
                self.ns = self.nr = 0
                self.ifsd = 32
                self.chain = bytearray()
                self.out = b""
                self.send(0xE0)
            elif kind == 1 and len(inf) == 1:
                self.ifsd = inf[0]
                self.send(0xE1, inf)
            elif kind == 2:
                self.chain = bytearray()
                self.send(0xE2)

    def _answer(self, answer, delay=0.0):
        self.out = bytes(answer)
        self._next_part(delay)

    def _next_part(self, delay=0.0):
        size = min(self.ifsd, self.card.out_block or 254)
        part, self.out = self.out[:size], self.out[size:]
        self.send((self.ns << 6) | (0x20 if self.out else 0), part, delay)
        self.ns ^= 1


class ContactSim(LoopbackServer):
    """The simulated slot on a loopback TCP port (`port`): one board at a time."""

    def __init__(self, host="127.0.0.1"):
        LoopbackServer.__init__(self, "iso7816sim", host, backlog=4)
        self._line = self._pins = None
        self._new = []  # connections that have not said what they are
        self.card = None
        self._pins_in = {"V": 1, "R": 0, "K": 0}
        self._pin_buf = bytearray()
        self._reset_card_state()
        self.log = []  # ("reader" | "card", logical bytes)
        self.activations = 0
        self.pps = []  # PPS requests seen (logical bytes)
        self._faults = []
        self._pull = None
        self._queue = []  # (due time, raw bytes) the card is about to send

    def _reset_card_state(self):
        self._engine = None
        self._mode = None  # "pps?" right after the ATR, then "t0" / "t1"
        self._pps_buf = bytearray()

    # -- life cycle ---------------------------------------------------------------------------
    def _sockets(self):
        return [self._line, self._pins] + self._new

    # -- the slot (thread-safe) ----------------------------------------------------------------
    def insert(self, card, pull_after=None):
        """`card` goes into the slot; with `pull_after`, it is taken out again after that
        many bytes from the reader (see pull_after())."""
        with self._lock:
            self.card = card
            self._pull = pull_after  # at once: the reader may start on the card now
            self._reset_card_state()
            self._send_pins()
        self._wake()

    def remove(self):
        with self._lock:
            self.card = None
            self._pull = None
            self._queue = []
            self._reset_card_state()
            self._send_pins()
        self._wake()

    def pull_after(self, n):
        """The card is taken out after `n` more bytes from the reader."""
        with self._lock:
            self._pull = n

    def inject(self, kind):
        if kind not in FAULTS:
            raise ValueError("fault %r: one of %s" % (kind, ", ".join(FAULTS)))
        with self._lock:
            self._faults.append(kind)

    def take_fault(self, kind):
        if self._faults and self._faults[0] == kind:
            self._faults.pop(0)
            return True
        return False

    @property
    def powered(self):
        with self._lock:
            return self._powered()

    def _powered(self):
        return self.card is not None and self._pins_in["V"] == 0

    # -- what the card sends -------------------------------------------------------------------
    def emit(self, data, delay=0.0):
        """The card sends `data` (logical bytes) after `delay` seconds (after what it queued)."""
        raw = bytes(data)
        if self.card is not None and self.card.inverse:
            raw = bytes(INVERSE[b] for b in raw)
        due = time.monotonic() + delay
        if self._queue:
            due = max(due, self._queue[-1][0])
        self._queue.append((due, raw, bytes(data)))
        self._wake()

    def _flush(self):
        now = time.monotonic()
        while self._queue and self._queue[0][0] <= now:
            _, raw, logical = self._queue.pop(0)
            if not self._powered():
                continue
            self.log.append(("card", logical))
            self._send(self._line, raw)

    # -- server --------------------------------------------------------------------------------
    def _send(self, conn, data):
        if conn is None:
            return
        try:
            conn.sendall(data)
        except OSError:
            pass

    def _send_pins(self):
        present = 1 if self.card is not None else 0
        self._send(self._pins, bytes([ord("P"), present, ord("F"), present]))

    def _loop_once(self):
        socks = [self._srv, self._wake_r] + self._new + [s for s in (self._line, self._pins) if s]
        with self._lock:
            timeout = None
            if self._queue:
                timeout = max(0.0, self._queue[0][0] - time.monotonic())
        ready, _, _ = select.select(socks, [], [], timeout)
        if self._stopping:
            return
        with self._lock:
            if self._wake_r in ready:
                self._wake_r.recv(4096)
            if self._srv in ready:
                conn, _ = self._srv.accept()
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._new.append(conn)
            fresh = []
            for conn in list(self._new):
                if conn in ready:
                    self._new.remove(conn)
                    self._hello(conn)
                    fresh.append(conn)  # what follows its first byte is read next time round
            if self._pins is not None and self._pins in ready and self._pins not in fresh:
                self._on_pins(self._recv(self._pins, "_pins"))
            if self._line is not None and self._line in ready and self._line not in fresh:
                self._on_line(self._recv(self._line, "_line"))
            self._flush()

    def _recv(self, conn, name):
        try:
            data = conn.recv(4096)
        except OSError:
            data = b""
        if not data:
            conn.close()
            setattr(self, name, None)
        return data

    def _hello(self, conn):
        try:
            first = conn.recv(1)
        except OSError:
            first = b""
        if first == b"L":
            if self._line is not None:
                self._line.close()  # a new board replaces the old one
            self._line = conn
        elif first == b"C":
            if self._pins is not None:
                self._pins.close()
            self._pins = conn
            self._pins_in = {"V": 1, "R": 0, "K": 0}
            self._send_pins()
            self._pin_buf = bytearray()
        else:
            conn.close()

    def _on_pins(self, data):
        self._pin_buf += data
        while len(self._pin_buf) >= 2:
            name, level = chr(self._pin_buf[0]), self._pin_buf[1]
            del self._pin_buf[:2]
            was = dict(self._pins_in)
            self._pins_in[name] = level
            if name == "V" and level == 1 and was["V"] == 0:
                self._queue = []  # deactivated: the card stops
                self._reset_card_state()
            if name == "R" and level == 0:
                self._queue = []
                self._reset_card_state()
            if name == "R" and level == 1 and was["R"] == 0 and self._powered() and self._pins_in["K"]:
                self._answer_to_reset()

    def _answer_to_reset(self):
        self.activations += 1
        self._reset_card_state()
        self._mode = "pps?"
        self.emit(self.card.atr, 0.001)

    def _on_line(self, data):
        if not data:
            return
        self._send(self._line, data)  # the reader hears itself: one wire
        for raw in data:
            if not self._powered():
                continue
            b = INVERSE[raw] if self.card.inverse else raw
            self.log.append(("reader", bytes([b])))
            if self._pull is not None:
                self._pull -= 1
                if self._pull <= 0:
                    self.card = None
                    self._pull = None
                    self._queue = []
                    self._reset_card_state()
                    self._send_pins()
                    return
            self._card_byte(b)

    def _card_byte(self, b):
        if self._mode == "pps?":
            if b == 0xFF or self._pps_buf:
                self._pps_buf.append(b)
                buf = self._pps_buf
                if len(buf) >= 2 and len(buf) == 3 + (buf[1] >> 4 & 1) + (buf[1] >> 5 & 1) + (buf[1] >> 6 & 1):
                    self.pps.append(bytes(buf))
                    if self.card.pps == "echo":
                        self.emit(bytes(buf))
                    self._pps_buf = bytearray()
                    self._start_protocol()
                return
            self._start_protocol()
        if self._engine is not None:
            self._engine.feed(b)

    def _start_protocol(self):
        self._mode = "t%d" % self.card.protocol
        self._engine = (_T0Engine if self.card.protocol == 0 else _T1Engine)(self, self.card)
