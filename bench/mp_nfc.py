"""The reader's card path on MicroPython: from "target found" to "discount decided".

bench/nfc_bench.py starts this and drives it; it is not meant to be run by hand.

    micropython -X heapsize=192k bench/mp_nfc.py PORT N

1. Record: the real PN532 driver talks to sim/pn532sim.py on PORT through a UART that
   keeps, for each write(), the bytes that answered it. The host puts a card in the field,
   then sends `kind NAME CARD SIG` on stdin (SIG 1: check the NTAG signature); this reads
   the card once as the firmware does (poll, cardread.identify, release) and prints the
   exchange (`rec NAME OUTHEX INHEX`, one line per write) and `recorded NAME ...`.
2. After `end` on stdin: replay. An in-memory UART makes each recorded answer available
   right after the matching write, so neither the simulator nor the socket is timed, only
   the firmware. Each card read N times: poll (not timed), then the timed part: identify
   with the FIXED nonce of the recording (so the recorded MAC verifies), release, the
   card's tier from a directory, engine.quote of a 30-line basket. Baselines in the same
   run: the quote alone, and ntagsig.verify alone.

Prints `name value unit` lines for the host. Times are of this machine's unix port.
The replay UART costs a little (one slice per read, where the ESP32's UART does a C
memcpy): the timed part is a slight over-estimate of the firmware's time.
"""
import gc
import sys
import time

from protocol import cardread, engine, ntag, ntagsig
from protocol.compat import hexstr, unhexlify

from drivers.pn532 import HSU, NfcDevice
from simuart import SocketUart
from nfcreader import _Tag

ISSUER = bytes(range(0x40, 0x60))  # epoch 1's issuer key; nfc_bench.py makes the cards with it
NONCE = b"bench-nonce-0016"  # fixed: the replayed AUTHENTICATE answer carries its MAC
REAL_UID = unhexlify(b"04ab87f2ca1190")  # a genuine NTAG's UID and NXP signature (test_ntagsig.py)
REAL_SIG = unhexlify(b"67b1750bcceb1174f9a33bf20e0226551a6366939b31f949848c3c087350fa90")

from mp_basket import LINES, RULES  # noqa: E402  (the same quote on both benches)
CTX = {"now": 1790000000, "last_sync": 1790000000 - 600, "card_day_used": 0}


class RecordingUart:
    """A UART that passes everything on and keeps [bytes written, bytes that answered them]."""

    def __init__(self, uart):
        self.uart = uart
        self.entries = []

    def write(self, data):
        self.entries.append([bytes(data), bytearray()])
        self.uart.write(data)

    def any(self):
        return self.uart.any()

    def readinto(self, buf):
        n = self.uart.readinto(buf)
        if n and self.entries:
            self.entries[-1][1].extend(buf[:n])
        return n


class ReplayUart:
    """Plays a recording back: after the k-th write, the k-th answer is there to read.

    `strict` compares every write with the recording (a run that differs, e.g. with
    another nonce, is an error, not a number); the timed runs compare lengths only.
    """

    def __init__(self):
        self.entries = []
        self.strict = True
        self.k = 0
        self.answer = b""
        self.pos = 0

    def load(self, entries):
        self.entries = entries  # [(bytes written, memoryview of the answer)]
        self.k = 0
        self.answer = b""
        self.pos = 0

    def write(self, data):
        if self.k >= len(self.entries):
            raise ValueError("replay: more writes than recorded")
        out, answer = self.entries[self.k]
        if len(data) != len(out) or (self.strict and bytes(data) != out):
            raise ValueError("replay: write %d differs from the recording" % self.k)
        self.k += 1
        self.answer = answer
        self.pos = 0

    def any(self):
        return len(self.answer) - self.pos

    def readinto(self, buf):
        pos = self.pos
        n = min(len(buf), len(self.answer) - pos)
        if n <= 0:
            return None
        buf[0:n] = self.answer[pos:pos + n]
        self.pos = pos + n
        return n


def percentile(sorted_values, p):
    return sorted_values[min(len(sorted_values) - 1, (len(sorted_values) * p) // 100)]


def report(name, times_us):
    times_us.sort()
    print("%s_median" % name, percentile(times_us, 50) / 1000, "ms")
    print("%s_p90" % name, percentile(times_us, 90) / 1000, "ms")


def alloc_of(fn):
    """Bytes allocated by one call of fn, counted with the GC off so nothing is freed meanwhile.

    Minus the free heap when the call needs more than all of it without a collection (the
    signature check's big integers do): "more than this".
    """
    gc.collect()
    free = gc.mem_free()
    gc.disable()
    try:
        a0 = gc.mem_alloc()
        fn()
        return gc.mem_alloc() - a0
    except MemoryError:
        return -free
    finally:
        gc.enable()
        gc.collect()


def read_line():
    line = sys.stdin.readline()
    if not line:
        raise SystemExit("stdin closed")
    return line.split()


def record(port):
    """Reads each card the host puts in the field; returns (name, card, sig, entries) per card."""
    uart = RecordingUart(SocketUart("127.0.0.1", port))
    dev = NfcDevice(HSU(uart))
    dev.init()
    init = uart.entries
    buf = bytearray(ntag.BUF_SIZE)
    keys = {1: ISSUER}.get
    cards = []
    print("ready")
    while True:
        words = read_line()
        if words[0] == "end":
            break
        name, card, sig = words[1], words[2], words[3] == "1"
        uart.entries = []
        out0, in0 = dev.bytes_out, dev.bytes_in
        target = dev.poll()
        if target is None:
            raise SystemExit("%s: no card in the field" % name)
        try:
            ident = cardread.identify(_Tag(dev), keys, NONCE, buf, sig)
        finally:
            dev.release()
        if ident["card"] != card:
            raise SystemExit("%s: read card %s, expected %s" % (name, ident["card"], card))
        for out, answer in uart.entries:
            print("rec", name, hexstr(out), hexstr(answer) if answer else "-")
        print("recorded", name, ident["kind"], dev.bytes_out - out0, dev.bytes_in - in0, len(uart.entries))
        cards.append((name, card, sig, _views(uart.entries)))
    uart.uart.deinit()
    return _views(init), cards


def _views(entries):
    # made once: a replayed read then slices a view, the nearest Python gets to the UART's memcpy
    return [(out, memoryview(bytes(answer))) for out, answer in entries]


def replay(init, cards, n):
    uart = ReplayUart()
    dev = NfcDevice(HSU(uart))
    uart.load(init)
    dev.init()
    buf = bytearray(ntag.BUF_SIZE)
    keys = {1: ISSUER}.get
    directory = {}
    for i in range(len(cards)):
        directory[cards[i][1]] = i % 3  # tiers base, silver, gold in turn
    state = {}

    def card_read(sig):
        ident = cardread.identify(_Tag(dev), keys, NONCE, buf, sig)
        dev.release()
        state["q"] = engine.quote(RULES, LINES, directory.get(ident["card"], 0), CTX)
        state["ident"] = ident

    for name, card, sig, entries in cards:
        uart.strict = True
        uart.load(entries)
        dev.poll()
        card_read(sig)
        if state["ident"]["card"] != card or uart.k != len(entries):
            raise SystemExit("%s: the replay did not read the card as recorded" % name)
        uart.strict = False
        times = []
        gc.collect()
        for _ in range(n):
            uart.load(entries)
            dev.poll()
            t0 = time.ticks_us()
            card_read(sig)
            times.append(time.ticks_diff(time.ticks_us(), t0))
            if state["ident"]["card"] != card:
                raise SystemExit("%s: replay read %s" % (name, state["ident"]["card"]))
        report("card_" + name, times)
        uart.load(entries)
        dev.poll()
        print("card_%s_alloc" % name, alloc_of(lambda: card_read(sig)), "bytes")
        print("card_%s_discount" % name, state["q"]["discount"], "cents")

    times = []
    gc.collect()
    for i in range(n):
        t0 = time.ticks_us()
        engine.quote(RULES, LINES, i % 3, CTX)
        times.append(time.ticks_diff(time.ticks_us(), t0))
    report("quote", times)
    print("quote_alloc", alloc_of(lambda: engine.quote(RULES, LINES, 2, CTX)), "bytes")

    times = []
    for i in range(max(10, n // 10)):
        t0 = time.ticks_us()
        ok = ntagsig.verify(REAL_UID, REAL_SIG)
        times.append(time.ticks_diff(time.ticks_us(), t0))
        if not ok:
            raise SystemExit("NXP's signature of the real tag did not verify")
    report("sig_verify", times)


def main():
    port, n = int(sys.argv[1]), int(sys.argv[2])
    init, cards = record(port)
    replay(init, cards, n)
    print("done")


main()
