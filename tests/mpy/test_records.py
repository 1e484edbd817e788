# heapsize: 144k
# a record's check imports the engine's basket rules (12 KB of the 64-bit port's heap),
# as on the reader, where the checkout has the engine loaded anyway
"""Journal records, their hash chain and the signed batch (protocol.records); the backend's
check of a batch is in test_batchcheck.py.

Hashes and signatures are recomputed here from hashlib and from the string the docs
define (docs/protocol.md, "Sync"), not taken from the module under test.
"""
from binascii import hexlify

from check import eq, raises
from protocol.canonical import decode, encode
from protocol.compat import MICROPYTHON
from protocol.errors import ProtocolError
from protocol.hmac256 import hmac_sha256
from protocol.batchcheck import check_record
from protocol.records import (GENESIS, batch_body, body_digest, make_record, record_hash,
                              sign, sign_answer)
from recordchain import STATUS, T0, chain, hex_sha256, sale


# -- records ---------------------------------------------------------------------------

def test_make_record_fields():
    rec = sale(1, GENESIS)
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
    records = chain(1, 5)
    prev = GENESIS
    for data in records:
        rec = decode(data)
        eq(rec["prev"], prev, "prev of %d" % rec["seq"])
        h = record_hash(data)
        eq(h, hex_sha256(data), "hash of %d" % rec["seq"])
        eq(len(h), 64, "hex digits")
        eq(h, h.lower(), "lower-case hex")
        prev = h
    # one byte changed in a record changes its hash, so the next record no longer chains
    changed = records[1].replace(b'"gross":702', b'"gross":703')
    assert changed != records[1]
    assert record_hash(changed) != decode(records[2])["prev"]


def test_check_record_refusals():
    good = sale(4, GENESIS)
    cases = [
        ("record", "not a record"),
        ("record.v", dict(good, v=2)),
        ("record.v", dict(good, v=True)),  # True == 1, but a bool is not the format's number
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


def _line(good, i, **change):
    lines = [dict(line) for line in good["lines"]]
    lines[i].update(change)
    return lines


def test_check_record_schema():
    """The rules beyond types: what the reader checks before it journals, and the backend
    before it stores (the HTTP cases are in tests/test_hostile_batches.py)."""
    good = sale(4, GENESIS)
    returned = decode(chain(1, 3)[2])  # a return of one dairy unit of sale 2
    cancelled = dict(good, kind="void", gross=0, discount=0, disc=[])
    eq(check_record(cancelled), cancelled, "a cancelled quote")
    eq(check_record(returned), returned, "a return")
    voided = dict(returned, kind="void", returning=[2, 1], gross=-702, discount=-45,
                  disc=[{"line": 0, "rule": "tier:gold", "cents": -15}, {"line": 1, "rule": "CAFFE30", "cents": -30}])
    eq(check_record(voided), voided, "a voided sale")
    cases = [
        ("record.card", dict(good, card="12ab")),
        ("record.card", dict(good, card="")),
        ("record.card", dict(good, card="1" * 20)),
        ("record.receipt", dict(good, receipt="")),
        ("record.receipt", dict(good, receipt="T1\x00")),
        ("record.receipt", dict(good, receipt="T1\u202e1")),
        ("record.quote", dict(good, quote="Q" * 33)),
        ("record.extra", dict(good, extra=1)),
        ("record.ref", dict(good, ref=1)),
        ("record.lines", dict(good, lines=[])),
        ("record.lines[0].price", dict(good, lines=_line(good, 0, price=[]))),
        ("record.lines[0].price", dict(good, lines=_line(good, 0, price=-1))),
        ("record.lines[1].qty", dict(good, lines=_line(good, 1, qty="void"))),
        ("record.lines[1].qty", dict(good, lines=_line(good, 1, qty=0))),
        ("record.lines[1].qty", dict(good, lines=_line(good, 1, qty=10000))),
        ("record.lines[0].sku", dict(good, lines=_line(good, 0, sku="8" * 33))),
        ("record.lines[0].cat", dict(good, lines=_line(good, 0, cat="da\u0085iry"))),
        ("record.lines[0].x", dict(good, lines=_line(good, 0, x=1))),
        ("record.gross", dict(good, gross=good["gross"] + 1)),
        ("record.gross", dict(good, gross=-good["gross"])),
        ("record.gross", dict(cancelled, gross=5)),
        ("record.disc[0].cents", dict(cancelled, disc=good["disc"], discount=45)),
        ("record.disc[0].cents", dict(good, disc=[{"line": 0, "rule": "x", "cents": 301}], discount=301)),
        ("record.disc[0].cents", dict(good, disc=[{"line": 0, "rule": "x", "cents": -1}], discount=-1)),
        ("record.disc[1].cents", dict(good, disc=[{"line": 0, "rule": "x", "cents": 200},
                                                  {"line": 0, "rule": "y", "cents": 101}], discount=301)),
        ("record.disc[0].line", dict(good, disc=[{"line": 2, "rule": "x", "cents": 1}], discount=1)),
        ("record.disc[0].rule", dict(good, disc=[{"line": 0, "rule": "", "cents": 1}], discount=1)),
        ("record.disc[0]", dict(good, disc=[{"line": 0, "cents": 1}], discount=1)),
        ("record.disc[0]", dict(good, disc=[{"line": 0, "rule": "x", "cents": 1, "y": 0}], discount=1)),
        ("record.ref", dict(returned, ref=0)),
        ("record.ref", dict(returned, ref=returned["seq"])),
        ("record.ref", dict((k, v) for k, v in returned.items() if k != "ref")),
        ("record.returning", dict(returned, returning=[1])),
        ("record.returning", dict(returned, returning=[0, 0], gross=0, discount=0, disc=[])),
        ("record.returning[0]", dict(returned, returned=[2, 0])),
        ("record.returned[1]", dict(returned, returned=[0, -1])),
        ("record.gross", dict(returned, gross=150)),
        ("record.disc[0].cents", dict(returned, disc=[{"line": 0, "rule": "tier:gold", "cents": 7}], discount=7)),
        ("record.disc[0].cents", dict(returned, disc=[{"line": 1, "rule": "CAFFE30", "cents": -1}], discount=-1)),
        ("record.returning[1]", dict(voided, returning=[2, 0], gross=-300)),
        ("record.receipt", dict(returned, receipt=None)),
    ]
    for field, rec in cases:
        e = raises(ProtocolError, check_record, rec)
        eq((e.code, e.field), ("batch.record", field), "refusal of %r" % (rec,))


# -- batch body and signature ----------------------------------------------------------

def test_batch_body_is_canonical_and_adds_up():
    records = chain(1, 7)
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
    body = batch_body("R1", chain(1, 2), STATUS)
    digest = body_digest(body)
    eq(digest, hex_sha256(body), "body digest")
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
                  sign(key, "POST", path, T0, nonce, hex_sha256(b"")),
                  sign(bytes(32), "POST", path, T0, nonce, digest)):
        assert other != got, other


def test_answer_signature_matches_documented_string():
    """The backend's answer: HMAC over "ANSWER" LF nonce LF status LF hex(SHA-256(body))."""
    key = bytes(range(32))
    body = b'{"ack":17,"directory":3,"refused":null,"rules":5,"time":1790000000}'
    nonce = "0123456789abcdef"
    text = ("ANSWER\n" + nonce + "\n200\n" + hex_sha256(body)).encode()
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
