"""The journal: framing, seq and hash chain, recovery, acks, full, torn tails, memory.

Runs in the ESP32's 96 KB heap like every test here. The memory claim proper is
test_500_records_in_a_small_heap: the heap is filled with ballast until only 32 KB
are free (if more were), then 500 appends, a recovery and a read-back.

The journal lives in a temporary directory (VfsPosix on MicroPython); a "reboot" is a
new Journal over the same files. littlefs and power cuts: test_journal_powercut.py.
"""
import gc
import os

from check import eq, raises, scaled
from protocol.canonical import encode
from protocol.compat import MICROPYTHON, hexstr
from protocol.errors import EncodingError, JournalError
from protocol.records import GENESIS, make_record, record_hash

from journal import Journal


# Not tmpfs.temp_dir: one module less to hold in a heap that test_500_records_in_a_small_heap
# fills to the last 32 KB.
def temp_dir():
    if not MICROPYTHON:
        import tempfile

        return tempfile.mkdtemp(prefix="journal-test-")
    path = "/tmp/journal-test-" + hexstr(os.urandom(6))
    os.mkdir(path)
    return path


def rmtree(path):
    for name in os.listdir(path):
        p = path + "/" + name
        if os.stat(p)[0] & 0x4000:  # a directory
            rmtree(p)
        else:
            os.remove(p)
    os.rmdir(path)


def segments(root):
    return sorted(n for n in os.listdir(root) if n.endswith(".seg"))


def on_disk(root):
    return sum(os.stat(root + "/" + n)[6] for n in segments(root))


def receipt(i, n_lines=2):
    lines = [{"sku": "80012%04d" % (i * 7 + k), "qty": 1 + k % 3, "price": 99 + 10 * k}
             for k in range(n_lines)]
    gross = sum(x["qty"] * x["price"] for x in lines)
    return make_record("sale", reader="R1", seq=0, prev=GENESIS, t=1700000000 + 60 * i,
                       card="42%08d" % i, tier=1, lines=lines, gross=gross,
                       discount=0, disc=[], rules=3, quote="Q%d" % i)


def fill(j, count, start=0, n_lines=2):
    """Append receipts start..start+count-1: {seq: the bytes that should be on flash}."""
    written = {}
    for i in range(start, start + count):
        rec = receipt(i, n_lines)
        seq = j.append(rec)
        written[seq] = encode(rec)
    return written


def prev_of(data):
    return data[data.index(b'"prev":"') + 8:][:64].decode()


def check_chain(j, written, prev):
    """Pending records are exactly what was written, in order, chained from `prev`."""
    seqs = []
    for seq, data in j.records(0, 10000, 10 ** 9):  # streamed: the test runs in 96 KB too
        eq(data, written[seq], "payload %d" % seq)
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
        size = len(w[4])
        eq([s for s, _ in j.records(4, 99, 2 * size + size // 2)], [4, 5], "max_bytes")
        eq([s for s, _ in j.records(4, 99, 1)], [4], "the first always comes")
        eq(list(j.records(11)), [], "none after the last")
        j.close()
        j = open_j()  # reboot
        eq((j.torn, j.next_seq, j.last_hash), (None, 11, record_hash(w[10])), "recovered")
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
        check_chain(j, w, record_hash(w[upto]))
        eq(j.ack(12), 12 - upto, "all")
        eq((segments(root), j.stats()["pending"], j.stats()["oldest_t"]), ([], 0, None), "all gone")
        j.close()
        j = open_j()
        eq((j.next_seq, j.last_hash), (13, record_hash(w[12])), "seq and chain survive")
        more = fill(j, 2, start=12)
        eq(sorted(more), [13, 14], "seqs continue")
        check_chain(j, more, record_hash(w[12]))
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
        n, size = len(w), len(w[1])
        assert j.stats()["used"] + 7 + size > 12000 and not j.room_for(size)
        eq((j.next_seq, on_disk(root)), (n + 1, j.stats()["used"]), "nothing written")
        check_chain(j, w, GENESIS)
        j.close()
        j = open_j()
        eq(j.next_seq, n + 1, "no trace after reboot")
        j.ack(n)
        assert j.room_for(size)
        check_chain(j, fill(j, 1, start=90), record_hash(w[n]))
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
            off = sum(7 + len(w[s]) for s in range(int(seg[:-4]), rec))
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


FREE_KB = 32


def test_500_records_in_a_small_heap():
    """500 appends, a recovery that reads them all, and a read-back, while the rest of
    the heap is taken (on MicroPython) so that only FREE_KB remain for the work."""
    def t(root, _):
        gc.collect()
        free0 = gc.mem_free() if MICROPYTHON else 0
        j = Journal(root, capacity=400 * 1024, segment_size=8 * 1024)
        gc.collect()
        held = free0 - gc.mem_free() if MICROPYTHON else 0
        ballast = []  # the rest of the app: small pieces all over the heap
        while MICROPYTHON and gc.mem_free() > scaled(FREE_KB * 1024) + 512:
            ballast.append(bytearray(400))
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
        gc.collect()
        print("500 records: %d bytes in %d segments; the journal holds %d bytes of heap; "
              "run with %d bytes free (%d)" % (j.used, len(segments(root)), held, scaled(FREE_KB * 1024),
                                            gc.mem_free() if MICROPYTHON else 0))
        assert held < 10 * 1024, held  # the 8 KB frame buffer and little else
        j.close()
        del ballast
    run(t)
