"""Canonical JSON: one byte string per value, so that hashes and signatures agree.

The rules (docs/protocol.md, "Canonical encoding"):
  * objects with text keys sorted by code point, no white space anywhere;
  * integers only (money in cents, rates in basis points): floats are refused;
  * text as UTF-8 JSON strings with only `"` `\\` and control characters escaped
    (`\\"`, `\\\\`, `\\n`, `\\r`, `\\t`, others as `\\u00XX`);
  * true, false, null and arrays as in JSON.

    >>> encode({"b": [1, "è"], "a": None})
    b'{"a":null,"b":[1,"\\xc3\\xa8"]}'
"""
import json
from io import BytesIO

from .errors import EncodingError

_ESCAPE_BYTES = {0x22: b'\\"', 0x5C: b"\\\\", 0x0A: b"\\n", 0x0D: b"\\r", 0x09: b"\\t"}


def _text(s, out):
    # Scan the UTF-8 bytes, not the characters: on MicroPython taking characters out of
    # a str allocates one object each (147 KB of garbage for a 30-line record). Bytes
    # give small ints, and multi-byte UTF-8 sequences are all >= 0x80, never escaped.
    data = s.encode()
    out.write(b'"')
    start = 0
    i = 0
    n = len(data)
    while i < n:  # indexing bytes allocates nothing; an iterator would be one object
        c = data[i]
        if c < 0x20 or c == 0x22 or c == 0x5C:
            if start < i:
                out.write(data[start:i])
            out.write(_ESCAPE_BYTES.get(c) or b"\\u%04x" % c)
            start = i + 1
        i += 1
    out.write(data[start:] if start else data)
    out.write(b'"')


_DIGITS = (b"0", b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"8", b"9")


def _int(v, out):
    # digit by digit: b"%d" % v allocates a bytes object for every number of a record
    if v < 0:
        out.write(b"-")
        v = -v
    p = 1
    while p * 10 <= v:
        p *= 10
    while p:
        out.write(_DIGITS[(v // p) % 10])
        p //= 10


def text_size(s):
    """Bytes of `s` as a canonical JSON string, quotes included; -1 if it holds a lone
    surrogate (U+D800 to U+DFFF), which UTF-8 cannot carry: MicroPython would write it
    anyway and CPython (the backend) would refuse the record for good.

    A basket's texts are measured before a discount is granted, to know its record will
    fit the journal. The UTF-8 bytes are scanned, not the characters: on MicroPython
    every character taken out of a str is interned for good.
    """
    try:
        data = s.encode()
    except UnicodeError:  # CPython: a lone surrogate
        return -1
    n = 2
    size = len(data)
    i = 0
    while i < size:
        c = data[i]
        if c < 0x20:
            n += 2 if c == 0x0A or c == 0x0D or c == 0x09 else 6
        elif c == 0x22 or c == 0x5C:
            n += 2
        else:
            if c == 0xED and i + 1 < size and data[i + 1] >= 0xA0:  # MicroPython: a lone surrogate
                return -1
            n += 1
        i += 1
    return n


_KEYS = {}  # object key -> its encoding with the colon: keys repeat in every record


def _key(k, out):
    kb = _KEYS.get(k)
    if kb is None:
        buf = BytesIO()
        _text(k, buf)
        buf.write(b":")
        kb = buf.getvalue()
        if len(_KEYS) < 64:
            _KEYS[k] = kb
    out.write(kb)


def _value(v, out):
    # Written for few allocations (this encodes every journal record on the reader): no
    # enumerate (a tuple per item), no tuple of types per isinstance, no path strings;
    # the path of a bad value is found afterwards, by _where, only when there is one.
    if v is None:
        out.write(b"null")
    elif v is True:
        out.write(b"true")
    elif v is False:
        out.write(b"false")
    elif isinstance(v, int):
        _int(v, out)
    elif isinstance(v, str):
        _text(v, out)
    elif isinstance(v, list) or isinstance(v, tuple):
        out.write(b"[")
        first = True
        for item in v:
            if not first:
                out.write(b",")
            first = False
            _value(item, out)
        out.write(b"]")
    elif isinstance(v, dict):
        for k in v:
            if not isinstance(k, str):
                raise EncodingError("enc.type", "", "object keys must be text")
        out.write(b"{")
        if len(v) > 16:
            first = True
            for k in sorted(v):
                if not first:
                    out.write(b",")
                first = False
                _key(k, out)
                _value(v[k], out)
        else:
            # small objects (every record, line and discount line): pick the keys in order
            # without sorting them into a new list
            last = None
            for _ in range(len(v)):
                k = None
                for c in v:
                    if (last is None or c > last) and (k is None or c < k):
                        k = c
                if last is not None:
                    out.write(b",")
                _key(k, out)
                _value(v[k], out)
                last = k
        out.write(b"}")
    else:
        raise EncodingError("enc.type", "", "cannot encode " + type(v).__name__)


def _where(v, path):
    """The path of the first value that cannot be encoded, or None."""
    if isinstance(v, dict):
        for k in v:
            if not isinstance(k, str):
                return path
            found = _where(v[k], path + "." + k if path else k)
            if found is not None:
                return found
    elif isinstance(v, list) or isinstance(v, tuple):
        for i in range(len(v)):
            found = _where(v[i], "%s[%d]" % (path, i))
            if found is not None:
                return found
    elif not (v is None or isinstance(v, int) or isinstance(v, str)):
        return path
    return None


def encode(value, out=None):
    """The canonical UTF-8 bytes of `value`.

    With `out` (anything with `.write(bytes)`: a file, a hash) the bytes are written there
    piece by piece and nothing is returned, so a large record needs no contiguous buffer.
    """
    buf = BytesIO() if out is None else out
    try:
        _value(value, buf)
    except EncodingError as e:
        e.field = _where(value, "") or ""
        raise
    return buf.getvalue() if out is None else None


class _SameBytes:
    """A writer that compares what encode() writes with `data` as it goes, so a strict
    decode needs no second copy of the body (on the reader: no block of its size)."""

    def __init__(self, data):
        self.data = data
        self.at = 0
        self.same = True

    def write(self, piece):
        n = len(piece)
        if self.same and bytes(self.data[self.at:self.at + n]) != piece:
            self.same = False
        self.at += n

    def holds(self, value):
        encode(value, self)
        return self.same and self.at == len(self.data)


def decode(data, strict=False):
    """Parse JSON bytes; raise EncodingError('enc.json') when malformed.

    With strict=True the bytes must also be exactly the canonical encoding of what
    they hold (what the backend demands of anything a reader signed).
    """
    try:
        value = json.loads(data)
        if strict and not _SameBytes(data).holds(value):
            raise EncodingError("enc.canonical", "", "bytes differ from the canonical encoding")
    except (ValueError, UnicodeError) as e:
        raise EncodingError("enc.json", "", str(e))
    except (RuntimeError, MemoryError):
        # nesting deep enough to exhaust the stack (RecursionError is a RuntimeError) or,
        # on the reader, the heap: an attack or garbage, never a message of ours
        raise EncodingError("enc.json", "", "nested too deeply")
    return value
