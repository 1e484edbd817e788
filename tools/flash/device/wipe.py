# takes: _ROOT
# Erases everything under the reader's data root _ROOT, the folder itself staying
# (provision --wipe-data, after the old reader's last sync).
import os
def _rm(p):
    for m in os.listdir(p):
        q = p + "/" + m
        if os.stat(q)[0] & 0x4000:
            _rm(q)
            os.rmdir(q)
        else:
            os.remove(q)
try:
    _rm(_ROOT)
except OSError:
    pass
