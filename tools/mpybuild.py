"""Compile the reader's code with mpy-cross, laid out as on the device's filesystem.

    firmware/app.py            -> build/mpy/app.mpy
    firmware/drivers/pn532.py  -> build/mpy/drivers/pn532.mpy
    shared/protocol/engine.py  -> build/mpy/protocol/engine.mpy
    firmware/main.py           -> build/mpy/main.py   (the board runs main.py as source)

The device runs precompiled .mpy files: compiling a module on the device needs several
times its size in heap. The simulated board and the MicroPython tests use this build so
they run what the device runs. Only files newer than their output are compiled again.

    python tools/mpybuild.py [OUT]
"""
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "build" / "mpy"


def mpy_cross():
    here = Path(sys.executable).parent / "mpy-cross"
    return str(here) if here.exists() else "mpy-cross"


def sources():
    """(source path, path on the device) for every file the reader needs."""
    for src in sorted((ROOT / "firmware").rglob("*.py")):
        yield src, src.relative_to(ROOT / "firmware")
    for src in sorted((ROOT / "shared" / "protocol").rglob("*.py")):
        yield src, Path("protocol") / src.relative_to(ROOT / "shared" / "protocol")


def build(out=DEFAULT_OUT, files=None):
    """Compile what changed; returns the list of device paths written.

    `files`: (source, path in out) pairs; the reader's own files by default.
    """
    out = Path(out)
    written = []
    for src, rel in (files if files is not None else sources()):
        if rel.name == "main.py" and len(rel.parts) == 1:
            dest = out / rel
            if not dest.exists() or dest.stat().st_mtime < src.stat().st_mtime:
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dest)
                written.append(str(rel))
            continue
        dest = (out / rel).with_suffix(".mpy")
        if dest.exists() and dest.stat().st_mtime >= src.stat().st_mtime:
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        r = subprocess.run([mpy_cross(), "-o", str(dest), "-s", str(rel), str(src)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("mpy-cross failed on %s: %s" % (src, r.stderr.strip()))
        written.append(str(rel))
    return written


def build_tests(out):
    """The MicroPython test modules too: compiling them on the target would need more heap
    than the code they test, and the heap they leave is what the tests measure.

    The runner, mprun.py, is copied as source beside them and run from there: MicroPython
    puts the script's folder first on its path, so a runner started from tests/mpy would
    import the test modules' sources and compile them in the test's heap."""
    folder = ROOT / "tests" / "mpy"
    written = build(out, [(src, src.relative_to(folder)) for src in sorted(folder.glob("*.py"))
                          if src.name != "mprun.py"])
    src, dest = folder / "mprun.py", Path(out) / "mprun.py"
    if not dest.exists() or dest.stat().st_mtime < src.stat().st_mtime:
        shutil.copyfile(src, dest)
        written.append("mprun.py")
    return written


if __name__ == "__main__":
    done = build(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT)
    print("compiled %d files" % len(done) if done else "up to date")
