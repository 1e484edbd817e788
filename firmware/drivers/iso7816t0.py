"""T=0, the character protocol of ISO/IEC 7816-3 clause 10, for the reader's contact slot:
a session's `transmit(apdu)` for a card that speaks T=0 (drivers/contactslot.py starts it).

It talks through a line (iso7816line.Line: `send`, `byte`); the APDU mapping is
7816-3 12.2: case 4 is sent without Le and its answer fetched with GET RESPONSE after
61xx, and 6Cxx has a case 2 command sent again with P3 = xx.

    t0 = T0(Line(uart), wt_ms(atr, 4000000))     # wt_ms: drivers/iso7816atr.py
    answer = t0.transmit(b"\x00\xa4\x04\x00\x08" + aid + b"\x00")   # data + SW1 SW2

Errors are ProtocolError: card.mute (no answer within the waiting time), card.protocol
(a procedure byte out of turn, an answer over 256 bytes, GET RESPONSE without end), and
what the line raises.

Not done: character-level error signalling and repetition (the card pulling the line low
in the guard time after a parity error; the UART reports a parity error at best),
extended-length APDUs.
"""
from protocol.compat import const

from drivers.iso7816atr import MAX_ANSWER, broken, mute

_NULL = const(0x60)


class T0:
    """T=0 (7816-3 clause 10) with the APDU mapping of 7816-3 12.2: case 4 is sent without
    Le and its answer fetched with GET RESPONSE after 61xx; 6Cxx has a case 2 command sent
    again with P3 = xx. `wt_ms` bounds the wait for every byte; a NULL (60) restarts it."""

    def __init__(self, line, wt_ms):
        self.line = line
        self.wt_ms = wt_ms
        self.buf = bytearray(MAX_ANSWER)
        self.head = bytearray(5)
        self.got = 0
        self.nulls = 0  # NULL procedure bytes seen (the card asked for more time)

    def _byte(self):
        b = self.line.byte(self.wt_ms)
        if b < 0:
            raise mute("no answer within the work waiting time")
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
                    raise broken("procedure byte %02X with nothing left to transfer" % b)
                if data is not None:
                    line.send(data[sent:sent + k])
                    sent += k
                else:
                    if self.got + k > MAX_ANSWER - 2:
                        raise broken("answer longer than 256 bytes")
                    for _ in range(k):
                        self.buf[self.got] = self._byte()
                        self.got += 1
                todo -= k
                continue
            if b & 0xF0 == 0x60 or b & 0xF0 == 0x90:
                return b << 8 | self._byte()
            raise broken("procedure byte %02X" % b)

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
                raise broken("GET RESPONSE without end")
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
