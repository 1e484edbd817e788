"""Temporary folders for tests on both runtimes (MicroPython has no tempfile)."""
import os

from protocol.compat import MICROPYTHON, hexstr


def temp_dir(prefix="test-"):
    if not MICROPYTHON:
        import tempfile

        return tempfile.mkdtemp(prefix=prefix)
    path = "/tmp/" + prefix + hexstr(os.urandom(6))
    os.mkdir(path)
    return path


def rmtree(path):
    for name in os.listdir(path):
        p = path + "/" + name
        if os.stat(p)[0] & 0x4000:  # a directory
            rmtree(p)
        else:
            os.remove(p)
    os.rmdir(path)
