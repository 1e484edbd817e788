"""The reader's receipt path on MicroPython: identify the card from the directory, decide
the discount for a 30-line receipt, build the record and append it to the journal.

Prints one line per measure: `name value unit`. bench/run.py runs it and reports.
Baselines measured in the same run: a raw append+flush of the same bytes to a file (what
the journal's framing, CRC and chain add to it) and one raw seek+readinto of a
directory record (what the binary search adds to it).
"""
import gc
import os
import time

JOURNAL_BUFFER = bytearray(8192)

from protocol import canonical, engine  # noqa: E402
from protocol.records import GENESIS, make_record  # noqa: E402

import cardcache  # noqa: E402
from journal import Journal  # noqa: E402

N = 200  # receipts
CARDS = 100000
ROOT = "/tmp/bench-receipt-%d" % (time.ticks_ms() & 0xFFFFFF)

from mp_basket import LINES, RULES  # noqa: E402  (the same quote on both benches)


def rmtree(path):
    gc.collect()
    for entry in list(os.ilistdir(path)):
        p = path + "/" + entry[0]
        if entry[1] == 0x4000:
            rmtree(p)
        else:
            os.remove(p)
    os.rmdir(path)


def card_of(i):
    return 6001000000000000 + 7 * i


def measure(fn, n):
    """(microseconds per call over n calls, bytes allocated by the last call).

    Time is taken with the GC on, as on the reader; the allocation of one call is
    counted with the GC off so that nothing is freed while counting.
    """
    gc.collect()
    t0 = time.ticks_us()
    for i in range(n - 1):
        fn(i)
    dt = time.ticks_diff(time.ticks_us(), t0)
    gc.collect()
    gc.disable()
    try:
        a0 = gc.mem_alloc()
        t1 = time.ticks_us()
        fn(n - 1)
        dt += time.ticks_diff(time.ticks_us(), t1)
        da = gc.mem_alloc() - a0
    finally:
        gc.enable()
    gc.collect()
    return dt / n, da


def main():
    if True:  # the caller removes the folder, once this frame and its buffers are gone
        cardcache.build(ROOT, ((card_of(i), i % 3, 0) for i in range(CARDS)), 1)
        gc.collect()
        a0 = gc.mem_alloc()
        cards = cardcache.CardCache(ROOT)
        gc.collect()
        print("directory_ram", gc.mem_alloc() - a0, "bytes")
        keys = [b"%d" % card_of((i * 7919) % CARDS) for i in range(N)]
        absent = [b"%d" % (card_of(i) + 3) for i in range(N)]
        us, alloc = measure(lambda i: cards.find(keys[i]), N)
        print("lookup_present", us, "us")
        print("lookup_alloc", alloc, "bytes")
        us, _ = measure(lambda i: cards.find(absent[i]), N)
        print("lookup_absent", us, "us")
        f = open(ROOT + "/cards.bin", "rb")
        buf = bytearray(10)
        us, _ = measure(lambda i: (f.seek(16 + 10 * ((i * 7919) % CARDS)), f.readinto(buf)), N)
        f.close()
        print("baseline_one_read", us, "us")

        journal = Journal(ROOT + "/j", capacity=4 * 1024 * 1024, segment_size=16 * 1024, buffer=JOURNAL_BUFFER)
        ctx = {"now": 1790000000, "last_sync": 1790000000 - 600, "card_day_used": 0}
        state = {}

        def identify(i):
            state["found"] = cards.find(keys[i])

        def discount(i):
            state["q"] = engine.quote(RULES, LINES, state["found"] >> 8, ctx)

        def record(i):
            q = state["q"]
            state["rec"] = make_record("sale", "R1", 0, GENESIS, ctx["now"], "6001000000000042", q["tier"], LINES,
                                       q["gross"], q["discount"], q["disc"], 3, "T1-%d" % i, "Q%d" % i)

        def append(i):
            journal.append(state["rec"])

        def receipt(i):
            identify(i)
            discount(i)
            record(i)
            append(i)

        total_us = total_alloc = 0
        for name, fn in (("identify", identify), ("discount", discount), ("record", record), ("append", append)):
            us, alloc = 0, 0
            for i in range(N):  # one call at a time: each stage needs the previous one's output
                if name != "identify":
                    identify(i)
                if name in ("record", "append"):
                    discount(i)
                if name == "append":
                    record(i)
                u, a = measure(lambda k: fn(i), 1)
                us += u
                alloc += a
            print("stage_%s_us" % name, us / N, "us")
            print("stage_%s_alloc" % name, alloc // N, "bytes")
        runs = sorted(measure(receipt, N) for _ in range(3))
        us, alloc = runs[1]  # the median of three runs: a GC sweep may fall into one of them
        print("receipt_us", us, "us")
        print("receipt_alloc", alloc, "bytes")
        data = canonical.encode(state["rec"])
        print("record_bytes", len(data), "bytes")
        print("discount_lines", len(state["q"]["disc"]), "lines")
        raw = open(ROOT + "/raw.bin", "ab")

        def raw_append(i):
            raw.write(data)
            raw.flush()

        us, _ = measure(raw_append, N)
        raw.close()
        print("baseline_raw_append", us, "us")
        journal.close()
        cards.close()


os.mkdir(ROOT)
try:
    main()
finally:
    rmtree(ROOT)
