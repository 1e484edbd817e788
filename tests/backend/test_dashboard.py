"""The dashboard's pages and their JSON twins through Flask's test client: the stores
overview, the reader page's parts (batches, refusals with reasons, mismatches, chart),
states in words and colours, local times, euro amounts, self-refresh and 404s."""
import re
from datetime import datetime, timezone

import pytest

from loyalty.backend.dashboard import readerstate
from dashrows import (add_manager, add_reader, add_store, dash_app,  # noqa: F401
                                dash_client, dash_db, fix_clock, login)

NOW = int(datetime(2025, 3, 1, 23, 30, tzinfo=timezone.utc).timestamp())  # 00:30 CET in Rome


@pytest.fixture
def shop(dash_db, dash_client, monkeypatch):
    """Store S1 (Rome): R1 lagging with a history; R2 in sync; a head office login."""
    fix_clock(monkeypatch, NOW)
    add_store(dash_db, "S1", "Milano <Centro>", "Europe/Rome")
    dash_db["day_totals"].insert({"store_id": "S1", "day": "2025-03-02", "receipts": 12,
                                  "gross": 123456, "discount": 6543})
    add_reader(dash_db, "R1", "S1", last_contact=NOW - 120, last_batch=NOW - 120, acked_seq=41,
               pending=7, oldest_t=NOW - 1200, journal="nearly_full", used=900_000,
               capacity=1_000_000, free_flash=65536, firmware="1.4.2", rules_version=3,
               directory_version=5, clock_offset=-4, clock_drift=12, last_error="sync.network",
               keys_version=1)
    add_reader(dash_db, "R2", "S1", last_contact=NOW - 30, last_batch=NOW - 30, pending=0,
               journal="ok")
    dash_db.execute("UPDATE meta SET value = '4' WHERE key = 'rules_version'")
    dash_db.execute("UPDATE meta SET value = '2' WHERE key = 'card_keys_version'")  # an epoch retired since
    add_manager(dash_db)
    login(dash_client)
    return dash_db


def html(client, path, status=200):
    r = client.get(path)
    assert r.status_code == status
    return r.get_data(as_text=True)


def json(client, path, status=200):
    r = client.get(path)
    assert r.status_code == status
    return r.get_json()


def test_root_redirects_to_the_stores(dash_client):
    r = dash_client.get("/")
    assert r.status_code == 302 and r.headers["Location"] == "/stores"


# -- the stores overview ----------------------------------------------------------------------

def test_stores_json_twin(shop, dash_client):
    data = json(dash_client, "/stores.json")
    assert data["now"] == NOW
    (store,) = data["stores"]
    assert (store["id"], store["today"], store["receipts"], store["gross"], store["discount"]) == \
        ("S1", "2025-03-02", 12, 123456, 6543)
    assert (store["gross_text"], store["discount_text"]) == ("€1,234.56", "€65.43")
    assert store["states"]["lagging"] == 1 and store["states"]["in_sync"] == 1
    r1 = store["readers"][0]
    assert (r1["id"], r1["state"], r1["state_text"], r1["pending"], r1["oldest_age"]) == \
        ("R1", "lagging", "lagging", 7, 1200)
    assert r1["last_contact_text"] == "Mar 2, 2025, 12:28:00\u202fAM CET"
    assert [i["state"] for i in data["legend"]] == list(readerstate.STATES)


def test_stores_page_shows_states_in_words_and_colours(shop, dash_client):
    page = html(dash_client, "/stores")
    row = re.search(r'<tr data-reader="R1" data-state="lagging">.*?</tr>', page, re.S).group(0)
    assert '<span class="badge state-lagging">lagging</span>' in row
    assert "Mar 2, 2025, 12:28:00\u202fAM CET" in row and "2 min ago" in row
    assert "20 min" in row and "nearly full, 90% used" in row
    assert 'href="/readers/R1"' in row
    assert '<tr data-reader="R2" data-state="in_sync">' in page
    # every state's colour is defined once, from readerstate.COLOURS
    for state, colour in readerstate.COLOURS.items():
        assert ".state-%s { --state: %s; }" % (state, colour) in page
    assert 'data-today="gross" data-cents="123456">€1,234.56<' in page
    assert 'data-today="receipts">12 receipts<' in page
    assert 'class="legend"' in page and "never seen" in page


def test_store_names_are_escaped(shop, dash_client):
    page = html(dash_client, "/stores")
    assert "Milano &lt;Centro&gt;" in page and "Milano <Centro>" not in page


def test_pages_refresh_themselves(shop, dash_app, dash_client):
    dash_app.config["REFRESH_SECONDS"] = 7
    for path in ("/stores", "/readers/R1"):
        page = html(dash_client, path)
        assert '<noscript><meta http-equiv="refresh" content="7"></noscript>' in page
        assert "var every = 7 * 1000;" in page


def test_the_key_is_never_shown(shop, dash_client):
    for path in ("/stores", "/stores.json", "/readers/R1", "/readers/R1.json"):
        body = dash_client.get(path).get_data(as_text=True)
        assert "ab" * 32 not in body and "key_hex" not in body


def test_an_empty_backend_says_so(dash_db, dash_client):
    add_manager(dash_db)
    login(dash_client)
    assert 'data-empty="stores"' in html(dash_client, "/stores")
    assert json(dash_client, "/stores.json")["stores"] == []


# -- the reader page --------------------------------------------------------------------------

def test_reader_json_twin(shop, dash_client):
    data = json(dash_client, "/readers/R1.json")
    r = data["reader"]
    assert (r["state"], r["acked_seq"], r["pending"], r["oldest_age"]) == ("lagging", 41, 7, 1200)
    assert (r["clock_offset"], r["clock_drift"], r["clock_drift_text"]) == (-4, 12, "+12 s")
    assert (r["firmware"], r["rules_version"], r["rules_behind"]) == ("1.4.2", 3, True)
    assert data["backend"] == {"rules_version": 4, "directory_version": 0, "keys_version": 2}
    assert (r["keys_version"], r["keys_behind"]) == (1, True)
    assert (r["used"], r["capacity"], r["flash_percent"], r["free_flash"]) == \
        (900_000, 1_000_000, 90.0, 65536)
    assert r["last_error_text"] == "Network unreachable"
    assert data["store"] == {"id": "S1", "name": "Milano <Centro>", "tz": "Europe/Rome"}
    assert "journal nearly full" in r["reason"]


def test_reader_page_facts(shop, dash_client):
    page = html(dash_client, "/readers/R1")
    assert '<section class="reader-head" data-reader="R1" data-state="lagging">' in page

    def fact(name):
        return re.search(r'data-fact="%s"[^>]*>(.*?)</dd>' % name, page, re.S).group(1)

    assert fact("acked_seq") == "seq 41"
    assert "Mar 2, 2025, 12:28:00\u202fAM CET" in fact("last_contact")
    assert fact("clock_offset") == "-4 s" and fact("clock_drift") == "+12 s"
    assert fact("firmware") == "1.4.2"
    assert fact("rules_version").startswith("3 ") and "ours 4, behind" in fact("rules_version")
    assert fact("keys_version").startswith("1 ") and "ours 2, behind" in fact("keys_version")
    assert "878.9 KiB of 976.6 KiB" in fact("flash") and 'value="90.0"' in fact("flash")
    assert fact("free_flash") == "64 KiB"
    assert "20 min" in fact("oldest")


def test_last_20_batches_newest_first_with_reasons(shop, dash_client):
    for i in range(25):
        shop["batches"].insert({"reader_id": "R1", "t": NOW - 3000 + i * 60, "outcome": "accepted",
                                "http_status": 200, "first_seq": i * 2 + 1, "last_seq": i * 2 + 2,
                                "count": 2, "fresh": 2, "gross": 1000, "discount": 50,
                                "ack": i * 2 + 2, "bytes": 800})
    shop["batches"].insert({"reader_id": "R1", "t": NOW - 10, "outcome": "refused",
                            "http_status": 409, "code": "batch.chain", "field": "records[0].prev",
                            "detail": "does not match seq 50", "first_seq": 51, "last_seq": 52,
                            "count": 2})
    shop["batches"].insert({"reader_id": "R2", "t": NOW, "outcome": "accepted", "http_status": 200})
    data = json(dash_client, "/readers/R1.json")
    assert len(data["batches"]) == 20
    assert data["batches"][0]["code_text"] == "Broken hash chain"
    assert [b["first_seq"] for b in data["batches"][1:3]] == [49, 47]
    assert data["batches"][1]["gross_text"] == "€10.00"
    page = html(dash_client, "/readers/R1")
    rows = re.findall(r'<tr data-batch="\d+" data-outcome="(\w+)">', page)
    assert len(rows) == 20 and rows[0] == "refused"
    assert "Broken hash chain <code>batch.chain</code> at <code>records[0].prev</code>: " \
           "does not match seq 50" in page


def test_refusals_with_their_reasons(shop, dash_client):
    shop["refusals"].insert_all([
        {"reader_id": "R1", "t": NOW - 500, "endpoint": "POST /api/v1/sync/batch",
         "http_status": 401, "code": "batch.signature", "field": "X-Signature",
         "detail": "does not verify", "remote": "10.0.0.9", "verified": 0},
        {"reader_id": "R1", "t": NOW - 100, "endpoint": "POST /api/v1/sync/batch",
         "http_status": 400, "code": "batch.totals", "field": "totals.gross", "detail": "1000 != 990", "verified": 1},
        {"reader_id": "R1", "t": NOW - 50, "endpoint": "GET /api/v1/sync/rules",
         "http_status": 400, "code": "odd.code", "field": "", "detail": ""},
        {"reader_id": "R2", "t": NOW, "endpoint": "x", "http_status": 400, "code": "batch.gap"}])
    data = json(dash_client, "/readers/R1.json")
    assert data["refusals_total"] == 3
    assert [(x["code"], x["code_text"]) for x in data["refusals"]] == [
        ("odd.code", "odd.code"), ("batch.totals", "Wrong batch totals"),
        ("batch.signature", "Bad batch signature")]
    page = html(dash_client, "/readers/R1")
    row = re.search(r'<tr data-refusal="\d+" data-code="batch.totals" data-verified="1">.*?</tr>', page, re.S).group(0)
    assert "Wrong batch totals" in row and "1000 != 990" in row and "totals.gross" in row
    assert "not signed by this reader" not in row
    forged = re.search(r'<tr data-refusal="\d+" data-code="batch.signature" data-verified="0">.*?</tr>', page, re.S)
    assert "not signed by this reader" in forged.group(0)


def test_discount_mismatches(shop, dash_client):
    base = {"reader_id": "R1", "store_id": "S1", "kind": "sale", "day": "2025-03-02",
            "gross": 2000, "discount": 300, "card": "1234"}
    shop["receipts"].insert_all([
        dict(base, seq=1, t=NOW - 900, receipt="A-1", audit="ok"),
        dict(base, seq=2, t=NOW - 800, receipt="A-2", audit="mismatch",
             audit_detail="granted 300, engine says 200"),
        dict(base, seq=3, t=NOW - 700, receipt="A-3", audit=None),
        dict(base, seq=4, t=NOW - 600, receipt="A-4", audit="mismatch", audit_detail="tier 2 vs 1"),
        dict(base, reader_id="R2", seq=1, t=NOW, receipt="B-1", audit="mismatch")])
    data = json(dash_client, "/readers/R1.json")
    assert data["mismatches_total"] == 2
    assert [(m["seq"], m["receipt"], m["audit_detail"]) for m in data["mismatches"]] == [
        (4, "A-4", "tier 2 vs 1"), (2, "A-2", "granted 300, engine says 200")]
    assert data["mismatches"][0]["t_text"] == "Mar 2, 2025, 12:20:00\u202fAM CET"
    page = html(dash_client, "/readers/R1")
    assert re.findall(r'data-mismatch="(\d+)"', page) == ["4", "2"]
    assert "€3.00" in page


def test_chart_of_pending_receipts(shop, dash_client):
    shop["reader_samples"].insert_all(
        [{"reader_id": "R1", "t": NOW - 86400 - 300, "pending": 99}]
        + [{"reader_id": "R1", "t": NOW - i * 3600, "pending": i} for i in range(24)])
    data = json(dash_client, "/readers/R1.json")
    assert len(data["samples"]) == 24 and data["samples"][-1] == [NOW, 0]
    page = html(dash_client, "/readers/R1")
    svg = re.search(r"<svg .*?</svg>", page, re.S).group(0)
    assert 'data-chart="pending" data-points="24"' in svg
    points = re.search(r'<polyline class="series" points="([^"]+)"', svg).group(1).split()
    assert len(points) == 24
    assert "<title" in svg and ">12:00\u202fAM<" in svg and ">50<" in svg  # 23 pending: scale to 50


def test_chart_empty_state(shop, dash_client):
    page = html(dash_client, "/readers/R2")
    assert 'data-chart="empty"' in page and "<svg" not in page


def test_a_reader_never_seen(shop, dash_client):
    add_reader(shop, "R9", "S1")
    data = json(dash_client, "/readers/R9.json")
    assert data["reader"]["state"] == "never_seen" and data["reader"]["last_contact_text"] == "—"
    page = html(dash_client, "/readers/R9")
    assert 'data-state="never_seen"' in page and "never seen" in page
    assert 'data-empty="batches"' in page and 'data-empty="refusals"' in page


def test_unknown_reader_is_404(shop, dash_client):
    page = html(dash_client, "/readers/R404", 404)
    assert 'data-error="404"' in page and "No reader R404 in your stores." in page
    assert json(dash_client, "/readers/R404.json", 404) == {"error": "not found", "title": "Not found",
                                                            "detail": "No reader R404 in your stores."}


@pytest.mark.parametrize("state", [
    dict(last_error="sync.network"), dict(last_error="sync.signature", pending=0),
    dict(last_refusal_at=NOW - 20, last_refusal_code="batch.gap"), dict(journal="full"),
    dict(pending=3, oldest_t=NOW - 4000), dict(last_contact=NOW - 7200), dict(last_contact=None),
])
def test_the_overview_and_the_reader_page_tell_the_same_state(shop, dash_client, state):
    add_reader(shop, "R3", "S1", **dict({"last_contact": NOW - 10, "last_batch": NOW - 30, "pending": 0,
                                         "journal": "ok"}, **state))
    row = [r for r in json(dash_client, "/stores.json")["stores"][0]["readers"] if r["id"] == "R3"][0]
    page = json(dash_client, "/readers/R3.json")["reader"]
    assert row["state"] != "in_sync"
    assert (row["state"], row["reason"]) == (page["state"], page["reason"])


def test_forged_requests_cannot_push_the_readers_own_refusals_off_its_page(shop, dash_client):
    shop["refusals"].insert({"reader_id": "R1", "t": NOW - 900, "endpoint": "batch", "http_status": 409,
                             "code": "batch.gap", "field": "records[0].seq", "detail": "expected 42", "verified": 1})
    shop["refusals"].insert_all([{"reader_id": "R1", "t": NOW - 10 + i % 5, "endpoint": "batch", "http_status": 401,
                                  "code": "batch.signature", "verified": 0} for i in range(100)])
    data = json(dash_client, "/readers/R1.json")
    codes = [x["code"] for x in data["refusals"]]
    assert "batch.gap" in codes and codes.count("batch.signature") == 10
    assert data["refusals_total"] == 101


def test_seeing_a_customers_card_on_the_reader_page_is_logged_once_an_hour(shop, dash_client, monkeypatch):
    shop.execute("INSERT INTO customers(id, pseudonym, name, store_id, status, created_t) "
                 "VALUES(7, 'C-00000000abcd', 'Maria Rossi', 'S1', 'active', 0)")
    shop.execute("INSERT INTO cards(card, tier, status, version, updated, customer_id) VALUES('1234', 0, 0, 1, 0, 7)")
    base = {"reader_id": "R1", "store_id": "S1", "kind": "sale", "day": "2025-03-02", "gross": 2000,
            "discount": 300, "audit": "mismatch", "t": NOW - 900}
    # the card as the reader wrote it (leading zeros), and a card nobody holds
    shop["receipts"].insert_all([dict(base, seq=1, receipt="A-1", card="001234"),
                                 dict(base, seq=2, receipt="A-2", card="5555")])
    html(dash_client, "/readers/R1")
    json(dash_client, "/readers/R1.json")  # the page refreshing itself: the same look
    views = shop.execute("SELECT t, actor, subject, what FROM views").fetchall()
    assert views == [(NOW, "giulia", "C-00000000abcd", "reader R1")]
    fix_clock(monkeypatch, NOW + 3601)
    html(dash_client, "/readers/R1")
    assert shop.execute("SELECT count(*) FROM views").fetchone()[0] == 2
