"""The contact smart-card slot: a TDA8024-like interface chip between the ESP32 and the card.

What it is for: card presence, activation (cold reset, ATR), the choice of protocol (PPS),
and deactivation; it hands back a ready T=0 or T=1 session (drivers/iso7816t0.py or
iso7816t1.py, whichever the card speaks: only that one is imported) whose `transmit(apdu)`
the card reader (contactreader.py) uses. The ATR and PPS are drivers/iso7816atr.py's, the
I/O line drivers/iso7816line.py's.

The board's pin map (ESP32 DevKitC, the reader's rev-B board; the chip's pins in brackets):

    ESP32 GPIO25  -> CMDVCCN  (out, low starts the chip's activation, high deactivates)
    ESP32 GPIO26  -> RSTIN    (out, copied to the card's RST once the card is powered)
    ESP32 GPIO27  -> XTAL1    (PWM, 4 MHz 50 %: the card's CLK; CLKDIV1/2 tied for CLK = XTAL1)
    ESP32 GPIO34  <- OFFN     (in, low = no card, or the chip met a fault and deactivated)
    ESP32 GPIO35  <- PRES     (in, the slot's card switch, high with a card; also on the chip)
    ESP32 GPIO32  <> I/OUC    (UART2 TX, open drain, and RX on the same net: half duplex,
                               so the UART hears its own bytes; 8 data bits, even parity
                               and 2 stop bits; odd parity for inverse-convention cards)
    5V/3V tied to 5 V (class A cards first; class B and C need the chip's 3 V selection)

Activation (ISO/IEC 7816-3 6.2.2): RST low, clock running, VCC on, then RST high once the
card has had at least 400 clock cycles; the ATR must begin within 40,000 cycles after
RST goes high (10 ms at 4 MHz), each following character within 9,600 etu. The chip
itself sequences VCC, I/O and CLK once CMDVCCN goes low; we wait 1 ms before RST goes
high, which covers both. Deactivation is the chip's too: CMDVCCN high, and it takes RST,
CLK, I/O and VCC down in the standard's order. When the card is pulled out the chip
deactivates by itself and OFFN goes low.

PPS (7816-3 9): when the card offers a faster rate in TA1 (negotiable mode, no TA2), or
its first protocol is neither T=0 nor T=1, the reader proposes it; a card that does not
answer, or answers wrongly, is reset again and used at the default rate with its first
protocol. TA2 (specific mode) is obeyed as it is.

    slot = ContactSlot(uart, present=Pin(35, Pin.IN), cmdvcc=Pin(25, Pin.OUT, value=1),
                       rst=Pin(26, Pin.OUT, value=0), clock=PWM(Pin(27), freq=4000000, duty_u16=0),
                       off=Pin(34, Pin.IN), clock_hz=4000000)
    if slot.present():
        session = slot.start()          # T0 or T1
        answer = session.transmit(apdu)
        slot.deactivate()
"""
from protocol.compat import const
from protocol.errors import ProtocolError

from drivers import iso7816atr
from drivers.iso7816line import Line

_ATR_MAX = const(33)  # TS + 32 (7816-3 8.2.1), and room for a stray byte or two
_RUN = const(32768)  # duty_u16 of a running clock (50 %)


class ContactSlot:
    def __init__(self, uart, present, cmdvcc, rst, clock=None, off=None, clock_hz=4000000,
                 present_level=1, echo=True, timer=None):
        self.uart = uart
        self.line = Line(uart, echo, timer)
        self.pres, self.cmdvcc, self.rst, self.clock, self.off = present, cmdvcc, rst, clock, off
        self.clock_hz = clock_hz
        self.present_level = present_level
        self.powered = False
        self.atr = None
        self.protocol = None
        self.fi_di = (372, 1)
        self.pps_fallback = False  # the card did not take the PPS and was reset again
        self._atr = bytearray(_ATR_MAX + 3)
        self.line.gone = self._gone

    def _gone(self):
        return not self.present() or self._chip_fault()

    # -- the pins ---------------------------------------------------------------------------
    def present(self):
        """Is a card in the slot?"""
        return self.pres.value() == self.present_level

    def _chip_fault(self):
        return self.off is not None and self.powered and not self.off.value() and self.present()

    def deactivate(self):
        """Powers the card down (the chip runs the sequence); safe to call at any time."""
        self.rst.value(0)
        self.cmdvcc.value(1)
        if self.clock is not None:
            self.clock.duty_u16(0)
        self.powered = False
        self.line.inverse = False
        self._rate(372, 1)

    def _rate(self, fi, di):
        # the UART's baud rate is f x D / F (the simulated line keeps it and carries on)
        self.uart.init(baudrate=self.clock_hz * di // fi, bits=8, parity=1 if self.line.inverse else 0, stop=2)

    def close(self):
        """Lets go of the line's UART (machine.UART.deinit); the board builds a new slot."""
        self.uart.deinit()

    # -- activation ---------------------------------------------------------------------------
    def activate(self):
        """Cold reset: the card's ATR (iso7816atr.Atr), or card.mute / card.atr / card.removed."""
        if not self.present():
            raise ProtocolError("card.removed", "card", "no card in the slot")
        line = self.line
        self.deactivate()
        line.drain(1)
        self.rst.value(0)
        if self.clock is not None:
            self.clock.duty_u16(_RUN)
        self.cmdvcc.value(0)
        self.powered = True
        line.pause(1)  # > the chip's activation and > 400 clock cycles with RST low
        self.rst.value(1)
        atr = self._read_atr()
        if self._chip_fault():
            self.deactivate()
            raise ProtocolError("slot.fault", "slot", "the interface chip reports a fault")
        return atr

    def _read_atr(self):
        line = self.line
        first_ms = 40000 * 1000 // self.clock_hz + 1
        b = line.byte(first_ms)
        if b < 0:
            raise ProtocolError("card.mute", "atr", "no ATR within 40,000 clock cycles")
        if b == iso7816atr.INVERSE_RAW:
            line.inverse = True
            b = iso7816atr.INVERSE
        elif b != iso7816atr.DIRECT:
            raise ProtocolError("card.atr", "atr", "TS %02X" % b)
        self._rate(372, 1)  # parity follows the convention
        buf = self._atr
        buf[0] = b
        n = 1
        char_ms = iso7816atr.wt_ms(_DEFAULT, self.clock_hz)  # the initial waiting time, 9,600 etu
        whole = False
        while n < len(buf):
            # once the ATR is whole, a few ms more: bytes after it (a TCK a T=0 card should
            # not send) are reported by the parser rather than read as a procedure byte
            b = line.byte(5 if whole else char_ms)
            if b < 0:
                break
            buf[n] = b
            n += 1
            if not whole and iso7816atr.atr_length(memoryview(buf)[:n]):
                whole = True
        line.drain(5)
        atr = iso7816atr.parse_atr(memoryview(buf)[:n])
        self.atr = atr
        if not atr.usable:
            raise ProtocolError("card.atr", "atr", atr.problems[0] if atr.problems else "unusable")
        return atr

    # -- protocol -----------------------------------------------------------------------------
    def start(self):
        """Activates the card and returns a session (a T0 or a T1) ready for APDUs."""
        atr = self.activate()
        self.pps_fallback = False
        spec = atr.specific()
        if spec is not None:
            proto = spec
            ta2 = atr.ta[1]
            self.fi_di = (372, 1) if ta2 & 0x10 else atr.fi_di()
        else:
            proto = self._negotiate(atr)
        if proto not in (0, 1):
            self.deactivate()
            raise ProtocolError("card.atr", "atr", "card speaks neither T=0 nor T=1")
        self.protocol = proto
        self._rate(*self.fi_di)
        # only the protocol this card speaks is loaded: the other one's code would take
        # heap for nothing (a reader meets one card at a time)
        if proto == 0:
            from drivers.iso7816t0 import T0

            return T0(self.line, iso7816atr.wt_ms(atr, self.clock_hz, self.fi_di))
        from drivers.iso7816t1 import T1

        t1 = T1(self.line, atr, self.clock_hz, self.fi_di)
        t1.negotiate_ifsd()
        return t1

    def _negotiate(self, atr):
        first = atr.protocols[0]
        proto = first if first in (0, 1) else (1 if 1 in atr.protocols else 0 if 0 in atr.protocols else first)
        ta1 = atr.ta[0] if atr.ta else None
        faster = ta1 is not None and ta1 != 0x11 and iso7816atr.FI[ta1 >> 4] and iso7816atr.DI[ta1 & 0x0F]
        self.fi_di = (372, 1)
        if proto == first and not faster:
            return proto  # the defaults are what the card expects without a PPS
        request = iso7816atr.pps_request(proto, ta1 if faster else None)
        try:
            self.line.send(request)
            agreed = iso7816atr.pps_agreed(request, self._pps_answer())
        except ProtocolError as e:
            if e.code == "slot.fault":
                raise
            # 7816-3 9.3: a failed PPS ends in deactivation; we reset again and stay with
            # the defaults and the first protocol, which every card must accept
            self.pps_fallback = True
            atr2 = self.activate()
            return atr2.protocols[0]
        self.fi_di = (iso7816atr.FI[agreed >> 4], iso7816atr.DI[agreed & 0x0F])
        return proto

    def _pps_answer(self):
        buf = self._atr
        n = 0
        wait = iso7816atr.wt_ms(_DEFAULT, self.clock_hz)  # initial waiting time for each character
        while n < 6:
            b = self.line.byte(wait)
            if b < 0:
                raise ProtocolError("card.mute", "pps", "no PPS answer")
            buf[n] = b
            n += 1
            if iso7816atr.pps_answer_length(memoryview(buf)[:n]):
                break
        return bytes(memoryview(buf)[:n])


_DEFAULT = iso7816atr.parse_atr(b"\x3b\x00")  # WI 10, Fi 372: the initial waiting time
