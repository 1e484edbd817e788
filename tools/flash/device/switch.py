# takes: _RENAME, _REMOVE
# Puts each file of _RENAME in place from its ".new" copy, then removes the files of
# _REMOVE. A rename over an existing file fails on some file systems: then the old file
# goes first (a cut between the two is what firmware/main.py's deploy.pending is for).
import os
for _p in _RENAME:
    try:
        os.rename(_p + ".new", _p)
    except OSError:
        os.remove(_p)
        os.rename(_p + ".new", _p)
for _p in _REMOVE:
    try:
        os.remove(_p)
    except OSError:
        pass
