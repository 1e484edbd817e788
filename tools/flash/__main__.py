"""`python tools/flash COMMAND ...`, or `python -m flash COMMAND ...` with tools/ on the path."""
import sys
from pathlib import Path

if not __package__:
    # Run as a folder: Python put this folder first on the path, where errors.py and the
    # other modules would shadow top-level ones. The package is reached from tools/.
    HERE = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
    sys.path.insert(0, str(HERE.parent))

from flash.cli import main  # noqa: E402

sys.exit(main())
