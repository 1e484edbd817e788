"""Down-sync pages of the card directory: the format the backend writes and the reader checks.

The backend sends the directory (card number -> tier, status) and the blocklist as
versioned deltas, so a reader with 100,000 cards fetches only what changed. One page is
canonical JSON (docs/directory.md):

    {"entries":[["1234",2,0],["5678",0,1]],"from":41,"more":false,"to":42}

  * `from`: the directory version the page applies to (the reader's current one);
  * `to`: the version the reader has once the page is applied (to >= from);
  * `more`: true when the backend has further pages after `to`;
  * `entries`: [card number, tier, status], card numbers as decimal text of 1 to 19
    digits, strictly ascending by numeric value; tier 0..255; status ACTIVE (0),
    BLOCKED (1: the card gets nothing, the till is told why) or REMOVED (2: forget it).

    >>> data = make_page(41, 42, [("1234", 2, ACTIVE), (5678, 0, BLOCKED)])
    >>> page = parse_page(data, 41, 4096)
    >>> page["to"], list(entries(page["entries"]))
    (42, [(1234, 2, 0), (5678, 0, 1)])

parse_page reads the page without json.loads: a decoded 500-entry page would need
about 70 KB of objects, more than a reader can spare. It scans the canonical bytes and
packs the entries into 10-byte records (card u64 big-endian, tier, status), the format
of the reader's directory file, so a page costs its bytes plus 10 bytes per entry.
Anything that is not the canonical encoding of a valid page is refused with
'delta.format', naming the field where the bytes went wrong.

Card numbers compare as numbers, so leading zeros carry no meaning: "0042" is card 42
(make_page writes "42").
"""
import struct

from .checks import integer, is_digits, is_integer
from .compat import const
from .errors import DeltaError

ACTIVE = const(0)
BLOCKED = const(1)
REMOVED = const(2)

MAX_TIER = const(255)
MAX_DIGITS = const(19)
RECORD = const(10)  # bytes per packed entry: card u64 BE, tier u8, status u8
# Every 19-digit number fits an unsigned 64-bit integer, the reader's storage.
CARD_LIMIT = 10 ** 19
# Versions are stored as unsigned 64-bit integers in the reader's directory header.
VERSION_LIMIT = 1 << 63

_DIGITS_MSG = "card number must be 1 to 19 digits"
_ENTRY_MSG = "must be [card, tier, status]"


def _card(card):
    """The int of a card number (text of 1 to 19 ASCII digits, or an int); -1 if it is none."""
    if isinstance(card, str):
        return int(card) if is_digits(card, MAX_DIGITS) else -1
    if is_integer(card, 0, CARD_LIMIT - 1):
        return card
    return -1


def card_number(card, field="card"):
    """The int of a card number given as decimal text (1 to 19 ASCII digits) or as an int.

    Raises DeltaError('delta.format') naming `field` otherwise.
    """
    n = _card(card)
    if n < 0:
        raise DeltaError("delta.format", field, _DIGITS_MSG)
    return n


def _int_in(value, lo, hi, field, what):
    return integer(value, lo, hi, field, DeltaError, "delta.format", what)


def version_number(version, field="version"):
    """`version` if it is a directory version (an integer from 0 to 2**63 - 1)."""
    return _int_in(version, 0, VERSION_LIMIT - 1, field, "version")


def check_versions(first, last, current_version, has_entries):
    """Raise DeltaError('delta.version') unless a page `first` -> `last` fits `current_version`."""
    if first != current_version:
        raise DeltaError("delta.version", "from",
                         "page starts at version %d, directory is at %d" % (first, current_version))
    if last < first:
        raise DeltaError("delta.version", "to", "version %d goes back from %d" % (last, first))
    if last == first and has_entries:
        # Otherwise two different directories would carry the same version.
        raise DeltaError("delta.version", "to", "a page with entries must advance the version")


def check_entry(index, entry, previous):
    """Check entries[index] = (card, tier, status) against the card before it (-1 for none).

    The card is text or an int. Returns it as an int. Raises DeltaError('delta.format')
    or ('delta.order').
    """
    # The field name is formatted only on failure: build() checks 100,000 entries.
    if not isinstance(entry, (list, tuple)) or len(entry) != 3:
        raise DeltaError("delta.format", "entries[%d]" % index, _ENTRY_MSG)
    card = _card(entry[0])
    if card < 0:
        raise DeltaError("delta.format", "entries[%d][0]" % index, _DIGITS_MSG)
    if not is_integer(entry[1], 0, MAX_TIER):
        _int_in(entry[1], 0, MAX_TIER, "entries[%d][1]" % index, "tier")
    if not is_integer(entry[2], 0, REMOVED):
        _int_in(entry[2], ACTIVE, REMOVED, "entries[%d][2]" % index, "status")
    if card <= previous:
        _check_order(index, card, previous)
    return card


def _check_order(index, card, previous):
    if card <= previous:
        raise DeltaError("delta.order", "entries[%d][0]" % index,
                         "card %d after %d: cards must be strictly ascending" % (card, previous))


def pack_entries(entries):
    """Check (card, tier, status) entries and pack them into 10-byte records (a bytearray)."""
    entries = list(entries)
    out = bytearray(len(entries) * RECORD)
    previous = -1
    for i in range(len(entries)):
        previous = check_entry(i, entries[i], previous)
        struct.pack_into(">QBB", out, i * RECORD, previous, entries[i][1], entries[i][2])
    return out


def check_records(records):
    """Raise DeltaError unless `records` (bytes-like) are whole, ascending, valid records."""
    if len(records) % RECORD:
        raise DeltaError("delta.format", "entries", "records must be 10 bytes each")
    previous = -1
    for i in range(len(records) // RECORD):
        card, tier, status = struct.unpack_from(">QBB", records, i * RECORD)
        if card >= CARD_LIMIT:
            raise DeltaError("delta.format", "entries[%d][0]" % i, _DIGITS_MSG)
        if status > REMOVED:
            raise DeltaError("delta.format", "entries[%d][2]" % i, "status must be 0, 1 or 2")
        _check_order(i, card, previous)
        previous = card


def entries(records):
    """The (card, tier, status) tuples of packed records, in order."""
    for i in range(len(records) // RECORD):
        yield struct.unpack_from(">QBB", records, i * RECORD)


class _Scan:
    """Reads the canonical page bytes left to right; every miss is a named 'delta.format'."""

    def __init__(self, data, end):
        self.data = data
        self.end = end
        self.pos = 0

    def fail(self, field, rule):
        raise DeltaError("delta.format", field, "%s (byte %d)" % (rule, self.pos))

    def peek(self, text):
        return self.data.startswith(text, self.pos, self.end)

    def expect(self, text, field, rule):
        if not self.peek(text):
            self.fail(field, rule)
        self.pos += len(text)

    def number(self, field, what, hi, digits):
        """A canonical JSON integer from 0 to hi (at most `digits` digits)."""
        data = self.data
        start = end = self.pos
        stop = min(self.end, start + digits + 1)
        while end < stop and 48 <= data[end] <= 57:
            end += 1
        if (end == start or end - start > digits or (data[start] == 48 and end - start > 1)
                or (end < self.end and data[end] in b".eE")):
            self.fail(field, "%s must be an integer from 0 to %d" % (what, hi))
        value = int(data[start:end])
        if value > hi:
            self.fail(field, "%s must be an integer from 0 to %d" % (what, hi))
        self.pos = end
        return value

    def card(self, field):
        data = self.data
        if not self.peek(b'"'):
            self.fail(field, "card number must be text")
        start = self.pos + 1
        end = data.find(b'"', start, self.end)
        if end < 0 or not 0 < end - start <= MAX_DIGITS or not data[start:end].isdigit():
            self.fail(field, _DIGITS_MSG)
        self.pos = end + 1
        return int(data[start:end])


def parse_page(data, current_version, max_bytes, size=None, records=None):
    """Check the page in `data` (its first `size` bytes if given) for a reader at `current_version`.

    Returns {"from", "to", "more", "entries"} with entries packed as 10-byte records
    (see entries()). Raises DeltaError: 'delta.too_long' (over max_bytes, checked first,
    or more entries than `records` holds), 'delta.format', 'delta.version', 'delta.order'.

    A reader passes buffers it allocated once, so that a page needs no large block of
    a fragmented heap: `size` says how much of `data` a page received into it fills;
    entries are packed into the bytearray `records` (10 bytes per entry) and
    page["entries"] is a memoryview of it, valid until the next parse into it.
    """
    if size is None:
        size = len(data)
    if size > max_bytes:
        raise DeltaError("delta.too_long", "", "page is %d bytes, limit %d" % (size, max_bytes))
    if not isinstance(data, (bytes, bytearray)):
        data = bytes(data[:size])  # a memoryview has no find() or startswith()
    s = _Scan(data, size)
    s.expect(b'{"entries":', "", "not a canonical page object")
    s.expect(b"[", "entries", "must be a list")
    # In a canonical page every "[" but the first opens an entry: size the records once.
    count = max(0, data.count(b"[", 0, size) - 1)
    if records is None:
        records = bytearray(count * RECORD)
    elif count * RECORD > len(records):
        raise DeltaError("delta.too_long", "entries",
                         "%d entries, room for %d" % (count, len(records) // RECORD))
    else:
        records = memoryview(records)[:count * RECORD]
    n = 0
    previous = -1
    if not s.peek(b"]"):
        while True:
            where = "entries[%d]" % n
            if n * RECORD >= len(records):
                s.fail(where, _ENTRY_MSG)
            s.expect(b"[", where, _ENTRY_MSG)
            card = s.card(where + "[0]")
            s.expect(b",", where, _ENTRY_MSG)
            tier = s.number(where + "[1]", "tier", MAX_TIER, 3)
            s.expect(b",", where, _ENTRY_MSG)
            status = s.number(where + "[2]", "status", REMOVED, 1)
            s.expect(b"]", where, _ENTRY_MSG)
            _check_order(n, card, previous)
            struct.pack_into(">QBB", records, n * RECORD, card, tier, status)
            previous = card
            n += 1
            if not s.peek(b","):
                break
            s.pos += 1
    if n * RECORD != len(records):
        s.fail("entries", "not a canonical list of entries")
    s.expect(b"]", "entries", "not a canonical list of entries")
    s.expect(b',"from":', "from", "missing or out of canonical order")
    first = s.number("from", "version", VERSION_LIMIT - 1, 19)
    s.expect(b',"more":', "more", "missing or out of canonical order")
    if s.peek(b"true"):
        more = True
        s.pos += 4
    elif s.peek(b"false"):
        more = False
        s.pos += 5
    else:
        s.fail("more", "must be true or false")
    s.expect(b',"to":', "to", "missing or out of canonical order")
    last = s.number("to", "version", VERSION_LIMIT - 1, 19)
    s.expect(b"}", "", "unexpected bytes after the page")
    if s.pos != size:
        s.fail("", "unexpected bytes after the page")
    check_versions(first, last, current_version, n > 0)
    return {"from": first, "to": last, "more": more, "entries": records}


def _pieces(from_version, to_version, entries, more):
    """The canonical bytes of a page in small pieces, checking as it goes."""
    version_number(from_version, "from")
    version_number(to_version, "to")
    if not isinstance(more, bool):
        raise DeltaError("delta.format", "more", "must be true or false")
    check_versions(from_version, to_version, from_version, False)
    # Canonical by construction: keys in code point order, no white space, integers only.
    yield b'{"entries":['
    previous = -1
    i = 0
    for entry in entries:
        previous = check_entry(i, entry, previous)
        yield b'%s["%d",%d,%d]' % (b"," if i else b"", previous, entry[1], entry[2])
        i += 1
    check_versions(from_version, to_version, from_version, i > 0)
    yield b'],"from":%d,"more":%s,"to":%d}' % (
        from_version, b"true" if more else b"false", to_version)


def make_page(from_version, to_version, entries, more=False):
    """The canonical bytes of a page; entries are (card, tier, status), card as text or int.

    Checks everything parse_page checks (raises the same DeltaErrors), so the backend
    cannot send a page that readers refuse. Card numbers are written without leading zeros.
    """
    out = bytearray()
    for piece in _pieces(from_version, to_version, entries, more):
        out += piece
    return bytes(out)


def write_page(buf, from_version, to_version, entries, more=False):
    """make_page into the bytearray `buf` (allocated once); returns the page's size.

    For MicroPython, where a large bytes object may find no free block in one piece.
    Raises DeltaError('delta.too_long') when the page does not fit.
    """
    size = 0
    for piece in _pieces(from_version, to_version, entries, more):
        n = len(piece)
        if size + n > len(buf):
            raise DeltaError("delta.too_long", "", "page does not fit %d bytes" % len(buf))
        buf[size:size + n] = piece
        size += n
    return size
