"""The loyalty backend: reader sync API, managers' dashboard, head office's commands.

`backend.app.create_app()` builds the Flask app; `flask --app backend.app --help` lists
the operator's commands.
"""
import sys as _sys
from pathlib import Path as _Path

# `protocol` is the shared package (shared/protocol), the reader's own code: the backend
# imports it as it is, so every backend module can, whichever is imported first
_SHARED = str(_Path(__file__).resolve().parent.parent / "shared")
if _SHARED not in _sys.path:
    _sys.path.insert(0, _SHARED)
