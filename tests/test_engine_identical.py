"""The backend's audit recomputes what a reader granted: both runtimes must agree to the byte.

One script runs on MicroPython (at the ESP32's heap) and on CPython: it prints the canonical
JSON of the engine's answer for every worked case of tests/cases/engine_cases.json and for
a few hundred generated rule sets, baskets and return sequences. The generator is a small
LCG written in the script, because MicroPython's `random` is not CPython's.
"""
from loyalty.testing import runtimes

# The runner imports the engine first, while the heap is empty: the unix port compiles
# it from source (the ESP32 loads mpy-cross output), which briefly needs ~60 KB.
# Worked cases and generated baskets run as two processes, each within the 96 KB heap.
RUNNER = """
import sys
from protocol import canonical, engine
if sys.argv[1] == "cases":
    import engine_identical_cases
else:
    import engine_identical_gen
"""

CASES = r'''
import gc
from protocol import canonical, engine
from protocol.errors import ProtocolError
import test_engine


def text(v):
    return canonical.encode(v).decode()  # the encoder the reader journals with


for rulesets, case in test_engine.cases():
    gc.collect()
    try:
        out = text(test_engine.run_case(rulesets, case))
    except ProtocolError as e:
        out = "ERR " + e.code + " " + e.field
    print("case", case["name"], out)
print("END")
'''

SCRIPT = r'''
import gc
from protocol import canonical, engine
from protocol.errors import ProtocolError


def text(v):
    return canonical.encode(v).decode()  # the encoder the reader journals with


seed = 20240601


def rnd(n):
    # LCG (glibc constants): the same sequence on both runtimes
    global seed
    seed = (seed * 1103515245 + 12345) % 2147483648
    return (seed >> 8) % n


def show(tag, fn, *args):
    try:
        out = text(fn(*args))
    except ProtocolError as e:
        out = "ERR " + e.code + " " + e.field
    print(tag, out)


def pick(seq):
    return seq[rnd(len(seq))]


def make_rules(now):
    tiers = []
    for tid in (0, 1, 3):
        if tid == 0 or rnd(3):
            tiers.append({"id": tid, "code": "t%d" % tid, "bp": pick((0, 100, 200, 250, 333, 500, 10000))})
    promos = []
    for k in range(rnd(7)):
        kind = pick(("sku", "category", "threshold"))
        p = {"id": "P%d" % k, "kind": kind}
        if kind == "sku":
            p["sku"] = "S%d" % rnd(5)
        elif kind == "category":
            p["category"] = "c%d" % rnd(3)
        else:
            p["min_cents"] = rnd(6000)
        if rnd(2):
            p["bp"] = pick((1, 499, 500, 1000, 1250, 3333, 5000, 10000))
        else:
            p["cents"] = pick((1, 5, 30, 99, 250, 1000)) if kind != "threshold" else rnd(2000)
        if not rnd(4):
            # a restriction names tiers of the rules, at least one (tier 0 is always there)
            p["tiers"] = [t["id"] for t in tiers if rnd(2)] or [0]
        if not rnd(4):
            p["from"] = now - 3600 + rnd(7200)
        if not rnd(4):
            p["to"] = now + 1 + rnd(3600)
        promos.append(p)
    big = 10 ** 6
    return {"version": rnd(100), "tiers": tiers, "default_tier": 0, "promotions": promos,
            "limits": {"receipt_max_cents": pick((big, big, big, 1500, 300, 0))},
            "offline": {"receipt_max_cents": pick((big, big, 2000, 500)),
                        "card_day_max_cents": pick((big, big, 5000, 800)),
                        "stale_hours": pick((48, 48, 48, 1))}}


def make_lines():
    lines = []
    for i in range(1 + rnd(9)):
        qty = 1 if not rnd(4) else 1 + rnd(12)
        lines.append({"sku": "S%d" % rnd(6), "cat": "c%d" % rnd(4), "qty": qty,
                      "price": pick((0, 1, 5, 99, 125, 1999)) if not rnd(3) else rnd(3000)})
    return lines


def returns(n, lines, sale):
    before = [0] * len(lines)
    for step in range(3):
        now = [rnd(line["qty"] - b + 1) for line, b in zip(lines, before)]
        show("R%d.%d" % (n, step), engine.reverse, lines, sale["disc"], before, now)
        before = [b + q for b, q in zip(before, now)]
    show("V%d" % n, engine.void, lines, sale["disc"], before)


for n in range(COUNT):
    gc.collect()
    now = 1700000000 + rnd(100000)
    rules = make_rules(now)
    lines = make_lines()
    last = None if not rnd(8) else now - rnd(200000)
    ctx = {"now": now, "last_sync": last, "card_day_used": rnd(6000)}
    tier = pick((0, 1, 3, 7, None))
    show("Q%d" % n, engine.quote, rules, lines, tier, ctx)
    try:
        sale = engine.quote(rules, lines, tier, ctx)
    except ProtocolError:
        continue
    returns(n, lines, sale)
print("END")
'''

COUNT = 400


def _outputs(tmp_path):
    script = tmp_path / "engine_identical.py"
    script.write_text(RUNNER)
    (tmp_path / "engine_identical_cases.py").write_text(CASES)
    (tmp_path / "engine_identical_gen.py").write_text(SCRIPT.replace("COUNT", str(COUNT)))
    outs = {}
    for rt in ("micropython", "cpython"):
        outs[rt] = ""
        for part in ("cases", "random"):
            r = runtimes.run(rt, str(script), part)
            assert r.returncode == 0, (rt, part, r.stdout[-2000:], r.stderr[-4000:])
            outs[rt] += r.stdout
    return outs


def test_same_bytes_on_both_runtimes(tmp_path):
    outs = _outputs(tmp_path)
    mp, cp = outs["micropython"].splitlines(), outs["cpython"].splitlines()
    assert cp.count("END") == 2 and mp.count("END") == 2
    # enough real work was compared: every case, and quotes that granted something
    assert sum(1 for line in cp if line.startswith("case ")) >= 25
    granted = sum(1 for line in cp if line.startswith("Q") and '"discount":0,' not in line
                  and "ERR" not in line)
    assert granted >= COUNT // 2, granted
    assert any("threshold:" in line for line in cp) and any('"capped":["' in line for line in cp)
    assert any('"stale":true' in line for line in cp)
    for i, (a, b) in enumerate(zip(mp, cp)):
        assert a == b, "line %d differs:\nmicropython %s\ncpython     %s" % (i, a, b)
    assert len(mp) == len(cp)
