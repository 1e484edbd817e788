"""The contact card's I/O line (ISO/IEC 7816-3 clause 7): bytes to and from the card through
the board's UART, for the ATR, PPS, T=0 and T=1 alike.

The board gives a UART-like object (`write(buf)`, `any()`, `readinto(buf) -> n or None`)
whose TX and RX are both wired to the card's one I/O line: every byte the reader sends
comes back on its own receive pin and is checked and discarded here. The inverse
convention (TS 3F) is undone here too, so the protocols see logical bytes.

    line = Line(uart)
    line.send(b"\xff\x11\x13\xfd")      # a PPS request; its echo is taken off the line
    b = line.byte(10)                      # the card's next byte, or -1 after 10 ms

Errors are ProtocolError: slot.fault (an echo that does not match: the line itself),
card.removed (the slot's pins say the card left), card.mute (the APDU's budget ran out).
"""
from protocol.compat import const
from protocol.errors import ProtocolError

from drivers import sleep_ms, ticks_diff, ticks_ms
from drivers.iso7816atr import INV, mute

_TX_MAX = const(261)  # the largest thing the reader sends at once: a T=1 block with CRC


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
                raise mute("no answer within %d ms" % self._budget_ms)
            self.sleep_ms(1)

    def byte(self, timeout_ms):
        """The next byte from the card, or -1 if none came within `timeout_ms`."""
        b = self._raw(timeout_ms)
        if b >= 0 and self.inverse:
            return INV[b]
        return b

    def send(self, data):
        """Sends `data` (at most 261 bytes) and takes its echo off the line."""
        n = len(data)
        tx = self._tx
        for i in range(n):
            tx[i] = INV[data[i]] if self.inverse else data[i]
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
