import sys
from pathlib import Path

# tests import `runtimes`; host code imports `protocol`, firmware modules and tools.
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import runtimes  # noqa: E402

for p in runtimes.PATHS:
    if p not in sys.path:
        sys.path.insert(0, p)

# tests/mpy holds modules that run on MicroPython through test_runtimes.py, not pytest's own
collect_ignore = ["mpy"]
