"""What the backend answers a reader, validated before the reader acts on it.

A reader must never delete a journal record or load rules because of a garbled or
truncated answer, so every answer goes through here first.

    >>> parse_ack(b'{"ack":17,"directory":3,"refused":null,"rules":5,"time":1700000000}')["ack"]
    17
"""
from protocol.canonical import decode
from protocol.errors import EncodingError, SyncError, known

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
    v = obj.get(name)
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise SyncError("sync.response", name, "must be an integer from %d to %d" % (lo, hi))
    return v


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
            "directory": _int(obj, "directory"), "time": _int(obj, "time", 0, 2 ** 40)}


def parse_rules_answer(data, max_bytes=MAX_ANSWER):
    """The answer to a rules fetch: {"version": n, "rules": {...}}; the rules go to engine.check_rules."""
    obj = _load(data, max_bytes)
    _int(obj, "version")
    if not isinstance(obj.get("rules"), dict):
        raise SyncError("sync.response", "rules", "must be an object")
    return obj
