"""Where the two runtimes live and how to start a module on each.

MicroPython finds modules through MICROPYPATH; the firmware's own files sit at the
root of the device's filesystem, so `firmware/` and `shared/` both go on the path,
as they do for CPython. The simulated board's stand-ins (`sim/board/`, never on the
device) come after them, from a build of their own.

Two rules keep the heap-limited tests honest on any machine:
- **Headroom.** MicroPython runs in HEAP_MARGIN (85 %) of the heap a test declares,
  and tests that fill the heap with ballast scale their targets by the same factor
  (`check.scaled`), so a declared heap always has 15 % to spare.
- **The long path.** MicroPython keeps the path of every module it imports as a
  string on the heap (`__file__`), so a deeper checkout leaves less heap. The tests
  run from a copy of the build under a folder whose path is exactly LONG_PATH
  characters long, whatever the checkout's path: a test cannot pass here and fail in
  CI's folder. The path of a module cannot be made much longer: MicroPython refuses to
  import a file whose path has more than 255 characters ("name too long", the limit
  of its interned strings), and the longest test module adds 41.
"""
import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MPY_TESTS = ROOT / "tests" / "mpy"
# The device's source folders: MicroPython's path without the builds, and CPython's when it
# runs a test module of tests/mpy (which imports `protocol` and the firmware as the reader does)
PATHS = [str(ROOT / "shared"), str(ROOT / "firmware"), str(MPY_TESTS), str(ROOT / "sim"), str(ROOT / "sim" / "board")]
DEFAULT_HEAP = "96k"
HEAP_MARGIN = float(os.environ.get("MPY_HEAP_MARGIN", "0.85"))
LONG_PATH = 200
MAX_MODULE_PATH = 255  # MicroPython: a qstr holds at most 255 bytes
MPY_BUILD = ROOT / "build" / "mpy"
MPY_TEST_BUILD = ROOT / "build" / "mpytests"
MPY_SIM_BUILD = ROOT / "build" / "mpysim"


def _tool(name):
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if not found:
        raise RuntimeError("%s not found: run `make test`, which installs it" % name)
    return found


def micropython():
    return _tool("micropython")


def mpy_cross():
    return _tool("mpy-cross")


_long_root = None


def long_root():
    """A folder whose path is exactly LONG_PATH characters, holding a copy of the build;
    made once per process, removed at exit."""
    global _long_root
    if _long_root is None:
        top = tempfile.mkdtemp(prefix="loyalty-longpath-")
        atexit.register(shutil.rmtree, top, True)
        pad = LONG_PATH - len(top) - 1
        if pad < 1:
            raise RuntimeError("the temporary folder's path is longer than %d characters: %s" % (LONG_PATH, top))
        parts, left = [], pad
        while left > 0:  # folder names of at most 100 characters, joined by "/"
            n = min(left, 100)
            if left - n == 1:  # a lone "/" cannot end the path
                n -= 1
            parts.append("p" * n)
            left -= n + 1
        root = Path(top, *parts)
        root.mkdir(parents=True)
        assert len(str(root)) == LONG_PATH, root
        _long_root = root
    return _long_root


def mirror(src, dest):
    """Copy the files of src that dest lacks or holds older; returns dest."""
    for path in src.rglob("*"):
        if path.is_file():
            out = dest / path.relative_to(src)
            if not out.exists() or out.stat().st_mtime < path.stat().st_mtime:
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, out)
    return dest


def env(long_path=True):
    """MicroPython imports firmware and protocol modules from their .mpy build, as the
    device does: from the copy under the long path unless `long_path` is False."""
    from loyalty.tools import mpybuild

    mpybuild.build(MPY_BUILD)
    mpybuild.build_tests(MPY_TEST_BUILD)
    mpybuild.build_sim(MPY_SIM_BUILD)
    if long_path:
        base = long_root()
        # the simulated board's stand-ins go beside the test modules, not on a path entry of
        # their own: every entry is a 200-character string on a heap that some tests fill
        # to the brim (test_journal's full journal failed at 85 % with one entry more)
        tests = mirror(MPY_SIM_BUILD, mirror(MPY_TEST_BUILD, base / "build" / "mpytests"))
        builds = [mirror(MPY_BUILD, base / "build" / "mpy"), tests]
        # compiled modules only: a module missing from the builds fails to import instead of
        # being compiled from source in the test's heap (and no source folder takes a path
        # entry of 200 characters)
        sources = []
        longest = max((str(p) for b in builds for p in b.rglob("*.mpy")), key=len)
        if len(longest) > MAX_MODULE_PATH:
            raise RuntimeError("MicroPython cannot import a module whose path is over %d characters: %s"
                               % (MAX_MODULE_PATH, longest))
    else:
        builds, sources = [MPY_BUILD, MPY_TEST_BUILD, MPY_SIM_BUILD], PATHS
    e = dict(os.environ)
    e["MICROPYPATH"] = ":".join([str(b) for b in builds] + sources + [".frozen"])
    e["PYTHONPATH"] = ":".join(PATHS)
    return e


def heap_for(module_path):
    """A test module may ask for a larger heap with a first-lines comment `# heapsize: 512k`."""
    with open(module_path) as f:
        for _ in range(5):
            line = f.readline()
            if line.startswith("# heapsize:"):
                return line.split(":", 1)[1].strip()
    return DEFAULT_HEAP


def kilobytes(heap):
    """'96k' -> 96; the heap sizes the tests declare are in KB."""
    if not heap.endswith("k"):
        raise ValueError("a heap is declared in KB, such as 96k: %r" % heap)
    return int(heap[:-1])


def margin_heap(heap, margin=None):
    """The heap MicroPython really gets: `margin` (HEAP_MARGIN) of the declared one, in bytes."""
    return "%d" % int(kilobytes(heap) * 1024 * (HEAP_MARGIN if margin is None else margin))


def command(runtime, *args, heap=DEFAULT_HEAP, margin=None):
    if runtime == "micropython":
        return [micropython(), "-X", "heapsize=" + margin_heap(heap, margin)] + list(args)
    return [sys.executable] + list(args)


def run(runtime, *args, heap=DEFAULT_HEAP, margin=None, timeout=600, **kw):
    return subprocess.run(
        command(runtime, *args, heap=heap, margin=margin), env=env(), capture_output=True, text=True,
        timeout=timeout, cwd=str(ROOT), **kw)
