"""The reader's card directory on flash: card number -> (tier, status), looked up offline.

One file, `<root>/cards.bin`, never read whole into RAM (docs/directory.md):

    header  16 bytes: b"LCD1", count (u32 BE), version (u64 BE)
    records count x 10 bytes, sorted by card: card number (u64 BE), tier (u8), status (u8)

A lookup is a binary search by seek + readinto into buffers made once in __init__, so it
allocates nothing but its answer. Deltas from the backend (protocol.delta pages) are
merged into a new file that replaces the old one with one atomic rename; the version is
in the header, so after a power cut the reader has the old directory and version or the
new ones, never a mix.

    >>> cache = CardCache("/flash/cards")
    >>> page = delta.parse_page(page_buf, cache.version, len(page_buf), size, records_buf)
    >>> cache.apply(page)
    42
    >>> cache.lookup(b"1234")
    (2, 0)

Blocked cards stay in the directory with status BLOCKED; removed ones disappear. A card
number that is not 1 to 19 digits raises CardNumberError ('card.unreadable'): it did
not come from a genuine card, so it must not get the default tier either.
"""
import os
import struct

from protocol.compat import const
from protocol.errors import DeltaError, ProtocolError

# as in protocol.delta, which is imported only where pages are applied: a lookup does not
# need its 12 KB of heap, and most of a reader's day is lookups
ACTIVE = const(0)
BLOCKED = const(1)
REMOVED = const(2)
_MAX_DIGITS = const(19)
_CARD_LIMIT = 10 ** 19

_HEAD = const(16)
_REC = const(10)
# Records moved per read/write when copying unchanged runs of the old file.
_COPY_RECORDS = const(200)
_MAGIC = b"LCD1"
_FILE = "/cards.bin"
_TEMP = "/cards.tmp"
_MISSING = const(-1)


class CardNumberError(ProtocolError):
    """A card number that cannot be a card's: not 1 to 19 digits."""


def _not_a_card_number():
    raise CardNumberError("card.unreadable", "card", "card number must be 1 to 19 digits")


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def _header(buf, count, version):
    struct.pack_into(">4sIQ", buf, 0, _MAGIC, count, version)


class _Writer:
    """Appends records to a new directory file through one buffer; renames it into place."""

    def __init__(self, root, version, buf):
        self.final = root + _FILE
        self.temp = root + _TEMP
        self.version = version
        self.count = 0
        self.buf = buf
        self.used = 0
        self.mv = memoryview(buf)
        self.f = open(self.temp, "wb")
        try:
            self.f.write(bytes(_HEAD))  # the real header goes in last, once the count is known
        except BaseException:
            self.abandon()
            raise

    def add(self, card, tier, status):
        if self.used + _REC > len(self.buf):
            self.flush()
        struct.pack_into(">QBB", self.buf, self.used, card, tier, status)
        self.used += _REC
        self.count += 1

    def add_record(self, record):
        """Append one packed 10-byte record."""
        if self.used + _REC > len(self.buf):
            self.flush()
        self.buf[self.used:self.used + _REC] = record
        self.used += _REC
        self.count += 1

    def add_bytes(self, data):
        """Append whole records (a bytes-like of n * 10 bytes) after what is buffered."""
        self.flush()
        self.f.write(data)
        self.count += len(data) // _REC

    def flush(self):
        if self.used:
            self.f.write(self.mv[:self.used])
            self.used = 0

    def commit(self):
        self.flush()
        head = bytearray(_HEAD)
        _header(head, self.count, self.version)
        self.f.seek(0)
        self.f.write(head)
        self.f.flush()
        self.f.close()
        # Atomic on littlefs and POSIX: the old file stays whole until this instant.
        os.rename(self.temp, self.final)

    def abandon(self):
        try:
            self.f.close()
        except OSError:
            pass
        _remove(self.temp)


def build(root, entries, version):
    """Write the whole directory of `root` at `version` from (card, tier, status) entries.

    Entries must be strictly ascending by card; status ACTIVE or BLOCKED. Cards are text
    or int. Replaces any existing directory atomically; returns the number of cards.
    Open CardCache objects on `root` keep reading the old file: make them after build().
    """
    _remove(root + _TEMP)
    from protocol import delta

    out = _Writer(root, delta.version_number(version), bytearray(_COPY_RECORDS * _REC))
    try:
        previous = -1
        i = 0
        for entry in entries:
            previous = delta.check_entry(i, entry, previous)
            if entry[2] == REMOVED:
                raise DeltaError("delta.format", "entries[%d][2]" % i,
                                 "a full directory has no removed cards")
            out.add(previous, entry[1], entry[2])
            i += 1
        out.commit()
    except BaseException:
        out.abandon()
        raise
    return out.count


def erase(root):
    """Forget the directory of `root` (e.g. after 'directory.corrupt'): back to version 0."""
    _remove(root + _TEMP)
    _remove(root + _FILE)


def _checked(page):
    """(from, to, packed 10-byte records) of a page, checked again on the reader's side."""
    from protocol import delta

    first = delta.version_number(page["from"], "from")
    last = delta.version_number(page["to"], "to")
    records = page["entries"]
    if isinstance(records, (bytes, bytearray, memoryview)):
        delta.check_records(records)
    else:
        records = delta.pack_entries(records)
    return first, last, records


class CardCache:
    """The directory under the folder `root`: .version, .count, lookup(), apply().

    A missing file is an empty directory at version 0. A damaged one raises
    DeltaError('directory.corrupt'); erase(root) and a full reload from version 0 recover.
    """

    def __init__(self, root):
        self.root = root
        self._path = root + _FILE
        self._f = None
        self.version = 0
        self.count = 0
        # The search key: card number, then 00 00 or ff ff so that a plain bytes
        # comparison with a record tells below / equal / above without decoding it.
        self._key = bytearray(_REC)
        self._rec = bytearray(_REC)
        self._copy = bytearray(_COPY_RECORDS * _REC)
        self._copy_mv = memoryview(self._copy)
        self._load = None  # the _Writer of a full load in progress (load_page)
        self._load_last = bytearray(8)  # the last card number written by the load
        _remove(root + _TEMP)  # left by a power cut during apply(); the old file is whole
        self._open()

    def _open(self):
        try:
            f = open(self._path, "rb", 0)
        except OSError:
            self.version = 0
            self.count = 0
            return
        head = bytearray(_HEAD)
        try:
            n = f.readinto(head)
            size = f.seek(0, 2)
        except OSError:
            f.close()
            raise
        if n != _HEAD or head[:4] != _MAGIC:
            f.close()
            raise DeltaError("directory.corrupt", self._path, "bad header")
        count, version = struct.unpack_from(">IQ", head, 4)
        if size != _HEAD + count * _REC:
            f.close()
            raise DeltaError("directory.corrupt", self._path,
                             "%d bytes for %d cards" % (size, count))
        self._f = f
        self.count = count
        self.version = version

    def close(self):
        if self._f is not None:
            self._f.close()
            self._f = None

    def _set_key(self, card):
        """Put `card` (bytes, int or text) into the key buffer; only text allocates."""
        key = self._key
        # One isinstance() per type: a tuple of types would be built, allocating, per call.
        if isinstance(card, bool) or not (isinstance(card, int) or isinstance(card, str)
                                          or isinstance(card, bytes)
                                          or isinstance(card, bytearray)):
            _not_a_card_number()
        if isinstance(card, int):
            if card < 0 or card >= _CARD_LIMIT:
                _not_a_card_number()
            struct.pack_into(">Q", key, 0, card)
            return
        if isinstance(card, str):
            # Taking characters out of a str makes MicroPython intern them (it may
            # allocate a qstr pool); bytes give plain ints. The card-read path has bytes.
            card = card.encode()
        n = len(card)
        if n < 1 or n > _MAX_DIGITS:
            _not_a_card_number()
        for j in range(8):
            key[j] = 0
        # Long multiplication by 10 on the 8 key bytes: int() would allocate a big int
        # for numbers past the small-int range (2**30 on the ESP32).
        for d in card:
            d -= 48
            if d < 0 or d > 9:
                _not_a_card_number()
            j = 7
            while j >= 0:
                d += key[j] * 10
                key[j] = d & 0xFF
                d >>= 8
                j -= 1

    def _lower_bound(self, lo, hi):
        """First record index in [lo, hi) not below the key (key bytes 8, 9 = 0); hi if none."""
        f = self._f
        rec = self._rec
        key = self._key
        while lo < hi:
            mid = (lo + hi) >> 1
            f.seek(_HEAD + mid * _REC)
            f.readinto(rec)
            if rec < key:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def _holds_key(self, index):
        """Whether record `index` has the key's card; leaves the record in self._rec."""
        if index >= self.count:
            return False
        f = self._f
        f.seek(_HEAD + index * _REC)
        f.readinto(self._rec)
        key = self._key
        key[8] = 0xFF
        key[9] = 0xFF
        found = self._rec <= key
        key[8] = 0
        key[9] = 0
        return found

    def find(self, card):
        """(tier << 8) | status of `card`, or -1 if the directory does not hold it.

        Allocates nothing for bytes (what a card read gives) or an int; text costs one
        small bytes object.
        """
        self._set_key(card)
        key = self._key
        key[8] = 0
        key[9] = 0
        if self._f is None:
            return _MISSING
        if self._holds_key(self._lower_bound(0, self.count)):
            return (self._rec[8] << 8) | self._rec[9]
        return _MISSING

    def lookup(self, card):
        """(tier, status) of `card` (text, bytes or int), or None if not in the directory."""
        found = self.find(card)
        if found < 0:
            return None
        return (found >> 8, found & 0xFF)

    def _copy_records(self, start, stop, out):
        """Copy old records [start, stop) to `out` in runs of _COPY_RECORDS."""
        f = self._f
        mv = self._copy_mv
        while start < stop:
            n = stop - start
            if n > _COPY_RECORDS:
                n = _COPY_RECORDS
            f.seek(_HEAD + start * _REC)
            got = f.readinto(mv[:n * _REC])
            if got != n * _REC:
                raise DeltaError("directory.corrupt", self._path, "short read")
            out.add_bytes(mv[:got])
            start += n

    def apply(self, page):
        """Merge a page (from protocol.delta.parse_page) into the directory; return the new version.

        Entries may also be a list of (card, tier, status). The page is checked again
        against this directory's version (DeltaError 'delta.version', 'delta.format',
        'delta.order'); on any error the directory and version stay as they were.
        """
        first, last, records = _checked(page)
        from protocol import delta

        delta.check_versions(first, last, self.version, len(records) > 0)
        if last == self.version:
            return last  # nothing changed: no flash write
        _remove(self.root + _TEMP)
        out = _Writer(self.root, last, bytearray(_REC * 20))
        try:
            self._merge(memoryview(records), out)
        except BaseException:
            out.abandon()
            raise
        return self._replace(out)

    def load_page(self, page):
        """One page of a full load; returns the version in force afterwards.

        A full load is the backend's whole directory sorted by card number, in pages that
        all say `from` 0 (docs/directory.md); it ends at the version its first page names. It goes into a new file,
        page after page, which replaces the old directory with one rename after the last
        page (`more` false): 100,000 cards cost one 1 MB write instead of a merge per page.
        Until then lookups see the old directory; after an error or a power cut the load
        starts again from its first page (cancel_load()).
        """
        first, last, records = _checked(page)
        if first != 0:
            raise DeltaError("delta.version", "from", "a full load says from 0, this page %d" % first)
        if self._load is None:
            _remove(self.root + _TEMP)
            self._load = _Writer(self.root, last, bytearray(_REC * 20))
            self._load_last[:] = bytes(8)
        elif last < self._load.version:
            self.cancel_load()
            raise DeltaError("delta.version", "to", "a full load's version never goes back")
        # a later page may name a later version (cards changed during the load): the load
        # takes its first page's version, and the deltas from there bring every change
        # again; applying a change twice is harmless
        out = self._load
        if len(records) and out.count and bytes(records[0:8]) <= bytes(self._load_last):
            self.cancel_load()
            raise DeltaError("delta.order", "entries[0][0]", "must follow the previous page's last card")
        try:
            for at in range(0, len(records), _REC):
                if records[at + 9] != REMOVED:  # nothing to remove from a new directory
                    out.add_record(records[at:at + _REC])
            if len(records):
                self._load_last[:] = records[len(records) - _REC:len(records) - 2]
        except BaseException:
            self.cancel_load()
            raise
        if page["more"]:
            return self.version
        self._load = None
        return self._replace(out)

    def _replace(self, out):
        """Put the new file `out` in place of the directory and read it; the version after.

        On failure the old file stays, and is read again."""
        self.close()
        try:
            out.commit()
        except BaseException:
            out.abandon()
            self._open()
            raise
        self._open()
        return self.version

    def cancel_load(self):
        """Drop a full load in progress; the directory stays as it was."""
        if self._load is not None:
            self._load.abandon()
            self._load = None

    def _merge(self, records, out):
        """Stream old records and the page's (both sorted) into `out`; the page's win."""
        key = self._key
        old = self.count
        done = 0  # old records before this index are copied or replaced
        for at in range(0, len(records), _REC):
            key[0:8] = records[at:at + 8]
            key[8] = 0
            key[9] = 0
            if done < old:
                i = self._lower_bound(done, old)
                self._copy_records(done, i, out)
                done = i
                if self._holds_key(i):
                    done = i + 1  # the page's entry replaces (or removes) this record
            if records[at + 9] != REMOVED:
                out.add_record(records[at:at + _REC])
        self._copy_records(done, old, out)
