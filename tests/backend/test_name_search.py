"""Search by name goes through the index of the names' words (backend/customers/names.py):
the query plan ranges over it, and the words follow the name when it is rectified or
erased."""
from loyalty.backend.care import search
from loyalty.backend.customers import names
from loyalty.backend.privacy import rectification
from customerfixtures import add_customer

T0 = 1_700_000_000


def _plan(db, where, params):
    return " | ".join(r[3] for r in db.execute(
        "EXPLAIN QUERY PLAN SELECT p.id FROM customers p WHERE p.status <> 'erased' AND %s" % where, params))


def test_a_name_search_ranges_over_the_words_index_not_every_name(db):
    plan = _plan(db, *search._name_condition(["dangelo", "nic"], names.word_prefix_sql("dangelo")))
    assert "customer_words" in plan and "word>? AND word<?" in plan, plan
    assert "SCAN" not in plan, plan


def test_the_last_4_digits_with_a_name_go_through_the_cards_last_4_index(db):
    plan = _plan(db, *search._name_condition(["rossi"], search.last4_sql("0042")))
    assert "cards_by_last4" in plan and "SCAN" not in plan, plan


def test_the_words_follow_a_rectified_name(db):
    add_customer(db, 7, "Niccolò D'Angelo", "n@example.it", T0)
    add_customer(db, 8, "Giulia Scarossi", "g@example.it", T0)
    assert [c["id"] for c in search.find(db, "d'angelo")["results"]] == [7]
    assert search.find(db, "ross")["results"] == []  # "ross" begins no word of "giulia scarossi"
    rectification.rectify(db, 7, "name", "Niccolò Rossi", "care.anna", "sposato", T0 + 1)
    assert search.find(db, "d'angelo")["results"] == []
    assert [c["id"] for c in search.find(db, "ross niccolo")["results"]] == [7]
    assert db.execute("SELECT word FROM customer_words WHERE customer_id = 7 ORDER BY word").fetchall() == [
        ("niccolo",), ("rossi",)]
