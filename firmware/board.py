"""Board configuration: where the till link, the card reader, the display and the pins are.

`load()` reads the reader's config (identity, key, backend address, language, board
kind) and returns a Board, whose parts the config's "board" picks (`parts()`): on the
ESP32 (`Esp32`, below) the till link is a UART and the feedback pins are machine.Pin
objects; on the simulated board ("board": "sim", the MicroPython unix port) the parts
come from sim/board/simparts.py, which is not on the device: the till link and the card
reader are TCP streams answered by simulators (sim/simboard.py), the pins remember
what they were set to.

Config, a JSON file at /config.json on the device (READER_CONFIG on the unix port):
    {"reader": "R1", "key": "<64 hex>", "backend": "http://10.0.0.5:8000",
     "lang": "it", "board": "sim", "root": "data/R1",
     "till": "127.0.0.1:7001", "nfc": "127.0.0.1:7002"}
("nfc": the PN532 simulator; "cards" instead: card identities as lines, see card_reader.)

"nfc_ms" (optional) bounds the PN532 driver's waits, in the driver's own names:
{"ack_ms": 50, "timeout_ms": 200, "poll_ms": 300, "exchange_ms": 1000} are the defaults,
right for a chip on the board's own bus. The simulated board gives generous ones: its
"chip" is a thread of another process, and a loaded machine may hold it up for longer
than a real PN532 ever takes (sim/simboard.py). "contact_ms" (optional) does the same
for the contact slot's line: {"slack_ms": ..., "echo_ms": ...} (drivers/iso7816line.Line's:
latency of the transport added to every wait, and the wait for the echo of a byte sent).
"""
import asyncio
import os
import sys
import time

from protocol import canonical

# MicroPython on bare-metal ports may count from 2000-01-01; the protocol counts from 1970.
_EPOCH = 946684800 if time.gmtime(0)[0] == 2000 else 0


class Clock:
    """The reader's clock: the board's time plus an offset taken from the backend.

    Nothing sets an ESP32's clock: a cold boot starts at 2000-01-01, and every signed
    request would be refused as stale for ever. The sync client, on a signed answer
    whose `time` is far from this clock (or a batch.stale refusal), calls adjust() with
    the difference; the offset lives in RAM and is taken again after each boot.
    `board.now()` is this clock, so receipts, status and requests all use the same time.
    """

    offset = 0

    def __call__(self):
        return int(time.time()) + _EPOCH + self.offset

    def adjust(self, seconds):
        self.offset += seconds


now = Clock()


class PrintDisplay:
    """The display as a line on the console (the ESP32's serial line, the simulated board's
    output): prints the two lines when they change. An LCD driver replaces it."""

    def __init__(self, reader):
        self.reader, self.lines = reader, None

    def show(self, lines):
        if lines != self.lines:
            self.lines = lines
            print("[%s] display | %-16s | %-16s" % (self.reader, lines[0], lines[1]))


class Esp32:  # pragma: no cover - needs an ESP32
    """The ESP32 reader's parts, as wired: pins, watchdog, the till's UART, the PN532's bus
    ("nfc_bus") and the contact slot ("contact_slot"). The simulated board's parts have
    the same methods (sim/board/simparts.py)."""

    def __init__(self, cfg):
        self.cfg = cfg

    def pins(self):
        """(green, red, buzzer)"""
        from machine import Pin

        pins = self.cfg.get("pins", {})
        return (Pin(pins.get("green", 2), Pin.OUT), Pin(pins.get("red", 4), Pin.OUT),
                Pin(pins.get("buzzer", 5), Pin.OUT))

    def watchdog(self):
        from machine import WDT

        return WDT(timeout=self.cfg.get("watchdog_ms", 8000))

    async def till_link(self):
        from machine import UART

        t = self.cfg.get("till_uart", {"id": 1, "tx": 17, "rx": 16, "baud": 115200})
        uart = UART(t["id"], baudrate=t["baud"], tx=t["tx"], rx=t["rx"])
        return asyncio.StreamReader(uart), asyncio.StreamWriter(uart, {})

    async def card_lines(self):
        return None  # cards are read with the PN532 driver

    def nfc_transport(self):
        return _nfc_bus(self.cfg["nfc_bus"])

    def contact_slot(self):
        pins = self.cfg.get("contact_slot")
        return None if pins is None else _contact_slot(pins)


def parts(cfg):
    """The board's parts by the config's "board": "sim" (the simulated board of tests and
    the demo) or anything else, or nothing, for the ESP32 (a hand-written config on a
    reader must not make it look for stand-ins that never ship)."""
    if cfg.get("board", "esp32") == "sim":
        # sim/board/, on the simulated board's path after the firmware: never on the device
        from simparts import SimParts

        return SimParts(cfg)
    return Esp32(cfg)


class Board:
    def __init__(self, cfg):
        self.cfg = cfg
        self.reader = cfg["reader"]
        # not "/": the journal's folder would sit beside journal.mpy, and the import
        # system would take the folder for the module
        self.root = cfg.get("root", "/data")
        self.lang = cfg.get("lang", "it")
        self.parts = parts(cfg)
        self.green, self.red, self.buzzer = self.parts.pins()
        self.display = PrintDisplay(self.reader)  # the console, on either board: no parts hook
        self.watchdog = self.parts.watchdog()

    def path(self, name):
        return self.root.rstrip("/") + "/" + name

    async def till_link(self):
        """(reader, writer) streams to the till."""
        return await self.parts.till_link()

    def contact_reader(self, keys, rules):
        """The contact-card slot's reader (`async wait_card()`), or None on a board without one.

        "contact": "host:port" on the simulated board (sim/iso7816sim.py);
        "contact_slot": {...pins} on the ESP32."""
        slot = self.parts.contact_slot()
        if slot is None:
            return None
        from contactreader import ContactCardReader

        ms = self.cfg.get("contact_ms")
        if ms:
            line = slot.line
            line.slack_ms = ms.get("slack_ms", line.slack_ms)
            line.echo_ms = ms.get("echo_ms", line.echo_ms)
        return ContactCardReader(slot, keys, rules)

    async def card_reader(self, keys, rules):
        """An object with `async wait_card()`.

        "nfc": "host:port" on the simulated board: the PN532 driver over HSU, its UART a
        socket to sim/pn532sim.py. "nfc_bus" on the ESP32: the PN532's bus (below).
        "cards": "host:port" on the simulated board: identities as lines
        (sim/board/simcard.py), for tests about everything but the card."""
        lines = await self.parts.card_lines()
        if lines is not None:
            return lines
        from drivers.pn532 import NfcDevice
        from nfcreader import NfcCardReader

        return NfcCardReader(NfcDevice(self.parts.nfc_transport(), **self.cfg.get("nfc_ms", {})), keys, rules)


def _contact_slot(pins):  # pragma: no cover - needs an ESP32
    """The contact slot from the config's "contact_slot": the TDA8024's pins as wired,
    e.g. {"uart": 2, "io": 32, "pres": 35, "cmdvcc": 25, "rst": 26, "clk": 27, "off": 34}
    (drivers/contactslot.py has the pin map and why)."""
    from machine import PWM, UART, Pin

    from drivers.contactslot import ContactSlot

    io = pins.get("io", 32)
    uart = UART(pins.get("uart", 2), baudrate=10752, bits=8, parity=0, stop=2, tx=io, rx=io)
    return ContactSlot(uart, present=Pin(pins.get("pres", 35), Pin.IN),
                       cmdvcc=Pin(pins.get("cmdvcc", 25), Pin.OUT, value=1),
                       rst=Pin(pins.get("rst", 26), Pin.OUT, value=0),
                       clock=PWM(Pin(pins.get("clk", 27)), freq=4000000, duty_u16=0),
                       off=Pin(pins.get("off", 34), Pin.IN), clock_hz=4000000)


def _nfc_bus(bus):  # pragma: no cover - needs an ESP32
    """The PN532's transport from the config's "nfc_bus", e.g.
    {"kind": "hsu", "uart": 2, "tx": 17, "rx": 16}, {"kind": "i2c", "scl": 22, "sda": 21},
    {"kind": "spi", "sck": 18, "mosi": 23, "miso": 19, "cs": 5} (pins as wired, see
    drivers/pn532.py for the PN532's interface switches)."""
    from machine import I2C, SPI, UART, Pin

    from drivers import pn532

    kind = bus.get("kind", "hsu")
    if kind == "i2c":
        return pn532.I2C(I2C(bus.get("id", 0), scl=Pin(bus["scl"]), sda=Pin(bus["sda"]), freq=400000))
    if kind == "spi":
        spi = SPI(bus.get("id", 1), baudrate=1000000, polarity=0, phase=0, firstbit=SPI.LSB,
                  sck=Pin(bus["sck"]), mosi=Pin(bus["mosi"]), miso=Pin(bus["miso"]))
        return pn532.SPI(spi, Pin(bus["cs"], Pin.OUT, value=1))
    return pn532.HSU(UART(bus.get("uart", 2), baudrate=115200, tx=bus["tx"], rx=bus["rx"],
                          timeout=0, timeout_char=2))


def load(path=None):
    if path is None:
        try:
            path = os.getenv("READER_CONFIG") or "/config.json"
        except AttributeError:  # no getenv on the ESP32
            path = "/config.json"
    with open(path, "rb") as f:
        cfg = canonical.decode(f.read())
    for name in ("reader", "key", "backend"):
        if not isinstance(cfg.get(name), str):
            print("config: %s missing in %s" % (name, path))
            sys.exit(2)
    return Board(cfg)
