"""The smallest heap each heap-limited MicroPython test passes at.

    .venv/bin/python bench/heap_floor.py [--margin 1.0] [test_journal ...]

Runs each test of tests/mpy on the MicroPython unix port as `make test` does (one
process per test, from the build's copy under the long path, tests/support/runtimes.py), and
bisects in 1 KB steps for the smallest heap at which the test passes, its ballast
targets scaled as they are at that heap (`--heap-margin` = heap / declared heap). Prints
one row per module: the heap it declares, the smallest heap its tests pass at, and
that as a share of the declared heap; `make test` needs 85 % or less.

A test that also fails at its declared heap is shown as "fails"; one that passes at
the lowest heap tried as "< 24k".
"""
import argparse
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from loyalty.testing import runtimes

ROOT = Path(__file__).resolve().parent.parent

LOWEST_KB = 24


def tests_of(path):
    text = path.read_text()
    head = text.split("\n", 5)[:5]
    if any(line.startswith("# runtimes:") and "micropython" not in line for line in head):
        return []
    return re.findall(r"^def (test_\w+)\(", text, re.M)


def passes(env, module, name, declared_kb, heap_kb):
    margin = heap_kb / declared_kb
    cmd = [runtimes.micropython(), "-X", "heapsize=%dk" % heap_kb,
           str(runtimes.long_root() / "build" / "mpytests" / "mprun.py"), "--heap-margin=%s" % margin, module, name]
    try:
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=str(ROOT))
    except subprocess.TimeoutExpired:
        return False
    return r.returncode == 0 and ("PASS " + name) in r.stdout


def floor(env, module, name, declared_kb):
    """Smallest heap in KB that passes; None if even the declared heap fails."""
    if not passes(env, module, name, declared_kb, declared_kb):
        return None
    lo, hi = LOWEST_KB - 1, declared_kb  # lo fails (or is below what we try), hi passes
    if passes(env, module, name, declared_kb, LOWEST_KB):
        return LOWEST_KB
    lo = LOWEST_KB
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if passes(env, module, name, declared_kb, mid):
            hi = mid
        else:
            lo = mid
    return hi


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("modules", nargs="*", help="test modules (default: every one in tests/mpy)")
    args = ap.parse_args()
    env = runtimes.env()
    paths = sorted(runtimes.MPY_TESTS.glob("test_*.py"))
    if args.modules:
        paths = [p for p in paths if p.stem in args.modules]
    print("| test module | tests | declared heap | smallest heap it passes at | share of declared |")
    print("| --- | --- | --- | --- | --- |")
    worst = 0.0
    with ThreadPoolExecutor(2) as pool:
        for path in paths:
            names = tests_of(path)
            if not names:
                continue
            declared = runtimes.kilobytes(runtimes.heap_for(path))
            floors = list(pool.map(lambda n: floor(env, path.stem, n, declared), names))
            failing = [n for n, f in zip(names, floors) if f is None]
            if failing:
                print("| %s | %d | %dk | fails: %s | - |" % (path.stem, len(names), declared, " ".join(failing)))
                worst = max(worst, 9.99)
                continue
            top = max(floors)
            which = names[floors.index(top)]
            share = top / declared
            worst = max(worst, share)
            shown = "< %dk" % LOWEST_KB if top == LOWEST_KB else "%dk (%s)" % (top, which)
            print("| %s | %d | %dk | %s | %.0f %% |" % (path.stem, len(names), declared, shown, 100 * share))
            sys.stdout.flush()
    print("worst share of the declared heap: %.0f %% (make test runs at %.0f %%)"
          % (100 * worst, 100 * runtimes.HEAP_MARGIN))


if __name__ == "__main__":
    main()
