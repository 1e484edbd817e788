"""mpy-cross must compile every file that goes on the reader (what firmware/manifest.py
names) and every stand-in the simulated board runs beside it (sim/board/manifest.py)."""
import subprocess

import pytest

from loyalty.tools import mpybuild
from loyalty.testing import runtimes

FILES = sorted({src for src, _ in mpybuild.sources()} | {src for src, _ in mpybuild.sources(mpybuild.SIM_MANIFEST)})


def test_there_is_something_to_compile():
    assert any(p.name == "main.py" for p in FILES) and any(p.name == "engine.py" for p in FILES)
    assert any(p.name == "simuart.py" for p in FILES)


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(runtimes.ROOT)) for p in FILES])
def test_compiles(path, tmp_path):
    r = subprocess.run([runtimes.mpy_cross(), "-o", str(tmp_path / "out.mpy"), str(path)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out.mpy").stat().st_size > 0
