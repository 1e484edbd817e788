# takes: _ROOT
# Prints how many files the reader's data root _ROOT holds (its journal, rules,
# directory, keys), counting those in its folders too; 0 if there is no such folder.
import os
def _n(p):
    try:
        names = os.listdir(p)
    except OSError:
        return 0
    c = 0
    for m in names:
        c += _n(p + "/" + m) if os.stat(p + "/" + m)[0] & 0x4000 else 1
    return c
print(repr(_n(_ROOT)))
