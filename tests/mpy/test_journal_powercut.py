# runtimes: micropython
# heapsize: 528k
"""Power cuts at every block write: the journal on real littlefs keeps every committed record.

Heap 528k (run in 85 % of it): the flash image lives in RAM (48 KB), as a pristine copy
plus three working copies, which need 48 KB pieces in one block; the test passes down
to 438 KB, just over 85 % of 512. The journal itself is held to the ESP32's budget in
test_journal. (Mounts abandoned at a cut answer -EIO; when the
GC closes the files they had open, MicroPython prints "OSError: [Errno 5] EIO".)

A workload (a start-up recovery that has to clean up, appends, acks that delete
segments) runs on vfs.VfsLfs2 over ramblock.RAMBlockDev. For every N the power goes at
the N-th block write (once before the write lands, once after half of it landed); then
a "reboot" mounts the image as it is with a fresh VfsLfs2 and opens the Journal. If
that recovery itself writes, the power is cut at each of those writes too, and the
next boot must still be right. After every boot:
  * every append that returned before the cut is there (unless acknowledged), none twice;
  * the append in flight is either wholly there or not at all;
  * the acked seq is at least the last ack that returned, at most the one in flight;
  * pending seqs run acked+1 .. next_seq-1 without a gap, and next_seq is above every
    seq handed out before the cut;
  * the hash chain runs unbroken from the last acknowledged record;
  * a further append works and is there after one more reboot.
"""
import os

import vfs

from check import eq
from protocol.canonical import encode
from protocol.records import GENESIS, make_record, record_hash
from ramblock import PowerCut, RAMBlockDev

from journal import Journal

_BS = 512
_BLOCKS = 96
MOUNT = "/powercut"
ROOT = MOUNT + "/j"
CAP = 8000
SEG = 600  # two records a segment: acks delete segments often
# after the pristine state (records 1-4, 1 acked, a torn tail, leftover temp files)
PLAN = (("append", 8), ("ack", 7), ("append", 4), ("ack", 16), ("append", 3), ("ack", 17))


def receipt(i):
    lines = [{"sku": "80012%04d" % (i * 7 + k), "qty": 1 + k, "price": 150 + 10 * k} for k in range(2)]
    return make_record("sale", reader="R1", seq=0, prev=GENESIS, t=1700000000 + 60 * i,
                       card="42%08d" % i, tier=1, lines=lines, gross=sum(x["qty"] * x["price"] for x in lines),
                       discount=0, disc=[], rules=3, quote="Q%d" % i)


def mount(data, budget=None, half=False):
    dev = RAMBlockDev(_BS, data=data)
    dev.budget, dev.half = budget, half
    vfs.mount(vfs.VfsLfs2(dev), MOUNT)
    return dev


def power_off(dev, journal=None):
    """The chip keeps what it has; nothing more reaches it through the old mount."""
    dev.dead = True
    if journal is not None:
        try:  # else the GC closes its file later and prints the error it gets
            journal.close()
        except OSError:
            pass
    vfs.umount(MOUNT)


class Log:
    """What the firmware was told before the cut: that is what must survive."""

    def __init__(self):
        self.payloads = {}  # seq -> bytes, of every append that returned
        self.inflight = None  # the record dict of the append under way
        self.acked = 0  # highest ack that returned
        self.ack_inflight = 0
        self.journal = None


def pristine():
    """A formatted image with records 1-4 (1 acknowledged) and what a messy past leaves:
    a partial frame after the last record and leftover temp files."""
    dev = RAMBlockDev(_BS, _BLOCKS)
    vfs.VfsLfs2.mkfs(dev)
    vfs.mount(vfs.VfsLfs2(dev), MOUNT)
    log = Log()
    j = Journal(ROOT, capacity=CAP, segment_size=SEG)
    for i in range(4):
        rec = receipt(i)
        seq = j.append(rec)
        log.payloads[seq] = encode(rec)
    log.acked = j.ack(1)
    newest = sorted(n for n in os.listdir(ROOT) if n.endswith(".seg"))[-1]
    j.close()
    with open(ROOT + "/" + newest, "ab") as f:
        f.write(b"\xa5\x00\xf0\x01\x02")  # a frame header and nothing more
    for name in ("meta.tmp", newest[:-4] + ".tmp"):
        with open(ROOT + "/" + name, "wb") as f:
            f.write(b"half a copy")
    vfs.umount(MOUNT)
    return bytes(dev.data), log


def workload(log):
    j = log.journal = Journal(ROOT, capacity=CAP, segment_size=SEG)
    i = 100
    for what, n in PLAN:
        if what == "append":
            for _ in range(n):
                rec = receipt(i)
                i += 1
                log.inflight = rec  # append fills seq and prev before it writes
                seq = j.append(rec)
                log.payloads[seq] = encode(rec)
                log.inflight = None
        else:
            log.ack_inflight = n
            j.ack(n)
            log.acked, log.ack_inflight = n, 0
    j.close()


def check(data, log, what):
    """Boot on `data` and check the journal against what was promised before the cut."""
    dev = mount(data)
    try:
        j = Journal(ROOT, capacity=CAP, segment_size=SEG)
        known = dict(log.payloads)
        top = max(known)
        if log.inflight is not None and "seq" in log.inflight:
            known[log.inflight["seq"]] = encode(log.inflight)
        assert log.acked <= j.acked <= max(log.acked, log.ack_inflight), (what, j.acked)
        assert j.next_seq - 1 in (top, top + 1) and j.next_seq - 1 in known, (what, j.next_seq)
        prev = record_hash(known[j.acked]) if j.acked else GENESIS
        seqs = []
        for seq, payload in j.records(0, 1000, 10 ** 9):
            eq(payload, known[seq], what + ": payload of %d" % seq)
            eq(payload[payload.index(b'"prev":"') + 8:][:64].decode(), prev, what + ": prev of %d" % seq)
            prev = record_hash(payload)
            seqs.append(seq)
        eq(seqs, list(range(j.acked + 1, j.next_seq)), what + ": pending seqs")
        eq(j.last_hash, prev, what + ": last_hash")
        rec = receipt(999)
        seq = j.append(rec)
        j.close()
        vfs.umount(MOUNT)
        mount(data)
        j = Journal(ROOT, capacity=CAP, segment_size=SEG)
        eq((j.next_seq, j.last_hash), (seq + 1, record_hash(encode(rec))), what + ": append after")
        j.close()
    finally:
        vfs.umount(MOUNT)
    return dev.writes


def recovery_writes(data):
    dev = mount(data)
    try:
        Journal(ROOT, capacity=CAP, segment_size=SEG).close()
    finally:
        vfs.umount(MOUNT)
    return dev.writes


def test_power_cut_at_every_block_write():
    image, start = pristine()
    # three images, allocated once: 48 KB pieces are hard to find in a used heap
    data, after, again = bytearray(image), bytearray(len(image)), bytearray(len(image))

    def fresh_log():
        log = Log()
        log.payloads, log.acked = dict(start.payloads), start.acked
        return log

    # a run without a cut: how many block writes the workload makes
    log = fresh_log()
    dev = mount(data)
    workload(log)
    vfs.umount(MOUNT)
    total = dev.writes
    check(data, log, "no cut")
    assert total > 50, total
    cuts = nested = 0
    for half in (False, True):
        for n in range(total):
            log = fresh_log()
            data[:] = image
            dev = mount(data, budget=n, half=half)
            try:
                workload(log)
                raise AssertionError("no cut at write %d of %d" % (n + 1, total))
            except PowerCut:
                pass
            power_off(dev, log.journal)
            cuts += 1
            what = "cut at write %d%s" % (n + 1, " (half landed)" if half else "")
            # the boot after the cut may write (cleaning up): cut it at each of those too
            after[:] = data
            for m in range(recovery_writes(data)):
                again[:] = after
                dev = mount(again, budget=m)
                try:
                    Journal(ROOT, capacity=CAP, segment_size=SEG)
                    raise AssertionError(what + ": no cut in recovery write %d" % (m + 1))
                except PowerCut:
                    pass
                power_off(dev)
                nested += 1
                check(again, log, what + ", then at recovery write %d" % (m + 1))
            data[:] = after
            check(data, log, what)
    print("power cut at each of %d block writes, twice (before / half landed): %d cuts, "
          "plus %d cuts during the recovery after them" % (total, cuts, nested))


def test_flash_that_stops_writing():
    """A flash that answers -EIO (not a power cut: the reader runs on): the failed append
    raises journal.io, leaves no trace, and once the flash works again all goes on."""
    image, start = pristine()
    data = bytearray(image)
    dev = mount(data)
    try:
        j = Journal(ROOT, capacity=CAP, segment_size=SEG)
        before = (j.next_seq, j.last_hash)
        failures = 0
        for n in range(0, 12):
            dev.budget, dev.fail = n, "eio"
            rec = receipt(500 + n)
            try:
                seq = j.append(rec)
            except Exception as e:
                failures += 1
                eq(getattr(e, "code", repr(e)), "journal.io", "error")
                dev.budget = None
                s = j.stats()  # the first call after a failure re-reads flash
                eq((s["next_seq"], j.last_hash), before, "state after a failed append")
                continue
            dev.budget = None
            eq(seq, before[0], "seq")
            before = (seq + 1, record_hash(encode(rec)))
        assert failures > 3, failures
        j.close()
        vfs.umount(MOUNT)
        mount(data)
        j = Journal(ROOT, capacity=CAP, segment_size=SEG)
        eq((j.next_seq, j.last_hash), before, "what flash holds after a reboot")
        j.close()
    finally:
        vfs.umount(MOUNT)
