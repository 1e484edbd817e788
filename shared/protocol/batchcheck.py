"""The backend's check of a sync batch: everything short of the signature and the database.

Given the body bytes and what the backend already holds for this reader (the highest
contiguous seq stored and that record's hash), returns the records to store, or raises
ProtocolError with the refusal code: batch.record, batch.status, batch.totals, batch.gap,
batch.chain. Every record and the status pass the one schema (protocol.records).
Records the backend already has (a retried batch) are checked against the chain and
skipped, so a replay changes nothing.

    fresh, status, quarantined = check_batch(body, reader="R1", stored_seq=0, stored_hash=records.GENESIS,
                                             known=lambda s: None)

The codec is pluggable: `decode(body)` must return the value of canonical bytes or raise
EncodingError exactly as `canonical.decode(body, strict=True)` does, and `encode(value)`
must return the canonical bytes of a value. The backend passes a faster pair built on the
C json module (backend/sync/fastjson.py) that falls back to these whenever the two could differ.
"""
from .canonical import decode as _decode, encode as _encode
from .errors import EncodingError, ProtocolError
from .checks import integer, text
from .recordcheck import MAX_RECORDS, MAX_TEXT, check_content
from .records import Totals, record_hash


def _strict(data):
    return _decode(data, True)


_HEX = "0123456789abcdef"


def check_envelope(rec, where="record"):
    """What a batch needs of each record to place it: an object from `reader`, its `seq`
    and the `prev` hash it chains to. A record without these cannot be judged at all."""
    if not isinstance(rec, dict):
        raise ProtocolError("batch.record", where, "must be an object")
    text(rec.get("reader"), 1, MAX_TEXT, where + ".reader", ProtocolError, "batch.record")
    integer(rec.get("seq"), 1, 2 ** 53, where + ".seq", ProtocolError, "batch.record")
    prev = rec.get("prev")
    if not isinstance(prev, str) or len(prev) != 64 or not all_hex(prev):
        raise ProtocolError("batch.record", where + ".prev", "must be 64 lower-case hex digits")
    return rec


def all_hex(s):
    # strip() runs in C on both runtimes, and takes no character out of the str one by one
    return not s.strip(_HEX)


def check_record(rec, where="record"):
    """Raise ProtocolError('batch.record', field, rule) unless `rec` is a valid record
    (docs/protocol.md section 3; the backend's check): its envelope (check_envelope) and its content
    (check_content). Returns `rec`."""
    check_envelope(rec, where)
    check_content(rec, where)
    if "ref" in rec and rec["ref"] >= rec["seq"]:
        raise ProtocolError("batch.record", where + ".ref", "must name an earlier sale")
    return rec


_STATUS_INTS = (("pending", 0, 2 ** 40), ("oldest_t", 0, 2 ** 40), ("used", 0, 2 ** 40),
                ("capacity", 0, 2 ** 40), ("free_flash", -1, 2 ** 40), ("rules", 0, 2 ** 53),
                ("directory", 0, 2 ** 53), ("keys", 0, 2 ** 53), ("clock", 0, 2 ** 40),
                ("clock_drift", -(2 ** 40), 2 ** 40))
_STATUS_TEXTS = (("firmware", 32), ("last_error", 64), ("refused", 64))
JOURNAL_LEVELS = ("ok", "nearly_full", "full")


def check_status(status, where="status"):
    """Raise ProtocolError('batch.status', field, rule) unless `status` is a reader's
    status (docs/protocol.md, "Up"): an object whose keys are all optional (an older
    reader sends fewer), each of its type and range. Returns `status`."""
    if not isinstance(status, dict):
        raise ProtocolError("batch.status", where, "must be an object")
    for k in status:
        v = status[k]
        for name, lo, hi in _STATUS_INTS:
            if k == name:
                integer(v, lo, hi, where + "." + k, ProtocolError, "batch.status")
                break
        else:
            for name, hi in _STATUS_TEXTS:
                if k == name:
                    text(v, 0, hi, where + "." + k, ProtocolError, "batch.status")
                    break
            else:
                if k != "journal":
                    raise ProtocolError("batch.status", where + "." + str(k), "unknown key")
                if v not in JOURNAL_LEVELS:
                    raise ProtocolError("batch.status", where + ".journal", "must be one of " + ",".join(JOURNAL_LEVELS))
    return status


_BATCH_KEYS = ("reader", "records", "status", "totals")


def check_batch(body, reader, stored_seq, stored_hash, known, decode=None, encode=None, sale=None,
                held=None):
    """Validate a batch body; returns (fresh, status, quarantined).

    fresh: [(seq, record_dict, record_hash)] of the records not yet stored, in seq order,
    those to quarantine included; quarantined: {seq: the ProtocolError its content fails
    with} for those of fresh to quarantine (see below).
    stored_seq/stored_hash: the highest contiguous seq already stored and its hash
    (0 and records.GENESIS for a new reader). known(seq) returns the stored hash of an earlier
    record, or None. decode/encode: the codec (default: the pure canonical one).
    sale(ref): the number of lines of this reader's stored sale `ref`, None when it has
    no such sale (default: every ref names an unknown sale unless the batch holds it).
    held(seq): the hash of the record `seq` that an earlier batch of this reader was
    refused for, or None: a record that fails check_content again, byte for byte, is the
    reader's journaled record, which it cannot change; it is returned for quarantine
    instead of refusing the batch again (docs/protocol.md, "Quarantine").

    A refusal for a record's content carries `seq` and `hash` of that record.
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
    for k in batch:
        if k not in _BATCH_KEYS:
            raise ProtocolError("batch.record", str(k), "unknown key")
    if batch.get("reader") != reader:
        raise ProtocolError("batch.record", "reader", "must be the signing reader")
    if len(batch["records"]) > MAX_RECORDS:
        raise ProtocolError("batch.record", "records", "at most %d records per batch" % MAX_RECORDS)
    status = check_status(batch.get("status"))
    totals = Totals()
    fresh = []
    quarantined = {}
    sales = {}  # seq -> lines of the sales in this batch, for its returns
    prev_seq, prev_hash = None, None
    for i, rec in enumerate(batch["records"]):
        where = "records[%d]" % i
        check_envelope(rec, where)
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
            # stored before: the same bytes were judged then
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
            try:
                check_content(rec, where)  # the envelope was checked above
                _check_ref(rec, sales, sale, where)
            except ProtocolError as e:
                if held is None or held(seq) != h:
                    e.seq, e.hash = seq, h
                    raise
                quarantined[seq] = e
            else:
                if rec["kind"] == "sale":
                    sales[seq] = len(rec["lines"])
            fresh.append((seq, rec, h))
        prev_seq, prev_hash = seq, h
    want = batch.get("totals")
    have = encode(totals.as_dict())
    # compared as canonical bytes: as values, true == 1 and a count of true would pass
    if not isinstance(want, dict) or encode(want) != have:
        raise ProtocolError("batch.totals", "totals", "records add up to " + have.decode())
    return fresh, status, quarantined


def _check_ref(rec, sales, sale, where):
    """A return or a voided sale names a sale of this reader with as many lines."""
    if "ref" not in rec:
        return
    ref = rec["ref"]
    if ref >= rec["seq"]:
        raise ProtocolError("batch.record", where + ".ref", "must name an earlier sale")
    n = sales.get(ref)
    if n is None and sale is not None:
        n = sale(ref)
    if n is None:
        raise ProtocolError("batch.record", where + ".ref", "names no sale of this reader")
    if n != len(rec["lines"]):
        raise ProtocolError("batch.record", where + ".lines", "sale %d has %d lines, not %d" % (ref, n, len(rec["lines"])))
