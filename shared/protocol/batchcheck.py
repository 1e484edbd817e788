"""The backend's check of a sync batch: everything short of the signature and the database.

Given the body bytes and what the backend already holds for this reader (the highest
contiguous seq stored and that record's hash), returns the records to store, or raises
ProtocolError with the refusal code: batch.record, batch.totals, batch.gap, batch.chain.
Records the backend already has (a retried batch) are checked against the chain and
skipped, so a replay changes nothing.

    new = check_batch(body, reader="R1", stored_seq=0, stored_hash=records.GENESIS, known=lambda s: None)

The codec is pluggable: `decode(body)` must return the value of canonical bytes or raise
EncodingError exactly as `canonical.decode(body, strict=True)` does, and `encode(value)`
must return the canonical bytes of a value. The backend passes a faster pair built on the
C json module (backend/sync/fastjson.py) that falls back to these whenever the two could differ.
"""
from .canonical import decode as _decode, encode as _encode
from .errors import EncodingError, ProtocolError
from .records import Totals, check_record, record_hash


def _strict(data):
    return _decode(data, True)


def check_batch(body, reader, stored_seq, stored_hash, known, decode=None, encode=None):
    """Validate a batch body; returns [(seq, record_dict, record_hash)] of records not yet stored.

    stored_seq/stored_hash: the highest contiguous seq already stored and its hash
    (0 and records.GENESIS for a new reader). known(seq) returns the stored hash of an earlier
    record, or None. decode/encode: the codec (default: the pure canonical one).
    """
    if decode is None:
        decode = _strict
    if encode is None:
        encode = _encode
    try:
        batch = decode(body)
    except EncodingError as e:
        raise ProtocolError("batch.record", "body", e.detail)
    except (RuntimeError, MemoryError):
        # nesting deeper than the parser holds: CPython raises RecursionError (a
        # RuntimeError), MicroPython runs out of heap; either way the body is refused
        raise ProtocolError("batch.record", "body", "nested too deeply")
    if not isinstance(batch, dict) or not isinstance(batch.get("records"), list):
        raise ProtocolError("batch.record", "records", "must be a list")
    if batch.get("reader") != reader:
        raise ProtocolError("batch.record", "reader", "must be the signing reader")
    totals = Totals()
    fresh = []
    prev_seq, prev_hash = None, None
    for i, rec in enumerate(batch["records"]):
        where = "records[%d]" % i
        check_record(rec, where)
        if rec["reader"] != reader:
            raise ProtocolError("batch.record", where + ".reader", "must be the signing reader")
        totals.add(rec)
        h = record_hash(encode(rec))
        seq = rec["seq"]
        if prev_seq is not None and seq != prev_seq + 1:
            raise ProtocolError("batch.gap", where + ".seq", "%d follows %d" % (seq, prev_seq))
        if prev_hash is not None and rec["prev"] != prev_hash:
            raise ProtocolError("batch.chain", where + ".prev", "does not match the previous record")
        if seq <= stored_seq:
            have = known(seq)
            if have is not None and have != h:
                raise ProtocolError("batch.chain", where, "differs from the stored record %d" % seq)
        else:
            if seq != stored_seq + 1 and prev_seq is None:
                # the first new record must follow what is stored (a new reader's starts at
                # 1): ack means "every record from 1 up to here", so no gap is ever accepted
                raise ProtocolError("batch.gap", where + ".seq", "expected %d, got %d" % (stored_seq + 1, seq))
            if seq == stored_seq + 1 and rec["prev"] != stored_hash:
                raise ProtocolError("batch.chain", where + ".prev", "does not follow stored record %d" % stored_seq)
            fresh.append((seq, rec, h))
        prev_seq, prev_hash = seq, h
    want = batch.get("totals")
    # compared as canonical bytes: as values, true == 1 and a count of true would pass
    if not isinstance(want, dict) or encode(want) != encode(totals.as_dict()):
        raise ProtocolError("batch.totals", "totals", "records add up to %r" % totals.as_dict())
    return fresh, batch.get("status")
