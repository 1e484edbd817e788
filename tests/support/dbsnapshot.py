"""Every row of every table of a SQLite database, what changed between two looks, and the
one rule for what a refused sync request may change (docs/protocol.md section 4).

    before = snapshot(path)                   # read straight from the file, as sqlite3 sees it
    ... a request the backend must refuse ...
    assert_refusal_only(before, snapshot(path), Refusal("R1", 400, "batch.record", "records[0].t",
                        level="verified", nonce=..., body_bytes=len(body), quarantine=(5, hash)))

What a refusal may write, and nothing else (any other difference fails):
  * always one new `refusals` row with the reader id, the endpoint, the status, code and field;
  * `stale` (verified, timestamp outside the window): also the request's nonce in `nonces`;
  * `verified` (the reader's own request: signed, in time, new nonce): also a `batches` row
    (outcome 'refused'), the nonce, and on the reader's row only the refusal and contact
    columns, and the status columns when the refused batch's status passes the schema;
  * a record whose content fails: also one `quarantine` note (acked_t NULL) that holds only
    reader_id, seq, hash, t, code, field, detail: no record text.
"""
import sqlite3

REFUSAL_COLUMNS = ("last_refusal_at", "last_refusal_code", "last_contact", "clock_offset")
STATUS_COLUMNS = ("pending", "oldest_t", "journal", "used", "capacity", "free_flash", "firmware", "rules_version",
                  "directory_version", "keys_version", "clock_drift", "last_error", "status_json")
LEVELS = ("unverified", "stale", "replay", "verified")


def snapshot(path):
    """{table: {key: {column: value}}} of every table; the key is the primary key (the
    rowid for a table without one)."""
    conn = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' "
                                             "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        out = {}
        for table in tables:
            info = conn.execute("PRAGMA table_info(%s)" % table).fetchall()
            cols = [c[1] for c in info]
            pk = [c[1] for c in sorted(info, key=lambda c: c[5]) if c[5]]
            key_sql = ", ".join(pk) if pk else "rowid"
            nkey = len(pk) or 1
            rows = conn.execute("SELECT %s, %s FROM %s" % (key_sql, ", ".join(cols), table)).fetchall()
            out[table] = {row[:nkey]: dict(zip(cols, row[nkey:])) for row in rows}
        return out
    finally:
        conn.close()


def changes(before, after):
    """{table: {"added": {key: row}, "removed": {key: row}, "changed": {key: {col: (old, new)}}}}
    for the tables that differ."""
    out = {}
    for table in sorted(set(before) | set(after)):
        b, a = before.get(table, {}), after.get(table, {})
        added = {k: a[k] for k in a.keys() - b.keys()}
        removed = {k: b[k] for k in b.keys() - a.keys()}
        changed = {}
        for k in a.keys() & b.keys():
            diff = {c: (b[k].get(c), a[k].get(c)) for c in set(a[k]) | set(b[k]) if a[k].get(c) != b[k].get(c)}
            if diff:
                changed[k] = diff
        if added or removed or changed:
            out[table] = {"added": added, "removed": removed, "changed": changed}
    return out


class Refusal:
    """What a refused request is expected to have been refused for, and how far it got:

    level: 'unverified' (no signature checked: unknown reader, bad signature, nonce or
    timestamp text, body over the limit), 'stale' (signed, timestamp outside the window),
    'replay' (signed, nonce seen before), 'verified' (everything else);
    status_ok: the refused batch's status passes the schema (its columns may be written);
    reported: with status_ok, {column: value} the reader's row must then hold (what the
    refused batch's status said);
    quarantine: (seq, hash) of the record whose content failed, or None."""

    def __init__(self, reader, http_status, code, field, level="verified", nonce=None, body_bytes=None,
                 status_ok=False, reported=None, quarantine=None, endpoint="batch"):
        assert level in LEVELS, level
        self.reader, self.http_status, self.code, self.field = reader, http_status, code, field
        self.level, self.nonce, self.body_bytes = level, nonce, body_bytes
        self.status_ok, self.quarantine, self.endpoint = status_ok, quarantine, endpoint
        self.reported = reported or {}


def refusal_faults(before, after, want):
    """Every way `after` differs from `before` beyond the refusal's own bookkeeping
    (see the module's note); [] when it is exactly that."""
    faults = []
    diff = changes(before, after)

    def only_added(table, n):
        d = diff.pop(table, None)
        if d is None:
            if n:
                faults.append("%s: no new row (want %d)" % (table, n))
            return []
        if d["removed"] or d["changed"]:
            faults.append("%s: rows removed %r or changed %r" % (table, d["removed"], d["changed"]))
        if len(d["added"]) != n:
            faults.append("%s: %d new rows, want %d: %r" % (table, len(d["added"]), n, d["added"]))
        return list(d["added"].values())

    verified = want.level != "unverified"
    rows = only_added("refusals", 1)
    t = None
    if len(rows) == 1:
        r = rows[0]
        t = r["t"]
        got = (r["reader_id"], r["endpoint"], r["http_status"], r["code"], r["field"], r["verified"])
        exp = (want.reader[:64], want.endpoint, want.http_status, want.code, want.field, 1 if verified else 0)
        if got != exp:
            faults.append("refusals row %r, want %r" % (got, exp))
        if not r["detail"]:
            faults.append("refusals row without a detail")
    nonce_rows = only_added("nonces", 1 if want.level in ("stale", "verified") else 0)
    if nonce_rows and want.nonce is not None and (nonce_rows[0]["reader_id"], nonce_rows[0]["nonce"]) != \
            (want.reader, want.nonce):
        faults.append("nonces row %r, want the request's nonce %r" % (nonce_rows[0], want.nonce))
    batch_rows = only_added("batches", 1 if want.level == "verified" and want.endpoint == "batch" else 0)
    reader_before = before.get("readers", {}).get((want.reader,))
    if batch_rows:
        b = batch_rows[0]
        exp = {"reader_id": want.reader, "t": t, "outcome": "refused", "http_status": want.http_status,
               "code": want.code, "field": want.field, "ack": reader_before and reader_before["acked_seq"],
               "first_seq": None, "last_seq": None, "count": None, "fresh": None, "gross": None,
               "discount": None, "quarantined": None}
        if want.body_bytes is not None:
            exp["bytes"] = want.body_bytes
        wrong = {k: (b.get(k), v) for k, v in exp.items() if b.get(k) != v}
        if wrong:
            faults.append("batches row: (got, want) %r" % wrong)
    q_rows = only_added("quarantine", 1 if want.quarantine else 0)
    if q_rows:
        q = q_rows[0]
        seq, h = want.quarantine
        exp = {"reader_id": want.reader, "seq": seq, "hash": h, "t": t, "code": want.code, "field": want.field}
        wrong = {k: (q.get(k), v) for k, v in exp.items() if q.get(k) != v}
        if wrong:
            faults.append("quarantine note: (got, want) %r" % wrong)
        if not q.get("detail"):
            faults.append("quarantine note without a detail")
        extra = {k: v for k, v in q.items() if k not in ("reader_id", "seq", "hash", "t", "code", "field", "detail")
                 and v is not None}
        if extra:
            faults.append("quarantine note holds more than a note: %r" % extra)
    d = diff.pop("readers", None)
    if d is not None:
        if d["added"] or d["removed"]:
            faults.append("readers added %r or removed %r" % (d["added"], d["removed"]))
        for key, cols in d["changed"].items():
            if key != (want.reader,) or want.level != "verified":
                faults.append("reader %r changed: %r" % (key, cols))
                continue
            allowed = REFUSAL_COLUMNS + (STATUS_COLUMNS if want.status_ok else ())
            wrong = {c: v for c, v in cols.items() if c not in allowed}
            if wrong:
                faults.append("reader %s: columns it may not change changed: %r" % (want.reader, wrong))
    if want.level == "verified":
        row = after.get("readers", {}).get((want.reader,), {})
        got = (row.get("last_refusal_at"), row.get("last_refusal_code"), row.get("last_contact"))
        if got != (t, want.code, t):
            faults.append("reader %s: last_refusal_at, _code, last_contact %r, want %r" % (want.reader, got,
                                                                                         (t, want.code, t)))
        if want.status_ok:
            wrong = {c: (row.get(c), v) for c, v in want.reported.items() if row.get(c) != v}
            if wrong:
                faults.append("reader %s: the refused batch's status not kept: (got, want) %r" % (want.reader, wrong))
    for table, d in diff.items():
        faults.append("%s changed: added %r, removed %r, changed %r" % (table, d["added"], d["removed"],
                                                                         d["changed"]))
    return faults


def assert_refusal_only(before, after, want):
    faults = refusal_faults(before, after, want)
    assert not faults, "beyond the refusal's bookkeeping:\n  " + "\n  ".join(faults)
