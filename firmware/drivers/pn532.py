"""PN532 NFC controller: transports, chipset commands and the reader's card-facing device.

Three layers, as in nfcpy (NXP UM0701-02 is the reference for every byte):

- transports move frame bytes over the host bus and never wait longer than one bus
  operation: `HSU(uart)`, `I2C(i2c, addr=0x24)`, `SPI(spi, cs, lsb_first_bus=True)`,
  each with `send(frame)`, `recv_into(buf) -> n` (0 when nothing is ready), `wake(sleep_ms)`
  and `reset()`;
- `PN532(transport)`, the chipset: frames (drivers.pn532frames), ACK, NACK, stale
  answers, timeouts bounded with ticks_diff (a timed-out command is cancelled with an
  ACK frame, UM0701-02 6.2.1.3) and the commands the reader needs;
- `NfcDevice(transport)`: what the card task calls between asyncio sleeps: `poll()`,
  `exchange(apdu)` (ISO-DEP), `thru(cmd)` (raw NTAG commands), `release()`.

Wiring on the ESP32 (the board module builds the bus, the driver only receives it):

    HSU: set the PN532's I0/I1 switches to 0/0; UART(2, 115200, tx=17, rx=16, timeout=0,
         timeout_char=2). The chip sleeps until a long preamble (55 55 00 ...) wakes it.
    I2C: switches 1/0; I2C(0, scl=22, sda=21, freq=400_000); 7-bit address 0x24. Every
         frame is read in one transaction after the ready status byte; an answer read
         takes the whole buffer (about 280 bytes: 6 ms at 400 kHz).
    SPI: switches 0/1; SPI(1, baudrate=1_000_000, polarity=0, phase=0, firstbit=SPI.LSB,
         sck=18, mosi=23, miso=19) and Pin(5, Pin.OUT, value=1) for NSS. A bus that
         cannot send LSB first (SoftSPI) takes lsb_first_bus=False: bits are reversed here.

    dev = NfcDevice(I2C(machine.I2C(0, scl=Pin(22), sda=Pin(21))))
    dev.init()                          # SAMConfiguration, finite retries, firmware check
    target = dev.poll()                 # None when no card answered: allocates nothing
    if target is not None:
        if target.iso_dep():
            answer = dev.exchange(b"\\x00\\xa4\\x04\\x00\\x08\\xf0SCONTO\\x01\\x00")
        else:
            page0 = dev.thru(b"\\x30\\x00")      # NTAG READ: pages 0 to 3
        dev.release()

Errors are NfcError: nfc.timeout (the chip does not answer), nfc.error (it refused a
command), card.removed (the card stopped answering), card.unreadable (RF errors),
card.two (two cards in the field), and the frame errors pn532.checksum/length/tfi.
After nfc.timeout the device initialises the chip again before the next poll.
"""
from protocol.compat import const
from protocol.errors import ProtocolError

from drivers import sleep_ms, ticks_diff, ticks_ms
from drivers.pn532frames import (
    ACK, ACK_FRAME, ERROR, INFO, NACK, NACK_FRAME, NONE, FrameError, FrameReader, frame, frame_into)

# Command codes (UM0701-02 chapter 7); the answer's code is the command's plus one.
GET_FIRMWARE_VERSION = const(0x02)
SAM_CONFIGURATION = const(0x14)
RF_CONFIGURATION = const(0x32)
IN_DATA_EXCHANGE = const(0x40)
IN_COMMUNICATE_THRU = const(0x42)
IN_LIST_PASSIVE_TARGET = const(0x4A)
IN_RELEASE = const(0x52)

_MI = const(0x40)  # More Information, in the Tg byte and in the status byte
_DEP_CHUNK = const(262)  # the most data one InDataExchange carries (7.3.8)
_TX_SIZE = const(276)  # frame_size(265): the longest host frame, extended
_RX_SIZE = const(280)  # the longest PN532 frame (MAX_INFO + 11) and a status byte, with room
_ACK_READ = const(24)  # one read while an ACK is due: a status byte, the ACK, room for a long preamble

# 0x55 0x55 then zeros: wakes an HSU PN532 from power-down (UM0701-02 6.3.2.3; libnfc sends 16 bytes)
HSU_WAKE = b"\x55\x55" + bytes(14)

_SPI_WRITE = const(0x01)  # SPI prefix bytes (UM0701-02 6.2.5)
_SPI_STATUS = const(0x02)
_SPI_READ = const(0x03)

_rev = None


def _reversed_bits():
    global _rev
    if _rev is None:
        _rev = bytearray(256)
        for i in range(256):
            r = 0
            for b in range(8):
                if i >> b & 1:
                    r |= 0x80 >> b
            _rev[i] = r
    return _rev


class NfcError(ProtocolError):
    """The NFC controller or a card failed: `code` one of nfc.*, card.*, pn532.*."""


class HSU:
    """High-speed UART: the PN532 frames as a byte stream."""

    def __init__(self, uart):
        self.uart = uart
        self._drain = bytearray(32)

    def send(self, data):
        self.uart.write(data)

    def recv_into(self, buf):
        if not self.uart.any():
            return 0
        return self.uart.readinto(buf) or 0

    def wake(self, sleep):
        self.uart.write(HSU_WAKE)

    def close(self):
        """Lets go of the UART (machine.UART.deinit; the simulated board's socket closes)."""
        self.uart.deinit()

    def reset(self):
        # whatever is still in the UART's buffer belongs to a command given up on
        for _ in range(64):
            if not self.uart.any():
                break
            self.uart.readinto(self._drain)


class I2C:
    """I2C: every read begins with the status byte (bit 0: a frame is ready, UM0701-02 6.2.4).

    A frame must be read in one transaction: once ready, recv_into reads the status and
    all of `buf`; the frame reader skips what follows the frame. A read the chip stretches
    past the bus timeout raises OSError: it counts as nothing ready, and the chipset
    tries again until its own timeout.
    """

    def __init__(self, i2c, addr=0x24):
        self.i2c = i2c
        self.addr = addr
        self._status = bytearray(1)

    def send(self, data):
        self.i2c.writeto(self.addr, data)

    def recv_into(self, buf):
        try:
            self.i2c.readfrom_into(self.addr, self._status)
            if not self._status[0] & 1:
                return 0
            self.i2c.readfrom_into(self.addr, buf)
        except OSError:  # ETIMEDOUT while the chip stretches the clock, EIO, ENODEV asleep
            return 0
        if not buf[0] & 1:
            return 0
        n = len(buf)
        for i in range(1, n):  # drop the status byte; a slice would allocate
            buf[i - 1] = buf[i]
        return n - 1

    def wake(self, sleep):
        # the address byte wakes a sleeping PN532; it may not acknowledge this first one
        try:
            self.i2c.writeto(self.addr, b"")
        except OSError:
            pass
        sleep(2)

    def close(self):
        pass  # the bus may carry other chips: it stays up

    def reset(self):
        pass


class SPI:
    """SPI mode 0, LSB first, with the prefix bytes 01 (data write), 02 (status), 03 (data read).

    `lsb_first_bus=False` for a bus that shifts MSB first: each byte's bits are reversed
    here, in place (the caller's buffer is restored after the write).
    """

    def __init__(self, spi, cs, lsb_first_bus=True):
        self.spi = spi
        self.cs = cs
        self._rev = None if lsb_first_bus else _reversed_bits()
        self._prefix = [bytearray(1) for _ in range(4)]
        for code in (_SPI_WRITE, _SPI_STATUS, _SPI_READ):
            self._prefix[code][0] = code if lsb_first_bus else _reversed_bits()[code]
        self._status = bytearray(1)
        cs.value(1)

    def close(self):
        # the bus may carry other chips: it stays up; the chip is deselected, in case a
        # transaction was cut off with NSS low
        self.cs.value(1)

    def _flip(self, buf, n):
        rev = self._rev
        for i in range(n):
            buf[i] = rev[buf[i]]

    def send(self, data):
        self.cs.value(0)
        try:
            self.spi.write(self._prefix[_SPI_WRITE])
            if self._rev is None:
                self.spi.write(data)
            else:
                self._flip(data, len(data))
                try:
                    self.spi.write(data)
                finally:
                    self._flip(data, len(data))
        finally:
            self.cs.value(1)

    def recv_into(self, buf):
        cs = self.cs
        cs.value(0)
        self.spi.write(self._prefix[_SPI_STATUS])
        self.spi.readinto(self._status)
        cs.value(1)
        status = self._status[0]
        if self._rev is not None:
            status = self._rev[status]
        if not status & 1:
            return 0
        cs.value(0)
        self.spi.write(self._prefix[_SPI_READ])
        self.spi.readinto(buf)
        cs.value(1)
        if self._rev is not None:
            self._flip(buf, len(buf))
        return len(buf)

    def wake(self, sleep):
        # NSS low wakes the chip; it needs about 2 ms before the first frame (AN10609 3.3)
        self.cs.value(0)
        sleep(2)
        self.cs.value(1)

    def reset(self):
        self.cs.value(1)


# PN532 status byte (masked with 0x3F) -> what the shop is told. Card-side trouble:
# the card left (01 timeout, 29/2B released or gone) or its answer was garbled (02-06, 13, 23).
_GONE = b"\x01\x29\x2b"
_GARBLED = b"\x02\x03\x04\x05\x06\x0b\x13\x23"


def status_error(status, what):
    """The NfcError for a PN532 status byte `status` (masked with 0x3F) of command `what`."""
    status &= 0x3F
    if status in _GONE:
        code = "card.removed"
    elif status in _GARBLED:
        code = "card.unreadable"
    else:
        code = "nfc.error"
    return NfcError(code, what, "status %02X" % status)


class PN532:
    """The chipset: sends one command at a time and waits, bounded, for its ACK and answer.

    `ack_ms` bounds the wait for the ACK, each command's `timeout_ms` the wait for its
    answer. Buffers are allocated here once; a prebuilt frame (`call(frame, code, ...)`)
    goes out and comes back without allocating.
    """

    def __init__(self, transport, timeout_ms=200, ack_ms=50, ticks=ticks_ms, sleep=sleep_ms):
        self.transport = transport
        self.timeout_ms = timeout_ms
        self.ack_ms = ack_ms
        self._ticks = ticks
        self._sleep = sleep
        self.reader = FrameReader()
        self._tx = bytearray(_TX_SIZE)
        self._data = bytearray(_TX_SIZE)
        rx = bytearray(_RX_SIZE)
        self._rx_ack = memoryview(rx)[:_ACK_READ]
        self._rx_all = memoryview(rx)
        self._ack = bytearray(ACK_FRAME)  # writable copies: the SPI transport may flip bits in place
        self._nack = bytearray(NACK_FRAME)
        self.bytes_out = 0
        self.bytes_in = 0
        self.stale = 0  # answers of earlier commands dropped
        self.trouble = True  # initialise before use, and again after a timeout
        self.start = 0  # the last answer: reader.buf[start:end] after its code
        self.end = 0

    # -- the wire ------------------------------------------------------------------

    def _send(self, data):
        self.transport.send(data)
        self.bytes_out += len(data)

    def _cancel(self, what, detail):
        # an ACK from the host aborts the command in progress (UM0701-02 6.2.1.3)
        try:
            self._send(self._ack)
        except OSError:
            pass
        self.reader.reset()
        self.transport.reset()
        self.trouble = True
        return NfcError("nfc.timeout", what, detail)

    def _next(self, view, since, limit, what, answer):
        """The next frame found, reading `view`-sized pieces until `limit` ms after `since`."""
        reader = self.reader
        nacks = 0
        while True:
            try:
                kind = reader.next()
            except FrameError as e:
                if not answer:
                    continue  # garbage while the ACK is due: it is never an answer
                if nacks == 2:
                    self.trouble = True
                    raise NfcError(e.code, what, e.detail)
                nacks += 1
                try:
                    self._send(self._nack)  # asks the PN532 to send its answer again
                except OSError:
                    raise self._cancel(what, "bus write failed")
                continue
            if kind != NONE:
                return kind
            if ticks_diff(self._ticks(), since) >= limit:
                raise self._cancel(what, "no answer" if answer else "no ACK")
            n = self.transport.recv_into(view)
            if n:
                self.bytes_in += n
                reader.feed(view, n)
            else:
                self._sleep(1)

    def call(self, out, code, timeout_ms=0, what=""):
        """Sends the whole frame `out` and waits for the answer to command `code`.

        Returns the length of the answer's data, which is `reader.buf[start:end]` (after
        the response code). Raises NfcError.
        """
        reader = self.reader
        limit = timeout_ms or self.timeout_ms
        try:
            self._send(out)
        except OSError:  # I2C: the chip did not acknowledge its address
            raise self._cancel(what, "bus write failed")
        resent = False
        since = self._ticks()
        while True:
            kind = self._next(self._rx_ack, since, self.ack_ms, what, False)
            if kind == ACK:
                break
            if kind == NACK:  # the chip got our frame garbled: once more
                if resent:
                    self.trouble = True
                    raise NfcError("nfc.error", what, "NACK")
                resent = True
                try:
                    self._send(out)
                except OSError:
                    raise self._cancel(what, "bus write failed")
                since = self._ticks()
            elif kind == INFO:
                self.stale += 1  # an answer before the ACK answers an earlier command
            elif kind == ERROR:
                raise NfcError("nfc.error", what, "error frame")
        since = self._ticks()
        while True:
            kind = self._next(self._rx_all, since, limit, what, True)
            if kind == INFO:
                buf = reader.buf
                s = reader.start
                if reader.length >= 2 and buf[s + 1] == code + 1:
                    self.start = s + 2
                    self.end = s + reader.length
                    return self.end - self.start
                self.stale += 1
            elif kind == ERROR:
                raise NfcError("nfc.error", what, "error frame")
            # a late ACK or NACK here answers nothing we are waiting for

    def build(self, code, params=b"", more=b""):
        """The frame of command `code` with `params` then `more`, in the output buffer (a view)."""
        data = self._data
        data[0] = code
        n = 1
        for piece in (params, more):
            for i in range(len(piece)):
                data[n] = piece[i]
                n += 1
        k = frame_into(self._tx, memoryview(data)[:n])
        return memoryview(self._tx)[:k]

    def command(self, code, params=b"", timeout_ms=0, what=""):
        """Sends command `code` with `params`; returns its answer's data after the response code."""
        self.call(self.build(code, params), code, timeout_ms, what or "cmd %02X" % code)
        return memoryview(self.reader.buf)[self.start:self.end]

    # -- commands ------------------------------------------------------------------

    def sam_configuration(self):
        """Normal mode (no SAM), timeout 1 s, IRQ pin driven: the first command after wake-up."""
        self.command(SAM_CONFIGURATION, b"\x01\x14\x01", what="SAMConfiguration")

    def firmware_version(self):
        """(IC, version, revision, support): (0x32, 1, 6, 7) for a PN532 v1.6."""
        d = self.command(GET_FIRMWARE_VERSION, what="GetFirmwareVersion")
        if len(d) != 4:
            raise NfcError("nfc.error", "GetFirmwareVersion", "answer of %d bytes" % len(d))
        return d[0], d[1], d[2], d[3]

    def max_retries(self, passive=2, atr=2, psl=1):
        """RFConfiguration item 5: how often the chip retries; the default FF retries for ever."""
        self.command(RF_CONFIGURATION, bytes((5, atr, psl, passive)), what="RFConfiguration")

    def init(self):
        """Wakes the chip and configures it; returns its firmware version."""
        self.transport.reset()
        self.reader.reset()
        self.transport.wake(self._sleep)
        self.sam_configuration()
        self.max_retries()
        version = self.firmware_version()
        if version[0] != 0x32:
            raise NfcError("nfc.error", "GetFirmwareVersion", "IC %02X is no PN532" % version[0])
        self.trouble = False
        return version


class Target:
    """The card found by poll(): reused by every poll; its views are valid until the next one."""

    def __init__(self):
        self._uid = bytearray(10)
        self._ats = bytearray(255)
        self.tg = 0
        self.atqa = 0  # SENS_RES, as the PN532 gives it: 0x0044 for an NTAG
        self.sak = 0  # SEL_RES
        self.uid = b""
        self.ats = b""  # the answer to select with its length byte TL, empty without ISO-DEP

    def iso_dep(self):
        """Does the card speak ISO 14443-4 (a phone, a smart card)? SAK bit 6 says so."""
        return bool(self.sak & 0x20)


def _parse_target(buf, i, end, t):
    # Tg, SENS_RES (2), SEL_RES, NFCIDLength, NFCID1, ATS when SEL_RES says ISO-DEP (7.3.5)
    if end - i < 5:
        raise NfcError("nfc.error", "InListPassiveTarget", "short target data")
    t.tg = buf[i]
    t.atqa = (buf[i + 1] << 8) | buf[i + 2]
    t.sak = buf[i + 3]
    n = buf[i + 4]
    i += 5
    if (n != 4 and n != 7 and n != 10) or end - i < n:
        raise NfcError("nfc.error", "InListPassiveTarget", "UID length %d" % n)
    for k in range(n):
        t._uid[k] = buf[i + k]
    t.uid = memoryview(t._uid)[:n]
    i += n
    t.ats = b""
    if t.sak & 0x20 and i < end:
        tl = buf[i]
        if tl == 0 or end - i < tl:
            raise NfcError("nfc.error", "InListPassiveTarget", "ATS length %d" % tl)
        for k in range(tl):
            t._ats[k] = buf[i + k]
        t.ats = memoryview(t._ats)[:tl]
        i += tl
    return i


class NfcDevice:
    """What the card task uses: poll for a card, talk to it, let it go.

    `answer_size` bounds an answer to exchange() or thru() (a 256-byte APDU answer and
    its status word by default).
    """

    def __init__(self, transport, answer_size=258, poll_ms=300, exchange_ms=1000, two_cards=True, **chip):
        self.chip = PN532(transport, **chip)
        self.poll_ms = poll_ms
        self.exchange_ms = exchange_ms
        self.target = Target()
        self._found = False
        # MaxTg 2: a second card in the field is seen, and refused, rather than ignored
        self._poll = frame(bytes((IN_LIST_PASSIVE_TARGET, 2 if two_cards else 1, 0)))
        self._answer = bytearray(answer_size)
        self._tg = bytearray(1)
        self.version = None

    @property
    def bytes_out(self):
        return self.chip.bytes_out

    @property
    def bytes_in(self):
        return self.chip.bytes_in

    def init(self):
        self.version = self.chip.init()
        return self.version

    def poll(self):
        """Looks for one card (ISO 14443 type A, 106 kbps): the Target, or None if none answered."""
        chip = self.chip
        if chip.trouble:
            self.init()
        self._found = False
        chip.call(self._poll, IN_LIST_PASSIVE_TARGET, self.poll_ms, "InListPassiveTarget")
        buf = chip.reader.buf
        i = chip.start
        end = chip.end
        if end - i < 1:
            raise NfcError("nfc.error", "InListPassiveTarget", "empty answer")
        count = buf[i]
        if count == 0:
            return None
        i = _parse_target(buf, i + 1, end, self.target)
        if count > 1:
            _parse_target(buf, i, end, self.target)  # the second must be sound too, or the answer is garbled
            self._release(0)
            raise NfcError("card.two", "InListPassiveTarget", "%d cards" % count)
        self._found = True
        return self.target

    def _copy_answer(self, at, what):
        # data of the last answer (after its status byte) appended to the answer buffer
        chip = self.chip
        buf = chip.reader.buf
        n = chip.end - chip.start - 1
        if at + n > len(self._answer):
            raise NfcError("nfc.error", what, "answer over %d bytes" % len(self._answer))
        s = chip.start + 1
        out = self._answer
        for k in range(n):
            out[at + k] = buf[s + k]
        return at + n

    def _status(self, what):
        chip = self.chip
        if chip.end - chip.start < 1:
            raise NfcError("nfc.error", what, "empty answer")
        status = chip.reader.buf[chip.start]
        if status & 0x3F:
            raise status_error(status, what)
        return status

    def exchange(self, apdu):
        """Sends `apdu` over ISO-DEP and returns the card's answer (a view, valid until the next call)."""
        if not self._found:
            raise NfcError("card.removed", "InDataExchange", "no card selected")
        chip = self.chip
        tg = self.target.tg
        tgb = self._tg
        what = "InDataExchange"
        n = len(apdu)
        sent = 0
        while True:
            # an APDU over 262 bytes goes in pieces, MI set in the Tg byte of all but the last
            end = min(sent + _DEP_CHUNK, n)
            tgb[0] = tg | (_MI if end < n else 0)
            chip.call(chip.build(IN_DATA_EXCHANGE, tgb, memoryview(apdu)[sent:end]),
                      IN_DATA_EXCHANGE, self.exchange_ms, what)
            status = self._status(what)
            sent = end
            if sent >= n:
                break
        at = self._copy_answer(0, what)
        while status & _MI:
            # the answer did not fit one frame: the Tg byte alone fetches the next part
            tgb[0] = tg
            chip.call(chip.build(IN_DATA_EXCHANGE, tgb), IN_DATA_EXCHANGE, self.exchange_ms, what)
            status = self._status(what)
            was = at
            at = self._copy_answer(at, what)
            if at == was and status & _MI:
                # "more" with nothing in it would go round for ever
                raise NfcError("nfc.error", what, "chained answer part without data")
        return memoryview(self._answer)[:at]

    def thru(self, cmd):
        """Sends a raw command (NTAG READ 30, FAST_READ 3A, READ_SIG 3C, GET_VERSION 60); its answer."""
        if not self._found:
            raise NfcError("card.removed", "InCommunicateThru", "no card selected")
        chip = self.chip
        what = "InCommunicateThru"
        chip.call(chip.build(IN_COMMUNICATE_THRU, cmd), IN_COMMUNICATE_THRU, self.exchange_ms, what)
        self._status(what)
        return memoryview(self._answer)[:self._copy_answer(0, what)]

    def _release(self, tg):
        chip = self.chip
        chip.call(chip.build(IN_RELEASE, bytes((tg,))), IN_RELEASE, 0, "InRelease")

    def close(self):
        """Lets go of the transport (HSU: its UART; I2C and SPI buses stay up)."""
        self.chip.transport.close()

    def release(self):
        """Lets the card go (InRelease). A card already gone is no error."""
        if self._found:
            self._found = False
            self._release(self.target.tg)
