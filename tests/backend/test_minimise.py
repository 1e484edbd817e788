"""Which receipts give up their lines, and when (backend/privacy/minimise.py), worked by
hand; the audit of a return whose sale was folded; migration 10 on a schema 9 database."""
import json

from loyalty.backend import auditor, db as dbmod
from loyalty.backend.db import transaction
from loyalty.backend.privacy import minimise

from customerrows import card, consent, customer

NOW = 1767268800          # 2026-01-01 12:00 UTC
EDGE = NOW - 30 * 86400   # 2025-12-02 12:00 UTC: the return window of a receipt at EDGE closes at NOW
LINE = [{"sku": "8001", "cat": "latte", "qty": 2, "price": 150}]


def receipt(db, seq, card_number, t, audit="ok", reader="R1", store="S1", kind="sale"):
    """A stored receipt with one line (2 x 1.50), as ingestion and the audit leave it."""
    rec = {"kind": kind, "seq": seq, "card": card_number, "t": t, "lines": LINE, "gross": 300, "discount": 0}
    db.execute("INSERT INTO receipts(reader_id, seq, store_id, kind, t, day, receipt, card, tier, gross, discount, "
               "rules, hash, record, audit, lines) VALUES(?, ?, ?, ?, ?, '2025-12-01', ?, ?, 0, 300, 0, 0, ?, ?, ?, 1)",
               [reader, seq, store, kind, t, "T-%d" % seq, card_number, "h%d" % seq, json.dumps(rec), audit])


def holding(db):
    """The seqs of the receipts still holding their lines."""
    return {s for (s,) in db.execute("SELECT seq FROM receipts WHERE record IS NOT NULL")}


def test_fold_due_folds_audited_receipts_past_the_window_without_profiling_consent(db):
    with transaction(db):
        yes = customer(db, "C-yes")
        card(db, "6001000000000001", yes)
        consent(db, yes, "profiling", 1, t=NOW - 9999)
        went = customer(db, "C-went")
        card(db, "6001000000000002", went)
        consent(db, went, "profiling", 1, t=NOW - 9999)
        consent(db, went, "profiling", 0, t=NOW - 999)     # withdrawn: the newest row is in force
        other = customer(db, "C-other")
        card(db, "6001000000000003", other)
        consent(db, other, "marketing", 1, t=NOW - 9999)   # marketing is not profiling
        card(db, "6001000000000004", None)                 # in the directory, nobody's
        receipt(db, 1, "9999", EDGE - 1)                   # not in the directory: nobody's
        receipt(db, 2, "6001000000000001", EDGE - 1)       # consent in force: stays
        receipt(db, 3, "006001000000000001", EDGE - 1)     # the same card with leading zeros: stays
        receipt(db, 4, "6001000000000002", EDGE - 1)       # withdrawn
        receipt(db, 5, "6001000000000003", EDGE - 1)       # marketing only
        receipt(db, 6, "6001000000000004", EDGE - 1)       # nobody's card
        receipt(db, 7, "9999", EDGE - 1, audit=None)       # not audited yet: the audit reads it
        receipt(db, 8, "9999", EDGE - 1, audit="mismatch")  # a person must see it
        receipt(db, 9, "9999", EDGE)                       # exactly at the edge: the window closes after it
        receipt(db, 10, "9999", EDGE + 1)                  # inside the window
        receipt(db, 11, "9999", EDGE - 86400 * 40)         # long past
    assert minimise.fold_due(db, NOW, 30) == 5
    assert holding(db) == {2, 3, 7, 8, 9, 10}
    # five sales of 2 x 1.50 each into one product total
    assert db.execute("SELECT store_id, day, sku, category, qty, gross, discount, lines FROM product_day_totals"
                      ).fetchall() == [("S1", "2025-12-01", "8001", "latte", 10, 1500, 0, 5)]
    assert db.execute("SELECT count(*) FROM receipts WHERE folded_t = ?", [NOW]).fetchone()[0] == 5
    # one second later the edge's receipt is due; a run at the same time folds nothing more
    assert minimise.fold_due(db, NOW, 30) == 0
    assert minimise.fold_due(db, NOW + 1, 30) == 1
    assert holding(db) == {2, 3, 7, 8, 10}


def test_fold_due_stops_at_its_limit_across_days(db):
    with transaction(db):
        for i in range(6):
            receipt(db, i + 1, "9999", EDGE - 1 - i * 86400)
    assert minimise.fold_due(db, NOW, 30, limit=4) == 4
    assert len(holding(db)) == 2
    assert minimise.fold_due(db, NOW, 30) == 2


def test_fold_withdrawn_folds_one_customers_due_receipts_at_once(db):
    with transaction(db):
        c = customer(db, "C-1")
        card(db, "6001000000000001", c)
        card(db, "42", c)
        consent(db, c, "profiling", 1, t=NOW - 9999)
        receipt(db, 1, "6001000000000001", EDGE - 5)
        receipt(db, 2, "0042", EDGE - 5)                   # their other card, with leading zeros
        receipt(db, 3, "6001000000000001", EDGE + 5)       # window still open
        receipt(db, 4, "6001000000000001", EDGE - 5, audit="mismatch")
        receipt(db, 5, "7777", EDGE - 5)                   # somebody else's: not this call's
    with transaction(db):
        assert minimise.fold_withdrawn(db, c, NOW, 30) == 0  # consent still in force
    with transaction(db):
        consent(db, c, "profiling", 0, t=NOW)
        assert minimise.fold_withdrawn(db, c, NOW, 30) == 2
    assert holding(db) == {3, 4, 5}


def test_quarantine_records_go_once_judged_and_past_the_window_or_after_the_profiling_period(db):
    profiling_before = NOW - 365 * 86400
    with transaction(db):
        db.execute("INSERT INTO stores(id, name, tz) VALUES('S1', 'S1', 'UTC')")
        db.execute("INSERT INTO readers(id, store_id, key_hex, created) VALUES('R1', 'S1', '00', 0)")
        for seq, t, judged in ((1, EDGE - 1, NOW - 10), (2, EDGE + 1, NOW - 10), (3, EDGE - 1, None),
                               (4, profiling_before - 1, None), (5, profiling_before, None)):
            db.execute("INSERT INTO quarantine(reader_id, seq, hash, t, acked_t, record, judged_t, judgement) "
                       "VALUES('R1', ?, ?, ?, ?, ?, ?, ?)",
                       [seq, "h%d" % seq, t, t, json.dumps({"card": "6001000000000001", "lines": LINE}), judged,
                        judged and "reader_fault"])
    assert minimise.clear_quarantine(db, NOW, 30, profiling_before) == 2
    assert [r for r in db.execute("SELECT seq, record IS NULL, hash FROM quarantine ORDER BY seq")] == [
        (1, 1, "h1"), (2, 0, "h2"), (3, 0, "h3"), (4, 1, "h4"), (5, 0, "h5")]


def _sale_and_return(reader, t):
    lines = [{"sku": "8001", "cat": "latte", "qty": 2, "price": 150}]
    sale = reader.record("sale", t=t, card="6001000000000009", tier=0, lines=lines, gross=300)
    ret = reader.record("return", t=t + 3600, card="6001000000000009", tier=0, lines=lines, gross=-150,
                        ref=1, returned=[0, ], returning=[1], receipt="T-1", quote="")
    return sale, ret


def test_a_return_of_a_folded_sale_is_a_mismatch_that_says_so(db, signed_reader):
    reader = signed_reader("R1", "S1", tz="UTC")
    sale, ret = _sale_and_return(reader, NOW - 40 * 86400)
    r, _ = reader.send([sale])
    assert r.status_code == 200
    assert auditor.audit_all(db) == {"ok": 1, "mismatch": 0}
    assert minimise.fold_due(db, NOW, 30) == 1
    r, _ = reader.send([ret])
    assert r.status_code == 200
    assert auditor.audit_all(db) == {"ok": 0, "mismatch": 1}
    detail = db.execute("SELECT audit_detail FROM receipts WHERE seq = 2").fetchone()[0]
    assert "return of sale 1, whose lines were folded on 2026-01-01" in detail
    assert "cannot be checked" in detail


def test_a_return_after_a_folded_return_of_the_same_card_cannot_be_checked(db, signed_reader):
    reader = signed_reader("R1", "S1", tz="UTC")
    t = NOW - 40 * 86400
    sale, ret = _sale_and_return(reader, t)
    ret2 = reader.record("return", t=t + 7200, card="6001000000000009", tier=0, lines=LINE, gross=-150,
                         ref=1, returned=[1], returning=[1], receipt="T-1", quote="")
    r, _ = reader.send([sale, ret])
    assert r.status_code == 200
    assert auditor.audit_all(db) == {"ok": 2, "mismatch": 0}
    # the sale is kept (as a mismatch's would be), its first return folded
    db.execute("UPDATE receipts SET audit = 'mismatch' WHERE seq = 1")
    assert minimise.fold_due(db, NOW, 30) == 1
    r, _ = reader.send([ret2])
    assert auditor.audit_all(db) == {"ok": 0, "mismatch": 1}
    detail = db.execute("SELECT audit_detail FROM receipts WHERE seq = 3").fetchone()[0]
    assert "an earlier return or void of card 6001000000000009 was folded" in detail


def test_migration_10_folds_what_was_due_in_a_schema_9_database(tmp_path):
    db = dbmod.connect(tmp_path / "old.db")
    dbmod.migrate(db, to=9)
    import time
    now = int(time.time())
    with transaction(db):
        receipt(db, 1, "9999", now - 31 * 86400)
        receipt(db, 2, "9999", now - 29 * 86400)                 # window still open
        receipt(db, 3, "9999", now - 31 * 86400, audit="mismatch")
        receipt(db, 4, "9999", now - 31 * 86400, audit=None)
        receipt(db, 5, "9999", now - 400 * 86400)
    assert dbmod.migrate(db) == len(dbmod.MIGRATIONS)
    assert holding(db) == {2, 3, 4}
    assert db.execute("SELECT qty, gross, lines FROM product_day_totals").fetchall() == [(4, 600, 2)]
    plan = db.execute("EXPLAIN QUERY PLAN SELECT rowid FROM receipts r WHERE r.record IS NOT NULL AND ("
                      + minimise._DUE + ")", [0, now]).fetchall()
    assert "receipts_unfolded" in plan[0][3]
    db.conn.close()


def test_a_schema_8_database_comes_up_with_its_receipts_counted_and_folded(tmp_path):
    db = dbmod.connect(tmp_path / "v8.db")
    dbmod.migrate(db, to=8)
    import time
    now = int(time.time())
    lines = [{"sku": "8001", "cat": "latte", "qty": 2, "price": 150}, {"sku": "8002", "cat": "pane", "qty": 1, "price": 90}]
    with transaction(db):  # as ingestion stored them before schema 9: no count of lines
        for seq, t in ((1, now - 40 * 86400), (2, now - 5 * 86400)):
            rec = {"kind": "sale", "seq": seq, "card": "42", "t": t, "lines": lines, "gross": 390, "discount": 0}
            db.execute("INSERT INTO receipts(reader_id, seq, store_id, kind, t, day, receipt, card, tier, gross, "
                       "discount, rules, hash, record, audit) VALUES('R1', ?, 'S1', 'sale', ?, '2025-12-01', ?, "
                       "'42', 0, 390, 0, 0, ?, ?, 'ok')", [seq, t, "T-%d" % seq, "h%d" % seq, json.dumps(rec)])
    assert dbmod.migrate(db) == len(dbmod.MIGRATIONS)
    # both receipts know they had two lines; the one past the window gave them up
    assert db.execute("SELECT seq, lines, record IS NULL FROM receipts ORDER BY seq").fetchall() == [(1, 2, 1), (2, 2, 0)]
    assert sorted(db.execute("SELECT sku, qty, gross FROM product_day_totals").fetchall()) == [
        ("8001", 2, 300), ("8002", 1, 90)]
    db.conn.close()
