# heapsize: 144k
# the backend's check of a batch (the record schema, the engine's line rules, the status)
# with whole batches of test records in memory; it never runs on the reader
"""The backend's check of a batch (protocol.batchcheck): what is accepted, and every
refusal by its code. Records and batches are built as in test_records.py.
"""
from check import eq, raises
from protocol.batchcheck import check_batch
from protocol.canonical import decode, encode
from protocol.errors import ProtocolError, known
from protocol.records import GENESIS, batch_body, batch_parts
from recordchain import STATUS, chain, hex_sha256, sale


def _body(records, reader="R1", totals=None, status=STATUS):
    """A batch body; `totals` overrides the true ones (to build wrong batches)."""
    if totals is None:
        return batch_body(reader, records, status)
    head, tail = batch_parts(reader, status, totals)
    return head + b",".join(records) + tail


def _true_totals(records):
    count = gross = disc = 0
    for data in records:
        rec = decode(data)
        count += 1
        gross += rec["gross"]
        disc += rec["discount"]
    return {"count": count, "discount": disc, "gross": gross}


def _stored(records):
    """known(seq) of a backend that holds these records."""
    hashes = {}
    for data in records:
        hashes[decode(data)["seq"]] = hex_sha256(data)
    return hashes.get


def _sales(records):
    """sale(ref) of a backend that holds these records: the number of lines of a sale."""
    lines = {}
    for data in records:
        rec = decode(data)
        if rec["kind"] == "sale":
            lines[rec["seq"]] = len(rec["lines"])
    return lines.get


def _refused(code, field, body, stored_seq=0, stored_hash=GENESIS, known_fn=lambda s: None, **kw):
    e = raises(ProtocolError, check_batch, body, "R1", stored_seq, stored_hash, known_fn, **kw)
    eq(e.code, code, "refusal code (%s)" % e)
    eq(e.field, field, "refusal field (%s)" % e)
    assert known(e.code), e.code
    return e


# -- the backend's check ---------------------------------------------------------------

def test_check_batch_accepts_good_batch():
    records = chain(1, 4)
    fresh, status, quarantined = check_batch(batch_body("R1", records, STATUS), "R1", 0, GENESIS, lambda s: None)
    eq(quarantined, {}, "nothing to quarantine")
    eq(status, STATUS, "status")
    eq([seq for seq, rec, h in fresh], [1, 2, 3, 4], "fresh seqs")
    for (seq, rec, h), data in zip(fresh, records):
        eq(rec, decode(data), "record %d" % seq)
        eq(h, hex_sha256(data), "hash %d" % seq)
    # a status-only batch is fine too
    eq(check_batch(batch_body("R1", [], STATUS), "R1", 4, fresh[-1][2], _stored(records))[0], [],
       "status only")


def test_check_batch_continues_stored_chain():
    records = chain(1, 6)
    stored = records[:3]
    tip = hex_sha256(stored[-1])
    fresh = check_batch(batch_body("R1", records[3:], STATUS), "R1", 3, tip, _stored(stored))[0]
    eq([seq for seq, rec, h in fresh], [4, 5, 6], "fresh after stored")


def test_retried_batch_stores_nothing():
    records = chain(1, 4)
    body = batch_body("R1", records, STATUS)
    fresh = check_batch(body, "R1", 0, GENESIS, lambda s: None)[0]
    tip = fresh[-1][2]
    again = check_batch(body, "R1", 4, tip, _stored(records))[0]
    eq(again, [], "the same batch again")
    # overlapping: the backend has 1..2, the reader (no ack received) sends 1..4
    partly = check_batch(body, "R1", 2, hex_sha256(records[1]), _stored(records[:2]), sale=_sales(records[:2]))[0]
    eq([seq for seq, rec, h in partly], [3, 4], "only the records not yet stored")
    # records the backend no longer has (known returns None) are skipped, not refused
    eq(check_batch(body, "R1", 4, tip, lambda s: None)[0], [], "old records unknown")


def test_refused_malformed_records():
    records = chain(1, 3)
    bad = decode(records[1])
    bad["tier"] = "gold"
    body = _body([records[0], encode(bad), records[2]], totals=_true_totals(records))
    _refused("batch.record", "records[1].tier", body)
    # a record of another reader inside R1's batch
    other = chain(1, 1, reader="R2")
    _refused("batch.record", "records[0].reader", _body(other, totals=_true_totals(other)))
    # a batch of another reader, signed by R1
    _refused("batch.record", "reader", batch_body("R2", chain(1, 1, reader="R2"), STATUS))
    # discount lines with text for cents: a named refusal, not a crash of the backend
    rec = decode(records[0])
    rec["disc"] = [{"line": 0, "rule": "tier:gold", "cents": "45"}]
    body = _body([encode(rec)], totals={"count": 1, "discount": rec["discount"], "gross": rec["gross"]})
    _refused("batch.record", "records[0].disc[0].cents", body)
    # records not a list, the body not an object
    _refused("batch.record", "records", b'{"reader":"R1","records":{},"status":{},"totals":{}}')
    _refused("batch.record", "records", b"[]")


def test_refused_non_canonical_body():
    body = batch_body("R1", chain(1, 2), STATUS)
    _refused("batch.record", "body", body.replace(b'"reader":', b'"reader": '))
    _refused("batch.record", "body", body + b"\n")
    # keys out of order: the same values, other bytes
    head = b'{"records":['
    swapped = body.replace(b'{"reader":"R1","records":[', head, 1)[:-1] + b',"reader":"R1"}'
    eq(decode(swapped), decode(body), "same values")
    _refused("batch.record", "body", swapped)
    _refused("batch.record", "body", body[:-10])  # truncated
    _refused("batch.record", "body", b"\xff" + body)  # not UTF-8


def test_refused_deeply_nested_body():
    # what the parser cannot hold must be a refusal, not an error 500 of the backend
    _refused("batch.record", "body", b"[" * 3000 + b"]" * 3000)


def test_refused_gaps():
    records = chain(1, 5)
    # a seq skipped inside the batch (record 3 missing; 4 chains to 3's hash, so the gap is
    # what is wrong, not the chain)
    skipped = [records[0], records[1], records[3]]
    _refused("batch.gap", "records[2].seq", _body(skipped, totals=_true_totals(skipped)))
    # the batch does not follow what is stored: the backend has 1..2, the batch starts at 4
    tail = records[3:]
    _refused("batch.gap", "records[0].seq", _body(tail, totals=_true_totals(tail)),
             2, hex_sha256(records[1]), _stored(records[:2]))
    # a new reader's first batch must start at 1
    _refused("batch.gap", "records[0].seq", _body(records[1:], totals=_true_totals(records[1:])))


def test_refused_broken_chain():
    records = chain(1, 3)
    # record 2's prev does not match record 1's hash
    rec = decode(records[1])
    rec["prev"] = GENESIS
    broken = [records[0], encode(rec), records[2]]
    _refused("batch.chain", "records[1].prev", _body(broken, totals=_true_totals(broken)))
    # the first new record does not follow the stored one
    other = chain(1, 3, prev="ab" * 32)
    _refused("batch.chain", "records[0].prev", _body(other[2:], totals=_true_totals(other[2:])),
             2, hex_sha256(records[1]), _stored(records[:2]))
    # a record the backend already has, altered: same seq, other bytes
    rec = decode(records[0])
    rec["gross"] += 1
    altered = [encode(rec)]
    _refused("batch.chain", "records[0]", _body(altered, totals=_true_totals(altered)),
             3, hex_sha256(records[2]), _stored(records))


def test_refused_totals():
    records = chain(1, 4)
    true = _true_totals(records)
    for name, delta in (("count", 1), ("count", -1), ("gross", 1), ("discount", -1)):
        wrong = dict(true)
        wrong[name] += delta
        _refused("batch.totals", "totals", _body(records, totals=wrong))
    _refused("batch.totals", "totals", _body(records, totals={"count": 4}))
    _refused("batch.record", "totalz", _body(records).replace(b',"totals":', b',"totalz":'))
    # true is not the number 1, even where the runtime compares them equal
    one = records[:1]
    t = _true_totals(one)
    body = _body(one, totals=t).replace(b'"count":1', b'"count":true')
    _refused("batch.totals", "totals", body)


def test_refused_status_and_size():
    records = chain(1, 2)
    for field, status in (("status.pending", {"pending": -1}), ("status.pending", {"pending": "3"}),
                          ("status.journal", {"journal": "half"}), ("status.firmware", {"firmware": "1\x1b[2J"}),
                          ("status.colour", {"colour": "red"}), ("status", None), ("status", [])):
        _refused("batch.status", field, _body(records, status=status))
    eq(check_batch(_body(records, status={}), "R1", 0, GENESIS, lambda s: None)[1], {}, "every status key is optional")
    # counted before a record is looked at: 201 empty objects will do
    _refused("batch.record", "records", b'{"reader":"R1","records":[' + b",".join([b"{}"] * 201) +
             b'],"status":{},"totals":{}}')


def test_returns_name_a_sale():
    records = chain(1, 3)  # 3 returns a unit of 2
    stored, fresh = records[:2], records[2:]
    tip = hex_sha256(records[1])
    _refused("batch.record", "records[0].ref", _body(fresh), 2, tip, _stored(stored))
    _refused("batch.record", "records[0].ref", _body(fresh), 2, tip, _stored(stored), sale=lambda ref: None)
    _refused("batch.record", "records[0].lines", _body(fresh), 2, tip, _stored(stored), sale=lambda ref: 3)
    eq([seq for seq, rec, h in check_batch(_body(fresh), "R1", 2, tip, _stored(stored), sale=_sales(stored))[0]],
       [3], "a return of a stored sale")


def test_a_record_refused_twice_is_quarantined():
    """A reader cannot change what it journaled: the record a batch was refused for,
    sent again byte for byte, is returned for quarantine and the batch goes through."""
    records = chain(1, 2)
    bad = decode(records[1])
    bad["lines"][0]["qty"] = 0
    data = encode(bad)
    batch = [records[0], data, encode(sale(3, hex_sha256(data)))]
    body = _body(batch, totals=_true_totals(batch))
    e = _refused("batch.record", "records[1].lines[0].qty", body)
    eq((e.seq, e.hash), (2, hex_sha256(data)), "the refusal names the record")
    # held for another record (other bytes at that seq): refused again
    _refused("batch.record", "records[1].lines[0].qty", body, held=lambda seq: "0" * 64)
    fresh, _, quarantined = check_batch(body, "R1", 0, GENESIS, lambda s: None, held={2: e.hash}.get)
    eq([seq for seq, rec, h in fresh], [1, 2, 3], "every record acknowledged")
    eq(sorted(quarantined), [2], "record 2 quarantined")
    eq((quarantined[2].code, quarantined[2].field), ("batch.record", "records[1].lines[0].qty"), "why")
    # a record whose money is not even a number still adds up as 0
    bad = decode(records[1])
    bad["gross"] = "lots"
    data = encode(bad)
    batch = [records[0], data]
    body = _body(batch, totals={"count": 2, "discount": decode(records[0])["discount"] + bad["discount"],
                                "gross": decode(records[0])["gross"]})
    e = _refused("batch.record", "records[1].gross", body)
    eq(sorted(check_batch(body, "R1", 0, GENESIS, lambda s: None, held={2: e.hash}.get)[2]), [2], "quarantined")
    # the envelope (object, reader, seq, prev) is never quarantined: nothing could place it
    bad["prev"] = "XY" * 32
    body = _body([records[0], encode(bad)], totals={"count": 2, "discount": 0, "gross": 0})
    _refused("batch.record", "records[1].prev", body, held=lambda seq: hex_sha256(encode(bad)))
