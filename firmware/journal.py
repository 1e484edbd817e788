"""The reader's journal: committed receipts on flash, kept until the backend has them.

    j = Journal("/flash/journal", capacity=128 * 1024, segment_size=8 * 1024)
    if j.room_for(len(canonical.encode(record))):  # before granting the discount
        seq = j.append(record)                      # fills seq and prev; durable on return
    for seq, data in j.records(j.acked + 1, 50, 16 * 1024): ...  # what sync sends
    j.ack(seq)                                      # the backend stored them: release
    j.stats()["level"]                              # "ok", "nearly_full" or "full"
"""
# (The long explanations are comments, not docstrings: the ESP32 gets .mpy files, but
# the tests compile this source inside a 96 KB heap, and docstrings cost heap there.)
#
# Layout. Each record is stored as a frame (journalframe.py: magic, length, CRC32,
# payload = the record's canonical JSON). Frames go into segment files named by the
# seq of their first record ("00000042.seg"), each at most segment_size bytes (a
# bigger record gets a segment of its own). The file "meta" holds the highest
# acknowledged seq and that record's hash; it is replaced atomically (write
# meta.tmp, rename) and always before a segment is deleted, so seqs and the hash chain
# go on after everything was acknowledged and deleted, across reboots too.
#
# Power cuts. On littlefs new data becomes part of a file only when the file is synced
# (flush), and blocks are never rewritten in place: a cut before the flush completes
# leaves the segment as it was; after it the record is there. A record is committed
# when append's flush returns. On other file systems a cut can leave part of a frame at
# the end of the newest segment: recovery cuts it off.
#
# Recovery (the constructor, recover(), and the next call after any failure) removes
# leftover *.tmp files, finishes deleting acknowledged segments if a cut interrupted
# that, then reads every frame with one preallocated buffer, checking CRC, length, seq
# continuity and the prev-hash chain. A bad frame at the end of the newest segment with
# no intact frame after it is a torn write: the segment is cut back to its last good
# record (the good part is copied to a temp file renamed over it, so a cut during the
# cut is harmless) and `torn` holds a JournalError("journal.torn") saying what went.
# Anything else wrong (a bad frame with good ones after it or in an older segment, a
# gap, a broken chain, an unreadable meta file) is damage, not a torn write: recovery
# raises JournalError("journal.corrupt") naming file and offset and changes nothing,
# because cutting there would drop committed records and hand their seqs out again.
# The one case it cannot tell apart: a last record damaged after it was committed.
#
# Errors (JournalError; texts in protocol.errors): journal.full and journal.too_large
# (over 8 KB) write nothing; journal.io: the file system failed, and the state in RAM
# is re-read from flash, so it stays what flash holds; journal.corrupt; journal.ack.
#
# `capacity` counts frame bytes; littlefs needs room beyond it (each segment rounds up
# to whole blocks, plus metadata and copy-on-write space).
import os

from protocol.canonical import decode, encode
from protocol.compat import const
from protocol.errors import EncodingError, JournalError
from protocol.records import GENESIS, record_hash

import journalframe as frame
# room_for() keeps this much for the seq digits, so a size measured with seq=0 still fits
_SEQ_ROOM = const(16)
# the level is "full" once a large receipt (30 lines, ~2.5 KB) might not fit any more
_LARGE_RECEIPT = const(3072)
_META = "meta"
MAX_RECORD = frame.MAX_PAYLOAD  # for the app: a receipt whose record is larger gets no discount


def _seg_name(first):
    return "%08d.seg" % first


class _Into:
    # The write() target the record is encoded into: the frame buffer, so appending
    # allocates no payload copy. Past the end it only counts, for the error message.
    def __init__(self, mv):
        self.mv = mv
        self.n = 0

    def write(self, data):
        end = self.n + len(data)
        if end <= len(self.mv):
            self.mv[self.n:end] = data
        self.n = end


class Journal:
    """The journal in directory `root`; recovers at once (see the module docstring).

    Read-only attributes: next_seq, last_hash (what the next record's prev gets),
    acked (highest acknowledged seq, 0 if none), used (bytes of frames on flash),
    torn (None, or the JournalError('journal.torn') of the last recovery).
    `buffer`: a bytearray of 8 KB or more for frames, e.g. taken first thing at boot
    while the heap is still in one piece; None allocates one.
    """

    def __init__(self, root, capacity=64 * 1024, segment_size=8 * 1024, nearly_full=0.8, buffer=None):
        self._root = root.rstrip("/")
        self._cap = capacity
        self._seg_max = segment_size
        self._nearly = int(capacity * nearly_full)
        # one buffer for any frame: recovery and reads never hold more than one record
        self._buf = bytearray(MAX_RECORD) if buffer is None else buffer
        if len(self._buf) < MAX_RECORD:
            raise ValueError("buffer: at least %d bytes" % MAX_RECORD)
        self._mv = memoryview(self._buf)
        self._into = _Into(self._mv[:MAX_RECORD])
        self._hdr = bytearray(frame.HEADER)
        self._file = None  # the newest segment, open for appending
        self._segs = []  # [first seq, bytes of frames] of each segment, oldest first
        self.used = 0
        self.recover()

    def append(self, record):
        """Fill record["seq"] and ["prev"], store the record durably, return its seq.

        Raises JournalError journal.full or journal.too_large (nothing written) or
        journal.io (the file system failed; the record is not in the journal), and
        EncodingError if the record cannot be encoded.
        """
        self._ready()
        seq = record["seq"] = self.next_seq
        record["prev"] = self.last_hash
        self._into.n = 0
        encode(record, self._into)  # straight into the frame buffer
        size = self._into.n
        if size > MAX_RECORD:
            raise JournalError("journal.too_large", "record", "%d bytes, at most %d" % (size, MAX_RECORD))
        data = self._mv[:size]
        n = frame.HEADER + size
        if self.used + n > self._cap:
            raise JournalError("journal.full", "record", "needs %d bytes, %d free" % (n, self._cap - self.used))
        segs = self._segs
        try:
            if not segs or (segs[-1][1] and segs[-1][1] + n > self._seg_max):
                self.close()
                segs.append([seq, 0])
                self._file = open(self._name(seq), "ab")
            elif self._file is None:
                self._file = open(self._name(segs[-1][0]), "ab")
            frame.put_header(self._hdr, data)
            self._file.write(self._hdr)
            self._file.write(data)
            self._file.flush()  # on littlefs this sync is the commit
        except Exception as e:  # OSError mostly; whatever it was, what flash holds decides
            try:
                self.recover()
            except Exception:
                pass  # still dirty: the next call recovers again
            if not self._dirty and self.next_seq > seq:
                return seq  # the frame landed after all: committed
            raise JournalError("journal.io", "record", repr(e))
        segs[-1][1] += n
        self.used += n
        self.last_hash = record_hash(data)
        self.next_seq = seq + 1
        if seq == self.acked + 1:
            self._oldest_t = record.get("t")
        return seq

    def room_for(self, nbytes):
        """Could a record of `nbytes` canonical bytes be appended now?"""
        nbytes += _SEQ_ROOM
        return nbytes <= MAX_RECORD and self.used + frame.HEADER + nbytes <= self._cap

    def records(self, from_seq=0, max_count=50, max_bytes=16384):
        """Yield (seq, payload bytes) of pending records from `from_seq` on, oldest first.

        Starts at acked + 1 if from_seq is lower; stops after `max_count` records or
        before the payload bytes would pass `max_bytes` (the first record always comes,
        so a big one cannot stall the sync). Finish or drop the iterator before calling
        append or ack. A frame that fails its check raises JournalError('journal.corrupt').
        """
        self._ready()
        want = max(from_seq, self.acked + 1)
        count = total = 0
        segs = self._segs
        for i in range(len(segs)):
            seq, end = segs[i][0], self._end_of(i)
            if end <= want:
                continue
            f = open(self._name(seq), "rb")
            try:
                pos = 0
                while seq < end:
                    n = frame.read(f, self._hdr, self._mv)
                    if n < 0:
                        raise JournalError("journal.corrupt", _seg_name(segs[i][0]), "bad frame at %d" % pos)
                    if seq >= want:
                        if count >= max_count or (count and total + n > max_bytes):
                            return
                        yield seq, bytes(self._mv[:n])
                        count += 1
                        total += n
                    pos += frame.HEADER + n
                    seq += 1
            finally:
                f.close()

    def ack(self, seq):
        """The backend stored everything up to `seq`: persist that, delete whole segments.

        Returns how many records this released; 0 when seq <= acked (a repeated or late
        answer is ignored). A seq beyond the last appended raises JournalError('journal.ack').
        """
        self._ready()
        if not isinstance(seq, int) or seq < 0 or seq >= self.next_seq:
            raise JournalError("journal.ack", "seq", "%r is not from 0 to %d" % (seq, self.next_seq - 1))
        if seq <= self.acked:
            return 0
        h, t = self.last_hash, None
        if seq < self.next_seq - 1:
            for _, data in self.records(seq + 1, 1):
                rec = decode(data)
                h, t = rec["prev"], rec.get("t")
        released = seq - self.acked
        try:
            # persisted before anything is deleted: the seq must outlive the records
            data = encode({"acked": seq, "hash": h})
            frame.put_header(self._hdr, data)
            with open(self._name(_META + ".tmp"), "wb") as f:
                f.write(self._hdr)
                f.write(data)
            os.rename(self._name(_META + ".tmp"), self._name(_META))  # atomic on littlefs
            self.acked, self._oldest_t = seq, t
            self._drop_acked()
        except Exception as e:
            self._dirty = True  # flash holds what was persisted: re-read it on the next call
            raise JournalError("journal.io", "ack", repr(e))
        return released

    def stats(self):
        """Counts for the display, the status report and the dashboard."""
        self._ready()
        used = self.used
        level = "full" if used + frame.HEADER + _LARGE_RECEIPT > self._cap else \
            "nearly_full" if used >= self._nearly else "ok"
        return {"pending": self.next_seq - 1 - self.acked, "oldest_t": self._oldest_t,
                "next_seq": self.next_seq, "acked": self.acked, "used": used,
                "capacity": self._cap, "level": level}

    def close(self):
        """Close the open segment (before unmounting; every record is already durable)."""
        f, self._file = self._file, None
        if f:
            f.close()

    def recover(self):
        """Re-read the journal from flash (see the module docstring); returns `torn`."""
        self._dirty = True
        try:
            self.close()
        except Exception:
            pass  # a handle that cannot close holds nothing committed
        try:
            self._recover()
        except OSError as e:
            raise JournalError("journal.io", self._root, repr(e))
        self._dirty = False
        return self.torn

    def _ready(self):
        if self._dirty:
            self.recover()

    def _recover(self):
        self.torn = self._oldest_t = None
        try:
            names = os.listdir(self._root)
        except OSError:
            os.mkdir(self._root)
            names = []
        firsts = []
        for name in names:
            if name.endswith(".tmp"):
                os.remove(self._name(name))  # an unfinished copy; the original is intact
            elif name.endswith(".seg"):
                try:
                    firsts.append(int(name[:-4]))
                except ValueError:
                    raise JournalError("journal.corrupt", name, "not a segment name")
        firsts.sort()
        acked, acked_hash = 0, GENESIS
        if _META in names:
            with open(self._name(_META), "rb") as f:
                n = frame.read(f, self._hdr, self._mv)
            meta = self._decode(n, _META)
            acked, acked_hash = meta.get("acked"), meta.get("hash")
            if not isinstance(acked, int) or not isinstance(acked_hash, str):
                raise JournalError("journal.corrupt", _META, "no acked seq and hash")
        elif firsts:
            # never acknowledged anything (meta is written before any segment goes), so
            # the records start at 1
            if firsts[0] != 1:
                raise JournalError("journal.corrupt", _seg_name(firsts[0]), "records 1 to %d missing" % (firsts[0] - 1))
            acked, acked_hash = 0, GENESIS
        # finish an ack that a cut interrupted: older segments whose records are all acked
        while len(firsts) > 1 and firsts[1] - 1 <= acked:
            os.remove(self._name(firsts.pop(0)))
        self.acked = acked
        seq, prev = acked, acked_hash
        if firsts and firsts[0] - 1 > acked:
            # a whole segment of unacknowledged records went: never by our own hand
            raise JournalError("journal.corrupt", _seg_name(firsts[0]),
                               "records %d to %d missing" % (acked + 1, firsts[0] - 1))
        if firsts:
            seq = firsts[0] - 1
            if seq != acked:
                prev = GENESIS if seq == 0 else None  # nothing to check the first prev against
        segs = []
        for i in range(len(firsts)):
            if firsts[i] != seq + 1:
                raise JournalError("journal.corrupt", _seg_name(firsts[i]), "records from %d missing" % (seq + 1))
            seq, prev, size = self._scan(firsts[i], prev, i == len(firsts) - 1)
            if size:
                segs.append([firsts[i], size])
            else:  # created, then cut before its first record landed
                os.remove(self._name(firsts[i]))
        if seq < acked or (seq == acked and prev != acked_hash and acked_hash):
            raise JournalError("journal.corrupt", _META, "acked %d, records end at %d" % (acked, seq))
        self._segs = segs
        self.next_seq, self.last_hash = seq + 1, prev
        self.used = sum(s[1] for s in segs)
        self._drop_acked()  # the newest one too, if everything in it was acknowledged

    def _scan(self, seq, prev, newest):
        # Check one segment frame by frame; (last seq, its hash, bytes of good frames).
        name = _seg_name(seq)
        seq -= 1
        good = 0
        f = open(self._name(name), "rb")
        try:
            end = f.seek(0, 2)
            f.seek(0)
            while good < end:
                n = frame.read(f, self._hdr, self._mv)
                if n < 0:
                    if newest and not self._intact_after(f, good, end):
                        break  # a torn write
                    raise JournalError("journal.corrupt", name, "bad frame at %d" % good)
                rec = self._decode(n, name)
                seq += 1
                if rec.get("seq") != seq or (prev and rec.get("prev") != prev):
                    raise JournalError("journal.corrupt", name, "record at %d breaks seq or hash chain" % good)
                if seq == self.acked + 1:
                    self._oldest_t = rec.get("t")
                prev = record_hash(self._mv[:n])
                good += frame.HEADER + n
        finally:
            f.close()
        if good < end:
            self.torn = JournalError("journal.torn", name, "cut %d bytes at %d, after record %d"
                                     % (end - good, good, seq))
            if good:  # shorten it safely: copy the good part, rename the copy over it
                tmp = self._name(name[:-4] + ".tmp")
                with open(self._name(name), "rb") as src, open(tmp, "wb") as dst:
                    left = good
                    while left:
                        k = frame.fill(src, self._buf, min(left, MAX_RECORD))
                        dst.write(self._mv[:k])
                        left -= k
                os.rename(tmp, self._name(name))
        return seq, prev, good

    def _intact_after(self, f, start, end):
        # An intact frame after a bad one means damage: a torn write is the last thing.
        if end - start > frame.HEADER + MAX_RECORD:  # a torn write is at most one frame long
            return True
        for p in range(start + 1, end - frame.HEADER):
            f.seek(p)
            if frame.read(f, self._hdr, self._mv) > 0:
                return True
        return False

    def _decode(self, n, where):
        # The JSON object in the buffer's first n bytes, else journal.corrupt.
        try:
            rec = decode(bytes(self._mv[:n])) if n > 0 else None
        except EncodingError:
            rec = None
        if not isinstance(rec, dict):
            raise JournalError("journal.corrupt", where, "not a JSON object")
        return rec

    def _drop_acked(self):
        # Delete segments, oldest first, whose records are all acknowledged.
        segs = self._segs
        while segs and self._end_of(0) - 1 <= self.acked:
            if len(segs) == 1:
                self.close()
            os.remove(self._name(segs[0][0]))
            self.used -= segs.pop(0)[1]

    def _end_of(self, i):
        # One past the last seq in segment i.
        return self._segs[i + 1][0] if i + 1 < len(self._segs) else self.next_seq

    def _name(self, seg):
        # Path of a segment (by first seq) or of a named file.
        return self._root + "/" + (seg if isinstance(seg, str) else _seg_name(seg))
