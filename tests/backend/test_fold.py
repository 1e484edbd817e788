"""The fold (backend/privacy/fold.py): a receipt's lines leave it for the product totals,
worked by hand on a sale, a partial return of it and a cancelled quote."""
import json

from loyalty.backend.db import transaction
from loyalty.backend.privacy import fold
from loyalty.protocol.canonical import decode

LINES = [{"sku": "8001", "cat": "latte", "qty": 2, "price": 150},
         {"sku": "8002", "cat": "pane", "qty": 1, "price": 300}]


def _store(reader, records):
    r, _ = reader.send(records)
    assert r.status_code == 200, r.get_json()


def _totals(db):
    return {(s, d, k, c): (q, g, x, n) for s, d, k, c, q, g, x, n in db.execute(
        "SELECT store_id, day, sku, category, qty, gross, discount, lines FROM product_day_totals")}


def test_a_sale_its_return_and_a_cancelled_quote_fold_into_day_totals_by_hand(db, signed_reader):
    reader = signed_reader("R1", "S1", tz="UTC")
    t = 1767268800  # 2026-01-01 12:00 UTC
    disc = [{"cents": 15, "line": 0, "rule": "tier:gold"}, {"cents": 30, "line": 1, "rule": "tier:gold"}]
    sale = reader.record("sale", t=t, lines=LINES, gross=600, discount=45, disc=disc)
    ret = reader.record("return", t=t + 60, lines=LINES, gross=-150, discount=-8,
                        disc=[{"cents": -8, "line": 0, "rule": "tier:gold"}],
                        ref=1, returned=[0, 0], returning=[1, 0], receipt="T-1", quote="")
    quote = reader.record("void", t=t + 120, lines=LINES, gross=0, discount=0)
    _store(reader, [sale, ret, quote])
    assert db.execute("SELECT lines FROM receipts ORDER BY seq").fetchall() == [(2,), (2,), (2,)]
    db.execute("UPDATE receipts SET audit = 'ok', audit_detail = 'quoted before promotion LATTE10 ended'")
    with transaction(db):
        assert fold.fold_where(db, "r.reader_id = ?", ["R1"], now=t + 999) == 3
    # the sale: 2 x 1.50 and 1 x 3.00, discount 0.15 + 0.30; the return takes one unit of
    # the first line back (1.50, discount -0.08); the cancelled quote adds nothing
    assert _totals(db) == {("S1", "2026-01-01", "8001", "latte"): (1, 150, 7, 1),
                           ("S1", "2026-01-01", "8002", "pane"): (1, 300, 30, 1)}
    rows = db.execute("SELECT record, audit_detail, folded_t, lines, gross, discount FROM receipts "
                      "ORDER BY seq").fetchall()
    assert rows == [(None, None, t + 999, 2, 600, 45), (None, None, t + 999, 2, -150, -8),
                    (None, None, t + 999, 2, 0, 0)]
    # a second fold finds nothing left to fold and changes no total
    with transaction(db):
        assert fold.fold_where(db, "1", [], now=t + 2000) == 0
    assert sum(v[0] for v in _totals(db).values()) == 2


def test_the_fold_goes_in_chunks_and_stops_at_its_limit(db, signed_reader, monkeypatch):
    monkeypatch.setattr(fold, "CHUNK", 3)
    reader = signed_reader("R1", "S1", tz="UTC")
    records = [reader.record("sale", t=1767268800 + i, lines=LINES[:1], gross=300) for i in range(8)]
    _store(reader, records)
    with transaction(db):
        assert fold.fold_where(db, "1", [], now=1, limit=5) == 5
    assert db.execute("SELECT count(*) FROM receipts WHERE record IS NOT NULL").fetchone()[0] == 3
    with transaction(db):
        assert fold.fold_where(db, "1", [], now=2) == 3
    assert _totals(db) == {("S1", "2026-01-01", "8001", "latte"): (16, 2400, 0, 8)}


def test_a_return_still_finds_its_folded_sale_by_its_count_of_lines(db, signed_reader):
    reader = signed_reader("R1", "S1", tz="UTC")
    t = 1767268800
    _store(reader, [reader.record("sale", t=t, lines=LINES, gross=600)])
    with transaction(db):
        fold.fold_where(db, "1", [], now=t)
    ret = reader.record("return", t=t + 60, lines=LINES, gross=-300, ref=1, returned=[0, 0],
                        returning=[0, 1], receipt="T-1", quote="")
    _store(reader, [ret])
    stored = db.execute("SELECT kind, record FROM receipts WHERE seq=2").fetchone()
    assert stored[0] == "return" and json.loads(stored[1])["ref"] == 1 == decode(ret)["ref"]
