"""The journal: framing, seq and hash chain, recovery, acks, full, torn tails, memory.

Runs in the ESP32's 96 KB heap like every test here. The memory claim proper, 500
appends, a recovery and a read-back in 32 KB of free heap, is test_journal_memory.py.

The journal lives in a temporary directory (VfsPosix on MicroPython); a "reboot" is a
new Journal over the same files. littlefs and power cuts: test_journal_powercut.py.
"""
import gc
import os

from check import eq, raises, scaled
from journaltools import on_disk, prev_of, receipt, segments, temp_dir
from tmpfs import rmtree
from protocol.canonical import encode
from protocol.errors import EncodingError, JournalError
from protocol.records import GENESIS, record_hash

from journal import Journal


def fill(j, count, start=0, n_lines=2):
    """Append receipts start..start+count-1: {seq: (size, hash) of the bytes that should be
    on flash}. Not the bytes themselves: test_levels_and_full_refusal writes 12 KB of
    records, and keeping them all would leave the test little of its heap to spare."""
    written = {}
    for i in range(start, start + count):
        rec = receipt(i, n_lines)
        seq = j.append(rec)
        data = encode(rec)
        written[seq] = (len(data), record_hash(data))
    return written


def size_of(written):
    return written[0]


def hash_of(written):
    return written[1]


def check_chain(j, written, prev):
    """Pending records are exactly what was written, in order, chained from `prev`."""
    seqs = []
    for seq, data in j.records(0, 10000, 10 ** 9):  # streamed: the test runs in 96 KB too
        eq((len(data), record_hash(data)), written[seq], "payload %d" % seq)
        eq(prev_of(data), prev, "prev of %d" % seq)
        prev = record_hash(data)
        seqs.append(seq)
    eq(seqs, list(range(j.acked + 1, j.next_seq)), "pending seqs")
    eq(j.last_hash, prev, "last_hash")


# taken at import, while the heap is in one piece (as the firmware does at boot): the
# tests keep records around, and those end up all over the heap
BUFFER = bytearray(8192)


def run(test, cap=12000, seg=1000, nearly=0.8):
    """test(root, open_journal) in a fresh directory, removed afterwards."""
    d = temp_dir()
    gc.collect()  # the garbage of compiling this module and journal.py from source
    try:
        def open_j():
            return Journal(d + "/j", capacity=cap, segment_size=seg, nearly_full=nearly, buffer=BUFFER)

        test(d + "/j", open_j)
    finally:
        rmtree(d)


def test_append_read_back_and_chain():
    def t(root, open_j):
        j = open_j()
        eq((j.next_seq, j.last_hash), (1, GENESIS), "empty")
        w = fill(j, 10)
        eq(sorted(w), list(range(1, 11)), "seqs")
        check_chain(j, w, GENESIS)
        assert len(segments(root)) > 2  # crosses segment borders
        eq(j.stats()["used"], on_disk(root), "used")
        eq([s for s, _ in j.records(4, 3, 10 ** 6)], [4, 5, 6], "max_count")
        size = size_of(w[4])
        eq([s for s, _ in j.records(4, 99, 2 * size + size // 2)], [4, 5], "max_bytes")
        eq([s for s, _ in j.records(4, 99, 1)], [4], "the first always comes")
        eq(list(j.records(11)), [], "none after the last")
        j.close()
        j = open_j()  # reboot
        eq((j.torn, j.next_seq, j.last_hash), (None, 11, hash_of(w[10])), "recovered")
        w.update(fill(j, 3, start=10))
        check_chain(j, w, GENESIS)
        j.close()
    run(t)


def test_ack_deletes_segments_persists_and_seq_continues():
    def t(root, open_j):
        j = open_j()
        w = fill(j, 12)
        segs = segments(root)
        firsts = [int(n[:-4]) for n in segs]
        assert firsts[3] - firsts[2] >= 2, firsts
        upto = firsts[2]  # the first record of the third segment: it stays
        eq(j.ack(upto), upto, "released")
        eq(segments(root), segs[2:], "segments left")
        s = j.stats()
        eq((s["acked"], s["pending"], s["used"]), (upto, 12 - upto, on_disk(root)), "stats")
        eq(s["oldest_t"], receipt(upto)["t"], "oldest_t")
        eq((j.ack(upto), j.ack(1)), (0, 0), "repeated and older acks ignored")
        eq(raises(JournalError, j.ack, 13).code, "journal.ack")
        j.close()
        j = open_j()
        eq((j.acked, j.next_seq, j.stats()["oldest_t"]), (upto, 13, receipt(upto)["t"]), "after reboot")
        check_chain(j, w, hash_of(w[upto]))
        eq(j.ack(12), 12 - upto, "all")
        eq((segments(root), j.stats()["pending"], j.stats()["oldest_t"]), ([], 0, None), "all gone")
        j.close()
        j = open_j()
        eq((j.next_seq, j.last_hash), (13, hash_of(w[12])), "seq and chain survive")
        more = fill(j, 2, start=12)
        eq(sorted(more), [13, 14], "seqs continue")
        check_chain(j, more, hash_of(w[12]))
        j.close()
    run(t, seg=800)


def test_levels_and_full_refusal():
    def t(root, open_j):
        j = open_j()
        w, levels, err = {}, [], None
        for i in range(60):
            used = on_disk(root)
            want = "full" if used + 7 + 3072 > 12000 else "nearly_full" if used >= 6000 else "ok"
            eq((j.stats()["used"], j.stats()["level"]), (used, want), "level")
            if not levels or levels[-1] != want:
                levels.append(want)
            try:
                w.update(fill(j, 1, start=i))
            except JournalError as e:
                err = e
                break
        eq(levels, ["ok", "nearly_full", "full"], "levels")
        eq(err.code if err else None, "journal.full", "refused")
        n, size = len(w), size_of(w[1])
        assert j.stats()["used"] + 7 + size > 12000 and not j.room_for(size)
        eq((j.next_seq, on_disk(root)), (n + 1, j.stats()["used"]), "nothing written")
        check_chain(j, w, GENESIS)
        j.close()
        j = open_j()
        eq(j.next_seq, n + 1, "no trace after reboot")
        j.ack(n)
        assert j.room_for(size)
        check_chain(j, fill(j, 1, start=90), hash_of(w[n]))
        j.close()
    run(t, nearly=0.5)


def test_torn_tails_are_cut_and_reported():
    frame = b"\xa5\x01\x00\x12\x34\x56\x78" + b'{"v":1,' + b"x" * 249
    cases = [frame[:3], frame[:80],  # part of a header; header and part of the payload
             b"\xa5\x00\x20" + b"\x00" * 36,  # a whole frame whose data never landed
             b"\x00" * 40,  # the file grew, nothing landed
             None]  # a new segment with part of its first frame

    def t(root, open_j):
        j = open_j()
        w = fill(j, 5)
        good = on_disk(root)
        j.close()
        name = segments(root)[-1] if garbage else "%08d.seg" % 6
        with open(root + "/" + name, "ab") as f:
            f.write(garbage or b"\xa5\x01")
        j = open_j()
        eq((j.torn and j.torn.code, j.torn and j.torn.field), ("journal.torn", name), "reported")
        eq((j.next_seq, on_disk(root)), (6, good), "back to the last good record")
        w.update(fill(j, 2, start=5))
        j.close()
        j = open_j()
        eq(j.torn, None, "clean after the cut")
        check_chain(j, w, GENESIS)
        j.close()
    for garbage in cases:
        run(t, seg=4000 if garbage else 1000)


def test_damage_is_corrupt_and_changes_nothing():
    """A bad frame with good ones after it, or in an older segment, is damage, not a
    torn write: journal.corrupt naming segment and offset, and nothing is cut (that
    would lose committed records and hand their seqs out again)."""
    def t(root, open_j):
        j = open_j()
        w = fill(j, 8)
        j.close()
        segs = segments(root)
        assert len(segs) > 1 and int(segs[-1][:-4]) < 8  # two records in the newest one
        for seg, rec in ((segs[-1], int(segs[-1][:-4])), (segs[0], 2)):
            off = sum(7 + size_of(w[s]) for s in range(int(seg[:-4]), rec))
            path = root + "/" + seg
            with open(path, "rb") as f:
                data = bytearray(f.read())
            data[off + 4] ^= 0x40  # a bit of the CRC
            with open(path, "wb") as f:
                f.write(data)
            e = raises(JournalError, open_j)
            eq((e.code, e.field), ("journal.corrupt", seg), "error")
            assert ("at %d" % off) in e.detail, e.detail
            with open(path, "rb") as f:
                eq(f.read(), data, "untouched")
            data[off + 4] ^= 0x40
            with open(path, "wb") as f:
                f.write(data)
        eq(segments(root), segs, "nothing deleted")
        check_chain(open_j(), w, GENESIS)
    run(t, seg=1100)


def test_refused_records_leave_no_trace():
    def t(root, open_j):
        j = open_j()
        w = fill(j, 2)
        used = on_disk(root)
        big = receipt(9, n_lines=1)
        big["lines"] = big["lines"] * 300  # one line 300 times: over 8 KB on flash, little heap
        e = raises(JournalError, j.append, big)
        eq(e.code, "journal.too_large", "code")
        size = int(e.detail.split()[0])  # counted, never held in RAM
        assert size > 8192 and not j.room_for(size), e.detail
        bad = receipt(10)
        bad["lines"][0]["price"] = 1.5
        eq(raises(EncodingError, j.append, bad).code, "enc.type")
        eq((j.next_seq, j.stats()["used"], on_disk(root)), (3, used, used), "nothing written")
        w.update(fill(j, 1, start=3))
        check_chain(j, w, GENESIS)
        j.close()
    run(t, cap=30000, seg=4000)
