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

encode() is for values made of dicts with text keys, lists, text, integers, booleans and
None (what decode returns, and the backend's own answers): json.dumps would write a float
or an integer key where the pure encoder refuses them.

    >>> encode({"b": [1, "è"], "a": None})
    b'{"a":null,"b":[1,"\\xc3\\xa8"]}'
    >>> decode(b'{"a":1}')
    {'a': 1}
"""
import json

from protocol import canonical

_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def _refuse(_text):
    raise ValueError("not an integer")


_loads = json.JSONDecoder(parse_float=_refuse, parse_constant=_refuse).decode


def encode(value):
    """The canonical bytes of `value` (see the module's note on which values)."""
    text = _dumps(value)
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
_HEAD = '{"reader":'
_RECORDS = ',"records":['


def _split_batch(text):
    """A batch body's value with each record's text, read at C speed, or None.

    None whenever the text is not laid out as a canonical batch
    `{"reader":..,"records":[r1,r2,..],...}` with each piece byte for byte canonical
    (the caller then lets the pure decoder judge the whole body)."""
    if not text.startswith(_HEAD):
        return None
    raw = _decoder.raw_decode
    reader, i = raw(text, len(_HEAD))
    if not isinstance(reader, str) or _dumps(reader) != text[len(_HEAD):i] or not text.startswith(_RECORDS, i):
        return None
    i += len(_RECORDS)
    records, texts = [], []
    if text.startswith("]", i):
        i += 1
    else:
        while True:
            rec, j = raw(text, i)
            piece = text[i:j]
            if _dumps(rec) != piece:
                return None
            records.append(rec)
            texts.append(piece)
            if text.startswith(",", j):
                i = j + 1
            elif text.startswith("]", j):
                i = j + 1
                break
            else:
                return None
    if not text.startswith(",", i):
        return None
    rest = "{" + text[i + 1:]
    tail = _loads(rest)
    # the keys after "records" must sort after it, as canonical order wants
    if not isinstance(tail, dict) or not tail or min(tail) <= "records" or _dumps(tail) != rest:
        return None
    value = {"reader": reader, "records": records}
    value.update(tail)
    return value, texts


class RecordCodec:
    """encode/decode for protocol.batchcheck.check_batch that keep each record's bytes.

    check_batch encodes every record to hash it; a canonical body already holds those
    bytes, so decode takes each record's slice of the body while it checks the body is
    canonical (one json encode of everything, not two), and encode hands the slices back.
    The decoded batch is kept too.

        codec = RecordCodec()
        check_batch(body, ..., decode=codec.decode, encode=codec.encode)
        codec.value, codec.bytes_of(record)
    """

    def __init__(self):
        self._kept = {}
        self.value = None  # what decode returned last

    def decode(self, body):
        data = bytes(body)
        split = None
        if b"\\b" not in data and b"\\f" not in data:
            try:
                split = _split_batch(data.decode())
            except (ValueError, UnicodeError, RecursionError):
                split = None
        if split is None:
            self.value = decode(data)  # the general path: fast when canonical, else the pure judge
            return self.value
        self.value, texts = split
        for rec, text in zip(self.value["records"], texts):
            self._kept[id(rec)] = (rec, text.encode())
        return self.value

    def encode(self, value):
        kept = self._kept.get(id(value))
        if kept is not None and kept[0] is value:
            return kept[1]
        data = encode(value)
        if isinstance(value, dict) and "seq" in value:
            # keyed by identity: the record dicts stay alive as long as the batch does
            self._kept[id(value)] = (value, data)
        return data

    def bytes_of(self, record):
        return self.encode(record)
