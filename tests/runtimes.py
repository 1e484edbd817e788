"""Where the two runtimes live and how to start a module on each.

MicroPython finds modules through MICROPYPATH; the firmware's own files sit at the
root of the device's filesystem, so `firmware/` and `shared/` both go on the path,
as they do for CPython.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MPY_TESTS = ROOT / "tests" / "mpy"
PATHS = [str(ROOT / "shared"), str(ROOT / "firmware"), str(MPY_TESTS), str(ROOT / "tools")]
DEFAULT_HEAP = "96k"
MPY_BUILD = ROOT / "build" / "mpy"
MPY_TEST_BUILD = ROOT / "build" / "mpytests"


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


def env():
    """MicroPython imports firmware and protocol modules from their .mpy build, as the device does."""
    sys.path.insert(0, str(ROOT / "tools"))
    import mpybuild

    mpybuild.build(MPY_BUILD)
    mpybuild.build_tests(MPY_TEST_BUILD)
    e = dict(os.environ)
    e["MICROPYPATH"] = ":".join([str(MPY_BUILD), str(MPY_TEST_BUILD)] + PATHS + [".frozen"])
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


def command(runtime, *args, heap=DEFAULT_HEAP):
    if runtime == "micropython":
        return [micropython(), "-X", "heapsize=" + heap] + list(args)
    return [sys.executable] + list(args)


def run(runtime, *args, heap=DEFAULT_HEAP, timeout=600, **kw):
    return subprocess.run(
        command(runtime, *args, heap=heap), env=env(), capture_output=True, text=True,
        timeout=timeout, cwd=str(ROOT), **kw)
