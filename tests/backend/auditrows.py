"""Helpers for the audit's tests (no tests here): send a batch that must be accepted, and
read every receipt's verdict once the auditor has audited what awaits."""
from loyalty.backend import auditor
from loyalty.backend.audit import RulesBook


def send(r, records):
    resp, _ = r.send(records)
    assert resp.status_code == 200, resp.data  # a mismatch is flagged, never refused
    return resp


def refused(r, records, field):
    """Send a batch the schema refuses (docs/protocol.md section 3): refused with
    batch.record at `field`, so none of it reaches the audit."""
    resp, _ = r.send(records)
    assert resp.status_code == 400, resp.data
    assert (resp.json["refused"]["code"], resp.json["refused"]["field"]) == ("batch.record", field), resp.data
    return resp


def audits(db, chunk, columns="seq, audit, audit_detail"):
    """Every receipt's (columns), in seq order, once the auditor audited in chunks of `chunk`."""
    book = RulesBook()
    while auditor.audit_pending(db, book, limit=chunk):
        pass
    return db.execute("SELECT %s FROM receipts ORDER BY seq" % columns).fetchall()
