"""A contact card's side of the wire, scripted, for the T=0, T=1 and slot tests.

`Script` is the card's side: ("r", bytes) the reader must send (and hears back: the
echo), ("c", bytes) the card sends, ("t", ms) the card stays silent that long (or until
the reader, tired of waiting, speaks, when an "r" follows), ("w", None) the card waits
for RST to rise (`release()`, for the slot tests). Time is virtual: the driver's
sleep_ms moves it, so timeouts are exact and cost nothing.

A module of its own rather than a part of test_iso7816_t0: importing a whole test module
for two helpers cost the T=1 and slot tests about 20 KB of their heap.

    >>> s = Script([("r", hx("00 a4")), ("c", hx("90 00"))])
"""
from check import eq


class Script:
    def __init__(self, steps, echo=True, echo_as=None):
        self.steps = list(steps)
        self.echo = echo
        self.echo_as = echo_as  # a wrong echo: what the line gives back instead
        self.rx = bytearray()
        self.sent = bytearray()
        self.now = 0
        self.until = 0  # a silence ("t") ends at this virtual time
        self._advance()

    # the clock ------------------------------------------------------------------------------
    def clock(self):
        return (lambda: self.now, lambda a, b: a - b, self.sleep_ms)

    def sleep_ms(self, ms):
        self.now += ms
        self._advance()

    def _advance(self):
        while self.steps:
            kind, value = self.steps[0]
            if kind == "c":
                self.rx += value
            elif kind == "w":
                return  # until release(): the card waits for its reset
            elif kind == "t":
                if self.until == 0:
                    self.until = self.now + value
                if self.now < self.until:
                    return
                self.until = 0
            else:
                return
            self.steps.pop(0)

    def release(self):
        """RST went high: a card waiting for its reset ("w") goes on."""
        if self.steps and self.steps[0][0] == "w":
            self.steps.pop(0)
        self._advance()

    # the UART -------------------------------------------------------------------------------
    def init(self, baudrate=None, **settings):
        self.baudrate = baudrate  # machine.UART.init: the slot sets the rate the card runs at

    def deinit(self):
        self.closed = True

    def write(self, data):
        data = bytes(data)
        if self.steps and self.steps[0][0] == "t" and len(self.steps) > 1 and self.steps[1][0] == "r":
            self.steps.pop(0)  # the reader gave up waiting and speaks: the silence is over
            self.until = 0
        for b in data:
            if not self.steps or self.steps[0][0] != "r":
                raise AssertionError("reader sent %02X, script has %r" % (b, self.steps[:1]))
            want = self.steps[0][1]
            if want[0] != b:
                raise AssertionError("reader sent %02X, expected %02X (%r)" % (b, want[0], want))
            self.sent.append(b)
            if len(want) == 1:
                self.steps.pop(0)
            else:
                self.steps[0] = ("r", want[1:])
        if self.echo:
            self.rx += self.echo_as if self.echo_as is not None else data
        self._advance()

    def any(self):
        return len(self.rx)

    def readinto(self, buf):
        if not self.rx:
            return None
        buf[0] = self.rx[0]
        self.rx = self.rx[1:]  # MicroPython's bytearray has no slice deletion
        return 1

    def done(self):
        while self.steps and self.steps[-1][0] == "t":
            self.steps.pop()  # a card that stays silent at the end
        eq(self.steps, [], "script left")
        eq(bytes(self.rx), b"", "bytes left unread")


def hx(text):
    return bytes.fromhex(text.replace(" ", ""))
