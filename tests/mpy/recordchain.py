"""Records to test with: a sale, and chains of records as a reader's journal holds them.

Shared by test_records and test_batchcheck; hashes come from hashlib, not the module
under test.
"""
import hashlib
from binascii import hexlify

from protocol.canonical import encode
from protocol.records import GENESIS, make_record

T0 = 1790000000
STATUS = {"pending": 3, "journal": "ok", "firmware": "0.1.0"}


def hex_sha256(data):
    return hexlify(hashlib.sha256(data).digest()).decode()


def lines(seq=0):
    # the coffee's price moves with seq, so records (and batch totals) differ
    return [{"sku": "1001", "cat": "dairy", "qty": 2, "price": 150},
            {"sku": "8001", "cat": "coffee", "qty": 1, "price": 400 + seq}]


def sale(seq, prev, reader="R1", disc=None):
    disc = [{"line": 0, "rule": "tier:gold", "cents": 15}, {"line": 1, "rule": "CAFFE30", "cents": 30}] \
        if disc is None else disc
    return make_record("sale", reader=reader, seq=seq, prev=prev, t=T0 + 60 * seq,
                       card="6001000000000042", tier=2, lines=lines(seq), gross=700 + seq,
                       discount=sum(d["cents"] for d in disc), disc=disc, rules=3,
                       receipt="T1-%04d" % seq, quote="Q%d" % seq)


def chain(first, n, prev=GENESIS, reader="R1"):
    """n consecutive records from seq `first`, each chained to the one before: their bytes."""
    out = []
    for seq in range(first, first + n):
        if seq % 3 == 0:  # a return now and then: negative money must add up too
            # one of the two dairy units of the sale just before
            rec = make_record("return", reader, seq, prev, T0 + 60 * seq, "6001000000000042", 2,
                              lines(seq - 1), -150, -7, [{"line": 0, "rule": "tier:gold", "cents": -7}], 3,
                              ref=seq - 1, returned=[0, 0], returning=[1, 0])
        else:
            rec = sale(seq, prev, reader)
        data = encode(rec)
        out.append(data)
        prev = hex_sha256(data)
    return out
