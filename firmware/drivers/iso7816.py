"""ISO/IEC 7816-3 for the reader's contact slot: the ATR, PPS, and the T=0 and T=1 protocols.

The ATR and PPS parts are bytes in, values out (`parse_atr`, `pps_request`, `pps_agreed`),
usable on their own by host tools too. The protocols talk to the card through a `Line`,
which wraps what the board gives (a UART-like object: `write(buf)`, `any()`,
`readinto(buf) -> n or None`) and takes care of the half-duplex I/O line: every byte the
reader sends comes back on its own receive pin and is checked and discarded here. The
inverse convention (TS 3F) is undone on the line, so the protocols see logical bytes.

    atr = parse_atr(raw)                  # atr.protocols, atr.historical, atr.tck_ok, atr.problems
    line = Line(uart)
    t0 = T0(line, wt_ms(atr, 4000000))    # or T1(line, atr, 4000000)
    answer = t0.transmit(b"\\x00\\xa4\\x04\\x00\\x08" + aid + b"\\x00")   # data + SW1 SW2

Errors are ProtocolError: card.mute (no answer in time), card.protocol (the card broke the
protocol, or retries and resynchronisation ran out), slot.fault (the line itself: an echo
that does not match). A card taken out mid-command shows up as card.mute here; the slot
(contactslot.py) tells the two apart by its presence pin.

Not done: character-level error signalling and repetition in T=0 (the card pulling the line
low in the guard time after a parity error; the UART reports a parity error at best), the
T=1 NAD addressing beyond NAD 00, extended-length APDUs.
"""
from protocol.compat import const
from protocol.errors import ProtocolError

from drivers import sleep_ms, ticks_diff, ticks_ms

# ISO/IEC 7816-3:2006 table 7 (Fi, by the high nibble of TA1) and table 8 (Di, low nibble);
# 0 marks RFU values
FI = (372, 372, 558, 744, 1116, 1488, 1860, 0, 0, 512, 768, 1024, 1536, 2048, 0, 0)
DI = (0, 1, 2, 4, 8, 16, 32, 64, 12, 20, 0, 0, 0, 0, 0, 0)

DIRECT = const(0x3B)
INVERSE = const(0x3F)
INVERSE_RAW = const(0x03)  # TS of an inverse-convention card as a direct UART reads it

_NULL = const(0x60)
_MAX_ANSWER = const(258)  # 256 data bytes and SW1 SW2: short APDUs only
_TX_MAX = const(261)  # the largest thing the reader sends at once: a T=1 block with CRC


def _inverse_table():
    # inverse convention (7816-3 8.1): line levels inverted and the most significant bit
    # first, so a direct-convention UART reads each byte bit-reversed and complemented
    t = bytearray(256)
    for b in range(256):
        r = 0
        for i in range(8):
            if b & (1 << i):
                r |= 0x80 >> i
        t[b] = r ^ 0xFF
    return bytes(t)


_INV = _inverse_table()


def inverse(data):
    """Bytes of the other convention: what a direct UART reads from an inverse card, and back."""
    return bytes(_INV[b] for b in data)


def _mute(what):
    return ProtocolError("card.mute", "card", what)


def _broken(what):
    return ProtocolError("card.protocol", "card", what)


# -- the ATR ------------------------------------------------------------------------------
class Atr:
    """A parsed answer-to-reset. `ta`, `tb`, `tc`, `td` are lists by group (index 0 is TA1
    ...); None where a byte is absent. `protocols` are the T values offered (T=15 carries
    global bytes, it is not a protocol), `historical` the historical bytes, `tck` the check
    byte or None, `tck_ok` True, False, or None when there is no TCK; `problems` what was
    wrong and tolerated (or, if `usable` is False, what makes the card unusable)."""

    def __init__(self):
        self.raw = b""
        self.convention = ""
        self.ta, self.tb, self.tc, self.td = [], [], [], []
        self.protocols = []
        self.historical = b""
        self.tck = None
        self.tck_ok = None
        self.extra = b""
        self.problems = []
        self.usable = False

    def _global(self, kind, group):
        # the first TAi/TBi/TCi with i > 2 after a TD(i-1) that says T=`group` (7816-3 8.2.3:
        # TA2 is global, TC2 belongs to T=0)
        row = (self.ta, self.tb, self.tc)[kind]
        for i in range(2, len(self.td) + 1):
            if i < len(row) and self.td[i - 1] is not None and self.td[i - 1] & 0x0F == group:
                return row[i]
        return None

    def fi_di(self):
        """(Fi, Di) from TA1, or the defaults (372, 1); card.atr for values 7816-3 reserves."""
        ta1 = self.ta[0] if self.ta else None
        if ta1 is None:
            return 372, 1
        fi, di = FI[ta1 >> 4], DI[ta1 & 0x0F]
        if not fi or not di:
            raise ProtocolError("card.atr", "TA1", "reserved Fi/Di in %02X" % ta1)
        return fi, di

    def specific(self):
        """The protocol TA2 fixes (specific mode: no PPS), or None (negotiable mode)."""
        ta2 = self.ta[1] if len(self.ta) > 1 else None
        return None if ta2 is None else ta2 & 0x0F

    def wi(self):
        """T=0's waiting time integer: TC2, default 10."""
        tc2 = self.tc[1] if len(self.tc) > 1 else None
        return tc2 if tc2 else 10

    def t1(self):
        """(IFSC, BWI, CWI, crc) for T=1: TA/TB/TC of the first group after T=1; defaults
        32, 4, 13 and LRC."""
        ifsc = self._global(0, 1)
        tb = self._global(1, 1)
        tc = self._global(2, 1)
        if ifsc is None or not 1 <= ifsc <= 254:
            ifsc = 32
        bwi, cwi = (4, 13) if tb is None else (tb >> 4, tb & 0x0F)
        return ifsc, bwi, cwi, bool(tc is not None and tc & 1)


def parse_atr(data):
    """An Atr from the ATR's bytes, as the line delivered them (TS 3B, 3F or 03: an inverse
    card read by a direct UART) or as a PC/SC reader reports them. Never raises on any
    bytes: what is wrong goes into `problems`, and `usable` says whether a reader can go on."""
    a = Atr()
    data = bytes(data)
    if data and data[0] == INVERSE_RAW:
        data = inverse(data)
    a.raw = data
    if len(data) < 2:
        a.problems.append("ATR shorter than TS and T0")
        return a
    if data[0] == DIRECT:
        a.convention = "direct"
    elif data[0] == INVERSE:
        a.convention = "inverse"
    else:
        a.problems.append("TS %02X is neither 3B nor 3F" % data[0])
        return a
    y = data[1] >> 4
    k = data[1] & 0x0F
    i = 2
    need_tck = False
    while True:
        ta = tb = tc = td = None
        if y & 1:
            ta, i = (data[i] if i < len(data) else None), i + 1
        if y & 2:
            tb, i = (data[i] if i < len(data) else None), i + 1
        if y & 4:
            tc, i = (data[i] if i < len(data) else None), i + 1
        if y & 8:
            td, i = (data[i] if i < len(data) else None), i + 1
        a.ta.append(ta)
        a.tb.append(tb)
        a.tc.append(tc)
        a.td.append(td)
        if i > len(data):
            a.problems.append("ATR ends inside the interface bytes")
            return a
        if td is None:
            break
        t = td & 0x0F
        if t != 0:
            need_tck = True  # 7816-3 8.2.5: TCK is there unless only T=0 is indicated
        if t != 15 and t not in a.protocols:
            a.protocols.append(t)
        y = td >> 4
    if not a.protocols:
        a.protocols.append(0)  # no TD1, or only global bytes: T=0
    a.historical = data[i:i + k]
    if len(a.historical) < k:
        a.problems.append("ATR ends inside the historical bytes (%d of %d)" % (len(a.historical), k))
        return a
    i += k
    if need_tck:
        if i >= len(data):
            a.problems.append("TCK missing")
        else:
            a.tck = data[i]
            x = 0
            for b in data[1:i + 1]:
                x ^= b
            a.tck_ok = x == 0
            if not a.tck_ok:
                a.problems.append("TCK wrong")
            i += 1
    if i < len(data):
        # a card that repeats its TCK, or sends T=0 with a TCK anyway
        a.extra = data[i:]
        a.problems.append("%d extra bytes after the ATR" % (len(data) - i))
    a.usable = True
    return a


def atr_length(data):
    """How many bytes the ATR in `data` (logical bytes, TS first) has, or 0 while it is not
    complete: the reader stops listening once the ATR is whole, not at the timeout."""
    n = len(data)
    if n < 2:
        return 0
    y, k, i, tck = data[1] >> 4, data[1] & 0x0F, 2, False
    while True:
        i += (y & 1) + (y >> 1 & 1) + (y >> 2 & 1)
        if not y & 8:
            break
        if i >= n:
            return 0
        td = data[i]
        i += 1
        if td & 0x0F:
            tck = True
        y = td >> 4
    i += k + (1 if tck else 0)
    return i if n >= i else 0


# -- PPS ----------------------------------------------------------------------------------
def pps_request(protocol, ta1=None):
    """PPSS FF, PPS0 (T, PPS1 present), PPS1 = TA1 when given, PCK (7816-3 9.2)."""
    out = bytearray([0xFF, protocol & 0x0F])
    if ta1 is not None:
        out[1] |= 0x10
        out.append(ta1)
    pck = 0
    for b in out:
        pck ^= b
    out.append(pck)
    return bytes(out)


def pps_agreed(request, answer):
    """The TA1 value (Fi/Di) the card accepted, 0x11 for the defaults, or card.protocol.

    7816-3 9.3: the answer echoes PPSS and PPS0's protocol; PPS1 echoed means accepted,
    PPS1 left out means the defaults; anything else is a failed exchange."""
    answer = bytes(answer)
    if len(answer) < 3 or answer[0] != 0xFF:
        raise _broken("PPS answer malformed")
    pck = 0
    for b in answer:
        pck ^= b
    if pck:
        raise _broken("PPS answer check byte wrong")
    if answer[1] & 0x0F != request[1] & 0x0F:
        raise _broken("PPS answer names another protocol")
    if answer[1] & 0x60 & ~request[1]:
        # PPS2 or PPS3 in the answer that the request did not carry: 9.3 makes that a
        # failed exchange, not something to ignore
        raise _broken("PPS answer brings PPS2/PPS3 we did not send")
    if answer[1] & 0x10:
        if not request[1] & 0x10 or answer[2] != request[2]:
            raise _broken("PPS answer changes PPS1")
        return answer[2]
    return 0x11


def pps_answer_length(data):
    """Bytes of the PPS answer in `data` (PPSS first), or 0 while incomplete."""
    if len(data) < 2:
        return 0
    n = 3 + (data[1] >> 4 & 1) + (data[1] >> 5 & 1) + (data[1] >> 6 & 1)
    return n if len(data) >= n else 0


# -- timing -------------------------------------------------------------------------------
def etu_us(fi, di, clock_hz):
    """One elementary time unit in microseconds: F / (D f)."""
    return (fi * 1000000 + di * clock_hz - 1) // (di * clock_hz)


def wt_ms(atr, clock_hz, fi_di=None):
    """T=0's waiting time, 7816-3 10.2: WI x 960 x Fi / f."""
    fi = (fi_di or atr.fi_di())[0]
    return atr.wi() * 960 * fi * 1000 // clock_hz + 1


def t1_times(atr, clock_hz, fi_di=None):
    """(BWT, CWT) in ms for T=1, 7816-3 11.4.3: BWT = 11 etu + 2^BWI x 960 x 372 / f,
    CWT = (11 + 2^CWI) etu."""
    fi, di = fi_di or atr.fi_di()
    etu = etu_us(fi, di, clock_hz)
    _, bwi, cwi, _ = atr.t1()
    bwt = (11 * etu + (1 << bwi) * 960 * 372 * 1000000 // clock_hz) // 1000 + 1
    cwt = ((11 + (1 << cwi)) * etu) // 1000 + 1
    return bwt, cwt


# -- the half-duplex I/O line ---------------------------------------------------------------
class Line:
    """The card's I/O line through the board's UART. `echo`: the UART's TX and RX are both
    wired to the line, so what is sent comes back and is checked and dropped. `clock` is
    (ticks_ms, ticks_diff, sleep_ms), for tests; `slack_ms` is latency of the transport added
    to every timeout (0 on the ESP32; the simulated board sets its socket's)."""

    def __init__(self, uart, echo=True, clock=None):
        self.uart = uart
        self.echo = echo
        self.inverse = False
        self.ticks_ms, self.ticks_diff, self.sleep_ms = clock or (ticks_ms, ticks_diff, sleep_ms)
        self.slack_ms = 0
        self.echo_ms = 20  # a character at the slowest rate we use is ~1 ms
        self._one = bytearray(1)
        self._tx = bytearray(_TX_MAX)
        # `gone()`: the slot's card-present and fault pins (set by the slot): a card pulled
        # out ends the wait at once, not after the protocol's waiting times
        self.gone = None
        self._budget_start = None
        self._budget_ms = 0

    def budget(self, ms):
        """Bounds everything until the next budget() (an APDU: NULL bytes and waiting-time
        extensions included) to `ms`: the read blocks the reader's loop, and the board's
        watchdog (8 s) must not bite. budget(0) lifts the bound."""
        self._budget_start = self.ticks_ms() if ms else None
        self._budget_ms = ms

    def _raw(self, timeout_ms):
        start = self.ticks_ms()
        limit = timeout_ms + self.slack_ms
        one = self._one
        while True:
            if self.uart.any():
                if self.uart.readinto(one):
                    return one[0]
            now = self.ticks_ms()
            if self.ticks_diff(now, start) >= limit:
                return -1
            if self.gone is not None and self.gone():
                raise ProtocolError("card.removed", "card", "taken out of the slot")
            if self._budget_start is not None and self.ticks_diff(now, self._budget_start) >= self._budget_ms:
                raise _mute("no answer within %d ms" % self._budget_ms)
            self.sleep_ms(1)

    def byte(self, timeout_ms):
        """The next byte from the card, or -1 if none came within `timeout_ms`."""
        b = self._raw(timeout_ms)
        if b >= 0 and self.inverse:
            return _INV[b]
        return b

    def send(self, data):
        """Sends `data` (at most 261 bytes) and takes its echo off the line."""
        n = len(data)
        tx = self._tx
        for i in range(n):
            tx[i] = _INV[data[i]] if self.inverse else data[i]
        view = memoryview(tx)[:n]
        self.uart.write(view)
        if not self.echo:
            return
        for i in range(n):
            b = self._raw(self.echo_ms)
            if b != tx[i]:
                if b < 0:
                    raise ProtocolError("slot.fault", "line", "no echo of what the reader sent")
                raise ProtocolError("slot.fault", "line", "echo %02X for %02X: line collision" % (b, tx[i]))

    def drain(self, quiet_ms):
        """Drops what the card is still sending, until the line has been quiet `quiet_ms`."""
        while self._raw(quiet_ms) >= 0:
            pass

    def pause(self, ms):
        self.sleep_ms(ms)


# -- T=0 ----------------------------------------------------------------------------------
class T0:
    """T=0 (7816-3 clause 10) with the APDU mapping of 7816-3 12.2: case 4 is sent without
    Le and its answer fetched with GET RESPONSE after 61xx; 6Cxx has a case 2 command sent
    again with P3 = xx. `wt_ms` bounds the wait for every byte; a NULL (60) restarts it."""

    def __init__(self, line, wt_ms):
        self.line = line
        self.wt_ms = wt_ms
        self.buf = bytearray(_MAX_ANSWER)
        self.head = bytearray(5)
        self.got = 0
        self.nulls = 0  # NULL procedure bytes seen (the card asked for more time)

    def _byte(self):
        b = self.line.byte(self.wt_ms)
        if b < 0:
            raise _mute("no answer within the work waiting time")
        return b

    def _tpdu(self, data, rx):
        """Sends self.head, then `data` as the card asks (or receives `rx` bytes into buf);
        returns SW1 << 8 | SW2."""
        line = self.line
        line.send(self.head)
        ins = self.head[1]
        sent = 0
        todo = len(data) if data is not None else rx
        while True:
            b = self._byte()
            if b == _NULL:
                self.nulls += 1
                continue
            if b == ins or b == ins ^ 0xFF:
                k = todo if b == ins else 1
                if k <= 0:
                    raise _broken("procedure byte %02X with nothing left to transfer" % b)
                if data is not None:
                    line.send(data[sent:sent + k])
                    sent += k
                else:
                    if self.got + k > _MAX_ANSWER - 2:
                        raise _broken("answer longer than 256 bytes")
                    for _ in range(k):
                        self.buf[self.got] = self._byte()
                        self.got += 1
                todo -= k
                continue
            if b & 0xF0 == 0x60 or b & 0xF0 == 0x90:
                return b << 8 | self._byte()
            raise _broken("procedure byte %02X" % b)

    def transmit(self, apdu):
        """The card's answer to a short command APDU: data and SW1 SW2, as bytes."""
        n = len(apdu)
        if n < 4:
            raise ValueError("APDU shorter than its header")
        head = self.head
        for i in range(4):
            head[i] = apdu[i]
        data = None
        le = 0
        if n == 4:
            head[4] = 0
        elif n == 5:
            head[4] = apdu[4]
            le = apdu[4] or 256
        else:
            lc = apdu[4]
            if lc == 0 or n not in (5 + lc, 6 + lc):
                raise ValueError("not a short APDU")
            head[4] = lc
            data = memoryview(apdu)[5:5 + lc]
            le = (apdu[n - 1] or 256) if n == 6 + lc else 0
        self.got = 0
        sw = self._tpdu(data, le if data is None else 0)
        if data is None and sw >> 8 == 0x6C:
            head[4] = sw & 0xFF  # wrong Le: the card says how many it has
            self.got = 0
            sw = self._tpdu(None, head[4] or 256)
        rounds = 0
        while sw >> 8 == 0x61 and le:
            rounds += 1
            if rounds > 8:  # 256 bytes take at most a few: a card that never ends is broken
                raise _broken("GET RESPONSE without end")
            # more data waiting: GET RESPONSE (CLA 00, as EMV Book 1 9.3.1.3)
            want = sw & 0xFF or 256
            head[0], head[1], head[2], head[3], head[4] = 0x00, 0xC0, 0, 0, want & 0xFF
            sw = self._tpdu(None, want)
            if sw >> 8 == 0x6C:
                head[4] = sw & 0xFF
                sw = self._tpdu(None, head[4] or 256)
        out = bytearray(self.got + 2)
        out[:self.got] = memoryview(self.buf)[:self.got]
        out[self.got] = sw >> 8
        out[self.got + 1] = sw & 0xFF
        return bytes(out)


# -- T=1 ----------------------------------------------------------------------------------
def lrc(data, n):
    x = 0
    for i in range(n):
        x ^= data[i]
    return x


def crc16(data, n):
    """T=1's CRC (7816-3 11.4.4 with TC3 bit 1): polynomial x^16 + x^12 + x^5 + 1, bits
    reflected, initial FFFF, no final XOR; sent high byte first (as PC/SC drivers do).
    Check value over "123456789": 6F91 (CRC-16/MCRF4XX in the CRC catalogue)."""
    crc = 0xFFFF
    for i in range(n):
        crc ^= data[i]
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc


_I_M = const(0x20)
_R = const(0x80)
_S = const(0xC0)
_S_RESP = const(0x20)
RESYNCH = const(0)
IFS = const(1)
ABORT = const(2)
WTX = const(3)
_EDC_ERROR = const(1)
_OTHER_ERROR = const(2)
_TIMEOUT = const(3)
_RETRIES = const(3)


class _Resync(Exception):
    pass


class T1:
    """T=1 (7816-3 clause 11): blocks NAD PCB LEN INF EDC; I-blocks with N(S) and chaining
    (M), R-blocks acknowledging or asking again, S-blocks RESYNCH, IFS, ABORT, WTX. Errors
    get an R-block (EDC/parity or other), the last R-block is sent again if its answer was
    bad too (rule 7.2), and after three failures the link is resynchronised (rule 6), at
    most twice per APDU. `ifsd` is what the reader announces with `negotiate_ifsd()`."""

    def __init__(self, line, atr, clock_hz, fi_di=None, ifsd=254):
        self.line = line
        self.ifsc0, _, _, self.crc = atr.t1()
        self.ifsc = self.ifsc0
        self.ifsd = ifsd
        self.bwt_ms, self.cwt_ms = t1_times(atr, clock_hz, fi_di)
        fi, di = fi_di or atr.fi_di()
        self.bgt_ms = (22 * etu_us(fi, di, clock_hz)) // 1000 + 1  # block guard time: 22 etu
        self.ns = self.nr = 0
        self.rx = bytearray(3 + 254 + 2)
        self.tx = bytearray(3 + 254 + 2)
        self.tx_len = 0
        self.answer = bytearray(_MAX_ANSWER)
        self.got = 0
        self.wtx = 0  # WTX requests honoured (for tests and the log)
        self.resyncs = 0

    # block level ------------------------------------------------------------------------
    def _send(self, pcb, data=None, at=0, n=0):
        tx = self.tx
        tx[0], tx[1], tx[2] = 0, pcb, n
        for i in range(n):
            tx[3 + i] = data[at + i]
        self.tx_len = self._edc(tx, 3 + n)
        self._resend()

    def _resend(self):
        self.line.pause(self.bgt_ms)
        self.line.send(memoryview(self.tx)[:self.tx_len])

    def _edc(self, buf, n):
        if self.crc:
            c = crc16(buf, n)
            buf[n], buf[n + 1] = c >> 8, c & 0xFF
            return n + 2
        buf[n] = lrc(buf, n)
        return n + 1

    def _receive(self, wait_ms):
        """A block into self.rx: 0, or _TIMEOUT, _EDC_ERROR, _OTHER_ERROR."""
        line, rx = self.line, self.rx
        b = line.byte(wait_ms)
        if b < 0:
            return _TIMEOUT
        rx[0] = b
        for i in (1, 2):
            b = line.byte(self.cwt_ms)
            if b < 0:
                return _OTHER_ERROR
            rx[i] = b
        if rx[0] != 0 or rx[2] == 0xFF:
            line.drain(self.cwt_ms)
            return _OTHER_ERROR
        end = 3 + rx[2] + (2 if self.crc else 1)
        for i in range(3, end):
            b = line.byte(self.cwt_ms)
            if b < 0:
                return _OTHER_ERROR  # a character waiting time exceeded: 7816-3 11.4.3
            rx[i] = b
        if self.crc:
            c = crc16(rx, end - 2)
            ok = rx[end - 2] == c >> 8 and rx[end - 1] == c & 0xFF
        else:
            ok = lrc(rx, end) == 0
        return 0 if ok else _EDC_ERROR

    def _s_request(self, kind, value=None):
        """Sends an S(request) and waits for its response: True if it came."""
        for _ in range(_RETRIES):
            if value is None:
                self._send(_S | kind)
            else:
                self._send(_S | kind, bytes([value]), 0, 1)
            err = self._receive(self.bwt_ms)
            rx = self.rx
            if err == 0 and rx[1] == _S | _S_RESP | kind and (value is None or (rx[2] == 1 and rx[3] == value)):
                return True
        return False

    def negotiate_ifsd(self):
        """The reader's first block: S(IFS request) with IFSD (7816-3 11.4.2). A card that
        does not answer keeps the default IFSD of 32 (we then never receive more)."""
        if not self._s_request(IFS, self.ifsd):
            self.ifsd = 32
        return self.ifsd

    def resynchronise(self):
        """S(RESYNCH): both sides back to N(S) 0 and the ATR's IFSC (rule 6)."""
        self.resyncs += 1
        if not self._s_request(RESYNCH):
            raise _broken("T=1 resynchronisation failed")
        self.ns = self.nr = 0
        self.ifsc = self.ifsc0

    # APDU level ---------------------------------------------------------------------------
    def transmit(self, apdu):
        """The card's answer (data and SW1 SW2) to a command APDU."""
        for attempt in range(3):
            try:
                return self._exchange(apdu)
            except _Resync:
                if attempt == 2:
                    break
                self.resynchronise()
        raise _broken("T=1 errors persist after resynchronisation")

    def _send_i(self, apdu, at, n, more):
        self._send((self.ns << 6) | (_I_M if more else 0), apdu, at, n)

    def _exchange(self, apdu):
        total = len(apdu)
        at = 0
        n = min(self.ifsc, total)
        more = n < total
        self._send_i(apdu, at, n, more)
        sending = True
        self.got = 0
        tries = 0
        wait = self.bwt_ms
        last_err = 0
        while True:
            err = self._receive(wait)
            wait = self.bwt_ms
            rx = self.rx
            pcb = rx[1]
            if err == 0 and pcb & 0xC0 == _R and (rx[2] != 0 or pcb & 0x20):
                err = _OTHER_ERROR  # R-blocks carry nothing and have b6 clear
            if err == 0 and pcb & 0x80 == 0 and sending and more:
                err = _OTHER_ERROR  # an answer before our chain is complete
            if err == 0 and pcb & 0x80 == 0 and (pcb >> 6) & 1 != self.nr:
                err = _OTHER_ERROR  # not the block we expect
            if err:
                tries += 1
                last_err = err
                if tries >= _RETRIES:
                    if last_err == _TIMEOUT:
                        raise _mute("no T=1 block within the block waiting time")
                    raise _Resync()
                if self.tx[1] & 0xC0 == _R:
                    self._resend()  # rule 7.2: our R-block again
                else:
                    self._send(_R | (self.nr << 4) | (_EDC_ERROR if err == _EDC_ERROR else _OTHER_ERROR))
                continue
            if pcb & 0x80 == 0:  # I-block
                if sending:
                    self.ns ^= 1  # the card's I-block acknowledges our last one
                    sending = False
                self.nr ^= 1
                n = rx[2]
                if self.got + n > _MAX_ANSWER:
                    raise _broken("answer longer than 256 bytes")
                self.answer[self.got:self.got + n] = memoryview(rx)[3:3 + n]
                self.got += n
                tries = 0
                if pcb & _I_M:
                    self._send(_R | (self.nr << 4))  # send the next part
                    continue
                return bytes(memoryview(self.answer)[:self.got])
            if pcb & 0xC0 == _R:
                if sending and (pcb >> 4) & 1 != self.ns and more:
                    self.ns ^= 1  # our chained block arrived: the next part
                    at += n
                    n = min(self.ifsc, total - at)
                    more = at + n < total
                    self._send_i(apdu, at, n, more)
                    tries = 0
                    continue
                if sending and (pcb >> 4) & 1 != self.ns:
                    raise _Resync()  # acknowledges a block we never sent (ccid does the same)
                tries += 1
                if tries >= _RETRIES:
                    raise _Resync()
                if sending:
                    # the card asks for our I-block again: built anew, for what went last may
                    # have been an R-block of ours (rule 7.2 applies to R-blocks only)
                    self._send_i(apdu, at, n, more)
                else:
                    self._resend()
                continue
            # S-block
            kind = pcb & 0x1F
            if pcb & _S_RESP:
                tries += 1  # a response to nothing we asked
                if tries >= _RETRIES:
                    raise _Resync()
                self._send(_R | (self.nr << 4) | _OTHER_ERROR)
                continue
            if kind == WTX and rx[2] == 1:
                self.wtx += 1
                self._send(_S | _S_RESP | WTX, rx, 3, 1)
                wait = self.bwt_ms * max(1, rx[3])  # for the next block only
                continue
            if kind == IFS and rx[2] == 1 and 1 <= rx[3] <= 254:
                self.ifsc = rx[3]
                self._send(_S | _S_RESP | IFS, rx, 3, 1)
                continue
            if kind == ABORT and rx[2] == 0:
                self._send(_S | _S_RESP | ABORT)
                raise _broken("the card aborted the chain")
            raise _Resync()  # RESYNCH from the card (not allowed) or a malformed S-block
