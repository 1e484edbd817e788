"""The bench's shop (bench/bigshop.py), built tiny: 2,000 customers over 13 months.

The bounds are the issue's words made numbers, picked by hand, not read off the output:
half the customers shop at most twice a year, a few weekly; returns 1-2 % of sales;
profiling consent about 35 %, marketing about 25 %, only at 14 or more; what the fold
took out of receipts plus what they still hold adds up to their gross.
"""
import hashlib
import importlib.util
import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from loyalty.backend import db as dbmod
from loyalty.backend.customers.consents import consenting_sql
from loyalty.backend.privacy import retention
from loyalty.backend.privacy.fold import line_totals
from loyalty.protocol.recordcheck import check_content

NOW = 1765000000  # 2025-12-06 06:46 in Rome, before the stores open
CUSTOMERS = 2000
CATEGORIES = {"ortofrutta", "latticini", "macelleria", "salumi e formaggi", "pescheria", "panetteria",
              "pasta e riso", "dispensa", "conserve e sughi", "colazione e dolci", "bevande", "vini e alcolici",
              "surgelati", "gastronomia", "uova", "igiene", "casa", "infanzia", "animali", "bazar"}


def _bigshop():
    spec = importlib.util.spec_from_file_location(
        "bigshop", Path(__file__).resolve().parent.parent / "bench" / "bigshop.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    path = _bigshop().build(CUSTOMERS, 13, now=NOW, seed=7, log=lambda s: None,
                            folder=tmp_path_factory.mktemp("bigshop"))
    db = dbmod.connect(path)
    yield db
    db.conn.close()


def test_thirteen_months_ending_now(shop):
    first, last, last_t = shop.execute("SELECT min(day), max(day), max(t) FROM receipts").fetchone()
    assert first <= "2024-11-06"  # 13 months before 2025-12-06
    assert last == "2025-12-05"  # the last day the stores were open
    assert NOW - 86400 < last_t < NOW


def test_visits_skewed_as_real_shoppers(shop):
    year_ago = NOW - 365 * 86400
    visits = Counter(dict(shop.execute(
        "SELECT c.customer_id, count(*) FROM receipts r JOIN cards c ON c.card = r.card "
        "WHERE r.kind = 'sale' AND r.t >= ? GROUP BY c.customer_id", [year_ago]).fetchall()))
    n = [visits[i] for i in range(1, CUSTOMERS + 1)]  # customers who did not come count 0
    at_most_twice = sum(v <= 2 for v in n) / CUSTOMERS
    weekly = sum(v >= 52 for v in n)
    assert 0.40 <= at_most_twice <= 0.65
    assert 0.01 * CUSTOMERS <= weekly <= 0.08 * CUSTOMERS
    # visits mostly at the home store
    home = shop.execute("SELECT avg(r.store_id = u.store_id) FROM receipts r JOIN cards c ON c.card = r.card "
                        "JOIN customers u ON u.id = c.customer_id").fetchone()[0]
    assert 0.8 <= home <= 0.95


def test_receipts_have_real_lines(shop):
    records = [json.loads(t) for t, in shop.execute("SELECT record FROM receipts WHERE kind = 'sale' "
                                                     "AND record IS NOT NULL")]
    assert len(records) > 2000
    sizes = [len(r["lines"]) for r in records]
    assert 1 == min(sizes) and max(sizes) <= 40 and 8 <= sum(sizes) / len(sizes) <= 12
    seen = {line["cat"] for r in records for line in r["lines"]}
    assert seen == CATEGORIES
    folded = {c for c, in shop.execute("SELECT DISTINCT category FROM product_day_totals")}
    assert folded == CATEGORIES
    assert 0.2 <= sum(bool(r["disc"]) for r in records) / len(records) <= 0.9  # flyer promotions
    # the lines' count stays on every receipt, folded or not
    assert shop.execute("SELECT count(*) FROM receipts WHERE lines IS NULL OR lines < 1").fetchone()[0] == 0


def test_every_stored_record_passes_the_schema(shop):
    n = 0
    for text, kind, gross, discount, lines in shop.execute(
            "SELECT record, kind, gross, discount, lines FROM receipts WHERE record IS NOT NULL"):
        rec = check_content(json.loads(text))
        assert (rec["kind"], rec["gross"], rec["discount"], len(rec["lines"])) == (kind, gross, discount, lines)
        n += 1
    assert n > 3000


def test_returns_name_a_sale_of_the_same_reader(shop):
    sales, returns = shop.execute("SELECT sum(kind = 'sale'), sum(kind = 'return') FROM receipts").fetchone()
    assert 0.01 <= returns / sales <= 0.02
    pairs = shop.execute(
        "SELECT r.record, s.record, r.t - s.t, r.gross, s.gross, r.lines, s.lines, "
        "(SELECT customer_id FROM cards WHERE card = r.card), (SELECT customer_id FROM cards WHERE card = s.card) "
        "FROM receipts r LEFT JOIN receipts s ON s.reader_id = r.reader_id AND s.kind = 'sale' "
        "AND s.seq = json_extract(r.record, '$.ref') WHERE r.kind = 'return' AND r.record IS NOT NULL").fetchall()
    both = 0
    for ret, sale, dt, r_gross, s_gross, r_lines, s_lines, r_who, s_who in pairs:
        assert sale is not None or s_gross is not None, "a return's ref names no sale of its reader"
        assert 0 < dt <= 15 * 86400 and 0 < -r_gross <= s_gross and r_lines == s_lines and r_who == s_who
        if sale is not None:
            ret, sale = json.loads(ret), json.loads(sale)
            assert ret["lines"] == sale["lines"]
            assert all(back <= line["qty"] for back, line in zip(ret["returning"], sale["lines"]))
            both += 1
    assert len(pairs) > 100 and both > 50


def test_consents_mixed_and_only_from_fourteen(shop):
    def share(purpose):
        return shop.execute("SELECT count(*) FROM (%s)" % consenting_sql(purpose)).fetchone()[0] / CUSTOMERS
    assert share("scheme") == 1
    assert 0.30 <= share("profiling") <= 0.40
    assert 0.20 <= share("marketing") <= 0.30
    assert shop.execute("SELECT count(*) FROM consents c JOIN customers u ON u.id = c.customer_id "
                        "WHERE u.age_ok = 0 AND c.given = 1 AND c.purpose != 'scheme'").fetchone()[0] == 0
    assert shop.execute("SELECT count(*) FROM customers WHERE age_ok = 0").fetchone()[0] > 20
    withdrawn = shop.execute("SELECT count(*) FROM consents c WHERE c.given = 0 AND EXISTS (SELECT 1 FROM consents o "
                             "WHERE o.customer_id = c.customer_id AND o.purpose = c.purpose AND o.given = 1 "
                             "AND o.id < c.id)").fetchone()[0]
    assert withdrawn > 10
    assert shop.execute("SELECT count(*) FROM consents WHERE notice_version != 1 OR t > ?", [NOW]).fetchone()[0] == 0
    assert shop.execute("SELECT count(*) FROM notices WHERE version = 1").fetchone()[0] >= 1


def test_lines_kept_only_as_minimisation_leaves_them(shop):
    window = NOW - 30 * 86400
    assert shop.execute("SELECT count(*) FROM receipts WHERE (record IS NULL) != (folded_t IS NOT NULL)"
                        ).fetchone()[0] == 0
    assert shop.execute("SELECT count(*) FROM receipts WHERE folded_t IS NOT NULL AND (t > ? OR folded_t > ?)",
                        [window, NOW]).fetchone()[0] == 0
    kept_old = shop.execute("SELECT count(*), sum(c.customer_id IN (%s)) FROM receipts r JOIN cards c ON c.card = r.card "
                            "WHERE r.record IS NOT NULL AND r.t <= ?" % consenting_sql("profiling"),
                            [window]).fetchone()
    assert kept_old[0] > 1000 and kept_old[0] == kept_old[1]  # past the window: only consenting customers'
    assert shop.execute("SELECT count(*) FROM receipts WHERE record IS NOT NULL AND t < ?",
                        [NOW - 365 * 86400]).fetchone()[0] == 0  # profiling data: at most 12 months


def test_product_totals_and_records_add_up_to_the_receipts(shop):
    want = {(s, d): (g, k) for s, d, g, k in shop.execute(
        "SELECT store_id, day, sum(gross), sum(discount) FROM receipts GROUP BY store_id, day")}
    days = {(s, d): (g, k) for s, d, g, k in shop.execute("SELECT store_id, day, gross, discount FROM day_totals")}
    assert days == want
    have = defaultdict(lambda: [0, 0])
    for s, d, g, k in shop.execute("SELECT store_id, day, gross, discount FROM product_day_totals"):
        have[(s, d)][0] += g
        have[(s, d)][1] += k
    for s, d, kind, text in shop.execute("SELECT store_id, day, kind, record FROM receipts WHERE record IS NOT NULL"):
        for _, _, _, cents, disc, _ in line_totals(kind, json.loads(text)):
            have[(s, d)][0] += cents
            have[(s, d)][1] += disc
    assert {key: tuple(v) for key, v in have.items()} == want
    assert len(want) > 10000  # 20,000 receipts over 100 stores and some 390 open days: 40 % of them


def test_same_seed_same_shop(tmp_path):
    def digest(folder, seed):
        path = _bigshop().build(300, 13, now=NOW, seed=seed, log=lambda s: None, folder=folder)
        db = dbmod.connect(path)
        try:
            h = hashlib.sha256()
            for table in ("receipts", "customers", "consents", "cards", "product_day_totals"):
                for row in db.execute("SELECT * FROM %s ORDER BY rowid" % table):
                    h.update(repr(row).encode())
            return h.hexdigest()
        finally:
            db.conn.close()
    assert digest(tmp_path / "a", 7) == digest(tmp_path / "b", 7)
    assert digest(tmp_path / "c", 8) != digest(tmp_path / "a", 7)


def test_the_daily_job_finds_nothing_left_to_fold(tmp_path):
    path = _bigshop().build(300, 13, now=NOW, seed=7, log=lambda s: None, folder=tmp_path)
    db = dbmod.connect(path)
    try:
        kept = db.execute("SELECT count(*) FROM receipts WHERE record IS NOT NULL").fetchone()[0]
        removed = retention.run(db, NOW)
        assert (removed["fold_due"], removed["profiling"]) == (0, 0)
        assert db.execute("SELECT count(*) FROM receipts WHERE record IS NOT NULL").fetchone()[0] == kept > 100
    finally:
        db.conn.close()
