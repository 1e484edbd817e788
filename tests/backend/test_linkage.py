"""After the fold, a customer without profiling consent cannot be linked to any line.

Shoppers A (never consented) and W (consented, then withdrew) and P (profiling consent in
force) buy at two stores over several days, with returns, through the real sync API and
audit; then the daily fold (minimise.fold_due). The tables and columns come from the live
schema (sqlite_master, pragma table_info), so a table added later is searched too:

  * line tables: every table with a column equal to one of A's (or W's) SKUs or categories;
  * person tables: every table with a column equal to their card number (as sent or as the
    directory keeps it), customer id or pseudonym, restricted to those rows;
  * equality: every column of a line table (on its rows holding their SKUs) against every
    column of a person table, except the fold's own dimensions store_id and day, which the
    product totals share with receipts by design (a store's day is not a person). Small
    numbers (below 100,000: quantities, cents, tiers, counters) are left out: they coincide
    by nature; what could link is an identifier: a text, a hash, an id or a time;
  * time: any two epoch-second columns within +-1 s, at the same store or reader;
  * text: every text column of the person rows, by json_extract(col, '$.lines') and by
    LIKE of each of their SKUs and categories.
None may match; P's lines stay on P's receipts (the test would be empty otherwise).
"""
import pytest

from loyalty.backend import auditor
from loyalty.backend.db import transaction
from loyalty.backend.privacy import minimise, trail

from customerrows import card, consent, customer

NOW = 1767268800  # 2026-01-01 12:00 UTC
DAY = 86400
SKUS = {  # sku -> (category, price); A, W and P share some
    "8001234500011": ("latticini", 129), "8001234500028": ("pane", 250), "8009876500013": ("igiene", 399),
    "8005550000017": ("bevande", 89), "8004440000011": ("surgelati", 575), "8003330000018": ("ortofrutta", 199)}
SHOPPERS = {  # who -> (card as the reader sends it, directory key, customer id, pseudonym, their SKUs)
    "A": ("006001000000004242", "6001000000004242", 424242, "C-a5f3c9e1d7b2",
          ["8001234500011", "8009876500013", "8004440000011"]),
    "W": ("6001000000007777", "6001000000007777", 515151, "C-0be4477a9c13",
          ["8001234500028", "8003330000018", "8001234500011"]),
    "P": ("6001000000001111", "6001000000001111", 636363, "C-77aa01fe3b90",
          ["8001234500011", "8005550000017", "8009876500013"]),
}
SMALL = 100000


def _lines(skus, qty):
    return [{"sku": s, "cat": SKUS[s][0], "qty": qty + i % 2, "price": SKUS[s][1]} for i, s in enumerate(skus)]


def _shop(db, signed_reader):
    readers = [signed_reader("R1", "S1", tz="UTC"), signed_reader("R2", "S2", tz="UTC")]
    batches = {r.id: [] for r in readers}
    for day in range(6):
        for k, who in enumerate(("A", "W", "P")):
            reader = readers[(day + k) % 2]
            sent, _key, _cid, _p, skus = SHOPPERS[who]
            lines = _lines(skus[: 2 + (day + k) % 2], 1 + day % 2)
            t = NOW - (45 - day) * DAY + 3600 * k
            gross = sum(line["qty"] * line["price"] for line in lines)
            batches[reader.id].append(reader.record("sale", t=t, card=sent, tier=0, lines=lines, gross=gross))
            if day % 2 == 0:  # returns one unit of the first line an hour later
                returning = [1] + [0] * (len(lines) - 1)
                batches[reader.id].append(reader.record(
                    "return", t=t + 3600, card=sent, tier=0, lines=lines, gross=-lines[0]["price"], ref=reader.seq,
                    returned=[0] * len(lines), returning=returning, receipt="T-%d" % reader.seq, quote=""))
    for reader in readers:
        r, _ = reader.send(batches[reader.id])
        assert r.status_code == 200, r.get_json()
    assert auditor.audit_all(db)["mismatch"] == 0


@pytest.fixture
def folded(db, signed_reader):
    with transaction(db):
        for who, (sent, key, cid, pseudonym, _skus) in SHOPPERS.items():
            customer(db, pseudonym, t=NOW - 400 * DAY, id=cid)
            card(db, key, cid)
            consent(db, cid, "scheme", 1, t=NOW - 400 * DAY)
            if who in ("W", "P"):
                consent(db, cid, "profiling", 1, t=NOW - 300 * DAY)
            trail.note(db, "anna", "consent", pseudonym, reason="at the desk", now=NOW - 300 * DAY)
            trail.looked(db, "anna", pseudonym, "customer page", now=NOW - 300 * DAY)
            db.execute("INSERT INTO care_contacts(customer_id, t, channel, operator, reason, note) "
                       "VALUES(?, ?, 'phone', 'anna', 'card lost', 'new card issued')", [cid, NOW - 50 * DAY])
    _shop(db, signed_reader)
    with transaction(db):
        consent(db, SHOPPERS["W"][2], "profiling", 0, t=NOW - DAY)
        minimise.fold_withdrawn(db, SHOPPERS["W"][2], NOW - DAY, 30)
    minimise.fold_due(db, NOW, 30)
    return db


def _schema(db):
    """{table: [(column, declared type)]} of every table, from the live schema."""
    tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                       "AND name NOT LIKE 'sqlite_%'")]
    return {t: [(c[1], c[2]) for c in db.execute("SELECT * FROM pragma_table_info(?)", [t])] for t in tables}


def _q(name):
    return '"%s"' % name


def _holding(db, schema, values):
    """[(table, column)] whose value equals one of `values`."""
    marks = ",".join("?" * len(values))
    return [(t, c) for t, cols in schema.items() for c, _type in cols
            if db.execute("SELECT 1 FROM %s WHERE %s IN (%s) LIMIT 1" % (_q(t), _q(c), marks), values).fetchone()]


def _links(db, who):
    sent, key, cid, pseudonym, skus = SHOPPERS[who]
    schema = _schema(db)
    goods = sorted(set(skus) | {SKUS[s][0] for s in skus})
    person = [sent, key, str(cid), cid, pseudonym]
    line_cols = _holding(db, schema, goods)
    person_cols = _holding(db, schema, person)
    assert {t for t, _c in person_cols} >= {"receipts", "cards", "customers", "consents", "trail", "views",
                                            "care_contacts"}
    found = []
    pm, gm = ",".join("?" * len(person)), ",".join("?" * len(goods))
    for lt in sorted({t for t, _c in line_cols}):
        # the rows of the line table holding their goods
        lrows = "(SELECT * FROM %s WHERE %s)" % (_q(lt), " OR ".join(
            "%s IN (%s)" % (_q(c), gm) for t, c in line_cols if t == lt))
        lparams = goods * sum(1 for t, _c in line_cols if t == lt)
        for pt in sorted({t for t, _c in person_cols}):
            prows = "(SELECT * FROM %s WHERE %s)" % (_q(pt), " OR ".join(
                "%s IN (%s)" % (_q(c), pm) for t, c in person_cols if t == pt))
            pparams = person * sum(1 for t, _c in person_cols if t == pt)
            pcols = [c for c, _type in schema[pt]]
            for lc, _type in schema[lt]:
                if lc in ("store_id", "day"):
                    continue  # the fold's dimensions: shared by design
                for pc in pcols:
                    if pc in ("store_id", "day"):
                        continue
                    sql = ("SELECT count(*) FROM %s l JOIN %s p ON l.%s = p.%s WHERE (typeof(l.%s) = 'text' "
                           "AND length(l.%s) >= 4) OR (typeof(l.%s) = 'integer' AND abs(l.%s) >= %d)"
                           % (lrows, prows, _q(lc), _q(pc), _q(lc), _q(lc), _q(lc), _q(lc), SMALL))
                    if db.execute(sql, lparams + pparams).fetchone()[0]:
                        found.append(("equal", lt, lc, pt, pc))
                    # time within 1 s at the same store or reader
                    for place in ("store_id", "reader_id"):
                        if place in dict(schema[lt]) and place in pcols:
                            sql = ("SELECT count(*) FROM %s l JOIN %s p ON l.%s = p.%s AND abs(l.%s - p.%s) <= 1 "
                                   "WHERE typeof(l.%s) = 'integer' AND l.%s > 1000000000 AND typeof(p.%s) = "
                                   "'integer'" % (lrows, prows, place, place, _q(lc), _q(pc), _q(lc), _q(lc), _q(pc)))
                            if db.execute(sql, lparams + pparams).fetchone()[0]:
                                found.append(("time", lt, lc, pt, pc, place))
    # the person's own rows: no text column holds lines or their goods
    for pt in sorted({t for t, _c in person_cols}):
        where = " OR ".join("%s IN (%s)" % (_q(c), pm) for t, c in person_cols if t == pt)
        params = person * sum(1 for t, _c in person_cols if t == pt)
        for c, _type in schema[pt]:
            sql = ("SELECT count(*) FROM %s WHERE (%s) AND typeof(%s) = 'text' AND ((json_valid(%s) AND "
                   "json_extract(%s, '$.lines') IS NOT NULL) OR %s)"
                   % (_q(pt), where, _q(c), _q(c), _q(c), " OR ".join(["%s LIKE ?" % _q(c)] * len(goods))))
            if db.execute(sql, params + ["%" + g + "%" for g in goods]).fetchone()[0]:
                found.append(("text", pt, c))
    return found


@pytest.mark.parametrize("who", ["A", "W"])
def test_a_customer_without_profiling_consent_cannot_be_linked_to_any_line(folded, who):
    db = folded
    assert db.execute("SELECT count(*) FROM receipts WHERE card = ? AND record IS NOT NULL",
                      [SHOPPERS[who][0]]).fetchone()[0] == 0
    assert _links(db, who) == []


def test_the_search_finds_the_links_of_the_customer_who_consents(folded):
    """The same search on P, whose lines stay: it must find them (else it proves nothing)."""
    db = folded
    assert db.execute("SELECT count(*) FROM receipts WHERE card = ? AND record IS NOT NULL",
                      [SHOPPERS["P"][0]]).fetchone()[0] == 9  # 6 sales, 3 returns
    links = _links(db, "P")
    assert ("text", "receipts", "record") in links
    # and the totals hold everybody's folded lines: A's and W's SKUs are there
    skus = {s for (s,) in db.execute("SELECT sku FROM product_day_totals")}
    assert set(SHOPPERS["A"][4]) | set(SHOPPERS["W"][4]) <= skus
