# takes: _DIRS
# Makes each folder of _DIRS (parents listed before their children); one that is
# already there is fine.
import os
for _d in _DIRS:
    try:
        os.mkdir(_d)
    except OSError:
        pass
