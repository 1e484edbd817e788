"""Customers and their cards: enrolment with minimal data, the age check, no consent
ticked for the customer, versioned notices, consent history, card replacement, closing,
households, and bad input refused naming the field, in Italian and in English."""
import pytest

from loyalty.backend import headoffice
from loyalty.backend.customers import cards, consents, enrol, fields, notices
from loyalty.i18n import using
from loyalty.protocol import delta
from loyalty.protocol.canonical import decode

NOW = 1_780_000_000
CARD, NEW = "6001000000000042", "6001000000000043"


@pytest.fixture
def desk(db, shop_rules):  # tiers 0, 1 and 2
    headoffice.add_store(db, "S1", "Milano Centro")
    return notices.publish(db, {"it": "Informativa v1", "en": "Notice v1"}, "dpo", NOW)


def enrol_one(db, card=CARD, tier=2, age_ok=True, given=("scheme",), contact="maria@example.it", **kw):
    return enrol.enrol(db, "Maria Rossi", contact, "S1", card, tier, age_ok, set(given), "desk", "anna", 1,
                       now=NOW, **kw)


def rows(db, sql, params=()):
    return [tuple(r) for r in db.execute(sql, list(params)).fetchall()]


def test_the_customers_table_holds_only_the_minimal_data(db):
    # DESIGN.md section 7: name, one contact, the store; no profession, education, family size
    cols = [r[1] for r in db.execute("PRAGMA table_info(customers)")]
    assert cols == ["id", "pseudonym", "name", "contact", "store_id", "household_id", "age_ok", "status",
                    "created_t", "created_by", "updated_t", "closed_t", "erased_t", "name_key"]


def test_enrolment_stores_the_person_the_card_and_a_row_per_purpose(db, desk):
    cid = enrol_one(db, given=("scheme", "marketing"))
    name, contact, store, age_ok, status, pseudonym = db.execute(
        "SELECT name, contact, store_id, age_ok, status, pseudonym FROM customers WHERE id=?", [cid]).fetchone()
    assert (name, contact, store, age_ok, status) == ("Maria Rossi", "maria@example.it", "S1", 1, "active")
    assert len(pseudonym) == 14 and pseudonym.startswith("C-") and int(pseudonym[2:], 16) >= 0
    assert rows(db, "SELECT card, tier, status, customer_id FROM cards") == [(CARD, 2, 0, cid)]
    assert rows(db, "SELECT purpose, given, t, channel, operator, notice_version FROM consents ORDER BY id") == [
        ("scheme", 1, NOW, "desk", "anna", 1), ("profiling", 0, NOW, "desk", "anna", 1),
        ("marketing", 1, NOW, "desk", "anna", 1)]
    assert consents.in_force(db, cid) == {"scheme": True, "profiling": False, "marketing": True}
    assert rows(db, "SELECT card, event, operator FROM card_events") == [(CARD, "issued", "anna")]
    assert ("enrol", pseudonym) in rows(db, "SELECT action, subject FROM trail")
    # the trail names the pseudonym, never the person
    assert not [r for r in rows(db, "SELECT * FROM trail") if "Maria" in str(r) or CARD in str(r)]


def test_a_phone_number_is_kept_without_its_spaces(db, desk):
    cid = enrol_one(db, contact=" +39 02 1234-5678 ")
    assert db.execute("SELECT contact FROM customers WHERE id=?", [cid]).fetchone()[0] == "+390212345678"


def test_an_existing_card_that_is_nobodys_is_linked_and_keeps_its_tier(db, desk):
    headoffice.set_card(db, CARD, tier=0)
    cid = enrol_one(db, tier=None)
    assert rows(db, "SELECT tier, customer_id FROM cards") == [(0, cid)]
    assert rows(db, "SELECT event FROM card_events") == [("linked",)]
    with pytest.raises(headoffice.InvalidValue) as e:
        enrol_one(db, tier=None)  # now it is Maria's
    assert e.value.field == "card"


def test_under_14_cannot_consent_to_profiling_or_marketing(db, desk):
    for purpose in ("profiling", "marketing"):
        with pytest.raises(headoffice.InvalidValue) as e:
            enrol_one(db, age_ok=False, given=("scheme", purpose))
        assert e.value.field == purpose
    assert rows(db, "SELECT count(*) FROM customers") == [(0,)]
    cid = enrol_one(db, age_ok=False)  # joining the scheme alone is fine
    with pytest.raises(headoffice.InvalidValue) as e:
        consents.give(db, str(cid), "marketing", "web", "self", 1, NOW)
    assert e.value.field == "marketing"
    assert consents.in_force(db, cid)["marketing"] is False


def test_joining_needs_the_scheme_consent(db, desk):
    with pytest.raises(headoffice.InvalidValue) as e:
        enrol_one(db, given=("marketing",))
    assert e.value.field == "scheme"


def test_consent_history_is_kept_and_the_newest_row_is_in_force(db, desk):
    cid = enrol_one(db)
    v2 = notices.publish(db, {"it": "Informativa v2"}, "dpo", NOW + 5)
    consents.give(db, CARD, "profiling", "web", "self", v2, NOW + 10)
    assert consents.in_force(db, cid)["profiling"] is True
    consents.withdraw(db, str(cid), "profiling", "phone", "care.luca", v2, NOW + 20)
    assert consents.in_force(db, cid)["profiling"] is False
    consents.give(db, str(cid), "profiling", "desk", "anna", 1, NOW + 30)
    assert consents.in_force(db, cid) == {"scheme": True, "profiling": True, "marketing": False}
    assert rows(db, "SELECT given, t, channel, operator, notice_version FROM consents WHERE purpose='profiling' "
                    "ORDER BY id") == [(0, NOW, "desk", "anna", 1), (1, NOW + 10, "web", "self", 2),
                                       (0, NOW + 20, "phone", "care.luca", 2), (1, NOW + 30, "desk", "anna", 1)]
    assert [c[0] for c in rows(db, "SELECT customer_id FROM consents WHERE id IN (%s)"
                                   % consents.consenting_sql("profiling"))] == [cid]


def test_objection_to_marketing_withdraws_it_with_the_reason_in_the_trail(db, desk):
    cid = enrol_one(db, given=("scheme", "marketing"))
    consents.object_marketing(db, str(cid), "care.luca", "phoned: no more mail", NOW + 60)
    assert consents.in_force(db, cid)["marketing"] is False
    assert rows(db, "SELECT actor, action, reason FROM trail WHERE t=?", [NOW + 60]) == [
        ("care.luca", "consent.marketing.withdrawn", "phoned: no more mail")]


def test_notice_versions_count_up_and_a_published_text_stays_as_it_was(db, desk):
    assert notices.current(db) == 1
    assert notices.publish(db, {"it": "Informativa v2", "en": None}, "dpo", NOW + 1) == 2
    assert notices.current(db) == 2
    assert notices.texts(db, 1) == {"it": "Informativa v1", "en": "Notice v1"}
    assert notices.texts(db, 2) == {"it": "Informativa v2"}
    with pytest.raises(headoffice.InvalidValue) as e:
        notices.publish(db, {"en": "English only"}, "dpo", NOW)
    assert e.value.field == "text_it"
    assert notices.current(db) == 2
    # no function changes or deletes a version: publishing again adds one
    assert [n for n in dir(notices) if n.startswith(("update", "delete", "edit", "remove"))] == []


def test_replacing_a_lost_card_blocks_it_and_carries_tier_and_customer(db, desk, signed_reader):
    cid = enrol_one(db)
    before = headoffice.directory_page(db, since=0, limit=10)
    version = cards.replace_card(db, CARD, NEW, "anna", NOW + 100)
    # the directory page readers fetch: the old card blocked, the new one active at tier 2
    page = decode(headoffice.directory_page(db, since=decode(before)["to"], limit=10))
    assert page["entries"] == [[CARD, 2, delta.BLOCKED], [NEW, 2, delta.ACTIVE]]
    assert page["to"] == version
    assert rows(db, "SELECT card, customer_id FROM cards ORDER BY card") == [(CARD, cid), (NEW, cid)]
    assert rows(db, "SELECT card, event, detail FROM card_events WHERE t=? ORDER BY id", [NOW + 100]) == [
        (CARD, "replaced", "by " + NEW), (NEW, "issued", "replaces " + CARD)]
    # receipts of both cards reach the customer through cards.customer_id
    reader = signed_reader("R1", store="S1")
    ruleset = headoffice.current_rules(db)[1]
    resp, _ = reader.send([reader.sale(ruleset, card=CARD, tier=2), reader.sale(ruleset, card=NEW, tier=2)])
    assert resp.status_code == 200, resp.data
    assert rows(db, "SELECT r.card FROM receipts r JOIN cards c ON c.card = r.card WHERE c.customer_id = ? "
                    "ORDER BY r.seq", [cid]) == [(CARD,), (NEW,)]


def test_block_unblock_and_close(db, desk):
    cid = enrol_one(db)
    assert cards.block_card(db, CARD, "anna", "stolen", NOW + 1) is not None
    assert cards.block_card(db, CARD, "anna", "stolen", NOW + 2) is None  # already
    assert rows(db, "SELECT status FROM cards") == [(delta.BLOCKED,)]
    cards.unblock_card(db, CARD, "anna", NOW + 3)
    enrol.close_customer(db, str(cid), "anna", "asked at the desk", NOW + 4)
    assert rows(db, "SELECT status, closed_t FROM customers") == [("closed", NOW + 4)]
    assert rows(db, "SELECT status FROM cards") == [(delta.BLOCKED,)]
    assert [r[0] for r in rows(db, "SELECT event FROM card_events ORDER BY id")] == [
        "issued", "blocked", "unblocked", "closed"]
    with pytest.raises(headoffice.InvalidValue) as e:
        consents.give(db, CARD, "marketing", "desk", "anna", 1, NOW + 5)
    assert e.value.field == "customer"


def test_households_group_customers_with_their_own_consents(db, desk):
    a = enrol_one(db, given=("scheme", "marketing"))
    h = enrol.add_household(db, "Rossi", "anna", NOW)
    b = enrol_one(db, card=NEW, household=h)
    enrol.join_household(db, str(a), h, "anna", NOW)
    assert rows(db, "SELECT id FROM customers WHERE household_id=? ORDER BY id", [h]) == [(a,), (b,)]
    assert consents.in_force(db, a)["marketing"] and not consents.in_force(db, b)["marketing"]
    with pytest.raises(headoffice.NotFound) as e:
        enrol.join_household(db, str(a), h + 1, "anna", NOW)
    assert e.value.field == "household"


def test_a_customer_is_found_by_id_pseudonym_or_card(db, desk):
    cid = enrol_one(db)
    pseudonym = db.execute("SELECT pseudonym FROM customers").fetchone()[0]
    assert {fields.customer(db, ref)["id"] for ref in (str(cid), pseudonym, CARD, "card:" + CARD)} == {cid}
    for ref, error in (("999", headoffice.NotFound), (NEW, headoffice.NotFound), ("maria", headoffice.InvalidValue)):
        with pytest.raises(error) as e:
            fields.customer(db, ref)
        assert e.value.field == "customer"


BAD_ENROL = [
    ({"name": ""}, "name"), ({"name": "Maria\x1b[2J"}, "name"), ({"name": "x" * 101}, "name"),
    ({"contact": "maria@"}, "contact"), ({"contact": "12"}, "contact"), ({"contact": "+39 02 abc"}, "contact"),
    ({"store_id": "S9"}, "store"), ({"card": "60x1"}, "card"), ({"tier": 7}, "tier"),
    ({"channel": "fax"}, "channel"), ({"operator": ""}, "operator"), ({"notice_version": 9}, "notice"),
    ({"age_ok": "maybe"}, "age_ok"),
]


@pytest.mark.parametrize("change, field", BAD_ENROL)
def test_bad_enrolment_names_the_field_and_stores_nothing(db, desk, change, field):
    args = dict(name="Maria Rossi", contact="maria@example.it", store_id="S1", card=CARD, tier=2, age_ok=True,
                consents={"scheme"}, channel="desk", operator="anna", notice_version=1)
    args.update(change)
    with pytest.raises(headoffice.HeadOfficeError) as e:
        enrol.enrol(db, now=NOW, **args)
    assert e.value.field == field
    assert rows(db, "SELECT (SELECT count(*) FROM customers) + (SELECT count(*) FROM cards) + "
                    "(SELECT count(*) FROM consents) + (SELECT count(*) FROM card_events) + "
                    "(SELECT count(*) FROM trail)") == [(0,)]


def test_errors_speak_italian_and_english(db, desk):
    for lang, words in (("it", "indirizzo e-mail"), ("en", "e-mail address")):
        with using(lang), pytest.raises(headoffice.InvalidValue) as e:
            enrol_one(db, contact="nobody")
        assert str(e.value).startswith("contact: ") and words in str(e.value), str(e.value)


def test_withdrawing_profiling_folds_the_receipts_past_the_window_at_once(db, desk, signed_reader):
    cid = enrol_one(db, given=("scheme", "profiling"))
    reader = signed_reader("R1", "S1", tz="UTC")
    line = [{"sku": "8001", "cat": "latte", "qty": 1, "price": 150}]
    day = 86400
    old = reader.record("sale", t=NOW - 40 * day, card=CARD, lines=line, gross=150)
    recent = reader.record("sale", t=NOW - 10 * day, card=CARD, lines=line, gross=150)
    assert reader.send([old, recent])[0].status_code == 200
    db.execute("UPDATE receipts SET audit = 'ok'")
    consents.withdraw(db, str(cid), "profiling", "phone", "care.luca", 1, NOW, return_window_days=30)
    # the receipt 40 days old is past the 30-day window: its lines went at the withdrawal;
    # the one 10 days old keeps them until its window closes (a return may still come)
    assert rows(db, "SELECT seq, record IS NULL, folded_t FROM receipts ORDER BY seq") == [(1, 1, NOW), (2, 0, None)]
    assert rows(db, "SELECT sku, qty FROM product_day_totals") == [("8001", 1)]
