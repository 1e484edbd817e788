"""The simulated board's parts: what a config with "board": "sim" gets instead of the ESP32's
pins, watchdog, UARTs and buses (firmware/board.py picks them by the config's "board").

On the MicroPython unix port the till link and the card readers are TCP connections to
simulators (sim/simboard.py, sim/pn532sim.py, sim/iso7816sim.py); the pins
remember what they were set to and the watchdog has nothing to reset. This folder is
never on the device: the simulated board finds it on a second path entry, after the
firmware's own build (build/mpysim, sim/simboard.py).

    parts = SimParts({"till": "127.0.0.1:7001", "nfc": "127.0.0.1:7002"})
    green, red, buzzer = parts.pins()
    transport = parts.nfc_transport()     # drivers.pn532.HSU over a socket
"""
import asyncio


class SimPin:
    """A pin that remembers its value and how often it went high."""

    def __init__(self, name):
        self.name, self.level, self.pulses = name, 0, 0

    def value(self, v=None):
        if v is None:
            return self.level
        if v and not self.level:
            self.pulses += 1
        self.level = 1 if v else 0


class NullWatchdog:
    """Nothing resets the unix port: a hung simulated board is seen by its tests instead."""

    def feed(self):
        pass


def hostport(text):
    """"127.0.0.1:7001" -> ("127.0.0.1", 7001)"""
    host, _, port = text.partition(":")
    return host, int(port)


class SimParts:
    """The parts board.Board asks for, from the config's simulator addresses ("till",
    "nfc" or "cards", "contact")."""

    def __init__(self, cfg):
        self.cfg = cfg

    def pins(self):
        """(green, red, buzzer)"""
        return SimPin("green"), SimPin("red"), SimPin("buzzer")

    def watchdog(self):
        return NullWatchdog()

    async def till_link(self):
        """(reader, writer) streams to the simulated till."""
        return await asyncio.open_connection(*hostport(self.cfg["till"]))

    async def card_lines(self):
        """"cards": identities as lines (simcard.py), for tests about everything but the card;
        None when the board reads cards with the PN532 driver."""
        if "cards" not in self.cfg or "nfc" in self.cfg:
            return None
        from simcard import SimCardReader

        reader, writer = await asyncio.open_connection(*hostport(self.cfg["cards"]))
        return SimCardReader(reader, writer)

    def nfc_transport(self):
        """The PN532 on HSU, its UART a socket to sim/pn532sim.py ("nfc")."""
        from drivers.pn532 import HSU
        from simuart import SocketUart

        return HSU(SocketUart(*hostport(self.cfg["nfc"])))

    def contact_slot(self):
        """The contact slot over sockets to sim/iso7816sim.py ("contact"), or None."""
        if "contact" not in self.cfg:
            return None
        from simslot import SimSlot

        return SimSlot(*hostport(self.cfg["contact"]))
