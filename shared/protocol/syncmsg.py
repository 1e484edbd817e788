"""What the backend answers a reader, validated before the reader acts on it.

A reader must never delete a journal record or load rules because of a garbled or
truncated answer, so every answer goes through here first.

    >>> parse_ack(b'{"ack":17,"directory":3,"refused":null,"rules":5,"time":1700000000}')["ack"]
    17
"""
from .canonical import decode
from .checks import integer, is_integer
from .compat import unhexlify
from .errors import EncodingError, SyncError, known

MAX_ANSWER = 16384  # an acknowledgement is ~100 bytes; rules ~ a few KB


def _load(data, max_bytes):
    if len(data) > max_bytes:
        raise SyncError("sync.too_long", "", "%d bytes, limit %d" % (len(data), max_bytes))
    try:
        value = decode(data)
    except EncodingError as e:
        raise SyncError("sync.response", "", e.detail)
    except (RuntimeError, MemoryError):
        # nesting deeper than the parser holds: RecursionError (a RuntimeError) on CPython,
        # out of heap on MicroPython; the heap is whole again once the parse is abandoned
        raise SyncError("sync.response", "", "nested too deeply to parse")
    if not isinstance(value, dict):
        raise SyncError("sync.response", "", "must be a JSON object")
    return value


def _int(obj, name, lo=0, hi=2 ** 53):
    return integer(obj.get(name), lo, hi, name, SyncError, "sync.response")


def _refusal(obj):
    r = obj.get("refused")
    if r is None:
        return None
    if not isinstance(r, dict) or not isinstance(r.get("code"), str) or not known(r["code"]):
        raise SyncError("sync.response", "refused.code", "must be a known error code")
    for name in ("field", "detail"):
        if not isinstance(r.get(name, ""), str):
            raise SyncError("sync.response", "refused." + name, "must be text")
    return {"code": r["code"], "field": r.get("field", "")[:64], "detail": r.get("detail", "")[:120]}


def parse_ack(data, max_bytes=MAX_ANSWER):
    """The answer to a batch: ack (highest contiguous seq stored), refusal, versions, time."""
    obj = _load(data, max_bytes)
    return {"ack": _int(obj, "ack"), "refused": _refusal(obj), "rules": _int(obj, "rules"),
            "directory": _int(obj, "directory"), "time": _int(obj, "time", 0, 2 ** 40),
            # an older backend has no card keys to announce
            "keys": _int(obj, "keys") if "keys" in obj else 0}


def parse_rules_answer(data, max_bytes=MAX_ANSWER):
    """The answer to a rules fetch: {"version": n, "rules": {...}}; the rules go to engine.check_rules."""
    obj = _load(data, max_bytes)
    _int(obj, "version")
    if not isinstance(obj.get("rules"), dict):
        raise SyncError("sync.response", "rules", "must be an object")
    return obj


def parse_keys_answer(data, max_bytes=MAX_ANSWER):
    """The answer to a card keys fetch: {"version": n, "keys": [[epoch, 64 hex], ...]};
    returns (version, [(epoch, wrapped key bytes), ...])."""
    obj = _load(data, max_bytes)
    version = _int(obj, "version")
    keys = obj.get("keys")
    if not isinstance(keys, list) or len(keys) > 255:
        raise SyncError("sync.response", "keys", "must be a list of at most 255 epochs")
    out = []
    for i, item in enumerate(keys):
        ok = isinstance(item, list) and len(item) == 2 and is_integer(item[0], 1, 255) and isinstance(item[1], str) \
            and len(item[1]) == 64
        try:
            key = unhexlify(item[1]) if ok else None
        except ValueError:
            key = None
        if key is None:
            raise SyncError("sync.response", "keys[%d]" % i, "must be [epoch 1..255, 64 hex digits]")
        out.append((item[0], key))
    return version, out
