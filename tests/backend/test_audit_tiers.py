"""The audit's two context checks: the tier a sale names must be one the card's directory
entry could have given it (backend/cardstates.py), and a quote made at the card tap may
fall before a promotion's start or end that the commit time is after (QUOTE_SLACK).

Batches go in through the sync API; the auditor audits what awaits, in chunks of 500
receipts and of 1 receipt (each receipt then in a chunk of its own)."""
import time

import pytest

from loyalty.testing import shop
from loyalty.backend import auditor, cardstates, headoffice
from loyalty.backend.audit import QUOTE_SLACK
from loyalty.protocol import engine
from auditrows import send
from auditrows import audits as _audits


def audits(db, chunk):
    return [tuple(r) for r in _audits(db, chunk, "audit, audit_detail")]


DAY = 86400
LONG_AGO = 1600000000
BASE = "6001000000000075"  # a base-tier card
T = (int(time.time()) // DAY - 3) * DAY + 12 * 3600  # noon UTC three days ago: one day for every sale


@pytest.fixture(autouse=True, params=[auditor.CHUNK, 1], ids=["chunk500", "chunk1"])
def chunk(request):
    return request.param


@pytest.fixture
def clock(monkeypatch):
    """headoffice's clock: the time each directory change is written down with."""
    now = [LONG_AGO]
    monkeypatch.setattr(headoffice.common, "now", lambda: now[0])
    return now


@pytest.fixture
def reader(db, signed_reader, shop_rules, clock):
    headoffice.import_cards(db, shop.CARDS + [(BASE, 0)])
    r = signed_reader()
    r.rules = headoffice.rules_at(db, shop_rules)
    return r


def tapped(r, rules, quoted, committed, tier=2, card=shop.GOLD, lines=None, **override):
    """A sale as the firmware records it: quoted (fresh rules) when the card was tapped at
    `quoted`, committed at `committed`."""
    lines = shop.basket()["lines"] if lines is None else lines
    q = engine.quote(rules, lines, tier, {"now": quoted, "last_sync": quoted, "card_day_used": 0})
    fields = dict(card=card, tier=q["tier"], lines=lines, gross=q["gross"], discount=q["discount"],
                  disc=q["disc"], rules=rules["version"])
    fields.update(override)
    return r.record("sale", t=committed, **fields)


# -- tiers ------------------------------------------------------------------------------

def test_a_forged_tier_is_a_mismatch_though_the_cents_add_up(db, reader, chunk):
    rules = reader.rules
    send(reader, [reader.sale(rules, card=BASE, tier=2, t=T),            # base card at the gold rate
                  reader.sale(rules, card=shop.UNKNOWN, tier=1, t=T),    # never in the directory
                  reader.sale(rules, card=BASE, tier=0, t=T),            # its own tier
                  reader.sale(rules, card=shop.GOLD, tier=2, t=T)])
    forged, unknown, own, gold = audits(db, chunk)
    assert forged == ("mismatch", "tier 2 was never card %s's tier before the sale; allowed: 0" % BASE)
    assert unknown[0] == "mismatch" and "tier 1 was never card %s's tier" % shop.UNKNOWN in unknown[1]
    assert own == gold == ("ok", None)


def test_a_tier_the_card_had_before_a_change(db, reader, clock, chunk):
    rules = reader.rules
    clock[0] = T
    headoffice.set_card(db, shop.SILVER, tier=2)  # silver becomes gold at T
    send(reader, [reader.sale(rules, card=shop.SILVER, tier=1, t=T + 3600),   # a reader not synced since
                  reader.sale(rules, card=shop.SILVER, tier=2, t=T + 3600),   # one that is
                  reader.sale(rules, card=shop.SILVER, tier=2, t=T - cardstates.CLOCK_SLACK - 600)])
    after_old, after_new, before = audits(db, chunk)
    assert after_old == after_new == ("ok", None)
    # gold before it was given: the reader's clock a little behind is allowed, not more
    assert before[0] == "mismatch" and "allowed: 0, 1" in before[1]


def test_the_default_tier_for_a_card_the_reader_does_not_know(db, reader, chunk):
    rules = reader.rules
    # a card issued after the reader's last sync, and a gold card missing from its directory
    send(reader, [reader.sale(rules, card=shop.UNKNOWN, tier=0, t=T),
                  reader.sale(rules, card=shop.GOLD, tier=0, t=T)])
    assert audits(db, chunk) == [("ok", None)] * 2


def test_a_blocked_cards_sale_without_discount(db, reader, clock, chunk):
    clock[0] = T - DAY
    headoffice.set_card(db, BASE, status=headoffice.BLOCKED)
    lines = shop.basket()["lines"]
    gross = engine.gross(lines)
    send(reader, [reader.record("sale", card=shop.BLOCKED, tier=2, lines=lines, gross=gross, t=T,
                                rules=reader.rules["version"]),
                  reader.record("sale", card=BASE, tier=2, lines=lines, gross=gross, t=T,
                                rules=reader.rules["version"]),
                  # blocked before the sale, yet at a tier it never had, with a discount
                  reader.sale(reader.rules, card=BASE, tier=2, t=T)])
    assert [a[0] for a in audits(db, chunk)] == ["ok", "ok", "mismatch"]


def test_the_tiers_of_a_chunk_are_read_in_one_query(db, signed_reader, shop_rules, clock, chunk):
    cards = ["60010000%08d" % i for i in range(1, 41)]
    headoffice.import_cards(db, [(c, 2) for c in cards])
    rules = headoffice.rules_at(db, shop_rules)
    r = signed_reader()
    send(r, [r.sale(rules, card=c, tier=2, t=T) for c in cards])
    queries = []
    db.conn.set_trace_callback(lambda sql: queries.append(sql) if "card_history" in sql else None)
    try:
        verdicts = audits(db, chunk)
    finally:
        db.conn.set_trace_callback(None)
    assert verdicts == [("ok", None)] * len(cards)
    # one query for the whole chunk; a chunk of one receipt has its one card to read
    assert len(queries) == (1 if chunk == auditor.CHUNK else len(cards))


# -- promotions that start or end between the tap and the commit ------------------------------

@pytest.fixture
def bread(db, reader):
    """BREAD50 (50 % on bakery) ended 10 minutes before T; TEA started 5 minutes before T."""
    headoffice.add_promotion(db, "BREAD50", "category", category="bakery", bp=5000,
                             from_t=T - DAY, to_t=T - 600)
    headoffice.add_promotion(db, "TEA", "sku", sku="2001", cents=20, from_t=T - 300)
    return headoffice.current_rules(db)[1]


def test_quoted_before_a_promotion_ended(db, reader, bread, chunk):
    committed = T + 60
    send(reader, [tapped(reader, bread, T - 900, committed)])
    (verdict, note), = audits(db, chunk)
    assert verdict == "ok" and note == "quoted before promotion BREAD50 ended"


def test_quoted_before_a_promotion_started(db, reader, bread, chunk):
    # quoted after BREAD50 ended and before TEA started: no TEA discount on the bread
    send(reader, [tapped(reader, bread, T - 400, T + 60)])
    (verdict, note), = audits(db, chunk)
    assert verdict == "ok" and note == "quoted before promotion TEA started"


def test_quoted_before_both(db, reader, bread, chunk):
    send(reader, [tapped(reader, bread, T - 1200, T + 60)])
    (verdict, note), = audits(db, chunk)
    assert verdict == "ok" and note == "quoted before promotion BREAD50 ended"


def test_a_promotion_that_ended_too_long_before_the_commit(db, reader, bread, chunk):
    # a quote cannot wait at the till for longer than QUOTE_SLACK
    send(reader, [tapped(reader, bread, T - 900, T - 600 + QUOTE_SLACK + 1)])
    (verdict, detail), = audits(db, chunk)
    assert verdict == "mismatch" and "the engine allows at most" in detail


def test_an_inflated_discount_near_a_boundary(db, reader, bread, chunk):
    honest = engine.quote(bread, shop.basket()["lines"], 2, {"now": T - 900, "last_sync": T - 900,
                                                            "card_day_used": 0})
    disc = [dict(d) for d in honest["disc"]]
    disc[-1]["cents"] += 50
    send(reader, [tapped(reader, bread, T - 900, T + 60, discount=honest["discount"] + 50, disc=disc)])
    (verdict, detail), = audits(db, chunk)
    assert verdict == "mismatch"
    assert "granted %d.%02d" % divmod(honest["discount"] + 50, 100) in detail


def test_the_tier_is_checked_at_a_boundary_too(db, reader, bread, chunk):
    send(reader, [tapped(reader, bread, T - 900, T + 60, card=BASE)])  # base card, gold rate
    (verdict, detail), = audits(db, chunk)
    assert verdict == "mismatch" and "tier 2 was never card" in detail
