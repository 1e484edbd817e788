"""Customer care's pages on bench/bigshop.py's shop: the customer's story and the search.

1. The story (backend/care/story.story: the customer, their totals and the first 50
   events, what GET /customers/<id> shows) of the busiest customer, with the receipts the
   shop gave them; then of the same customer with 2,000 more receipts (a customer with
   2,000 receipts: bigshop's busiest make some 140 in 13 months), added inside a
   transaction that is rolled back. Target: at most 100 ms.
2. The search (backend/care/search.find) among all the shop's customers: a whole card, the
   last 4 digits with the surname, a common surname, a full name with an apostrophe, a
   name nobody has (every name looked at), an e-mail, a phone. Target: at most 50 ms each.

Baseline, same run: a primary-key lookup of one customer row. Server time only: the
functions the pages call, on a warm page cache as a running server has it.

    python bench/care_bench.py [--customers 150000] [--runs 15]
"""
import argparse

import bigshop  # beside this script: bench/ is the script's folder, first on the path
from loyalty.backend import db as dbmod
from loyalty.backend.care import search, story

STORY_TARGET = 100  # ms
SEARCH_TARGET = 50  # ms
RECEIPTS = 2000


def busiest(db):
    """(customer id, card, receipts) of the customer with the most receipts."""
    return db.execute("SELECT c.customer_id, r.card, count(*) AS n FROM receipts r JOIN cards c ON c.card = r.card "
                      "WHERE c.customer_id IS NOT NULL GROUP BY r.card ORDER BY n DESC LIMIT 1").fetchone()


def _add_receipts(db, card, n):
    """n sales of `card` (a reader of its own, one an hour back from the newest) inside
    the caller's transaction."""
    store, newest = db.execute("SELECT store_id, max(t) FROM receipts WHERE card = ?", [card]).fetchone()
    db.conn.executemany(
        "INSERT INTO receipts(reader_id, seq, store_id, kind, t, day, receipt, card, tier, gross, discount, rules, "
        "hash, record, lines, folded_t, audit) VALUES('BENCH', ?, ?, 'sale', ?, '2025-01-01', ?, ?, 0, 1500, 75, 1, "
        "'h', NULL, 8, ?, 'ok')", [(i + 1, store, newest - 3600 * i, "B-%d" % i, card, newest) for i in range(n)])


def queries(db, cid):
    """The searches: (what, query), from a customer of the shop."""
    name, contact = db.execute("SELECT name, contact FROM customers WHERE id = ?", [cid]).fetchone()
    card = db.execute("SELECT card FROM cards WHERE customer_id = ? LIMIT 1", [cid]).fetchone()[0]
    email = db.execute("SELECT contact FROM customers WHERE contact LIKE '%@%' LIMIT 1").fetchone()[0]
    phone = db.execute("SELECT contact FROM customers WHERE contact LIKE '+%' LIMIT 1").fetchone()[0]
    apostrophe = db.execute("SELECT name FROM customers WHERE name LIKE '%''%' LIMIT 1").fetchone()
    surname = name.split()[-1]
    return [("whole card", card), ("last 4 + surname", "%s %s" % (card[-4:], surname)),
            ("surname (many found)", surname), ("name with an apostrophe", apostrophe[0] if apostrophe else name),
            ("a name nobody has", "Zebedeo Quintavalle"), ("e-mail", email),
            ("phone", "%s %s %s" % (phone[:3], phone[3:6], phone[6:]))]


def measure(customers=150_000, months=bigshop.MONTHS, runs=15):
    from backend_bench import _median_ms  # here: backend_bench imports this module
    path = bigshop.build(customers, months, log=lambda s: print(s, flush=True))
    db = dbmod.connect(path)
    out = {"customers": db.execute("SELECT count(*) FROM customers").fetchone()[0]}
    cid, card, n = busiest(db)
    out["busiest"] = (cid, n)
    out["baseline"] = _median_ms(lambda: db.execute("SELECT * FROM customers WHERE id = ?", [cid]).fetchone(), runs)
    page = story.story(db, cid)  # warm, as a running server is
    out["events"] = len(page["events"])
    out["story"] = _median_ms(lambda: story.story(db, cid), runs)
    db.execute("BEGIN")
    try:
        _add_receipts(db, card, RECEIPTS)
        out["receipts_2000"] = story.story(db, cid)["totals"]["receipts"]
        out["story_2000"] = _median_ms(lambda: story.story(db, cid), runs)
    finally:
        db.conn.rollback()
    out["searches"] = []
    for what, q in queries(db, cid):
        found = len(search.find(db, q)["results"])
        out["searches"].append((what, q, found, _median_ms(lambda: search.find(db, q), runs)))
    db.conn.close()
    return out


def report(m):
    base = m["baseline"][0]
    print("customer care: %d customers; median / max of the runs" % m["customers"])
    print("  baseline, one customer row by primary key:     %7.2f ms / %7.2f ms" % m["baseline"])
    print("  story of the busiest (customer %d, %d receipts): %7.2f ms / %7.2f ms  (%.0f x baseline)" % (
        m["busiest"] + m["story"] + (m["story"][0] / base,)))
    print("  the same with %d receipts (2,000 added):       %7.2f ms / %7.2f ms  (%.0f x baseline)" % (
        (m["receipts_2000"],) + m["story_2000"] + (m["story_2000"][0] / base,)))
    worst = max(m["story"][0], m["story_2000"][0])
    print("  target at most %d ms: %.1f ms, %s" % (STORY_TARGET, worst, "ok" if worst <= STORY_TARGET else "MISSED"))
    worst = 0
    for what, q, found, t in m["searches"]:
        print("  search, %-24s %-28r %2d found: %7.2f ms / %7.2f ms  (%.0f x baseline)" % (
            what + ":", q, found, t[0], t[1], t[0] / base))
        worst = max(worst, t[0])
    print("  target at most %d ms: %.1f ms, %s" % (SEARCH_TARGET, worst, "ok" if worst <= SEARCH_TARGET else "MISSED"))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--customers", type=int, default=150_000,
                    help="customers of bench/bigshop.py's shop (the issue's full size: 500000)")
    ap.add_argument("--months", type=int, default=bigshop.MONTHS)
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args(argv)
    report(measure(args.customers, args.months, args.runs))


if __name__ == "__main__":
    main()
