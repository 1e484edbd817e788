"""Ingestion of readers' sync batches: each committed receipt stored exactly once.

Plain functions over a sqlite_utils.Database (no Flask): backend/sync/api.py calls them
once a request's signature, timestamp and nonce have been checked.

    reader = load_reader(db, "R1")            # None for an unknown reader
    outcome = accept_batch(db, reader, body, nonce="9f..", now=now, clock_offset=2,
                           sample_every=300)
    outcome["answer"]                          # {"ack", "directory", "refused", "rules", "time"}

The batch is checked (protocol.batchcheck.check_batch) outside the write lock, then
`BEGIN IMMEDIATE`: if the reader's acknowledged seq moved meanwhile (the same batch
arriving twice at once, from two threads or two processes), it is checked again inside
the lock; the request's nonce is inserted (a primary-key conflict is a replay); the
fresh receipts, the day totals, the reader's state, a batches row and now and then a
pending-receipts sample are written; commit. A refused batch raises ProtocolError and
writes nothing: the caller records the refusal (record_refusal).

The receipts are stored awaiting audit (audit NULL): backend/auditor.py recomputes their
discounts afterwards, in another process, so the reader's acknowledgement never waits
for the engine (a mismatch is flagged for a person, never a reason to refuse a batch).
"""
import datetime
import sqlite3
import threading
import zoneinfo

from loyalty.backend import checks
from loyalty.backend.sync import fastjson
from loyalty.backend.db import GENESIS, transaction
from loyalty.backend.privacy import fold, tombstones
from loyalty.protocol.batchcheck import check_batch
from loyalty.protocol.errors import ProtocolError
from loyalty.protocol.status import http_status

SAMPLES_KEPT = 7 * 86400  # seconds of pending-receipt samples kept per reader
MAX_TEXT = 64  # status texts kept per column (the whole status stays in status_json)

# audit and audit_detail stay NULL: the receipt awaits the audit (backend/auditor.py),
# unless it is stored anonymised (_Checked._anonymise)
_RECEIPT_COLUMNS = ("reader_id", "seq", "store_id", "kind", "t", "day", "receipt", "card", "tier",
                    "gross", "discount", "rules", "hash", "batch_id", "record", "lines", "folded_t", "audit")
_BATCH_ID = _RECEIPT_COLUMNS.index("batch_id")
_CARD, _RECORD, _FOLDED_T, _AUDIT = (_RECEIPT_COLUMNS.index(c) for c in ("card", "record", "folded_t", "audit"))
_INSERT_RECEIPT = "INSERT INTO receipts(%s) VALUES(%s)" % (", ".join(_RECEIPT_COLUMNS),
                                                           ", ".join("?" * len(_RECEIPT_COLUMNS)))
_ADD_DAY = ("INSERT INTO day_totals(store_id, day, receipts, gross, discount) VALUES(?, ?, ?, ?, ?) "
            "ON CONFLICT(store_id, day) DO UPDATE SET receipts=receipts+excluded.receipts, "
            "gross=gross+excluded.gross, discount=discount+excluded.discount")


# This process's threads take turns for SQLite's write lock here: a thread that finds it
# taken by another of our threads waits on this lock and gets it the moment it is free,
# instead of polling through SQLite's busy handler (which sleeps 1, 2, 5, 10... ms between
# tries). Other processes still meet the busy handler.
WRITE_TURN = threading.Lock()


def load_reader(db, reader_id):
    """The reader's id, store, key, time zone and acknowledged seq/hash; None if unknown."""
    row = db.execute("SELECT r.id, r.store_id, r.key_hex, s.tz, r.acked_seq, r.acked_hash "
                     "FROM readers r JOIN stores s ON s.id = r.store_id WHERE r.id=?", [reader_id]).fetchone()
    if row is None:
        return None
    return {"id": row[0], "store_id": row[1], "key": bytes.fromhex(row[2]), "tz": row[3],
            "acked_seq": row[4] or 0, "acked_hash": row[5] or GENESIS}


def answer(db, acked_seq, now, refused=None):
    """The answer object every sync POST gets (docs/protocol.md)."""
    versions = dict(db.execute("SELECT key, value FROM meta WHERE key IN "
                               "('directory_version', 'rules_version', 'card_keys_version')"))
    return {"ack": acked_seq, "directory": int(versions.get("directory_version", 0)),
            "keys": int(versions.get("card_keys_version", 0)), "refused": refused,
            "rules": int(versions.get("rules_version", 0)), "time": now}


class LocalDays:
    """Store-local dates of epoch seconds. Every zone's offset is a whole number of
    quarter hours, so a local date is constant over each 900-second UTC block: one
    conversion per block, not per receipt."""

    def __init__(self):
        self._zones = {}
        self._days = {}

    def day(self, tz, t):
        key = (tz, t // 900)
        day = self._days.get(key)
        if day is None:
            zone = self._zones.get(tz)
            if zone is None:
                zone = self._zones[tz] = zoneinfo.ZoneInfo(tz)
            try:
                day = datetime.datetime.fromtimestamp(t, zone).strftime("%Y-%m-%d")
            except (OverflowError, ValueError, OSError):
                # a clock beyond the year 9999 (records allow t up to 2**40): the receipt
                # is still stored, on the last day there is
                day = datetime.date.max.isoformat()
            if len(self._days) > 100000:
                self._days.clear()
            self._days[key] = day
        return day


LOCAL_DAYS = LocalDays()


def _int_or_none(value, lo=-(2 ** 62), hi=2 ** 62):
    return checks.integer_or_none(value, lo, hi)


def _text_or_none(value):
    return value[:MAX_TEXT] if isinstance(value, str) else None


def reader_status(status, records):
    """The readers columns from a batch's `status`, as they stand after our answer.

    The reader measured `pending` before this batch was acknowledged: the records in the
    batch are no longer pending once it is. The oldest still pending is newer than the
    batch's last record, whose time is so an upper bound of its age (the dashboard may
    show it older than it is until the next report, never younger).
    """
    if not isinstance(status, dict):
        status = {}
    reported = _int_or_none(status.get("pending"), 0) or 0
    pending = max(0, reported - len(records))
    if pending == 0:
        oldest = None
    elif records:
        # a record taken into quarantine (the batch's last) may have no usable time:
        # then the reader's own report, older than the truth, never younger
        oldest = _int_or_none(records[-1].get("t"), 0, 2 ** 40)
        if oldest is None:
            oldest = _int_or_none(status.get("oldest_t"), 1)
    else:
        oldest = _int_or_none(status.get("oldest_t"), 1)
    try:
        status_json = fastjson.encode(status).decode()
    except (ProtocolError, UnicodeError):
        status_json = None
    return {"pending": pending, "oldest_t": oldest,
            "journal": _text_or_none(status.get("journal")),
            "used": _int_or_none(status.get("used")), "capacity": _int_or_none(status.get("capacity")),
            "free_flash": _int_or_none(status.get("free_flash")),
            "firmware": _text_or_none(status.get("firmware")),
            "rules_version": _int_or_none(status.get("rules")),
            "directory_version": _int_or_none(status.get("directory")),
            "keys_version": _int_or_none(status.get("keys")),
            "clock_drift": _int_or_none(status.get("clock_drift")),
            "last_error": _text_or_none(status.get("last_error")),
            "status_json": status_json}


class _Checked:
    """A batch that passed check_batch against one acknowledged state, and its rows: the
    receipts, and the records taken into quarantine."""

    def __init__(self, db, reader, body, acked_seq, acked_hash):
        codec = fastjson.RecordCodec()
        rid = reader["id"]

        def known(seq):
            row = db.execute("SELECT hash FROM receipts WHERE reader_id=? AND seq=?", [rid, seq]).fetchone()
            if row is None:
                row = db.execute("SELECT hash FROM quarantine WHERE reader_id=? AND seq=? AND acked_t IS NOT NULL",
                                 [rid, seq]).fetchone()
            return row[0] if row else None

        self.acked_seq = acked_seq
        self.fresh, self.status, quarantined = check_batch(
            body, rid, acked_seq, acked_hash, known, decode=codec.decode, encode=codec.encode,
            sale=lambda ref: stored_sale_lines(db, rid, ref), held=lambda seq: held_hash(db, rid, seq))
        self.batch = codec.value  # the whole batch: its records fresh or not, its totals
        store, tz = reader["store_id"], reader["tz"]
        day_of = LOCAL_DAYS.day
        text_of = codec.text_of
        rows = self.rows = []
        self.quarantined = []  # [seq, hash, code, field, detail, record text]
        days = {}
        for seq, rec, h in self.fresh:
            if seq in quarantined:
                e = quarantined[seq]
                self.quarantined.append([seq, h, e.code, e.field, e.detail[:300], text_of(rec)])
                continue
            t = rec["t"]
            day = day_of(tz, t)
            kind = rec["kind"]
            rows.append([rid, seq, store, kind, t, day, rec["receipt"], rec["card"], rec["tier"],
                         rec["gross"], rec["discount"], rec["rules"], h, None, text_of(rec), len(rec["lines"]),
                         None, None])
            sums = days.get(day)
            if sums is None:
                sums = days[day] = [0, 0, 0]
            sums[0] += kind == "sale"
            sums[1] += rec["gross"]
            sums[2] += rec["discount"]
        self.day_totals = [(store, d, s[0], s[1], s[2]) for d, s in days.items()]
        self.last = self.fresh[-1] if self.fresh else None
        self.state = reader_status(self.status, self.batch["records"])

    def _anonymise(self, db, key, now):
        """Receipts of cards whose customer was erased (backend/privacy/tombstones.py) are
        stored without card and record, their lines folded at once, the audit impossible
        (verdict 'erased'); their totals count as any. Returns (store, day, kind, record)
        of each for fold.add_totals. One query per batch."""
        buried = tombstones.buried(db, key, [r[_CARD] for r in self.rows])
        folded = []
        for r in self.rows:
            if r[_CARD] in buried:
                folded.append((r[2], r[5], r[3], r[_RECORD]))
                r[_CARD] = r[_RECORD] = None
                r[_FOLDED_T], r[_AUDIT] = now, tombstones.AUDIT_ERASED
        return folded


def stored_sale_lines(db, reader_id, seq):
    """How many lines this reader's stored sale `seq` has; None when it stored no such sale."""
    # the count, not the record: a sale's lines may have been folded (backend/privacy/fold.py)
    row = db.execute("SELECT lines FROM receipts WHERE reader_id=? AND seq=? AND kind='sale'",
                     [reader_id, seq]).fetchone()
    return None if row is None else row[0]


def held_hash(db, reader_id, seq):
    """The hash of record `seq` that a batch of this reader was last refused for, if any."""
    row = db.execute("SELECT hash FROM quarantine WHERE reader_id=? AND seq=? AND acked_t IS NULL",
                     [reader_id, seq]).fetchone()
    return row[0] if row else None


def accept_batch(db, reader, body, nonce, now, clock_offset, sample_every, prune_before=None, erasure_key=None):
    """Check and store a batch (its receipts awaiting audit); returns {"answer", "fresh", "batch_id"}.

    prune_before: nonces stored before this time are forgotten in the same transaction
    (a replay that old is refused as stale anyway). erasure_key: the instance's
    (app.config["ERASURE_KEY"]): receipts of erased customers' cards are stored anonymised.

    Raises ProtocolError for a refused batch (batch.record, .gap, .chain, .totals,
    .replay) with nothing written.
    """
    checked = _Checked(db, reader, body, reader["acked_seq"], reader["acked_hash"])
    with WRITE_TURN:
        stored = _store(db, checked, reader, body, nonce, now, clock_offset, sample_every, prune_before,
                        erasure_key)
    stored["answer"] = answer(db, stored.pop("acked_seq"), now)
    return stored


def _store(db, checked, reader, body, nonce, now, clock_offset, sample_every, prune_before, erasure_key):
    rid = reader["id"]
    with transaction(db):
        row = db.execute("SELECT acked_seq, acked_hash FROM readers WHERE id=?", [rid]).fetchone()
        acked_seq, acked_hash = row[0] or 0, row[1] or GENESIS
        if acked_seq != checked.acked_seq:
            # another request stored records of this reader since we looked: judge again
            # against what is stored now (the same batch twice stores nothing the second time)
            checked = _Checked(db, reader, body, acked_seq, acked_hash)
        try:
            db.execute("INSERT INTO nonces(reader_id, nonce, t) VALUES(?, ?, ?)", [rid, nonce, now])
        except sqlite3.IntegrityError:
            raise ProtocolError("batch.replay", "X-Nonce", "request already seen")
        if prune_before is not None:
            prune_nonces(db, prune_before)
        records = checked.batch["records"]
        totals = checked.batch["totals"]
        if checked.last is not None:
            acked_seq, acked_hash = checked.last[0], checked.last[2]
        batch_id = None
        if records:
            # a report with no records (a reader with nothing pending, every sync interval)
            # updates the reader's row and the chart's samples, not the batch history:
            # 2,000 readers every 30 s would write six million rows a day
            # the totals count what records taken into quarantine say, any integer: sums
            # beyond SQLite's 64 bits are left out (NULL) rather than failing the batch
            cur = db.execute(
                "INSERT INTO batches(reader_id, t, outcome, http_status, first_seq, last_seq, count, fresh, "
                "gross, discount, ack, bytes, quarantined) VALUES(?, ?, 'accepted', 200, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [rid, now, records[0]["seq"], records[-1]["seq"], len(records), len(checked.fresh),
                 _int_or_none(totals["gross"]), _int_or_none(totals["discount"]), acked_seq, len(body),
                 len(checked.quarantined)])
            batch_id = cur.lastrowid
        if checked.quarantined:
            db.conn.executemany(
                "INSERT INTO quarantine(reader_id, seq, hash, t, code, field, detail, acked_t, batch_id, record) "
                "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(reader_id, seq) DO UPDATE SET hash=excluded.hash, "
                "code=excluded.code, field=excluded.field, detail=excluded.detail, acked_t=excluded.acked_t, "
                "batch_id=excluded.batch_id, record=excluded.record",
                [[rid] + q[:2] + [now] + q[2:5] + [now, batch_id, q[5]] for q in checked.quarantined])
        if checked.rows:
            for r in checked.rows:
                r[_BATCH_ID] = batch_id
            # erased customers' cards are looked up here, under the write lock: an erasure
            # committed while the batch was being checked must not miss its receipts
            folded = checked._anonymise(db, erasure_key, now) if erasure_key else []
            db.conn.executemany(_INSERT_RECEIPT, checked.rows)
            db.conn.executemany(_ADD_DAY, checked.day_totals)
            if folded:
                fold.add_totals(db, folded)
        if checked.last is not None:
            # notes of refusals for records now stored otherwise (or never sent again)
            db.execute("DELETE FROM quarantine WHERE reader_id=? AND acked_t IS NULL AND seq <= ?", [rid, acked_seq])
        state = dict(checked.state)
        state.update({"acked_seq": acked_seq, "acked_hash": acked_hash, "last_contact": now,
                      "last_batch": now, "clock_offset": clock_offset})
        db.execute("UPDATE readers SET %s WHERE id=?" % ", ".join("%s=?" % k for k in state),
                   list(state.values()) + [rid])
        last = db.execute("SELECT max(t) FROM reader_samples WHERE reader_id=?", [rid]).fetchone()[0]
        if last is None or now - last >= sample_every:
            db.execute("INSERT OR REPLACE INTO reader_samples(reader_id, t, pending) VALUES(?, ?, ?)",
                       [rid, now, state["pending"]])
            # the chart shows a day; a week is kept, the rest would only grow
            db.execute("DELETE FROM reader_samples WHERE reader_id=? AND t < ?", [rid, now - SAMPLES_KEPT])
    # the answer (the versions the reader is told about) is read after the commit, outside the lock
    return {"acked_seq": acked_seq, "fresh": len(checked.fresh), "batch_id": batch_id}


def prune_nonces(db, before):
    """Forget nonces stored before `before` (a replay that old is refused as stale anyway)."""
    db.execute("DELETE FROM nonces WHERE t < ?", [before])


def touch_reader(db, reader_id, nonce, now, clock_offset):
    """A verified GET: its nonce is remembered (a replay is refused) and the contact noted.

    Raises ProtocolError('batch.replay') when the nonce was seen."""
    with WRITE_TURN:
        _touch(db, reader_id, nonce, now, clock_offset)


def _touch(db, reader_id, nonce, now, clock_offset):
    with transaction(db):
        try:
            db.execute("INSERT INTO nonces(reader_id, nonce, t) VALUES(?, ?, ?)", [reader_id, nonce, now])
        except sqlite3.IntegrityError:
            raise ProtocolError("batch.replay", "X-Nonce", "request already seen")
        db.execute("UPDATE readers SET last_contact=?, clock_offset=? WHERE id=?", [now, clock_offset, reader_id])


def nonce_seen(db, reader_id, nonce):
    return db.execute("SELECT 1 FROM nonces WHERE reader_id=? AND nonce=?", [reader_id, nonce]).fetchone() is not None


def record_refusal(db, reader_id, known, endpoint, error, now, remote=None, nonce=None,
                   body_bytes=None, contact=False, clock_offset=None, status=None):
    """Write a refusal: a refusals row (verified or not), and when `contact` (the request
    was the reader's own: verified, not stale, not replayed) the reader's
    last_refusal_at/code, its contact, the `status` its refused batch carried (pending
    receipts and their age: nothing was acknowledged), and for a refused batch a batches
    row (outcome 'refused'). A request that did not verify may come from anybody on the
    network: it is written down for the reader's page, but must not make the reader look
    refused, and its answer tells nothing (ack and versions 0). `nonce` (of a verified
    request) is remembered so the same request is refused as a replay. Nothing else."""
    with WRITE_TURN:
        return _write_refusal(db, reader_id, known, endpoint, error, now, remote, nonce, body_bytes, contact,
                              clock_offset, reported=status)


def _write_refusal(db, reader_id, known, endpoint, error, now, remote, nonce, body_bytes, contact, clock_offset,
                   reported):
    status = http_status(error.code)
    detail = (error.detail or "")[:300]
    with transaction(db):
        db.execute("INSERT INTO refusals(reader_id, t, endpoint, http_status, code, field, detail, remote, verified) "
                   "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   [(reader_id or "")[:MAX_TEXT], now, endpoint, status, error.code, error.field, detail, remote,
                    1 if nonce is not None else 0])
        acked = 0
        if known:
            if contact:
                db.execute("UPDATE readers SET last_refusal_at=?, last_refusal_code=?, last_contact=?, "
                           "clock_offset=? WHERE id=?", [now, error.code, now, clock_offset, reader_id])
                if reported is not None:
                    state = reader_status(reported, [])
                    db.execute("UPDATE readers SET %s WHERE id=?" % ", ".join("%s=?" % k for k in state),
                               list(state.values()) + [reader_id])
            row = db.execute("SELECT acked_seq FROM readers WHERE id=?", [reader_id]).fetchone()
            acked = row[0] or 0
            if endpoint == "batch" and contact:
                db.execute("INSERT INTO batches(reader_id, t, outcome, http_status, code, field, detail, ack, bytes) "
                           "VALUES(?, ?, 'refused', ?, ?, ?, ?, ?, ?)",
                           [reader_id, now, status, error.code, error.field, detail, acked, body_bytes])
                if getattr(error, "hash", None) is not None:
                    # the record's hash, no more: if the reader sends the very same bytes
                    # again, it journaled them and cannot change them (quarantine)
                    db.execute("INSERT INTO quarantine(reader_id, seq, hash, t, code, field, detail) "
                               "VALUES(?, ?, ?, ?, ?, ?, ?) ON CONFLICT(reader_id, seq) DO UPDATE SET "
                               "hash=excluded.hash, t=excluded.t, code=excluded.code, field=excluded.field, "
                               "detail=excluded.detail WHERE acked_t IS NULL",
                               [reader_id, error.seq, error.hash, now, error.code, error.field, detail])
            if nonce is not None:
                db.execute("INSERT OR IGNORE INTO nonces(reader_id, nonce, t) VALUES(?, ?, ?)",
                           [reader_id, nonce, now])
        # only the reader itself learns its ack and our versions (a stranger could
        # otherwise count a till's receipts)
        ans = answer(db, acked, now, error.as_dict()) if known and nonce is not None else \
            {"ack": 0, "directory": 0, "keys": 0, "refused": error.as_dict(), "rules": 0, "time": now}
    return ans
