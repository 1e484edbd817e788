# heapsize: 112k
# Why: at 85 % of 96 KB, from a 200-character path, the batch tests run out (they pass down
# to 91 KB). 112 KB here is about 84 KB on the 32-bit ESP32 (docs/memory.md).
"""Journal records, their hash chain, the signed batch (protocol.records) and the backend's
check of a batch (protocol.batchcheck): what is accepted, and every refusal by its code.

Hashes and signatures are recomputed here from hashlib and from the string the docs
define (docs/protocol.md, "Sync"), not taken from the module under test.
"""
import hashlib
from binascii import hexlify

from check import eq, raises
from protocol.batchcheck import check_batch
from protocol.canonical import decode, encode
from protocol.compat import MICROPYTHON
from protocol.errors import ProtocolError, known
from protocol.hmac256 import hmac_sha256
from protocol.records import (GENESIS, batch_body, batch_parts, body_digest, check_record,
                              make_record, record_hash, sign, sign_answer)

T0 = 1790000000
STATUS = {"pending": 3, "journal": "ok", "firmware": "0.1.0"}


def _hex_sha256(data):
    return hexlify(hashlib.sha256(data).digest()).decode()


def _sale(seq, prev, reader="R1", gross=997, disc=None):
    disc = [{"line": 0, "rule": "tier:gold", "cents": 15}, {"line": 1, "rule": "CAFFE30", "cents": 30}] \
        if disc is None else disc
    return make_record("sale", reader=reader, seq=seq, prev=prev, t=T0 + 60 * seq,
                       card="6001000000000042", tier=2,
                       lines=[{"sku": "1001", "cat": "dairy", "qty": 2, "price": 150},
                              {"sku": "8001", "cat": "coffee", "qty": 1, "price": 400}],
                       gross=gross, discount=sum(d["cents"] for d in disc), disc=disc, rules=3,
                       receipt="T1-%04d" % seq, quote="Q%d" % seq)


def _chain(first, n, prev=GENESIS, reader="R1"):
    """n consecutive records from seq `first`, each chained to the one before: their bytes."""
    out = []
    for seq in range(first, first + n):
        if seq % 3 == 0:  # a return now and then: negative money must add up too
            rec = make_record("return", reader, seq, prev, T0 + 60 * seq, "6001000000000042", 2,
                              [{"sku": "1001", "cat": "dairy", "qty": 2, "price": 150}], -150,
                              -15, [{"line": 0, "rule": "tier:gold", "cents": -15}], 3,
                              ref=seq - 1, returned=[0], returning=[1])
        else:
            rec = _sale(seq, prev, reader, gross=1000 + seq)
        data = encode(rec)
        out.append(data)
        prev = _hex_sha256(data)
    return out


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
        hashes[decode(data)["seq"]] = _hex_sha256(data)
    return hashes.get


def _refused(code, field, body, stored_seq=0, stored_hash=GENESIS, known_fn=lambda s: None):
    e = raises(ProtocolError, check_batch, body, "R1", stored_seq, stored_hash, known_fn)
    eq(e.code, code, "refusal code (%s)" % e)
    eq(e.field, field, "refusal field (%s)" % e)
    assert known(e.code), e.code
    return e


# -- records ---------------------------------------------------------------------------

def test_make_record_fields():
    rec = _sale(1, GENESIS)
    eq(sorted(rec), sorted(["v", "kind", "reader", "seq", "prev", "t", "card", "tier", "lines",
                            "gross", "discount", "disc", "rules", "receipt", "quote"]), "record keys")
    eq(rec["v"], 1, "format")
    eq(GENESIS, "0" * 64, "genesis")
    ret = make_record("return", "R1", 2, GENESIS, T0, "42", 1, [], -150, -15, [], 3,
                      ref=1, returned=[0], returning=[1])
    eq((ret["ref"], ret["returned"], ret["returning"], ret["receipt"], ret["quote"]),
       (1, [0], [1], "", ""), "return fields")
    eq(check_record(rec), rec, "a sale is a valid record")


def test_record_hash_chain():
    records = _chain(1, 5)
    prev = GENESIS
    for data in records:
        rec = decode(data)
        eq(rec["prev"], prev, "prev of %d" % rec["seq"])
        h = record_hash(data)
        eq(h, _hex_sha256(data), "hash of %d" % rec["seq"])
        eq(len(h), 64, "hex digits")
        eq(h, h.lower(), "lower-case hex")
        prev = h
    # one byte changed in a record changes its hash, so the next record no longer chains
    changed = records[1].replace(b'"gross":1002', b'"gross":1003')
    assert changed != records[1]
    assert record_hash(changed) != decode(records[2])["prev"]


def test_check_record_refusals():
    good = _sale(4, GENESIS)
    cases = [
        ("record", "not a record"),
        ("record.v", dict(good, v=2)),
        ("record.kind", dict(good, kind="refund")),
        ("record.seq", dict(good, seq=0)),
        ("record.seq", dict(good, seq="4")),
        ("record.t", dict(good, t=-1)),
        ("record.tier", dict(good, tier=256)),
        ("record.rules", dict(good, rules=True)),
        ("record.gross", dict(good, gross=None)),
        ("record.prev", dict(good, prev="0" * 63)),
        ("record.card", dict(good, card=6001000000000042)),
        ("record.reader", dict(good, reader=None)),
        ("record.lines", dict(good, lines={})),
        ("record.disc", dict(good, disc=None)),
        ("record.discount", dict(good, discount=44)),
    ]
    for field, rec in cases:
        e = raises(ProtocolError, check_record, rec)
        eq((e.code, e.field), ("batch.record", field), "refusal of %r" % (rec,))
    # discount lines whose cents are not integers are refused by name, not by a crash
    for cents in ("15", None, True, 1.5):
        bad = dict(good, disc=[{"line": 0, "rule": "tier:gold", "cents": cents}], discount=1)
        e = raises(ProtocolError, check_record, bad)
        eq((e.code, e.field), ("batch.record", "record.disc[0].cents"), "cents %r" % (cents,))
    e = raises(ProtocolError, check_record, dict(good, disc=["tier:gold"], discount=0))
    eq((e.code, e.field), ("batch.record", "record.disc[0]"), "discount line not an object")


# -- batch body and signature ----------------------------------------------------------

def test_batch_body_is_canonical_and_adds_up():
    records = _chain(1, 7)
    body = batch_body("R1", records, STATUS)
    batch = decode(body, strict=True)  # raises if the bytes are not canonical
    eq(sorted(batch), ["reader", "records", "status", "totals"], "batch keys")
    eq(batch["reader"], "R1", "reader")
    eq(batch["status"], STATUS, "status")
    eq([encode(r) for r in batch["records"]], records, "records byte for byte")
    want = {"count": 7, "gross": 0, "discount": 0}
    for data in records:
        rec = decode(data)
        want["gross"] += rec["gross"]
        want["discount"] += rec["discount"]
    eq(batch["totals"], want, "totals")
    assert want["gross"] != 0 and want["discount"] != 0  # the chain has sales and returns
    empty = decode(batch_body("R1", [], STATUS), strict=True)
    eq((empty["records"], empty["totals"]), ([], {"count": 0, "discount": 0, "gross": 0}), "empty batch")


def test_signature_matches_documented_string():
    key = bytes(range(32))
    body = batch_body("R1", _chain(1, 2), STATUS)
    digest = body_digest(body)
    eq(digest, _hex_sha256(body), "body digest")
    nonce = "0123456789abcdef"
    path = "/api/v1/sync/batch"
    text = ("POST\n" + path + "\n" + str(T0) + "\n" + nonce + "\n" + digest).encode()
    want = hexlify(hmac_sha256(key, text)).decode()
    got = sign(key, "POST", path, T0, nonce, digest)
    eq(got, want, "signature")
    if not MICROPYTHON:
        import hmac

        eq(got, hmac.new(key, text, "sha256").hexdigest(), "signature (CPython hmac)")
    # every part of the string is covered
    for other in (sign(key, "GET", path, T0, nonce, digest),
                  sign(key, "POST", path + "?since=1", T0, nonce, digest),
                  sign(key, "POST", path, T0 + 1, nonce, digest),
                  sign(key, "POST", path, T0, "0123456789abcdee", digest),
                  sign(key, "POST", path, T0, nonce, _hex_sha256(b"")),
                  sign(bytes(32), "POST", path, T0, nonce, digest)):
        assert other != got, other


def test_answer_signature_matches_documented_string():
    """The backend's answer: HMAC over "ANSWER" LF nonce LF status LF hex(SHA-256(body))."""
    key = bytes(range(32))
    body = b'{"ack":17,"directory":3,"refused":null,"rules":5,"time":1790000000}'
    nonce = "0123456789abcdef"
    text = ("ANSWER\n" + nonce + "\n200\n" + _hex_sha256(body)).encode()
    want = hexlify(hmac_sha256(key, text)).decode()
    got = sign_answer(key, nonce, 200, body_digest(body))
    eq(got, want, "answer signature")
    eq(len(got), 64, "hex digits")
    if not MICROPYTHON:
        import hmac

        eq(got, hmac.new(key, text, "sha256").hexdigest(), "answer signature (CPython hmac)")


def test_answer_signature_fails_on_other_nonce_status_body_or_key():
    key = bytes(range(32))
    body = b'{"ack":17,"directory":3,"refused":null,"rules":5,"time":1790000000}'
    nonce = "0123456789abcdef"
    good = sign_answer(key, nonce, 200, body_digest(body))
    forged = body.replace(b'"ack":17', b'"ack":99')
    others = {
        "another request's nonce": sign_answer(key, "0123456789abcdee", 200, body_digest(body)),
        "a refusal's status": sign_answer(key, nonce, 400, body_digest(body)),
        "another body": sign_answer(key, nonce, 200, body_digest(forged)),
        "one byte more": sign_answer(key, nonce, 200, body_digest(body + b" ")),
        "another key": sign_answer(bytes(32), nonce, 200, body_digest(body)),
        # the request signature of the same key never passes for an answer's
        "a request's signature": sign(key, "ANSWER", nonce, 200, "", body_digest(body)),
    }
    for what in others:
        assert others[what] != good, what
    # the reader's check: constant-time compare of the hex text, as it arrives in the header
    from protocol.hmac256 import equal

    assert equal(good.encode(), sign_answer(key, nonce, 200, body_digest(bytearray(body))).encode())
    for what in others:
        assert not equal(good.encode(), others[what].encode()), what
    assert not equal(good.encode(), b""), "no signature"
    # the digest of a page in a larger buffer: a memoryview of the bytes received
    buf = bytearray(4096)
    buf[:len(body)] = body
    eq(body_digest(memoryview(buf)[:len(body)]), body_digest(body), "digest through a memoryview")


# -- the backend's check ---------------------------------------------------------------

def test_check_batch_accepts_good_batch():
    records = _chain(1, 4)
    fresh, status = check_batch(batch_body("R1", records, STATUS), "R1", 0, GENESIS, lambda s: None)
    eq(status, STATUS, "status")
    eq([seq for seq, rec, h in fresh], [1, 2, 3, 4], "fresh seqs")
    for (seq, rec, h), data in zip(fresh, records):
        eq(rec, decode(data), "record %d" % seq)
        eq(h, _hex_sha256(data), "hash %d" % seq)
    # a status-only batch is fine too
    eq(check_batch(batch_body("R1", [], STATUS), "R1", 4, fresh[-1][2], _stored(records))[0], [],
       "status only")


def test_check_batch_continues_stored_chain():
    records = _chain(1, 6)
    stored = records[:3]
    tip = _hex_sha256(stored[-1])
    fresh, _ = check_batch(batch_body("R1", records[3:], STATUS), "R1", 3, tip, _stored(stored))
    eq([seq for seq, rec, h in fresh], [4, 5, 6], "fresh after stored")


def test_retried_batch_stores_nothing():
    records = _chain(1, 4)
    body = batch_body("R1", records, STATUS)
    fresh, _ = check_batch(body, "R1", 0, GENESIS, lambda s: None)
    tip = fresh[-1][2]
    again, _ = check_batch(body, "R1", 4, tip, _stored(records))
    eq(again, [], "the same batch again")
    # overlapping: the backend has 1..2, the reader (no ack received) sends 1..4
    partly, _ = check_batch(body, "R1", 2, _hex_sha256(records[1]), _stored(records[:2]))
    eq([seq for seq, rec, h in partly], [3, 4], "only the records not yet stored")
    # records the backend no longer has (known returns None) are skipped, not refused
    eq(check_batch(body, "R1", 4, tip, lambda s: None)[0], [], "old records unknown")


def test_refused_malformed_records():
    records = _chain(1, 3)
    bad = decode(records[1])
    bad["tier"] = "gold"
    body = _body([records[0], encode(bad), records[2]], totals=_true_totals(records))
    _refused("batch.record", "records[1].tier", body)
    # a record of another reader inside R1's batch
    other = _chain(1, 1, reader="R2")
    _refused("batch.record", "records[0].reader", _body(other, totals=_true_totals(other)))
    # a batch of another reader, signed by R1
    _refused("batch.record", "reader", batch_body("R2", _chain(1, 1, reader="R2"), STATUS))
    # discount lines with text for cents: a named refusal, not a crash of the backend
    rec = decode(records[0])
    rec["disc"] = [{"line": 0, "rule": "tier:gold", "cents": "45"}]
    body = _body([encode(rec)], totals={"count": 1, "discount": rec["discount"], "gross": rec["gross"]})
    _refused("batch.record", "records[0].disc[0].cents", body)
    # records not a list, the body not an object
    _refused("batch.record", "records", b'{"reader":"R1","records":{},"status":{},"totals":{}}')
    _refused("batch.record", "records", b"[]")


def test_refused_non_canonical_body():
    body = batch_body("R1", _chain(1, 2), STATUS)
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
    records = _chain(1, 5)
    # a seq skipped inside the batch (record 3 missing; 4 chains to 3's hash, so the gap is
    # what is wrong, not the chain)
    skipped = [records[0], records[1], records[3]]
    _refused("batch.gap", "records[2].seq", _body(skipped, totals=_true_totals(skipped)))
    # the batch does not follow what is stored: the backend has 1..2, the batch starts at 4
    tail = records[3:]
    _refused("batch.gap", "records[0].seq", _body(tail, totals=_true_totals(tail)),
             2, _hex_sha256(records[1]), _stored(records[:2]))
    # a new reader's first batch must start at 1
    _refused("batch.gap", "records[0].seq", _body(records[1:], totals=_true_totals(records[1:])))


def test_refused_broken_chain():
    records = _chain(1, 3)
    # record 2's prev does not match record 1's hash
    rec = decode(records[1])
    rec["prev"] = GENESIS
    broken = [records[0], encode(rec), records[2]]
    _refused("batch.chain", "records[1].prev", _body(broken, totals=_true_totals(broken)))
    # the first new record does not follow the stored one
    other = _chain(1, 3, prev="ab" * 32)
    _refused("batch.chain", "records[0].prev", _body(other[2:], totals=_true_totals(other[2:])),
             2, _hex_sha256(records[1]), _stored(records[:2]))
    # a record the backend already has, altered: same seq, other bytes
    rec = decode(records[0])
    rec["gross"] += 1
    altered = [encode(rec)]
    _refused("batch.chain", "records[0]", _body(altered, totals=_true_totals(altered)),
             3, _hex_sha256(records[2]), _stored(records))


def test_refused_totals():
    records = _chain(1, 4)
    true = _true_totals(records)
    for name, delta in (("count", 1), ("count", -1), ("gross", 1), ("discount", -1)):
        wrong = dict(true)
        wrong[name] += delta
        _refused("batch.totals", "totals", _body(records, totals=wrong))
    _refused("batch.totals", "totals", _body(records, totals={"count": 4}))
    _refused("batch.totals", "totals", _body(records).replace(b',"totals":', b',"totalz":'))
    # true is not the number 1, even where the runtime compares them equal
    one = records[:1]
    t = _true_totals(one)
    body = _body(one, totals=t).replace(b'"count":1', b'"count":true')
    _refused("batch.totals", "totals", body)
