"""The simulated board's contact slot: the card's I/O line and the interface chip's pins over
TCP to sim/iso7816sim.py, so that drivers/contactslot.py and the drivers/iso7816*.py
modules (ATR and PPS, the line, T=0, T=1) run here exactly as on the ESP32.

Two connections to the simulator's port, each announcing itself with its first byte:
b"L" is the I/O line (bytes as on the wire, echo included: simuart.SocketUart),
b"C" the pins, two bytes per change: (pin, level). The board sends b"V" (CMDVCCN),
b"R" (RSTIN) and b"K" (the clock running, 1, or stopped, 0); the simulator sends b"P"
(PRES) and b"F" (OFFN) whenever they change, and both once at connection.

    slot = SimSlot("127.0.0.1", 7004)    # a ContactSlot
"""
from drivers.contactslot import ContactSlot
from simuart import SocketUart

SLACK_MS = 100  # loopback TCP between two processes: added to every timeout on the line


class _Pins:
    """The chip's pins as last heard from the simulator, and the board's pins sent to it."""

    def __init__(self, uart):
        self.uart = uart
        self.levels = {"P": 0, "F": 0}
        self._msg = bytearray(2)
        self._have = 0
        self._one = bytearray(1)

    def poll(self):
        while self.uart.any():
            if not self.uart.readinto(self._one):
                return
            self._msg[self._have] = self._one[0]
            self._have += 1
            if self._have == 2:
                self._have = 0
                self.levels[chr(self._msg[0])] = self._msg[1]

    def send(self, name, level):
        self.uart.write(bytes([ord(name), level]))


class SimPin:
    """machine.Pin's value() for one of the chip's pins."""

    def __init__(self, pins, name):
        self.pins, self.name = pins, name

    def value(self, level=None):
        if level is None:
            self.pins.poll()
            return self.pins.levels.get(self.name, 0)
        self.pins.send(self.name, 1 if level else 0)


class SimClock:
    """machine.PWM's duty_u16() for the card's clock: running or stopped."""

    def __init__(self, pins):
        self.pins = pins

    def duty_u16(self, duty):
        self.pins.send("K", 1 if duty else 0)


class SimSlot(ContactSlot):
    """A ContactSlot whose UART and pins are connections to the simulator."""

    def __init__(self, host, port, clock_hz=4000000):
        line = SocketUart(host, port)
        line.write(b"L")
        control = SocketUart(host, port)
        control.write(b"C")
        pins = _Pins(control)
        ContactSlot.__init__(self, line, present=SimPin(pins, "P"), cmdvcc=SimPin(pins, "V"),
                             rst=SimPin(pins, "R"), clock=SimClock(pins), off=SimPin(pins, "F"),
                             clock_hz=clock_hz)
        self.line.slack_ms = SLACK_MS
        self._control = control

    def close(self):
        ContactSlot.close(self)
        self._control.deinit()
