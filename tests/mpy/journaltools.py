"""Journal test helpers: a scratch directory, its segments, and receipts to journal
(test_journal, test_journal_memory). Small on purpose: both run in a limited heap."""
import os

import tmpfs
from protocol.records import GENESIS, make_record


def temp_dir():
    return tmpfs.temp_dir("journal-test-")


def segments(root):
    return sorted(n for n in os.listdir(root) if n.endswith(".seg"))


def on_disk(root):
    return sum(os.stat(root + "/" + n)[6] for n in segments(root))


def receipt(i, n_lines=2):
    lines = [{"sku": "80012%04d" % (i * 7 + k), "qty": 1 + k % 3, "price": 99 + 10 * k}
             for k in range(n_lines)]
    gross = sum(x["qty"] * x["price"] for x in lines)
    return make_record("sale", reader="R1", seq=0, prev=GENESIS, t=1700000000 + 60 * i,
                       card="42%08d" % i, tier=1, lines=lines, gross=gross,
                       discount=0, disc=[], rules=3, quote="Q%d" % i)


def prev_of(data):
    return data[data.index(b'"prev":"') + 8:][:64].decode()
