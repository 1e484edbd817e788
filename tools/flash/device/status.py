# Prints a dict of what is on the reader, read from its files (no secrets).
# Read-only: opens files for reading, never writes. Of the firmware it imports only
# journalframe, the journal's frame format (pure; journal.Journal is not used: its
# constructor recovers and may write), so the frames are read by the code that wrote
# them. A firmware deployed before journalframe existed leaves "pending" None (unknown).
# The journal: segments named by their first seq, one frame per record (counted up to
# the first that is not intact, as the journal's recovery does); "meta" holds one
# frame, the acknowledged seq.
import os, json
def _read(p):
    try:
        f = open(p)
        t = f.read()
        f.close()
        return t
    except OSError:
        return None
def _frames(p, fr, h, mv):
    n = 0
    f = open(p, "rb")
    while fr.read(f, h, mv) >= 0:
        n += 1
    f.close()
    return n
def _pending(j):
    try:
        names = os.listdir(j)
    except OSError:
        return 0
    if not names:
        return 0
    try:
        import journalframe as fr
    except ImportError:
        return None
    h = bytearray(fr.HEADER)
    mv = memoryview(bytearray(fr.MAX_PAYLOAD))
    acked = 0
    if "meta" in names:
        f = open(j + "/meta", "rb")
        k = fr.read(f, h, mv)
        f.close()
        acked = json.loads(bytes(mv[:k])).get("acked", 0) if k > 0 else 0
    segs = sorted(int(n[:-4]) for n in names if n.endswith(".seg"))
    nxt = segs[-1] + _frames(j + "/%08d.seg" % segs[-1], fr, h, mv) if segs else acked + 1
    return max(0, nxt - 1 - acked)
_s = {}
_m = _read("deploy.json")
if _m:
    _m = json.loads(_m)
    _s["firmware"], _s["build"], _s["deployed"] = _m.get("firmware"), _m.get("build"), _m.get("deployed")
_c = _read("config.json")
_root = "/data"
if _c:
    _c = json.loads(_c)
    for _k in ("reader", "backend", "lang", "board"):
        _s[_k] = _c.get(_k)
    _s["wifi"] = (_c.get("wifi") or {}).get("ssid")
    _root = _c.get("root", "/data")
_root = _root.rstrip("/") + "/"
_r = _read(_root + "rules.json")
try:
    _s["rules"] = json.loads(_r)["version"] if _r else 0
except (ValueError, KeyError, TypeError):
    _s["rules"] = "damaged"
_t = _read(_root + "rules.json.synced")
_s["last_sync"] = int(_t) if _t and _t.isdigit() else None
try:
    _v = os.statvfs(_root)
    _s["free_flash"] = _v[0] * _v[3]
except OSError:
    _s["free_flash"] = None
_s["pending"] = _pending(_root + "journal")
_e = _read(_root + "status.json")
_s["last_error"] = json.loads(_e).get("last_error") if _e else None
print(repr(_s))
