"""mpy-cross must compile every file that goes on the reader."""
import subprocess

import pytest

import runtimes

FILES = sorted(
    list((runtimes.ROOT / "firmware").rglob("*.py")) + list((runtimes.ROOT / "shared" / "protocol").rglob("*.py")))


def test_there_is_something_to_compile():
    assert any(p.name == "main.py" for p in FILES) and any(p.name == "engine.py" for p in FILES)


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(runtimes.ROOT)) for p in FILES])
def test_compiles(path, tmp_path):
    r = subprocess.run([runtimes.mpy_cross(), "-o", str(tmp_path / "out.mpy"), str(path)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out.mpy").stat().st_size > 0
