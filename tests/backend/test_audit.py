"""The audit: records built from engine results pass, forged ones are flagged.

Batches go in through the sync API, which stores them awaiting audit; the auditor
(backend/auditor.py) then audits what awaits, in chunks of 500 receipts and, so that a
chunk ending inside a batch is seen to change nothing, of 1 receipt."""
import time

import pytest

from loyalty.testing import shop
from loyalty.backend import auditor, headoffice
from loyalty.protocol import engine
from loyalty.protocol.canonical import decode
from auditrows import audits, refused, send


DAY = 86400
LONG_AGO = 1600000000
OTHER_GOLD = "6001000000000067"  # a second gold card


@pytest.fixture(autouse=True, params=[auditor.CHUNK, 1], ids=["chunk500", "chunk1"])
def chunk(request):
    return request.param


@pytest.fixture(autouse=True)
def directory(db):
    """The sample shop's cards in the directory since long before the tests' sales (GOLD at
    tier 2, SILVER at 1): the audit allows a tier only if the card had it at the sale."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(headoffice.common, "now", lambda: LONG_AGO)
        headoffice.import_cards(db, shop.CARDS + [(OTHER_GOLD, 2, 0)])


@pytest.fixture
def reader(db, signed_reader, shop_rules):
    r = signed_reader()
    r.rules = headoffice.rules_at(db, shop_rules)
    return r


def test_engine_results_pass(db, reader, chunk):
    t = int(time.time())
    send(reader, [reader.sale(reader.rules, t=t), reader.sale(reader.rules, card=shop.SILVER, tier=1, t=t),
                  reader.sale(reader.rules, card=shop.UNKNOWN, tier=9, t=t)])  # unknown tier: the default
    assert [a[1:] for a in audits(db, chunk)] == [("ok", None)] * 3


def honest_quote(rules, t, tier=2):
    return engine.quote(rules, shop.basket()["lines"], tier, {"now": t, "last_sync": t, "card_day_used": 0})


def test_inflated_cents(db, reader, chunk):
    t = int(time.time())
    q = honest_quote(reader.rules, t)
    disc = [dict(d) for d in q["disc"]]
    disc[-1]["cents"] += 50
    send(reader, [reader.sale(reader.rules, t=t, discount=q["discount"] + 50, disc=disc)])
    (_, verdict, detail), = audits(db, chunk)
    assert verdict == "mismatch"
    assert "granted %d.%02d" % divmod(q["discount"] + 50, 100) in detail
    assert "at most %d.%02d" % divmod(q["discount"], 100) in detail


def test_wrong_rule_names(db, reader, chunk):
    t = int(time.time())
    q = honest_quote(reader.rules, t)
    disc = [dict(d, rule="promo:MEGA") if d["rule"].startswith("tier:") else d for d in q["disc"]]
    send(reader, [reader.sale(reader.rules, t=t, disc=disc)])
    (_, verdict, detail), = audits(db, chunk)
    assert verdict == "mismatch" and "promo:MEGA" in detail


def test_a_higher_tier_than_the_rules_know(db, reader, chunk):
    # the gold tier's discount under a tier id the rules do not have
    t = int(time.time())
    q = honest_quote(reader.rules, t)
    forged = reader.record("sale", t=t, tier=7, lines=shop.basket()["lines"], gross=q["gross"],
                           discount=q["discount"], disc=q["disc"], rules=reader.rules["version"])
    send(reader, [forged])
    (_, verdict, detail), = audits(db, chunk)
    assert verdict == "mismatch" and "tier 7" in detail


def test_wrong_gross(db, reader, chunk):
    # the schema refuses it before it is stored: the audit never sees it
    refused(reader, [reader.sale(reader.rules, gross=1)], "records[0].gross")
    assert audits(db, chunk) == []


def test_unpublished_rules_version(db, reader, chunk):
    send(reader, [reader.sale(reader.rules, rules=999)])
    assert audits(db, chunk)[0][1] == "mismatch" and "never published" in audits(db, chunk)[0][2]


def test_no_discount_is_always_fine(db, reader, chunk):
    lines = shop.basket()["lines"]
    send(reader, [reader.record("sale", lines=lines, gross=engine.gross(lines), rules=0, tier=1)])
    assert audits(db, chunk) == [(1, "ok", None)]


def test_stale_rules_give_the_tier_rate_only(db, reader, chunk):
    send(reader, [reader.sale(reader.rules, stale=True)])
    (_, verdict, detail), = audits(db, chunk)
    assert verdict == "ok" and "stale" in detail


def test_promotions_out_of_their_window(db, reader, chunk):
    headoffice.add_promotion(db, "LATER", "category", category="bakery", bp=5000, from_t=int(time.time()) + 3600)
    rules = headoffice.current_rules(db)[1]
    t = int(time.time())
    honest = reader.sale(rules, t=t)
    # a reader that applied the promotion before it starts
    later = engine.quote(rules, shop.basket()["lines"], 2, {"now": t + 7200, "last_sync": t + 7200,
                                                           "card_day_used": 0})
    forged = reader.sale(rules, t=t, discount=later["discount"], disc=later["disc"])
    send(reader, [honest, forged])
    assert [a[1] for a in audits(db, chunk)] == ["ok", "mismatch"]


def test_the_card_day_limit(db, signed_reader, chunk):
    # a day limit of 2.00 per card on a reader: the first sale takes 1.69, the second
    # may take 0.31 at most, a sale on the next day starts again
    headoffice.add_tier(db, 0, "base", 200)
    headoffice.add_tier(db, 2, "gold", 5000)
    version = headoffice.set_limits(db, receipt_max_cents=5000, offline_receipt_max_cents=5000,
                                    card_day_max_cents=200, stale_hours=48)
    rules = headoffice.rules_at(db, version)
    r = signed_reader()
    lines = [{"sku": "1", "cat": "x", "qty": 1, "price": 338}]
    t = (int(time.time()) // DAY) * DAY + 3600
    first = r.sale(rules, lines, t=t)
    assert decode(first)["discount"] == 169
    honest = r.sale(rules, lines, t=t + 60, used=169)
    assert decode(honest)["discount"] == 31
    # another card, whose day the reader counted higher than its sales here (a shared
    # counter after a hash collision): it may cut more, never less
    cautious = r.sale(rules, lines, card=OTHER_GOLD, t=t + 120, used=190)
    assert decode(cautious)["discount"] == 10
    greedy = r.sale(rules, lines, t=t + 180)  # as if the card's day had started again
    next_day = r.sale(rules, lines, t=t + DAY)
    send(r, [first, honest, cautious, greedy, next_day])
    verdicts = audits(db, chunk)
    assert [v[1] for v in verdicts] == ["ok", "ok", "ok", "mismatch", "ok"]
    assert "day limit" in verdicts[2][2]
    assert "day used 2.00" in verdicts[3][2]


def test_the_card_day_counts_sales_stored_before(db, signed_reader, chunk):
    headoffice.add_tier(db, 2, "gold", 5000)
    version = headoffice.set_limits(db, card_day_max_cents=200, default_tier=2)
    rules = headoffice.rules_at(db, version)
    r = signed_reader()
    lines = [{"sku": "1", "cat": "x", "qty": 1, "price": 338}]
    t = (int(time.time()) // DAY) * DAY + 3600
    send(r, [r.sale(rules, lines, t=t)])
    send(r, [r.sale(rules, lines, t=t + 60)])  # a fresh day's discount again, one batch later
    assert [v[1] for v in audits(db, chunk)] == ["ok", "mismatch"]


def returned_record(r, kind, sale, returning, returned, **override):
    s = decode(sale)
    if kind == "void":
        rev = engine.void(s["lines"], s["disc"], returned)
    else:
        rev = engine.reverse(s["lines"], s["disc"], returned, returning)
    fields = dict(card=s["card"], tier=s["tier"], lines=s["lines"], gross=rev["gross"],
                  discount=rev["discount"], disc=rev["disc"], rules=s["rules"],
                  ref=s["seq"], returned=returned, returning=returning)
    fields.update(override)
    return r.record(kind, **fields)


def test_returns_and_voids_against_the_stored_sale(db, reader, chunk):
    sale = reader.sale(reader.rules)
    send(reader, [sale])
    first = returned_record(reader, "return", sale, [1, 0, 1], [0, 0, 0])
    second = returned_record(reader, "return", sale, [0, 0, 1], [1, 0, 1])
    rest = returned_record(reader, "void", sale, [1, 1, 1], [1, 0, 2])
    send(reader, [first, second, rest])
    assert [a[1:] for a in audits(db, chunk)] == [("ok", None)] * 4
    # what was reversed adds up to the sale exactly
    assert db.execute("SELECT sum(discount), sum(gross) FROM receipts").fetchone() == (0, 0)


def test_a_return_of_more_than_was_sold(db, reader, chunk):
    sale = reader.sale(reader.rules)
    s = decode(sale)
    over = [line["qty"] + 1 for line in s["lines"]]
    # the reversal of the whole sale plus one unit a line, as a forged reader would write it
    rev_all = engine.void(s["lines"], s["disc"], [0, 0, 0])
    forged = reader.record("return", card=s["card"], tier=s["tier"], lines=s["lines"],
                           gross=rev_all["gross"] - sum(line["price"] for line in s["lines"]),
                           discount=rev_all["discount"], disc=rev_all["disc"], rules=s["rules"],
                           ref=1, returned=[0, 0, 0], returning=over)
    refused(reader, [sale, forged], "records[1].returning[0]")
    assert audits(db, chunk) == []


def test_a_return_that_hides_earlier_returns(db, reader, chunk):
    sale = reader.sale(reader.rules)
    first = returned_record(reader, "return", sale, [1, 0, 0], [0, 0, 0])
    # the second return says nothing was returned before: it would reverse the line again
    again = returned_record(reader, "return", sale, [1, 0, 0], [0, 0, 0])
    send(reader, [sale, first])
    send(reader, [again])
    assert [a[1] for a in audits(db, chunk)] == ["ok", "ok", "mismatch"]
    assert "returned before" in audits(db, chunk)[2][2]


def test_a_return_reversing_more_discount_than_its_share(db, reader, chunk):
    sale = reader.sale(reader.rules)
    s = decode(sale)
    honest = engine.reverse(s["lines"], s["disc"], [0, 0, 0], [1, 0, 0])
    disc = [dict(d, cents=d["cents"] - 20) for d in honest["disc"]]
    forged = returned_record(reader, "return", sale, [1, 0, 0], [0, 0, 0], disc=disc,
                             discount=sum(d["cents"] for d in disc))
    send(reader, [sale, forged])
    assert [a[1] for a in audits(db, chunk)] == ["ok", "mismatch"]


def test_a_return_with_other_lines_or_of_no_sale(db, reader, chunk):
    sale = reader.sale(reader.rules)
    s = decode(sale)
    lines = [dict(s["lines"][0], price=s["lines"][0]["price"] * 10)] + s["lines"][1:]
    other_lines = returned_record(reader, "return", sale, [1, 0, 0], [0, 0, 0], lines=lines,
                                  gross=-lines[0]["price"])
    send(reader, [sale, other_lines])
    void_quote = reader.record("void", lines=s["lines"], rules=s["rules"])
    send(reader, [void_quote])
    verdicts = audits(db, chunk)
    assert [v[1] for v in verdicts] == ["ok", "mismatch", "ok"]
    assert "other lines" in verdicts[1][2]
    # a return of the cancelled quote: the schema refuses it (it names no sale)
    refused(reader, [returned_record(reader, "return", sale, [1, 0, 0], [0, 0, 0], ref=3)], "records[0].ref")


def test_a_cancelled_quote_moves_no_money(db, reader, chunk):
    lines = shop.basket()["lines"]
    fine = reader.record("void", lines=lines, rules=reader.rules["version"])
    forged = reader.record("void", lines=lines, gross=-500, rules=reader.rules["version"])
    send(reader, [fine])
    refused(reader, [forged], "records[0].gross")
    assert [a[1] for a in audits(db, chunk)] == ["ok"]


def test_a_discount_line_of_line_true(db, reader, chunk):
    # as Python values true == 1: the record's bytes say otherwise, and so must the audit
    t = int(time.time())
    q = honest_quote(reader.rules, t)
    assert q["disc"][0]["line"] == 0 and any(d["line"] == 1 for d in q["disc"])
    disc = [dict(d, line=True) if d["line"] == 1 else d for d in q["disc"]]
    refused(reader, [reader.sale(reader.rules, t=t, disc=disc)], "records[0].disc[%d].line" % [d["line"] for d in q["disc"]].index(1))
    assert audits(db, chunk) == []
