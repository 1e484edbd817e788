# heapsize: 128k
# (the fake buses and scripted frames need it; the driver itself takes about 14 KB on the unix port)
"""PN532 driver (drivers.pn532): the exact bytes each transport puts on its bus, and the
chipset's handling of ACK, NACK, stale answers, garbage, timeouts and card answers.

The fake buses play the chip: after each frame the host writes, they hand back the frames
a test scripted for it, the way each bus does (a UART stream in pieces of any size; I2C
and SPI one frame per ready status). Expected bytes come from UM0701-02's definitions,
written out here by `_ref` and by hand, never from the module under test.
"""
from check import eq, raises, without_allocating
from drivers.pn532 import HSU, I2C, SPI, NfcDevice, NfcError



def _ref(tfi, data):
    # UM0701-02 6.2.1.1 (normal) and 6.2.1.2 (extended information frame)
    body = bytes([tfi]) + bytes(data)
    n = len(body)
    if n <= 255:
        head = bytes([0, 0, 0xFF, n, (256 - n) % 256])
    else:
        head = bytes([0, 0, 0xFF, 0xFF, 0xFF, n // 256, n % 256, (256 - (n // 256 + n % 256) % 256) % 256])
    return head + body + bytes([(256 - sum(body) % 256) % 256, 0])


def host(data):
    return _ref(0xD4, data)


def chip(data):
    return _ref(0xD5, data)


ACK = b"\x00\x00\xff\x00\xff\x00"
NACK = b"\x00\x00\xff\xff\x00\x00"
SYNTAX_ERROR = b"\x00\x00\xff\x01\xff\x7f\x81\x00"
WAKE = b"\x55\x55" + b"\x00" * 14

SAM = host(b"\x14\x01\x14\x01")  # normal mode, 1 s, IRQ
RETRIES = host(b"\x32\x05\x02\x01\x02")  # RFConfiguration MaxRetries: ATR 2, PSL 1, passive 2
GFV = host(b"\x02")
POLL = host(b"\x4a\x02\x00")  # InListPassiveTarget, 2 targets at most, 106 kbps type A
INIT_FRAMES = [SAM, RETRIES, GFV]
INIT_REPLIES = [[ACK, chip(b"\x15")], [ACK, chip(b"\x33")], [ACK, chip(b"\x03\x32\x01\x06\x07")]]

NTAG_UID = b"\x04\x11\x22\x33\x44\x55\x66"
NTAG_FOUND = chip(b"\x4b\x01\x01\x00\x44\x00\x07" + NTAG_UID)
NO_CARD = chip(b"\x4b\x00")
PHONE_ATS = b"\x05\x78\x80\x70\x02"
PHONE_FOUND = chip(b"\x4b\x01\x01\x00\x04\x20\x04\x08\x9a\xbc\xde" + PHONE_ATS)


def _rev(b):
    r = 0
    for i in range(8):
        if b & (1 << i):
            r |= 1 << (7 - i)
    return r


def _revall(data):
    return bytes(_rev(b) for b in data)


class Clock:
    """Time moves only when the driver sleeps: timeouts happen without waiting."""

    def __init__(self):
        self.t = 0

    def ticks(self):
        return self.t

    def sleep(self, ms):
        self.t += ms


class ChipScript:
    """The chip's side shared by the fakes: frames the host wrote, frames to hand back."""

    def __init__(self, replies):
        self.replies = list(replies)  # one list of frames per host frame, in order
        self.frames = []  # every frame the host wrote (bus prefixes and bit order undone)
        self.queue = []

    def host_wrote(self, data):
        data = bytes(data)
        if data[:3] != b"\x00\x00\xff":
            return
        self.frames.append(data)
        k = len(self.frames) - 1
        if k < len(self.replies):
            self.queue.extend(self.replies[k])


class FakeUart(ChipScript):
    def __init__(self, replies, piece=0):
        super().__init__(replies)
        self.writes = []
        self.stream = b""
        self.piece = piece  # bytes per readinto, 0: all there is

    def write(self, data):
        self.writes.append(bytes(data))
        self.host_wrote(data)
        while self.queue:
            self.stream += self.queue.pop(0)
        return len(data)

    def any(self):
        return len(self.stream)

    def deinit(self):
        self.closed = True

    def readinto(self, buf):
        n = min(len(buf), len(self.stream), self.piece or len(self.stream))
        buf[:n] = self.stream[:n]
        self.stream = self.stream[n:]
        return n


class FakeI2C(ChipScript):
    def __init__(self, replies, stretch=0):
        super().__init__(replies)
        self.writes = []
        self.reads = []  # lengths of the read transactions
        self.stretch = stretch  # reads that time out first (clock stretching)

    def writeto(self, addr, data):
        eq(addr, 0x24, "I2C address")
        self.writes.append(bytes(data))
        self.host_wrote(data)

    def readfrom_into(self, addr, buf):
        eq(addr, 0x24, "I2C address")
        if self.stretch:
            self.stretch -= 1
            raise OSError(116)  # ETIMEDOUT
        self.reads.append(len(buf))
        buf[0] = 1 if self.queue else 0
        if len(buf) == 1 or not self.queue:
            return
        f = self.queue.pop(0)
        n = min(len(f), len(buf) - 1)
        buf[1:1 + n] = f[:n]
        for i in range(1 + n, len(buf)):
            buf[i] = 0


class FakePin:
    def __init__(self, bus):
        self.bus = bus
        self.v = 1

    def value(self, v=None):
        if v is None:
            return self.v
        if self.v and not v:
            self.bus.txns.append(b"")
        self.v = v


class FakeSpi(ChipScript):
    """Records each chip-select cycle as the bytes the host wrote in it, as they left the bus."""

    def __init__(self, replies, lsb_bus=True):
        super().__init__(replies)
        self.lsb_bus = lsb_bus
        self.txns = []
        self.cs = FakePin(self)

    def _wire(self, data):
        # what the LSB-first chip sees of bytes an MSB-first bus shifted out, and back
        return bytes(data) if self.lsb_bus else _revall(data)

    def write(self, data):
        assert self.cs.v == 0, "write with NSS high"
        self.txns[-1] += bytes(data)
        seen = self._wire(self.txns[-1])
        if seen[0] == 0x01 and len(seen) > 1:
            self.host_wrote(seen[1:])

    def readinto(self, buf, write=0):
        assert self.cs.v == 0, "read with NSS high"
        op = self._wire(self.txns[-1][:1])
        if op == b"\x02":
            out = b"\x01" if self.queue else b"\x00"
        elif op == b"\x03":
            out = self.queue.pop(0) if self.queue else b""
        else:
            raise AssertionError("read after prefix %r" % op)
        out = (out + bytes(len(buf)))[:len(buf)]
        buf[:] = self._wire(out)


def _device(kind, replies, **opts):
    clock = Clock()
    piece = opts.pop("piece", 0)
    if kind == "hsu":
        bus = FakeUart(replies, piece)
        transport = HSU(bus)
    elif kind == "i2c":
        bus = FakeI2C(replies, opts.pop("stretch", 0))
        transport = I2C(bus)
    else:
        bus = FakeSpi(replies, kind == "spi")
        transport = SPI(bus, bus.cs, lsb_first_bus=(kind == "spi"))
    dev = NfcDevice(transport, ticks=clock.ticks, sleep=clock.sleep, **opts)
    return dev, bus, clock


KINDS = ("hsu", "i2c", "spi", "spi-msb")


def _ready(kind, replies, **opts):
    dev, bus, clock = _device(kind, INIT_REPLIES + list(replies), **opts)
    eq(dev.init(), (0x32, 1, 6, 7), "firmware version")
    return dev, bus, clock


def test_hsu_wakes_the_chip_and_configures_it_with_the_manuals_bytes():
    dev, uart, _ = _ready("hsu", [])
    eq(b"".join(uart.writes), WAKE + SAM + RETRIES + GFV)
    eq(uart.writes[0], WAKE, "the long preamble goes first, alone")
    eq(SAM, b"\x00\x00\xff\x05\xfb\xd4\x14\x01\x14\x01\x02\x00", "SAMConfiguration as in the manual")


def test_i2c_reads_the_status_byte_before_each_frame():
    dev, bus, _ = _ready("i2c", [])
    eq(bus.writes, [b"", SAM, RETRIES, GFV], "wake-up address, then one transaction per frame")
    # per frame: a 1-byte status read, then status and frame in one transaction
    eq(bus.reads, [1, 24, 1, 280] * 3)
    eq(dev.chip.reader.skipped, 0, "the status byte is not taken for frame bytes")


def test_spi_prefixes_and_bit_order():
    for kind in ("spi", "spi-msb"):
        dev, bus, clock = _ready(kind, [])
        assert clock.t >= 2, "NSS held low 2 ms to wake the chip"
        w = (lambda b: b) if kind == "spi" else _revall
        want = [b""]  # wake-up: NSS low, no bytes
        for f in INIT_FRAMES:
            want += [w(b"\x01" + f), w(b"\x02"), w(b"\x03"), w(b"\x02"), w(b"\x03")]
        eq(bus.txns, want, kind)
    eq(_revall(b"\x01\x02\x03\xd4"), b"\x80\x40\xc0\x2b", "bit reversal, by hand")


def test_a_card_read_sends_the_same_frames_on_every_bus():
    read4 = bytes(range(16))
    for kind in KINDS:
        dev, bus, _ = _ready(kind, [
            [ACK, NTAG_FOUND], [ACK, chip(b"\x43\x00" + read4)], [ACK, chip(b"\x53\x00")]])
        t = dev.poll()
        eq((t.tg, t.atqa, t.sak, bytes(t.uid), bytes(t.ats), t.iso_dep()), (1, 0x0044, 0, NTAG_UID, b"", False))
        eq(bytes(dev.thru(b"\x30\x04")), read4, kind)
        dev.release()
        eq(bus.frames, INIT_FRAMES + [POLL, host(b"\x42\x30\x04"), host(b"\x52\x01")], kind)


def test_the_reader_closes_on_every_bus():
    # the card task closes its reader each time it restarts: on no bus may that raise
    # (an SPI reader once did, and the card task's error became an AttributeError)
    for kind in KINDS:
        dev, bus, _ = _ready(kind, [])
        if kind.startswith("spi"):
            bus.cs.value(0)  # a transaction cut off with NSS low
        dev.close()
        if kind == "hsu":
            assert getattr(bus, "closed", False), "the UART is let go"
        if kind.startswith("spi"):
            eq(bus.cs.v, 1, "NSS high again")


def test_ack_and_answer_in_one_read_and_split_in_pieces_of_every_size():
    for piece in (0, 1, 2, 3, 5, 7, 13):
        dev, uart, _ = _ready("hsu", [[ACK + NTAG_FOUND]], piece=piece)
        eq(bytes(dev.poll().uid), NTAG_UID, "pieces of %d" % piece)


def test_long_preambles_and_garbage_before_frames():
    noisy = [[b"\x00" * 9 + ACK, b"\xaa\x17\x55\x00\x00\x00" + NTAG_FOUND]]
    for kind in ("hsu", "i2c", "spi"):
        dev, bus, _ = _ready(kind, noisy)
        eq(bytes(dev.poll().uid), NTAG_UID, kind)


def test_a_nack_makes_the_host_send_the_command_again():
    for kind in KINDS:
        dev, bus, _ = _ready(kind, [[NACK], [ACK, NO_CARD]])
        eq(dev.poll(), None)
        eq(bus.frames[3:], [POLL, POLL], kind)
    dev, bus, _ = _ready("hsu", [[NACK], [NACK]])
    eq(raises(NfcError, dev.poll).code, "nfc.error", "a second NACK")


def test_a_lost_ack_times_out_cancels_and_the_next_command_works():
    for kind in KINDS:
        dev, bus, clock = _ready(kind, [[], [], [ACK, NO_CARD]])
        e = raises(NfcError, dev.poll)
        eq((e.code, e.detail), ("nfc.timeout", "no ACK"), kind)
        eq(bus.frames[-2:], [POLL, ACK], "cancelled with an ACK frame")
        assert clock.t >= 50, clock.t
        dev.chip.trouble = False  # the chip, not the device: no initialisation in between
        eq(dev.poll(), None, kind)
        eq(bus.frames[-1], POLL)


def test_a_timeout_waiting_for_the_answer_cancels_and_the_next_poll_initialises_again():
    for kind in KINDS:
        dev, bus, clock = _ready(kind, [[ACK], []] + INIT_REPLIES + [[ACK, NO_CARD]], poll_ms=40)
        e = raises(NfcError, dev.poll)
        eq((e.code, e.detail), ("nfc.timeout", "no answer"), kind)
        eq(bus.frames[-1], ACK, "cancelled with an ACK frame")
        assert clock.t >= 40, clock.t
        eq(dev.poll(), None, kind)
        eq(bus.frames[-4:], INIT_FRAMES + [POLL], "initialised again first")


def test_a_stale_answer_is_skipped():
    for kind in ("hsu", "i2c", "spi"):
        stale = chip(b"\x43\x01")  # an InCommunicateThru answer that came too late
        dev, bus, _ = _ready(kind, [[stale, ACK, stale, NTAG_FOUND]])
        eq(bytes(dev.poll().uid), NTAG_UID, kind)
        eq(dev.chip.stale, 2)


def test_an_error_frame_is_an_nfc_error():
    for kind in KINDS:
        dev, bus, _ = _ready(kind, [[ACK, SYNTAX_ERROR]])
        e = raises(NfcError, dev.poll)
        eq((e.code, e.detail), ("nfc.error", "error frame"), kind)


def test_a_garbled_answer_is_asked_for_again_with_a_nack():
    bad = bytearray(NTAG_FOUND)
    bad[9] ^= 0x10
    for kind in ("hsu", "i2c", "spi"):
        dev, bus, _ = _ready(kind, [[ACK, bytes(bad)], [NTAG_FOUND]])
        eq(bytes(dev.poll().uid), NTAG_UID, kind)
        eq(bus.frames[-1], NACK)


def test_uids_of_4_7_and_10_bytes_and_an_ats():
    uid10 = bytes(range(0x30, 0x3a))
    cases = [
        (chip(b"\x4b\x01\x01\x00\x04\x08\x04\xde\xad\xbe\xef"), 0x0004, 0x08, b"\xde\xad\xbe\xef", b""),
        (NTAG_FOUND, 0x0044, 0x00, NTAG_UID, b""),
        (chip(b"\x4b\x01\x01\x00\x84\x00\x0a" + uid10), 0x0084, 0x00, uid10, b""),
        (PHONE_FOUND, 0x0004, 0x20, b"\x08\x9a\xbc\xde", PHONE_ATS),
    ]
    for answer, atqa, sak, uid, ats in cases:
        dev, bus, _ = _ready("hsu", [[ACK, answer]])
        t = dev.poll()
        eq((t.atqa, t.sak, bytes(t.uid), bytes(t.ats), t.iso_dep()), (atqa, sak, uid, ats, bool(ats)))


def test_two_cards_are_refused_and_released():
    two = chip(b"\x4b\x02\x01\x00\x44\x00\x07" + NTAG_UID + b"\x02\x00\x04\x08\x04\x01\x02\x03\x04")
    dev, bus, _ = _ready("hsu", [[ACK, two], [ACK, chip(b"\x53\x00")]])
    eq(raises(NfcError, dev.poll).code, "card.two")
    eq(bus.frames[-1], host(b"\x52\x00"), "InRelease of every target")
    # an ISO-DEP card and an NTAG: the first target's ATS ends where the second begins
    two = chip(b"\x4b\x02\x01\x00\x04\x20\x04\x08\x9a\xbc\xde" + PHONE_ATS + b"\x02\x00\x44\x00\x07" + NTAG_UID)
    dev, bus, _ = _ready("hsu", [[ACK, two], [ACK, chip(b"\x53\x00")]])
    eq(raises(NfcError, dev.poll).code, "card.two")
    eq(bytes(dev.target.uid), NTAG_UID)


def test_a_malformed_target_is_an_error_not_a_crash():
    for data in (b"\x4b\x01\x01\x00\x44\x00\x05\x01\x02\x03\x04\x05", b"\x4b\x01\x01\x00\x44\x00\x07\x04\x11",
                 b"\x4b\x01\x01\x00", b"\x4b", b"\x4b\x01\x01\x00\x04\x20\x04\x01\x02\x03\x04\x09\x78"):
        dev, bus, _ = _ready("hsu", [[ACK, chip(data)]])
        eq(raises(NfcError, dev.poll).code, "nfc.error", data)


def test_exchange_with_an_iso_dep_card_and_chained_answers():
    select = b"\x00\xa4\x04\x00\x08\xf0\x53\x43\x4f\x4e\x54\x4f\x01\x00"
    part1, part2 = bytes(range(200)), bytes(range(100)) + b"\x90\x00"
    dev, bus, _ = _ready("spi-msb", [[ACK, PHONE_FOUND], [ACK, chip(b"\x41\x40" + part1)],
                                     [ACK, chip(b"\x41\x00" + part2)]], answer_size=400)
    dev.poll()
    eq(bytes(dev.exchange(select)), part1 + part2)
    eq(bus.frames[-2:], [host(b"\x40\x01" + select), host(b"\x40\x01")], "the rest fetched with Tg alone")


def test_a_long_apdu_goes_in_pieces_with_mi_set():
    apdu = bytes(i & 0xFF for i in range(300))
    dev, bus, _ = _ready("hsu", [[ACK, PHONE_FOUND], [ACK, chip(b"\x41\x00")], [ACK, chip(b"\x41\x00\x90\x00")]])
    dev.poll()
    eq(bytes(dev.exchange(apdu)), b"\x90\x00")
    first = host(b"\x40\x41" + apdu[:262])
    eq(first[:8], b"\x00\x00\xff\xff\xff\x01\x09\xf6", "an extended frame: LEN 265")
    eq(bus.frames[-2:], [first, host(b"\x40\x01" + apdu[262:])])


def test_status_bytes_are_masked_and_named():
    for status, code in ((0x01, "card.removed"), (0x41, "card.removed"), (0x2B, "card.removed"), (0x02, "card.unreadable"),
                         (0x13, "card.unreadable"), (0x27, "nfc.error"), (0x0E, "nfc.error")):
        dev, bus, _ = _ready("hsu", [[ACK, PHONE_FOUND], [ACK, chip(bytes([0x41, status]))]])
        dev.poll()
        e = raises(NfcError, dev.exchange, b"\x00\xb0\x00\x00\x00")
        eq((e.code, e.field, e.detail), (code, "InDataExchange", "status %02X" % (status & 0x3F)))
    # bit 7 (NAD present) is no error
    dev, bus, _ = _ready("hsu", [[ACK, PHONE_FOUND], [ACK, chip(b"\x41\x80\x90\x00")]])
    dev.poll()
    eq(bytes(dev.exchange(b"\x00")), b"\x90\x00")


def test_a_removed_ntag_and_ntag_commands():
    dev, bus, _ = _ready("i2c", [[ACK, NTAG_FOUND], [ACK, chip(b"\x43\x00\x00\x04\x04\x02\x01\x00\x0f\x03")],
                                 [ACK, chip(b"\x43\x01")]])
    dev.poll()
    eq(bytes(dev.thru(b"\x60")), b"\x00\x04\x04\x02\x01\x00\x0f\x03", "GET_VERSION of an NTAG215")
    eq(raises(NfcError, dev.thru, b"\x3a\x04\x0f").code, "card.removed")
    eq(bus.frames[-2:], [host(b"\x42\x60"), host(b"\x42\x3a\x04\x0f")])
    eq(raises(NfcError, _ready("hsu", [])[0].thru, b"\x30\x00").code, "card.removed", "no card polled")


def test_i2c_clock_stretching_is_tolerated():
    dev, bus, _ = _ready("i2c", [[ACK, NO_CARD]])
    bus.stretch = 5
    eq(dev.poll(), None)
    dev, bus, _ = _device("i2c", INIT_REPLIES, stretch=10 ** 6)
    eq(raises(NfcError, dev.init).code, "nfc.timeout", "a bus stuck for good")


def test_bytes_are_counted_both_ways():
    dev, uart, _ = _ready("hsu", [[ACK, NO_CARD]])
    out, inn = dev.bytes_out, dev.bytes_in
    dev.poll()
    eq((dev.bytes_out - out, dev.bytes_in - inn), (len(POLL), len(ACK) + len(NO_CARD)))
    eq(out, len(SAM + RETRIES + GFV), "the wake-up preamble is no frame")


class _QuietUart:
    """Answers every poll with ACK and "no target" without allocating: for the test with the heap locked."""

    def __init__(self):
        self.reply = ACK + NO_CARD
        self.at = len(self.reply)
        self.polls = 0
        self.wrong = 0
        self.want = POLL

    def write(self, data):
        for i in range(len(data)):
            if data[i] != self.want[i]:
                self.wrong += 1
        self.polls += 1
        self.at = 0
        return len(data)

    def any(self):
        return len(self.reply) - self.at

    def readinto(self, buf):
        n = 0
        while n < len(buf) and self.at < len(self.reply):
            buf[n] = self.reply[self.at]
            n += 1
            self.at += 1
        return n


def test_polling_an_empty_field_allocates_nothing():
    # real clock here: the answers are there at once, so nothing waits
    uart = FakeUart(INIT_REPLIES)
    dev = NfcDevice(HSU(uart))
    dev.init()
    quiet = _QuietUart()
    dev.chip.transport.uart = quiet
    found = [0]

    def run():
        for _ in range(50):
            if dev.poll() is not None:
                found[0] += 1

    run()  # warm-up
    without_allocating(run)
    eq((quiet.polls, quiet.wrong, found[0]), (100, 0, 0))
