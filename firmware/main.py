"""Runs at boot: finishes a deploy a power cut interrupted, then the reader (reader.py,
compiled to .mpy on the device; this file stays small: it is compiled here at boot)."""
import os

try:
    # tools/flash lists the files it is about to rename into place; a cut among the
    # renames would leave old and new modules side by side: put the rest in place first
    with open("deploy.pending") as f:
        names = f.read().split()
    for name in names:
        try:
            os.rename(name + ".new", name)
        except OSError:
            try:  # a file system that will not rename over a file
                os.remove(name)
                os.rename(name + ".new", name)
            except OSError:
                pass  # renamed before the cut
    os.remove("deploy.pending")
except OSError:
    pass  # no deploy was interrupted

import reader  # noqa: E402

reader.run()
