"""Head office's data: stores, readers and keys, rules versions, cards and directory pages."""
import json
import os
import stat

import pytest

from loyalty import i18n
from loyalty.backend import headoffice as ho
from loyalty.backend.db import meta_int
from loyalty.protocol import delta, engine
from loyalty.protocol.canonical import decode


def test_stores_need_a_known_time_zone(db):
    ho.add_store(db, "S1", "Milano Centro")
    ho.add_store(db, "S2", "New York", tz="America/New_York")
    with pytest.raises(ho.InvalidValue) as e:
        ho.add_store(db, "S3", "Atlantis", tz="Europe/Atlantis")
    assert e.value.field == "tz"
    with pytest.raises(ho.AlreadyExists):
        ho.add_store(db, "S1", "again")
    with pytest.raises(ho.InvalidValue) as e:
        ho.add_store(db, "bad id", "x")
    assert e.value.field == "id"
    assert db.execute("SELECT id, tz FROM stores ORDER BY id").fetchall() == [
        ("S1", "Europe/Rome"), ("S2", "America/New_York")]


def test_readers_get_a_random_key(db):
    ho.add_store(db, "S1", "Milano")
    k1, k2 = ho.add_reader(db, "R1", "S1"), ho.add_reader(db, "R2", "S1", "Till 2")
    assert len(k1) == 32 and k1 != k2
    assert db.execute("SELECT key_hex, acked_seq, pending FROM readers WHERE id='R1'").fetchone() == (k1.hex(), 0, 0)
    with pytest.raises(ho.NotFound):
        ho.add_reader(db, "R3", "S9")
    with pytest.raises(ho.AlreadyExists):
        ho.add_reader(db, "R1", "S1")
    assert db.execute("SELECT count(*) FROM readers").fetchone()[0] == 2


def test_the_provisioning_file_is_ours_only_and_never_overwritten(tmp_path):
    path = str(tmp_path / "prov" / "R1.json")
    key = os.urandom(32)
    ho.write_provisioning(path, "R1", key, "http://10.0.0.5:8000", "S1")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path) as f:
        data = json.load(f)
    assert (data["reader"], data["key"], data["backend"], data["store"]) == ("R1", key.hex(), "http://10.0.0.5:8000", "S1")
    assert data["created"] > 0
    with pytest.raises(FileExistsError):
        ho.write_provisioning(path, "R1", os.urandom(32), "http://x", "S1")
    with open(path) as f:
        assert json.load(f)["key"] == key.hex()


def test_each_rules_change_publishes_a_valid_version(db):
    assert ho.current_rules(db) == (0, None)
    assert ho.add_tier(db, 0, "base", 200) == 1
    assert ho.add_tier(db, 1, "silver", 300, name="Silver") == 2
    assert ho.add_promotion(db, "P1", "category", category="dairy", bp=1000) == 3
    assert ho.add_promotion(db, "P2", "threshold", min_cents=5000, cents=300, tiers=[1],
                            from_t=1700000000, to_t=1700604800) == 4
    assert ho.set_limits(db, card_day_max_cents=9000, default_tier=1) == 5
    version, rules = ho.current_rules(db)
    assert version == 5 == meta_int(db, "rules_version") == rules["version"]
    engine.check_rules(rules)
    assert rules["default_tier"] == 1
    assert rules["offline"]["card_day_max_cents"] == 9000
    assert rules["limits"]["receipt_max_cents"] == ho.DEFAULT_LIMITS["receipt_max_cents"]
    assert [p["id"] for p in rules["promotions"]] == ["P1", "P2"]  # in the order they were added
    assert rules["promotions"][1] == {"id": "P2", "kind": "threshold", "min_cents": 5000, "cents": 300,
                                      "tiers": [1], "from": 1700000000, "to": 1700604800}
    # earlier versions stay as they were published: the audit needs them
    assert ho.rules_at(db, 2)["promotions"] == [] and ho.rules_at(db, 2)["version"] == 2
    assert ho.end_promotion(db, "P1") == 6
    assert [p["id"] for p in ho.current_rules(db)[1]["promotions"]] == ["P2"]
    assert ho.set_tier(db, 1, bp=350) == 7
    assert ho.current_rules(db)[1]["tiers"][1] == {"id": 1, "code": "silver", "bp": 350}


def test_rules_the_engine_refuses_change_nothing(db):
    with pytest.raises(ho.RulesRefused) as e:
        ho.set_limits(db, stale_hours=24)  # no tier yet: rules need at least one
    assert e.value.field == "tiers"
    assert db.execute("SELECT count(*) FROM limits").fetchone()[0] == 0
    ho.add_tier(db, 0, "base", 200)
    with pytest.raises(ho.RulesRefused) as e:
        ho.add_promotion(db, "P1", "sku", bp=1000)  # a SKU promotion without its sku
    assert "sku" in e.value.field
    with pytest.raises(ho.RulesRefused):
        ho.add_promotion(db, "P2", "category", category="x", bp=100, from_t=20, to_t=10)
    with pytest.raises(ho.RulesRefused):
        ho.set_limits(db, default_tier=5)  # not a tier
    assert db.execute("SELECT count(*) FROM promotions").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM limits").fetchone()[0] == 0
    assert ho.current_rules(db)[0] == 1 == db.execute("SELECT count(*) FROM rules_versions").fetchone()[0]
    with pytest.raises(ho.InvalidValue):
        ho.set_limits(db, card_day_max_cents=-1)
    with pytest.raises(ho.InvalidValue):
        ho.set_limits(db, coffee=1)
    with pytest.raises(ho.NotFound):
        ho.end_promotion(db, "nope")


def _versions(db):
    return db.execute("SELECT count(*) FROM rules_versions").fetchone()[0]


def test_each_tier_has_its_own_code(db):
    ho.add_tier(db, 0, "base", 200)
    ho.add_tier(db, 1, "gold", 500)
    with pytest.raises(ho.AlreadyExists) as e:
        ho.add_tier(db, 2, "gold", 600)  # rule names would say tier:gold for both
    assert e.value.field == "code"
    with pytest.raises(ho.AlreadyExists) as e:
        ho.set_tier(db, 0, code="gold")
    assert e.value.field == "code"
    assert _versions(db) == 2
    assert db.execute("SELECT id, code FROM tiers ORDER BY id").fetchall() == [(0, "base"), (1, "gold")]
    assert ho.set_tier(db, 1, code="gold", bp=550) == 3  # its own code is no clash
    assert ho.add_tier(db, 2, "Gold", 600) == 4  # case counts, as in the engine


def test_a_promotion_names_only_existing_tiers_once(db):
    ho.add_tier(db, 0, "base", 200)
    ho.add_tier(db, 1, "silver", 300)
    with pytest.raises(ho.NotFound) as e:
        ho.add_promotion(db, "P1", "category", category="dairy", bp=1000, tiers=[1, 2])
    assert e.value.field == "tiers" and "2" in e.value.message
    with pytest.raises(ho.InvalidValue) as e:
        ho.add_promotion(db, "P1", "category", category="dairy", bp=1000, tiers=[1, 0, 1])
    assert e.value.field == "tiers"
    with pytest.raises(ho.InvalidValue) as e:
        ho.add_promotion(db, "P1", "category", category="dairy", bp=1000, tiers=[])
    assert e.value.field == "tiers"
    assert db.execute("SELECT count(*) FROM promotions").fetchone()[0] == 0 and _versions(db) == 2
    assert ho.add_promotion(db, "P1", "category", category="dairy", bp=1000, tiers=[1, 0]) == 3


def test_text_utf8_cannot_carry_is_refused_before_it_is_stored(db):
    # what Python makes of a command line's Latin-1 bytes: b"caff\xe8" -> "caff\udce8"
    bad = b"caff\xe8".decode("utf-8", "surrogateescape")
    for call, field in ((lambda: ho.add_tier(db, 0, bad, 200), "code"),
                        (lambda: ho.add_tier(db, 0, "base", 200, name=bad), "name")):
        with pytest.raises(ho.InvalidValue) as e:
            call()
        assert e.value.field == field
    ho.add_tier(db, 0, "base", 200)
    for call, field in ((lambda: ho.set_tier(db, 0, code=bad), "code"),
                        (lambda: ho.set_tier(db, 0, name=bad), "name"),
                        (lambda: ho.add_promotion(db, bad, "sku", sku="1", bp=100), "id"),
                        (lambda: ho.add_promotion(db, "P1", "sku", sku=bad, bp=100), "sku"),
                        (lambda: ho.add_promotion(db, "P1", "category", category=bad, bp=100), "category")):
        with pytest.raises(ho.InvalidValue) as e:
            call()
        assert e.value.field == field
    assert db.execute("SELECT count(*) FROM promotions").fetchone()[0] == 0 and _versions(db) == 1
    assert db.execute("SELECT code, name FROM tiers").fetchall() == [("base", "")]


def test_rules_texts_follow_the_one_text_rule(db):
    # control and bidirectional characters come back in every rule name a reader journals
    ho.add_tier(db, 0, "base", 200)
    for text in ("gold\x1b[2J", "gold\u202e", "go\tld"):
        with pytest.raises(ho.InvalidValue) as e:
            ho.add_tier(db, 1, text, 300)
        assert e.value.field == "code"
        with pytest.raises(ho.InvalidValue) as e:
            ho.add_promotion(db, "P1", "category", category=text, bp=100)
        assert e.value.field == "category"
    with i18n.using("en"):
        messages = set()
        for text in ("a\x00", "a\u202e", b"a\xe8".decode("utf-8", "surrogateescape")):
            with pytest.raises(ho.InvalidValue) as e:
                ho.set_tier(db, 0, code=text)
            messages.add(e.value.message)
    assert len(messages) == 3, messages  # each fault says what it is
    assert _versions(db) == 1


def test_the_new_refusals_speak_the_users_language(db):
    ho.add_tier(db, 0, "base", 200)
    bad = b"caff\xe8".decode("utf-8", "surrogateescape")
    calls = (lambda: ho.add_tier(db, 1, "base", 300),
             lambda: ho.add_promotion(db, "P1", "threshold", min_cents=0, bp=100, tiers=[7]),
             lambda: ho.add_promotion(db, "P1", "threshold", min_cents=0, bp=100, tiers=[0, 0]),
             lambda: ho.add_tier(db, 1, bad, 300),
             lambda: ho.add_tier(db, 1, "gold\u202e", 300),
             lambda: ho.add_tier(db, 1, "gold\x07", 300))
    for call in calls:
        said = {}
        for lang in ("en", "it"):
            with i18n.using(lang):
                with pytest.raises(ho.HeadOfficeError) as e:
                    call()
            said[lang] = e.value.message
        assert said["it"] != said["en"], said
    with i18n.using("en"):
        with pytest.raises(ho.NotFound) as e:
            calls[1]()
    assert e.value.message == "no tier 7: add it first (add-tier) or leave it out"


def test_cards_take_directory_versions(db):
    changed, version = ho.import_cards(db, [("6001000000000042", 2), ("0017", 1, "blocked"), ("99", 0, 0)])
    assert (changed, version) == (3, 3)
    # 0017 is card 17: stored without its leading zeros, as pages carry it
    assert db.execute("SELECT card, tier, status, version FROM cards ORDER BY version").fetchall() == [
        ("6001000000000042", 2, 0, 1), ("17", 1, 1, 2), ("99", 0, 0, 3)]
    # unchanged cards take no version; a status left out keeps the card's own
    assert ho.import_cards(db, [("17", 1), ("99", 0), ("6001000000000042", 1)]) == (1, 4)
    assert db.execute("SELECT status FROM cards WHERE card='17'").fetchone() == (1,)
    assert ho.set_card(db, "17", status=0) == 5
    assert ho.set_card(db, "17", status=0) is None
    assert ho.set_card(db, "5", tier=1) == 6
    with pytest.raises(ho.NotFound):
        ho.set_card(db, "6", status=1)
    assert meta_int(db, "directory_version") == 6
    # every state each card was in stays, with its version
    assert db.execute("SELECT version, tier, status FROM card_history WHERE card='17' ORDER BY version"
                      ).fetchall() == [(2, 1, 1), (5, 1, 0)]
    assert db.execute("SELECT version, tier FROM card_history WHERE card='6001000000000042' ORDER BY version"
                      ).fetchall() == [(1, 2), (4, 1)]


def test_a_bad_row_imports_nothing(db):
    with pytest.raises(ho.InvalidValue) as e:
        ho.import_cards(db, [("42", 1), ("12a4", 1)])
    assert e.value.field == "rows[1].card"
    with pytest.raises(ho.InvalidValue) as e:
        ho.import_cards(db, [("42", 1), ("43", 256)])
    assert e.value.field == "rows[1].tier"
    with pytest.raises(ho.InvalidValue) as e:
        ho.import_cards(db, [("42", 1, "lost")])
    assert e.value.field == "rows[0].status"
    with pytest.raises(ho.InvalidValue):
        ho.import_cards(db, [("1" * 20, 1)])
    assert db.execute("SELECT count(*) FROM cards").fetchone()[0] == 0
    assert meta_int(db, "directory_version") == 0


def read_page(db, since, limit, after=0, version=None):
    data = ho.directory_page(db, since, limit, after)
    current = since if version is None else version
    page = delta.parse_page(data, current, len(data))  # what a reader accepts
    return page, [list(e) for e in delta.entries(page["entries"])]


def test_full_load_is_in_numeric_order_page_by_page(db):
    cards = [7, 70, 8, 6001000000000042, 123, 9999999999999999999, 10, 6001000000000017]
    ho.import_cards(db, [(str(c), c % 3) for c in cards])
    ho.set_card(db, "8", status=2)  # removed: not in a full load
    ho.set_card(db, "10", status=1)  # blocked: in it (the blocklist)
    got, after = [], 0
    while True:
        page, entries = read_page(db, 0, 3, after, version=0)
        assert page["from"] == 0 and page["to"] == 10
        got += entries
        if not page["more"]:
            break
        after = entries[-1][0]
    want = sorted(c for c in cards if c != 8)
    assert [e[0] for e in got] == want
    assert [e[2] for e in got if e[0] == 10] == [1]


def test_deltas_page_by_version(db):
    ho.import_cards(db, [(str(c), 1) for c in (30, 10, 20)])  # versions 1..3
    ho.set_card(db, "10", tier=2)                              # 4
    ho.set_card(db, "30", status=2)                            # 5
    # after version 1: card 20 at 3, card 10 at 4 (its change at 2 overtaken), card 30 at 5
    page, entries = read_page(db, 1, 2)
    assert (page["to"], page["more"]) == (4, True)
    assert entries == [[10, 2, 0], [20, 1, 0]]  # sorted by card within the page
    page, entries = read_page(db, 4, 10)
    assert (page["to"], page["more"], entries) == (5, False, [[30, 1, 2]])
    page, entries = read_page(db, 5, 10)
    assert (page["to"], page["more"], entries) == (5, False, [])


def test_a_full_load_of_many_cards(db):
    cards = [6001000000000000 + 7 * i for i in range(5000)]
    ho.import_cards(db, [(str(c), i % 3) for i, c in enumerate(cards)])
    got, after = [], 0
    while True:
        page = decode(ho.directory_page(db, 0, 1000, after))
        got += [int(e[0]) for e in page["entries"]]
        if not page["more"]:
            break
        after = got[-1]
    assert got == cards
