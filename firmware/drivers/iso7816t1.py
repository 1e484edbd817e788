"""T=1, the block protocol of ISO/IEC 7816-3 clause 11, for the reader's contact slot: a
session's `transmit(apdu)` for a card that speaks T=1 (drivers/contactslot.py starts it).

It talks through a line (iso7816line.Line: `send`, `byte`, `drain`, `pause`) and takes
its IFSC, waiting times and check code (LRC or CRC) from the ATR (iso7816atr.Atr).

    t1 = T1(Line(uart), atr, 4000000)
    t1.negotiate_ifsd()                  # the reader's first block: S(IFS request)
    answer = t1.transmit(apdu)           # data + SW1 SW2

Errors are ProtocolError: card.mute (no block within the block waiting time), card.protocol
(resynchronisation failed or errors persist after it, an aborted chain, an answer over 256
bytes), and what the line raises.

Not done: NAD addressing beyond NAD 00, extended-length APDUs.
"""
from protocol.compat import const

from drivers.iso7816atr import MAX_ANSWER, broken, etu_us, mute, t1_times


def lrc(data, n):
    """T=1's LRC (7816-3 11.4.4): the XOR of the first `n` bytes; a whole block's is 0."""
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
        self.answer = bytearray(MAX_ANSWER)
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
            raise broken("T=1 resynchronisation failed")
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
        raise broken("T=1 errors persist after resynchronisation")

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
                        raise mute("no T=1 block within the block waiting time")
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
                if self.got + n > MAX_ANSWER:
                    raise broken("answer longer than 256 bytes")
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
                raise broken("the card aborted the chain")
            raise _Resync()  # RESYNCH from the card (not allowed) or a malformed S-block
