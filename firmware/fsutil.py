"""Small file helpers for the reader's flash that survive a power cut.

`write_atomic` writes a temporary file and renames it over the old one: littlefs
renames atomically, so after a cut the file holds either the old or the new bytes.

    write_atomic("/rules.json", b"{...}")
    write_atomic("/rules.json", lambda f: canonical.encode(rules, f))  # streamed
"""
import os


def write_atomic(path, data):
    """Replace the file at `path` with `data`: bytes, or a function that writes to the file
    (so a large value is streamed, never held whole in the heap)."""
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        if callable(data):
            data(f)
        else:
            f.write(data)
    os.rename(tmp, path)


def read_or_none(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None
