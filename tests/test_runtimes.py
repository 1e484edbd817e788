"""Runs every test in tests/mpy on the MicroPython unix port and on CPython.

Each `def test_...` in tests/mpy/test_*.py becomes one pytest item per runtime. A
module that cannot run on CPython says so with a first-lines comment
`# runtimes: micropython`. MicroPython runs with the heap of an ESP32 (96 KB) unless
the module asks for more (`# heapsize: ...`, and it says why), and really gets 85 % of
that heap (runtimes.HEAP_MARGIN), from a folder under a 200-character path
(runtimes.LONG_PATH): see tests/support/runtimes.py.
"""
import re

import pytest

from loyalty.testing import runtimes


def _collect():
    items = []
    for path in sorted(runtimes.MPY_TESTS.glob("test_*.py")):
        text = path.read_text()
        head = text.split("\n", 5)[:5]
        wanted = ["micropython", "cpython"]
        for line in head:
            if line.startswith("# runtimes:"):
                wanted = line.split(":", 1)[1].split()
        for name in re.findall(r"^def (test_\w+)\(", text, re.M):
            for rt in wanted:
                items.append(pytest.param(path, name, rt, id="%s::%s[%s]" % (path.stem, name, rt)))
    return items


@pytest.mark.parametrize("path,name,runtime", _collect())
def test_module_function(path, name, runtime):
    heap = runtimes.heap_for(path)
    margin = "--heap-margin=%s" % runtimes.HEAP_MARGIN
    result = runtimes.run(runtime, str(runtimes.long_root() / "build" / "mpytests" / "mprun.py"), margin,
                          path.stem, name, heap=heap)
    out = result.stdout + result.stderr
    assert result.returncode == 0 and ("PASS " + name) in out, out[-4000:]
