"""End to end: the real firmware on MicroPython syncs with the Flask backend on a real
WSGI server over loopback HTTP. Receipts go up, are audited and counted; head office's
changes come down; the dashboard's JSON says what the readers did."""
import json

import pytest

from loyalty.testing.chain import Chain, wait_for
from loyalty.backend import headoffice
from loyalty.sim import sampleshop


@pytest.fixture
def chain(tmp_path):
    with Chain(tmp_path, readers=["R1", "R2"]) as c:
        yield c


def test_receipts_go_up_once_audited_and_counted(chain):
    r = chain.reader("R1")
    committed = {}
    discounts = {}
    for i in range(6):
        card = sampleshop.card_number([10, 3, 1, 13, 10, 4][i])  # gold, silver, base, blocked...
        q, c = chain.shop(r, "T-%d" % i, card=card)
        committed[c["seq"]] = "T-%d" % i
        discounts[c["seq"]] = c["discount"]
    wait_for(lambda: chain.synced(r), timeout=30, what="the receipts to be acknowledged")
    assert chain.check_exactly_once("R1", committed) == 6
    chain.wait_audited("R1")  # by the auditor beside the server, after the acknowledgement
    rows = chain.db_rows("SELECT seq, discount, audit, audit_detail, store_id FROM receipts WHERE reader_id='R1'")
    assert {row[0]: row[1] for row in rows} == discounts
    assert [row[2] for row in rows] == ["ok"] * 6, [row[3] for row in rows]
    assert discounts[4] == 0  # the blocked card got nothing, and the backend agrees
    state = wait_for(lambda: chain.state_of("R1") == "in_sync" and "in_sync", what="R1 in sync on the dashboard")
    assert state == "in_sync"
    assert chain.state_of("R2") == "never_seen"
    page = chain.dashboard().json("/readers/R1.json")
    assert page["reader"]["acked_seq"] == 6


def test_head_office_changes_reach_the_reader(chain):
    r = chain.reader("R1")
    card = sampleshop.card_number(1)  # base tier, 2 %
    q, _ = chain.shop(r, "before")
    q, _ = chain.shop(r, "base", card=card)
    assert q["tier"] == 0
    chain.change(headoffice.set_card, card, tier=2)
    chain.change(headoffice.add_promotion, "PANE20", "category", category="panetteria", bp=2000)
    wait_for(lambda: chain.synced(r), timeout=30, what="the new tier and promotion at the reader")
    q, c = chain.shop(r, "gold", card=card, lines=[{"sku": "2001", "cat": "panetteria", "qty": 1, "price": 1000}])
    assert q["tier"] == 2
    assert [d["rule"] for d in q["disc"]] == ["promo:PANE20", "tier:gold"]
    chain.change(headoffice.set_card, card, status=headoffice.BLOCKED)
    wait_for(lambda: chain.synced(r), timeout=30, what="the block at the reader")
    q, c = chain.shop(r, "blocked", card=card)
    assert q["note"] == "card.blocked" and c["discount"] == 0
    wait_for(lambda: chain.synced(r), timeout=30, what="the last receipts acknowledged")
    chain.wait_audited("R1")
    audits = chain.db_rows("SELECT audit FROM receipts WHERE reader_id='R1'")
    assert [a for (a,) in audits] == ["ok"] * 4


def test_reader_status_reaches_the_dashboard(chain):
    r = chain.reader("R1")
    chain.shop(r, "T-1")
    wait_for(lambda: chain.synced(r), timeout=30, what="a sync")
    s = r.status()
    page = wait_for(lambda: (lambda p: p["reader"]["last_contact"] and p)(chain.dashboard().json("/readers/R1.json")),
                    what="the reader page")
    reader = page["reader"]
    rules, directory, keys = chain.versions()
    assert reader["rules_version"] == rules == s["rules"]
    assert reader["keys_version"] == keys == s["keys"] == 1 and not reader["keys_behind"]
    assert reader["directory_version"] == directory == s["directory"]
    assert reader["firmware"] == "0.1.0"
    assert reader["capacity"] > 0 and reader["journal"] == "ok"
    batches = chain.db_rows("SELECT outcome, fresh FROM batches WHERE reader_id='R1' AND fresh > 0")
    assert batches and all(b[0] == "accepted" for b in batches)
    json.dumps(page)  # the JSON twin is plain JSON
