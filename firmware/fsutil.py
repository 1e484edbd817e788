"""Small file helpers for the reader's flash that survive a power cut.

`write_atomic` writes a temporary file and renames it over the old one: littlefs
renames atomically, so after a cut the file holds either the old or the new bytes.

    write_atomic("/rules.json", b"{...}")
"""
import os


def write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


def read_or_none(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None
