"""Canonical JSON at C speed for the backend, falling back to protocol.canonical when in doubt.

protocol.canonical is written for the reader's MicroPython heap and is slow on CPython;
the C json module writes the same bytes for everything a batch can hold (objects with
text keys, lists, text, integers, true/false/null) except the escapes of U+0008 and
U+000C (json writes `\\b` and `\\f`, canonical JSON `\\u0008` and `\\u000c`). So:

  * encode(value): json.dumps with sorted keys, no white space, UTF-8 as is; the pure
    encoder when the output holds `\\b` or `\\f` (or cannot be UTF-8: lone surrogates).
  * decode(body): json.loads refusing floats, NaN and Infinity, re-encoded and compared
    with the body; anything that is not byte for byte canonical (or holds `\\b` / `\\f`)
    goes to canonical.decode(body, strict=True), which refuses it with the very error
    the reader-side code would give. The fast path only ever accepts; the pure one judges.
  * RecordCodec: decode/encode hooks for protocol.batchcheck.check_batch that keep each
    record's bytes. A batch of the records the firmware writes is proven canonical by a
    regular expression instead of a second encoding (_FIRMWARE_RECORD); any other batch
    is encoded again once, whole.

encode() is for values made of dicts with text keys, lists, text, integers, booleans and
None (what decode returns, and the backend's own answers): json.dumps would write a float
or an integer key where the pure encoder refuses them.

    >>> encode({"b": [1, "è"], "a": None})
    b'{"a":null,"b":[1,"\\xc3\\xa8"]}'
    >>> decode(b'{"a":1}')
    {'a': 1}
"""
import json
import json.scanner
import re

from loyalty.protocol import canonical

_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def _refuse(_text):
    raise ValueError("not an integer")


_loads = json.JSONDecoder(parse_float=_refuse, parse_constant=_refuse).decode


def encode(value):
    """The canonical bytes of `value` (see the module's note on which values)."""
    try:
        text = _dumps(value)
    except ValueError:
        # an integer past the 4,300 digits CPython's str() writes: what records taken
        # into quarantine add up to (each any integer a body carries); the pure encoder writes it
        return canonical.encode(value)
    if "\\b" in text or "\\f" in text:
        return canonical.encode(value)
    try:
        return text.encode()
    except UnicodeEncodeError:
        return canonical.encode(value)  # a lone surrogate: let the pure encoder decide


def decode(body):
    """The value of canonical JSON bytes; raises EncodingError as canonical.decode(strict=True)."""
    data = bytes(body)
    if b"\\b" not in data and b"\\f" not in data:
        try:
            value = _loads(data.decode())
            if _dumps(value).encode() == data:
                return value
        except (ValueError, UnicodeError, RecursionError):
            pass
    return canonical.decode(data, strict=True)


_decoder = json.JSONDecoder(parse_float=_refuse, parse_constant=_refuse)
# the C scanner behind raw_decode, called directly: (value, end) or StopIteration
_scan = json.scanner.make_scanner(_decoder)
# for values the C parser just made (never circular): the circular check costs a fifth
_dumps_parsed = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                                 check_circular=False).encode
_HEAD = '{"reader":'
_RECORDS = ',"records":['

# The records the firmware writes (protocol.records.make_record: sales, voids, returns,
# with the till's basket lines) as a regular expression of their canonical JSON. A text it
# matches is canonical by construction: the keys in code-point order, no white space, text
# with only the escapes canonical JSON writes (`\"` `\\` `\n` `\r` `\t`, `\u00xx` below
# U+0020) and everything else as is, integers without leading zeros or `-0`. So matching
# proves what encoding the value again would (in a fifth of the time); a record of any
# other shape goes the general way (_split_batch), and check_record judges the values.
_STR = r'"(?:[^"\\\x00-\x1f]++|\\["\\nrt]|\\u00(?:0[0-8bcef]|1[0-9a-f]))*+"'
_INT = r'(?:0|-?[1-9][0-9]*+)'
_INTS = r'\[(?:%s(?:,%s)*+)?\]' % (_INT, _INT)
_LINE = r'\{"cat":%s,"price":%s,"qty":%s,"sku":%s\}' % (_STR, _INT, _INT, _STR)
_DISC = r'\{"cents":%s,"line":%s,"rule":%s\}' % (_INT, _INT, _STR)
_FIRMWARE_RECORD = re.compile(
    r'\{"card":%(s)s,"disc":\[(?:%(disc)s(?:,%(disc)s)*+)?\],"discount":%(i)s,"gross":%(i)s,"kind":%(s)s,'
    r'"lines":\[(?:%(line)s(?:,%(line)s)*+)?\],"prev":%(s)s,"quote":%(s)s,"reader":%(s)s,"receipt":%(s)s,'
    r'(?:"ref":%(i)s,)?(?:"returned":%(ints)s,)?(?:"returning":%(ints)s,)?'
    r'"rules":%(i)s,"seq":%(i)s,"t":%(i)s,"tier":%(i)s,"v":%(i)s\}'
    % {"s": _STR, "i": _INT, "ints": _INTS, "line": _LINE, "disc": _DISC})
_FIRMWARE_HEAD = re.compile(r'\{"reader":(%s),"records":\[' % _STR)


def _split_firmware_batch(text):
    """As _split_batch, for a batch whose records all match _FIRMWARE_RECORD; else None.

    The head and every record are proven canonical by the expressions, the rest (status,
    totals) by encoding it again; the records' values come from one C parse of the array."""
    m = _FIRMWARE_HEAD.match(text)
    if m is None:
        return None
    reader = m.group(1)
    start = pos = m.end()
    spans = []
    match = _FIRMWARE_RECORD.match
    if text.startswith("]", pos):
        end = pos
    else:
        while True:
            m = match(text, pos)
            if m is None:
                return None
            end = m.end()
            spans.append((pos, end))
            if text.startswith(",", end):
                pos = end + 1
            elif text.startswith("]", end):
                break
            else:
                return None
    # after the records: `,"status":..,"totals":..}`, keys sorting after "records"
    if not text.startswith(",", end + 1):
        return None
    rest = "{" + text[end + 2:]
    tail = _loads(rest)
    if not isinstance(tail, dict) or not tail or min(tail) <= "records" or _dumps_parsed(tail) != rest:
        return None
    value = {"reader": _loads(reader), "records": _loads(text[start - 1:end + 1])}
    value.update(tail)
    return value, spans


def _split_batch(text):
    """A canonical batch body's value and where each record lies in it, at C speed, or None.

    Returns (value, [(start, end)] of each record in `text`) when `text` is exactly the
    canonical encoding of a batch laid out `{"reader":..,"records":[r1,r2,..],...}`: the C
    scanner reads the pieces (and so finds each record's end), then one C encoding of the
    whole value must give `text` back, character for character: that one comparison
    checks key order, duplicate keys, white space, escapes and numbers everywhere.
    None for anything else (the caller lets the pure decoder judge the whole body)."""
    if not text.startswith(_HEAD):
        return None
    try:
        reader, i = _scan(text, len(_HEAD))
        if not text.startswith(_RECORDS, i):
            return None
        i += len(_RECORDS)
        records, spans = [], []
        if text.startswith("]", i):
            i += 1
        else:
            while True:
                rec, j = _scan(text, i)
                records.append(rec)
                spans.append((i, j))
                if text.startswith(",", j):
                    i = j + 1
                elif text.startswith("]", j):
                    i = j + 1
                    break
                else:
                    return None
        if not text.startswith(",", i):
            return None
        tail = _loads("{" + text[i + 1:])
    except StopIteration:
        return None
    if not isinstance(tail, dict):
        return None
    value = {"reader": reader, "records": records}
    for key in tail:
        if key in value:
            return None  # a second "reader" or "records": the pure decoder names it
        value[key] = tail[key]
    if _dumps_parsed(value) != text:
        return None
    return value, spans


class RecordCodec:
    """encode/decode for protocol.batchcheck.check_batch that keep each record's bytes.

    check_batch encodes every record to hash it; a canonical body already holds those
    bytes, so decode notes each record's slice of the body while it checks the body is
    canonical (by _FIRMWARE_RECORD, else one json encoding of the whole body, never one
    per record), and encode hands the slices back. The decoded batch is kept too, and
    each record's text (what the receipts table stores).

        codec = RecordCodec()
        check_batch(body, ..., decode=codec.decode, encode=codec.encode)
        codec.value, codec.bytes_of(record), codec.text_of(record)
    """

    def __init__(self):
        self._kept = {}
        self.value = None  # what decode returned last

    def decode(self, body):
        data = bytes(body)
        split = None
        if b"\\b" not in data and b"\\f" not in data:
            try:
                text = data.decode()
                split = _split_firmware_batch(text) or _split_batch(text)
            except (ValueError, UnicodeError, RecursionError):
                split = None
        if split is None:
            self.value = decode(data)  # the general path: fast when canonical, else the pure judge
            return self.value
        self.value, spans = split
        # ASCII text (the usual body) has the same offsets in bytes and characters
        ascii_only = data.isascii()
        for rec, (i, j) in zip(self.value["records"], spans):
            piece = text[i:j]
            self._kept[id(rec)] = (rec, data[i:j] if ascii_only else piece.encode(), piece)
        return self.value

    def encode(self, value):
        kept = self._kept.get(id(value))
        if kept is not None and kept[0] is value:
            return kept[1]
        data = encode(value)
        if isinstance(value, dict) and "seq" in value:
            # keyed by identity: the record dicts stay alive as long as the batch does
            self._kept[id(value)] = (value, data, None)
        return data

    def bytes_of(self, record):
        return self.encode(record)

    def text_of(self, record):
        """The record's canonical JSON as text (what the receipts table keeps)."""
        kept = self._kept.get(id(record))
        if kept is not None and kept[0] is record and kept[2] is not None:
            return kept[2]
        return self.encode(record).decode()
