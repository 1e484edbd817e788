"""Customer care's pages through Flask's test client: the story in time order with its
paging, the care contact form, the search (cards, last 4 digits with the name, names with
accents and apostrophes, contacts), and the views log they write."""
import pytest

from loyalty.backend import auth
from loyalty.backend.care import story as stories, views as care
from customerfixtures import (add_card, add_care_contact, add_consent, add_customer, add_household,
                              add_notice, add_receipt)
from dashrows import PASSWORD, csrf_from, login

T0 = 1_700_000_000  # 14 Nov 2023
DAY = 86400
NOW = T0 + 100 * DAY


@pytest.fixture
def shop(db, client, monkeypatch):
    """Mario Rossi (customer 7) with two cards, receipts, a tier change, consents and a
    care contact; Niccolò D'Angelo (8); an erased customer (9); a care login."""
    monkeypatch.setattr(care, "clock", lambda: NOW)
    add_notice(db, 1, "it", "Informativa 1", T0 - DAY)
    add_notice(db, 2, "it", "Informativa 2", T0 - DAY)
    add_household(db, 3, "Famiglia Rossi", T0)
    add_customer(db, 7, "Mario Rossi", "mario.rossi@example.it", T0, household=3)
    add_customer(db, 8, "Niccolò D'Angelo", "+393331234567", T0)
    add_customer(db, 9, "Anna Rossi", "anna@example.it", T0, household=3)
    add_card(db, 7, "6001000000000042", version=1, t=T0, tier=0)
    add_card(db, 8, "6001000000009876", version=2, t=T0)
    # the tier change: card 42 at version 3 moves from tier 0 to 2
    db.execute("INSERT INTO card_history(card, version, tier, status, t) VALUES('6001000000000042', 3, 2, 0, ?)",
               [T0 + 5 * DAY])
    add_consent(db, 7, "scheme", 1, T0)
    add_consent(db, 7, "profiling", 1, T0, notice=1)
    add_consent(db, 7, "profiling", 0, T0 + 6 * DAY, notice=2)
    add_receipt(db, "R1", 1, "6001000000000042", T0 + DAY, "2023-11-15", 1000, 50,
                lines=[{"sku": "P1", "cat": "pane", "qty": 2, "price": 500}])
    add_receipt(db, "R1", 2, "006001000000000042", T0 + 2 * DAY, "2023-11-16", 2000, 100, count=3, folded=T0 + 40 * DAY)
    db.execute("INSERT INTO receipts(reader_id, seq, store_id, kind, t, day, receipt, card, tier, gross, discount, "
               "rules, hash, lines, audit) VALUES('R1', 3, 'S1', 'return', ?, '2023-11-17', 'T-3', "
               "'6001000000000042', 0, -500, -25, 1, 'h3', 1, 'ok')", [T0 + 3 * DAY])
    add_care_contact(db, 7, T0 + 4 * DAY, "Scontrino 2 senza sconto", reason="sconto", outcome="spiegato")
    db.execute("UPDATE customers SET status = 'erased', name = NULL, name_key = NULL, contact = NULL, "
               "household_id = NULL WHERE id = 9")
    add_customer(db, 10, "Anna Rossi", "anna2@example.it", T0)  # the living namesake
    auth.create_manager(db, "anna.care", PASSWORD, role="care")
    login(client, "anna.care")
    return db


def kinds(events):
    return [(e["kind"], e["t"]) for e in events]


def test_the_story_newest_first_with_totals(shop, client):
    page = client.get("/customers/7.json").get_json()
    assert kinds(page["events"]) == [
        ("consent", T0 + 6 * DAY), ("tier", T0 + 5 * DAY), ("care", T0 + 4 * DAY), ("return", T0 + 3 * DAY),
        ("sale", T0 + 2 * DAY), ("sale", T0 + DAY),
        # same second: care (5) > consent (4) > card (3) > tier (2) > receipt (1); consents by id, newest first
        ("consent", T0), ("consent", T0), ("card", T0)]
    assert page["next"] is None
    assert page["totals"] == {"receipts": 2, "returns": 1, "gross": 2500, "discount": 125,
                              "first_visit": T0 + DAY, "last_visit": T0 + 2 * DAY}
    c = page["customer"]
    assert (c["name"], c["contact"], c["store"]["id"], c["household"]["name"], c["age_ok"], c["status"]) == \
        ("Mario Rossi", "mario.rossi@example.it", "S1", "Famiglia Rossi", True, "active")
    assert c["household"]["members"] == []  # Anna left it when she was erased
    assert [(k["purpose"], k["in_force"], k["notice_version"]) for k in c["consents"]] == \
        [("scheme", True, 1), ("profiling", False, 2)]
    sale1, sale2 = page["events"][5], page["events"][4]
    assert sale1["items"] == [{"sku": "P1", "category": "pane", "qty": 2, "price": 500}]
    assert sale2["items"] == [] and sale2["lines"] == 3  # folded: only the count stays
    assert "record" not in sale1
    tier = page["events"][1]
    assert (tier["card"], tier["before_tier"], tier["tier"]) == ("6001000000000042", 0, 2)


def test_older_events_page_in_by_hand(shop, client):
    # 120 receipts a minute apart after everything else, then the pages of 50
    for i in range(120):
        add_receipt(shop, "R2", 100 + i, "6001000000000042", T0 + 10 * DAY + 60 * i, "2023-11-24", 100)
    first = client.get("/customers/7.json").get_json()
    assert [e["t"] for e in first["events"]] == [T0 + 10 * DAY + 60 * i for i in range(119, 69, -1)]
    assert first["next"] == "%d.1.R2.170" % (T0 + 10 * DAY + 60 * 70)
    second = client.get("/customers/7.json?before=" + first["next"]).get_json()
    assert "totals" not in second
    assert [e["t"] for e in second["events"]] == [T0 + 10 * DAY + 60 * i for i in range(69, 19, -1)]
    third = client.get("/customers/7.json?before=" + second["next"]).get_json()
    assert [e["t"] for e in third["events"][:20]] == [T0 + 10 * DAY + 60 * i for i in range(19, -1, -1)]
    assert [k for k, _t in kinds(third["events"][20:])] == ["consent", "tier", "care", "return", "sale", "sale",
                                                         "consent", "consent", "card"]
    assert third["next"] is None
    html = client.get("/customers/7?before=" + second["next"]).get_data(as_text=True)
    assert html.count("data-event=") == 29 and "data-older" not in html


def test_paging_keeps_events_of_the_same_second(shop, client):
    # 60 receipts in one second: pages split them without repeating or losing one
    for i in range(60):
        add_receipt(shop, "R3", 1 + i, "6001000000000042", T0 + 20 * DAY, "2023-12-04", 100)
    keys, before = [], None
    while True:
        page = client.get("/customers/7.json" + ("?before=" + before if before else "")).get_json()
        keys += [e["key"] for e in page["events"]]
        before = page["next"]
        if before is None:
            break
    assert len(keys) == 69 and len(set(keys)) == 69
    assert keys[:60] == ["%d.1.R3.%d" % (T0 + 20 * DAY, 60 - i) for i in range(60)]


@pytest.mark.parametrize("before", ["x", "1.9.R1.2", "12.1.R1", "-1.1.R1.2", "1.1..2"])
def test_a_bad_cursor_names_before(shop, client, before):
    r = client.get("/customers/7.json?before=" + before)
    assert r.status_code == 400 and r.get_json()["field"] == "before"


def test_an_unknown_customer_is_404(shop, client):
    assert client.get("/customers/999.json").status_code == 404
    assert client.get("/customers/999").status_code == 404


def test_each_load_of_the_story_is_logged(shop, client):
    client.get("/customers/7")
    client.get("/customers/7.json")
    rows = shop.execute("SELECT t, actor, subject, what FROM views ORDER BY id").fetchall()
    assert rows == [(NOW, "anna.care", "C-%012x" % 7, "customer page"),
                    (NOW, "anna.care", "C-%012x" % 7, "customer page json")]


# -- the care contact form -------------------------------------------------------------------

def _form(client, **values):
    token = csrf_from(client.get("/customers/7").get_data(as_text=True))
    data = {"channel": "phone", "reason": "carta persa", "outcome": "bloccata", "note": "Riemessa\nal banco",
            "csrf_token": token}
    data.update(values)
    return client.post("/customers/7/contacts", data=data)


def test_a_contact_is_recorded_and_shown_at_the_top(shop, client):
    r = _form(client)
    assert r.status_code == 303 and r.headers["Location"].endswith("/customers/7#events")
    assert shop.execute("SELECT customer_id, t, channel, operator, reason, note, outcome FROM care_contacts "
                        "ORDER BY id DESC LIMIT 1").fetchone() == \
        (7, NOW, "phone", "anna.care", "carta persa", "Riemessa\nal banco", "bloccata")
    first = client.get("/customers/7.json").get_json()["events"][0]
    assert (first["kind"], first["reason"], first["outcome"]) == ("care", "carta persa", "bloccata")
    html = client.get("/customers/7").get_data(as_text=True)
    assert html.index("carta persa") < html.index("Scontrino 2 senza sconto")
    assert 'data-warning="special-category"' in html


@pytest.mark.parametrize("field, value", [
    ("channel", "fax"), ("reason", ""), ("reason", "x" * 101), ("outcome", "  "), ("outcome", "ok\x07"),
    ("note", "n" * 2001), ("note", "testo \u202e rovesciato"), ("note", "a\x00b")])
def test_bad_contact_input_names_the_field_and_stores_nothing(shop, client, field, value):
    before = shop.execute("SELECT count(*) FROM care_contacts").fetchone()[0]
    r = _form(client, **{field: value})
    assert r.status_code == 400
    html = r.get_data(as_text=True)
    assert 'data-error="%s"' % field in html
    assert shop.execute("SELECT count(*) FROM care_contacts").fetchone()[0] == before
    assert shop.execute("SELECT count(*) FROM trail WHERE action = 'care contact'").fetchone()[0] == 0


def test_the_contact_form_needs_its_csrf_token(shop, client):
    r = client.post("/customers/7/contacts", data={"channel": "phone", "reason": "r", "outcome": "o"})
    assert r.status_code == 400
    assert shop.execute("SELECT count(*) FROM care_contacts").fetchone()[0] == 1


def test_a_note_of_2000_characters_is_taken(shop, client):
    assert _form(client, note="é" * 2000).status_code == 303
    assert shop.execute("SELECT length(note) FROM care_contacts ORDER BY id DESC LIMIT 1").fetchone() == (2000,)


def test_an_erased_customer_takes_no_contact(shop, client):
    token = csrf_from(client.get("/customers/7").get_data(as_text=True))
    r = client.post("/customers/9/contacts", data={"channel": "phone", "reason": "r", "outcome": "o",
                                                   "csrf_token": token})
    assert r.status_code == 400
    assert shop.execute("SELECT count(*) FROM care_contacts WHERE customer_id = 9").fetchone() == (0,)


# -- search --------------------------------------------------------------------------------

def found(client, q):
    r = client.get("/customers.json", query_string={"q": q})
    assert r.status_code == 200, r.get_json()
    return [c["id"] for c in r.get_json()["results"]]


@pytest.mark.parametrize("q, ids", [
    ("6001000000000042", [7]), ("006001000000000042", [7]), ("6001000000000041", []),
    ("0042 rossi", [7]), ("0042 mario", [7]), ("9876 d'angelo", [8]), ("9876 rossi", []), ("0043 rossi", []),
    ("D'Angelo", [8]), ("dangelo", [8]), ("D’ANGELO", [8]), ("Niccolò", [8]), ("niccolo", [8]), ("nicc d'ang", [8]),
    ("rossi", [10, 7]),  # Anna Rossi (10, living) sorts before Mario; Anna Rossi 9 is erased
    ("ross", [10, 7]), ("ossi", []), ("mario rossi", [7]), ("rossi mario", [7]),
    ("mario.rossi@example.it", [7]), ("+39 333 123 4567", [8]), ("333-1234567", []), ("+393331234567", [8]),
    ("anna@example.it", []),  # erased: the contact is gone
])
def test_search(shop, client, q, ids):
    assert found(client, q) == ids


def test_erased_customers_are_never_found_by_name(shop, client):
    # even if an erased row still had its name key (it must not), the status keeps it out
    shop.execute("UPDATE customers SET name_key = 'anna rossi' WHERE id = 9")
    assert found(client, "anna rossi") == [10]


def test_at_most_50_results(shop, client):
    for i in range(60):
        add_customer(shop, 100 + i, "Luca Bianchi", None, T0)
    r = client.get("/customers.json?q=bianchi").get_json()
    assert len(r["results"]) == 50 and r["more"] is True
    assert [c["id"] for c in r["results"]] == list(range(100, 150))


@pytest.mark.parametrize("q", ["", "   ", "x" * 101, "ross\x00i", "rossi\u202e", "'''", "1234 5678 rossi",
                               "12345 rossi", "1" * 20, "+39 12"])
def test_bad_search_names_the_field(shop, client, q):
    r = client.get("/customers.json", query_string={"q": q})
    assert r.status_code == 400 and r.get_json()["field"] == "q"
    r = client.get("/customers", query_string={"q": q})
    assert r.status_code == 400 and 'data-error="q"' in r.get_data(as_text=True)
    assert shop.execute("SELECT count(*) FROM views").fetchone() == (0,)


def test_a_search_logs_each_customer_it_lists(shop, client):
    client.get("/customers?q=rossi")
    assert shop.execute("SELECT actor, subject, what FROM views ORDER BY subject").fetchall() == [
        ("anna.care", "C-000000000007", "search"), ("anna.care", "C-00000000000a", "search")]


def test_the_search_page_links_to_the_story(shop, client):
    html = client.get("/customers?q=0042+rossi").get_data(as_text=True)
    assert 'data-customer="7"' in html and 'href="/customers/7"' in html


def test_the_story_page_in_italian(shop, client):
    auth.set_language(shop, "anna.care", "it")
    html = client.get("/customers/7").get_data(as_text=True)
    assert '<html lang="it">' in html
    assert "Registra il contatto" in html and "Scontrino 2 senza sconto" in html


def test_the_data_function_alone(shop):
    page = stories.story(shop, 7, limit=2)
    assert kinds(page["events"]) == [("consent", T0 + 6 * DAY), ("tier", T0 + 5 * DAY)]
    assert kinds(stories.story(shop, 7, before=page["next"], limit=2)["events"]) == \
        [("care", T0 + 4 * DAY), ("return", T0 + 3 * DAY)]
