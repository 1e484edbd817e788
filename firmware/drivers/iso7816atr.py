"""ISO/IEC 7816-3 clauses 8 and 9 for the reader's contact slot: the ATR, PPS and what they
say about timing. Bytes in, values out, no I/O: host tools use it too (tests/test_atr_list.py
runs it over pcsc-tools' ATRs).

It also holds, once, what the other contact-card modules share: the inverse convention's
byte table (the line, iso7816line.py, undoes the convention with it) and the errors a card
raises (`mute`, `broken`). They all import this module anyway, and a module that needs
only the ATR loads neither T=0 (iso7816t0.py) nor T=1 (iso7816t1.py).

    atr = parse_atr(raw)                  # atr.protocols, atr.historical, atr.tck_ok, atr.problems
    atr_length(raw)                       # 0 until the ATR is whole
    request = pps_request(1, atr.ta[0])   # send it, read the answer (pps_answer_length)
    ta1 = pps_agreed(request, answer)     # Fi/Di as TA1 codes them, or card.protocol
    wt_ms(atr, 4000000)                   # T=0's waiting time; t1_times(...) T=1's

Errors are ProtocolError: card.atr (reserved Fi/Di), card.protocol (a PPS answer that
breaks clause 9). `parse_atr` itself never raises.
"""
from protocol.compat import const
from protocol.errors import ProtocolError

# ISO/IEC 7816-3:2006 table 7 (Fi, by the high nibble of TA1) and table 8 (Di, low nibble);
# 0 marks RFU values
FI = (372, 372, 558, 744, 1116, 1488, 1860, 0, 0, 512, 768, 1024, 1536, 2048, 0, 0)
DI = (0, 1, 2, 4, 8, 16, 32, 64, 12, 20, 0, 0, 0, 0, 0, 0)

DIRECT = const(0x3B)
INVERSE = const(0x3F)
INVERSE_RAW = const(0x03)  # TS of an inverse-convention card as a direct UART reads it

MAX_ANSWER = const(258)  # 256 data bytes and SW1 SW2: short APDUs only (T=0 and T=1)


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


INV = _inverse_table()  # the line uses it byte by byte: iso7816line.Line


def inverse(data):
    """Bytes of the other convention: what a direct UART reads from an inverse card, and back."""
    return bytes(INV[b] for b in data)


def mute(what):
    """card.mute: no answer in time."""
    return ProtocolError("card.mute", "card", what)


def broken(what):
    """card.protocol: the card broke the protocol, or retries ran out."""
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
        raise broken("PPS answer malformed")
    pck = 0
    for b in answer:
        pck ^= b
    if pck:
        raise broken("PPS answer check byte wrong")
    if answer[1] & 0x0F != request[1] & 0x0F:
        raise broken("PPS answer names another protocol")
    if answer[1] & 0x60 & ~request[1]:
        # PPS2 or PPS3 in the answer that the request did not carry: 9.3 makes that a
        # failed exchange, not something to ignore
        raise broken("PPS answer brings PPS2/PPS3 we did not send")
    if answer[1] & 0x10:
        if not request[1] & 0x10 or answer[2] != request[2]:
            raise broken("PPS answer changes PPS1")
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
