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

from protocol.errors import EncodingError

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _text(s, out):
    out.write(b'"')
    start = 0
    for i, ch in enumerate(s):
        if ch in _ESCAPES or ord(ch) < 0x20:
            out.write(s[start:i].encode())
            out.write((_ESCAPES.get(ch) or "\\u%04x" % ord(ch)).encode())
            start = i + 1
    out.write(s[start:].encode() if start else s.encode())
    out.write(b'"')


def _value(v, out, path):
    if v is None:
        out.write(b"null")
    elif v is True:
        out.write(b"true")
    elif v is False:
        out.write(b"false")
    elif isinstance(v, int):
        out.write(str(v).encode())
    elif isinstance(v, str):
        _text(v, out)
    elif isinstance(v, (list, tuple)):
        out.write(b"[")
        for i, item in enumerate(v):
            if i:
                out.write(b",")
            _value(item, out, path)
        out.write(b"]")
    elif isinstance(v, dict):
        out.write(b"{")
        first = True
        for k in sorted(v):
            if not isinstance(k, str):
                raise EncodingError("enc.type", path, "object keys must be text")
            if not first:
                out.write(b",")
            first = False
            _text(k, out)
            out.write(b":")
            _value(v[k], out, path + "." + k if path else k)
        out.write(b"}")
    else:
        raise EncodingError("enc.type", path, "cannot encode " + type(v).__name__)


def encode(value, out=None):
    """The canonical UTF-8 bytes of `value`.

    With `out` (anything with `.write(bytes)`: a file, a hash) the bytes are written there
    piece by piece and nothing is returned, so a large record needs no contiguous buffer.
    """
    if out is not None:
        _value(value, out, "")
        return None
    buf = BytesIO()
    _value(value, buf, "")
    return buf.getvalue()


def decode(data, strict=False):
    """Parse JSON bytes; raise EncodingError('enc.json') when malformed.

    With strict=True the bytes must also be exactly the canonical encoding of what
    they hold (what the backend demands of anything a reader signed).
    """
    try:
        value = json.loads(data)
    except (ValueError, UnicodeError) as e:
        raise EncodingError("enc.json", "", str(e))
    if strict and encode(value) != bytes(data):
        raise EncodingError("enc.canonical", "", "bytes differ from the canonical encoding")
    return value
