"""The journal's memory claim: 500 appends, a recovery that reads them all, and a
read-back, in FREE_KB of free heap with the rest of the heap taken by ballast.

A module of its own: test_journal's other tests and helpers, loaded beside it, left
less than FREE_KB free at 85 % of the 96 KB heap before any ballast was taken.
"""
import gc

from check import eq, scaled
from journaltools import prev_of, receipt, segments, temp_dir
from tmpfs import rmtree
from protocol.canonical import encode
from protocol.compat import MICROPYTHON
from protocol.records import GENESIS, record_hash

from journal import Journal

FREE_KB = 32


def fill_heap(free):
    """Ballast, the rest of the app in small pieces, until `free` bytes of heap are left.
    Small pieces, so they fill the holes that loading the modules left before they take
    the heap's free end: what is left for the journal is then mostly in one piece,
    whatever the layout of the modules (with 400-byte pieces the free heap stayed in
    holes, and the test passed or failed by where a helper's code happened to land)."""
    gc.collect()
    ballast = [None] * max(0, (gc.mem_free() - free) // 32 + 1)  # taken first: it never grows
    for i in range(len(ballast)):
        if gc.mem_free() <= free:
            break
        ballast[i] = bytearray(16)
    return ballast


def test_500_records_in_a_small_heap():
    d = temp_dir()
    root = d + "/j"
    try:
        gc.collect()
        free0 = gc.mem_free() if MICROPYTHON else 0
        j = Journal(root, capacity=400 * 1024, segment_size=8 * 1024)
        gc.collect()
        held = free0 - gc.mem_free() if MICROPYTHON else 0
        ballast = fill_heap(scaled(FREE_KB * 1024)) if MICROPYTHON else []
        free = gc.mem_free() if MICROPYTHON else 0
        for i in range(500):
            rec = receipt(i, n_lines=3 + i % 5)
            eq(j.append(rec), i + 1, "seq")
            if i % 16 == 0:
                gc.collect()  # as the firmware's watchdog task does every second
        last = encode(rec)
        j.close()
        eq(j.recover(), None, "clean")  # what a reboot does, in the same object and buffer
        eq((j.next_seq, j.last_hash), (501, record_hash(last)), "recovered")
        prev, count = GENESIS, 0
        for seq, data in j.records(0, 1000, 10 ** 9):
            eq(prev_of(data), prev, "prev of %d" % seq)
            prev = record_hash(data)
            count += 1
        eq(count, 500, "read back")
        print("500 records: %d bytes in %d segments; the journal holds %d bytes of heap; "
              "run with %d bytes free" % (j.used, len(segments(root)), held, free))
        assert held < 10 * 1024, held  # the 8 KB frame buffer and little else
        # the ballast left no more than asked (and a little for the last pieces' slack)
        assert not MICROPYTHON or free <= scaled(FREE_KB * 1024) + 1024, free
        j.close()
        del ballast
    finally:
        rmtree(d)
