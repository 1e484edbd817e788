"""Customers, cards, consents and the rest written as rows with plain SQL, for the tests
of the customer's rights (the enrolment code comes from another branch).

    cid = add_customer(db, 7, "Mario Rossi", "mario.rossi@example.it", store="S1", t=T0)
    add_card(db, cid, "6001000000000042", tier=1, version=1, t=T0)
    add_receipt(db, "R1", 1, "6001000000000042", t=T0, lines=shop.basket()["lines"])
"""
import json

from loyalty.backend import headoffice
from loyalty.backend.customers import names


def add_store(db, store="S1"):
    if not db.execute("SELECT 1 FROM stores WHERE id=?", [store]).fetchone():
        headoffice.add_store(db, store, "Store " + store, "Europe/Rome")


def add_household(db, hid, name, t):
    db.execute("INSERT INTO households(id, name, created_t) VALUES(?, ?, ?)", [hid, name, t])
    return hid


def add_customer(db, cid, name, contact, t, store="S1", household=None, pseudonym=None, by="desk.anna"):
    add_store(db, store)
    db.execute("INSERT INTO customers(id, pseudonym, name, contact, store_id, household_id, age_ok, "
               "status, created_t, created_by) VALUES(?, ?, ?, ?, ?, ?, 1, 'active', ?, ?)",
               [cid, pseudonym or "C-%012x" % cid, name, contact, store, household, t, by])
    names.set_search_name(db, cid, name)
    return cid


def add_card(db, cid, card, version, t, tier=0, status=0, operator="desk.anna"):
    """The card in the directory at `version` (the meta counter follows), linked to the customer."""
    db.execute("INSERT INTO cards(card, tier, status, version, updated, customer_id) VALUES(?, ?, ?, ?, ?, ?)",
               [card, tier, status, version, t, cid])
    db.execute("INSERT INTO card_history(card, version, tier, status, t) VALUES(?, ?, ?, ?, ?)",
               [card, version, tier, status, t])
    db.execute("UPDATE meta SET value = ? WHERE key = 'directory_version' AND CAST(value AS INTEGER) < ?",
               [str(version), version])
    if cid is not None:
        db.execute("INSERT INTO card_events(card, customer_id, t, event, operator, detail) VALUES(?, ?, ?, 'issued', ?, ?)",
                   [card, cid, t, operator, "issued at the desk"])


def add_notice(db, version, lang, text, t):
    db.execute("INSERT INTO notices(version, lang, text, published_t, published_by) VALUES(?, ?, ?, ?, 'dpo')",
               [version, lang, text, t])


def add_consent(db, cid, purpose, given, t, notice=1, channel="desk", operator="desk.anna"):
    db.execute("INSERT INTO consents(customer_id, purpose, given, t, channel, operator, notice_version) "
               "VALUES(?, ?, ?, ?, ?, ?, ?)", [cid, purpose, given, t, channel, operator, notice])


def add_care_contact(db, cid, t, note, channel="phone", operator="care.luca", reason="complaint", outcome="solved"):
    db.execute("INSERT INTO care_contacts(customer_id, t, channel, operator, reason, note, outcome) "
               "VALUES(?, ?, ?, ?, ?, ?, ?)", [cid, t, channel, operator, reason, note, outcome])


def add_marketing(db, cid, t, campaign, channel="email"):
    db.execute("INSERT INTO marketing_log(customer_id, t, channel, campaign) VALUES(?, ?, ?, ?)",
               [cid, t, channel, campaign])


def add_receipt(db, reader, seq, card, t, day, gross, discount=0, lines=None, folded=None, store="S1", count=None):
    """A sale: with its record's `lines`, or folded (record NULL, `count` lines, folded_t `folded`)."""
    record = None if lines is None else json.dumps({"card": card, "kind": "sale", "lines": lines, "seq": seq})
    db.execute("INSERT INTO receipts(reader_id, seq, store_id, kind, t, day, receipt, card, tier, gross, discount, "
               "rules, hash, record, lines, folded_t, audit) VALUES(?, ?, ?, 'sale', ?, ?, ?, ?, 0, ?, ?, 1, ?, ?, ?, ?, 'ok')",
               [reader, seq, store, t, day, "T-%d" % seq, card, gross, discount, "h%d" % seq, record,
                len(lines) if lines is not None else count, folded])
