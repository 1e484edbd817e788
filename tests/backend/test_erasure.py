"""Erasure (backend/privacy/erasure.py), as the issue asks it to be proved: after the
erasure and a checkpoint, a raw byte scan of the database file, its -wal and -shm, and
every export finds neither the name, nor the contact, nor the card number (as text in
ASCII and UTF-16, and as the 8-byte big-endian integer readers use); a receipt for the
erased card synced afterwards through the signed sync API is stored anonymised; readers
behind get the card REMOVED in a delta page."""
import json
import os

import pytest

from loyalty.backend.checks import name_key

from loyalty.backend.db import connect
from loyalty.backend.headoffice.common import InvalidValue
from loyalty.backend.privacy import erasure, removals, tombstones
from loyalty.protocol.canonical import decode
from loyalty.testing import shop
from customerfixtures import add_card, add_care_contact, add_consent, add_customer, add_household, add_notice

NAME = "Ermenegilda Quartapelle"
CONTACT = "ermenegilda.q@example.it"
CARD = "6001987654321098"
KEPT_CARD = "6001000000000042"  # another customer's: stays
T0 = 1793611800


def needles():
    """Every form the scan looks for."""
    found = {}
    forms = [("name", NAME), ("name as search keeps it", name_key(NAME)), ("contact", CONTACT), ("card", CARD)]
    forms += [("a word of the name, as search indexes it", w) for w in name_key(NAME).split()]
    for label, text in forms:
        for enc in ("ascii", "utf-16-le", "utf-16-be"):
            found["%s %s" % (label, enc)] = text.encode(enc)
    found["card u64be"] = int(CARD).to_bytes(8, "big")
    return found


def scan(paths):
    """[(file, needle)] of every needle found in the raw bytes of these files."""
    hits = []
    for path in paths:
        if os.path.exists(path):
            with open(path, "rb") as f:
                raw = f.read()
            hits += [(os.path.basename(path), label) for label, b in needles().items() if b in raw]
    return hits


@pytest.fixture
def shop_floor(app, db, signed_reader):
    reader = signed_reader("R1", "S1")
    add_household(db, 4, "Famiglia Quartapelle", T0)
    add_customer(db, 7, NAME, CONTACT, T0, household=4, pseudonym="C-erme")
    add_customer(db, 8, "Anna Bianchi", "anna@example.it", T0, pseudonym="C-anna")
    add_card(db, 7, CARD, 1, T0, tier=1)
    add_card(db, 8, KEPT_CARD, 2, T0)
    db.execute("UPDATE card_events SET detail = ? WHERE card = ?", ["given to " + NAME, CARD])
    db.execute("INSERT INTO card_events(card, customer_id, t, event, operator) VALUES(?, NULL, ?, 'issued', 'desk')",
               [CARD, T0 - 60])  # before it was anybody's
    add_notice(db, 1, "it", "Informativa v1", T0)
    add_consent(db, 7, "scheme", 1, T0)
    add_consent(db, 7, "marketing", 1, T0)
    add_care_contact(db, 7, T0, "%s called from %s" % (NAME, CONTACT))
    db.execute("INSERT INTO shopper_codes(customer_id, code_hash, t, expires_t) VALUES(7, 'h', ?, ?)", [T0, T0 + 600])
    lines = shop.basket()["lines"]
    for card in (CARD, CARD, KEPT_CARD):
        r, _ = reader.send([reader.record("sale", card=card, tier=0, lines=lines, gross=997)])
        assert r.status_code == 200, r.data
    return reader


def database_files(app):
    path = app.config["DATABASE"]
    return [path, path + "-wal", path + "-shm"]


def test_erasure_leaves_no_trace_in_the_files_and_anonymises_late_receipts(app, db, runner, shop_floor, tmp_path):
    reader = shop_floor
    exports = os.path.join(app.instance_path, "exports")
    for fmt in ("json", "csv"):  # kept in the instance, by default
        r = runner.invoke(args=["customer-export", "7", "--format", fmt, "--actor", "care.anna"])
        assert r.exit_code == 0, r.output
    assert len(os.listdir(exports)) == 2 and scan([os.path.join(exports, n) for n in os.listdir(exports)])
    assert scan(database_files(app))  # the scan finds what is there
    before = db.execute("SELECT receipts, gross FROM day_totals").fetchall()
    products = db.execute("SELECT sum(qty), sum(lines) FROM product_day_totals").fetchone()
    assert products == (None, None)

    r = runner.invoke(args=["customer-erase", "7", "--actor", "care.anna", "--reason", "richiesta via mail"],
                      input="y\n")
    assert r.exit_code == 0, r.output
    assert "2 receipts anonymised" in r.output and "2 exports" in r.output
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    after = [str(tmp_path / "after.json"), str(tmp_path / "after.csv")]
    for path in after:
        r = runner.invoke(args=["customer-export", "7", "--format", path[-4:].lstrip("."), "--out", path,
                                "--actor", "care.anna"])
        assert r.exit_code == 0, r.output
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    files = database_files(app) + after + [os.path.join(exports, n) for n in os.listdir(exports)]
    assert os.listdir(exports) == []
    assert scan(files) == []

    # what stays: figures, the consent history, the trail under the pseudonym
    assert db.execute("SELECT name, contact, status, household_id FROM customers WHERE id = 7").fetchone() == (
        None, None, "erased", None)
    assert db.execute("SELECT count(*) FROM households").fetchone()[0] == 0
    assert db.execute("SELECT card, record IS NULL, lines, audit FROM receipts ORDER BY seq").fetchall() == [
        (None, 1, 3, "erased"), (None, 1, 3, "erased"), (KEPT_CARD, 0, 3, None)]  # the audit can no longer
    assert db.execute("SELECT receipts, gross FROM day_totals").fetchall() == before
    # the two folded sales: 2 x (2 milk + 1 coffee + 3 bread), 3 lines each
    assert db.execute("SELECT sum(qty), sum(lines) FROM product_day_totals").fetchone() == (12, 6)
    assert db.execute("SELECT purpose, given FROM consents WHERE customer_id = 7 ORDER BY id").fetchall() == [
        ("scheme", 1), ("marketing", 1)]
    assert db.execute("SELECT count(*) FROM care_contacts WHERE customer_id = 7").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM shopper_codes WHERE customer_id = 7").fetchone()[0] == 0
    assert db.execute("SELECT card, detail FROM card_events WHERE customer_id = 7").fetchall() == [(None, None)]
    assert db.execute("SELECT actor, action, subject, reason FROM trail WHERE action = 'erase'").fetchall() == [
        ("care.anna", "erase", "C-erme", "richiesta via mail")]
    assert db.execute("SELECT card FROM cards").fetchall() == [(KEPT_CARD,)]
    key = app.config["ERASURE_KEY"]
    assert tombstones.buried(db, key, [CARD, "0" + CARD, KEPT_CARD]) == {CARD, "0" + CARD}

    # a reader that was offline syncs a sale of the erased card: stored anonymised
    r, _ = reader.send([reader.record("sale", card=CARD, tier=1, lines=shop.basket()["lines"], gross=997)])
    assert r.status_code == 200 and decode(r.data)["ack"] == 4
    assert db.execute("SELECT card, record, lines, folded_t IS NOT NULL, audit, gross FROM receipts WHERE seq = 4"
                      ).fetchone() == (None, None, 3, 1, "erased", 997)
    assert db.execute("SELECT sum(receipts), sum(gross) FROM day_totals").fetchone() == (4, 4 * 997)
    assert db.execute("SELECT sum(qty), sum(lines) FROM product_day_totals").fetchone() == (18, 9)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert scan(database_files(app)) == []


def test_readers_behind_get_the_card_removed(app, db, runner, shop_floor):
    reader = shop_floor
    r = runner.invoke(args=["customer-erase", "--card", CARD, "--actor", "care.anna", "--reason", "x", "--yes"])
    assert r.exit_code == 0, r.output
    # the card took version 3: the removal; a reader at version 1 gets it with the other change
    page = decode(reader.get("/api/v1/sync/directory?since=1&limit=100").data)
    assert page == {"entries": [[KEPT_CARD, 0, 0], [CARD, 0, 2]], "from": 1, "more": False, "to": 3}
    page = decode(reader.get("/api/v1/sync/directory?since=2&limit=1").data)
    assert page == {"entries": [[CARD, 0, 2]], "from": 2, "more": False, "to": 3}
    full = decode(reader.get("/api/v1/sync/directory?since=0&limit=100").data)
    assert full["entries"] == [[KEPT_CARD, 0, 0]] and full["to"] == 3
    sealed, = db.execute("SELECT sealed FROM directory_removals WHERE version = 3").fetchone()
    assert CARD not in sealed and int(CARD).to_bytes(8, "big").hex() not in sealed
    assert removals.unseal(app.config["ERASURE_KEY"], 3, sealed) == CARD
    with pytest.raises(removals.SealBroken):
        removals.unseal(app.config["ERASURE_KEY"], 2, sealed)  # moved to another version
    with pytest.raises(removals.SealBroken):
        removals.unseal(b"another instance's key", 3, sealed)


def test_removals_go_once_every_reader_has_them_or_after_90_days(db, shop_floor):
    key = b"k" * 32
    db.execute("BEGIN")
    v = removals.remove_card(db, key, KEPT_CARD, T0)
    db.execute("COMMIT")
    assert v == 3
    db.execute("UPDATE readers SET directory_version = 2, last_contact = ?", [T0])
    assert removals.prune(db, T0 + 86400) == 0                       # R1 is behind
    db.execute("INSERT INTO readers(id, store_id, key_hex, directory_version, last_contact) "
               "VALUES('R2', 'S1', '00', 0, ?)", [T0 - 31 * 86400])  # silent for 31 days: not waited for
    db.execute("UPDATE readers SET directory_version = 3 WHERE id = 'R1'")
    assert removals.prune(db, T0 + 86400) == 1
    db.execute("BEGIN")
    removals.remove_card(db, key, CARD, T0)
    db.execute("COMMIT")
    db.execute("UPDATE readers SET last_contact = ? WHERE id = 'R1'", [T0 + 88 * 86400])
    assert removals.prune(db, T0 + 89 * 86400) == 0                  # R1 at 3, the removal is 4
    assert removals.prune(db, T0 + 90 * 86400 + 1) == 1


def test_erasing_twice_is_refused_and_writes_nothing(app, db, shop_floor):
    key = app.config["ERASURE_KEY"]
    # this SQLite may be built with secure_delete on: off here, erase turns it on itself
    db.execute("PRAGMA secure_delete=OFF")
    erasure.erase(db, 7, "care.anna", "richiesta", T0 + 10, key)
    assert scan(database_files(app)) == []
    trail = db.execute("SELECT count(*) FROM trail").fetchone()[0]
    version = db.execute("SELECT value FROM meta WHERE key = 'directory_version'").fetchone()
    with pytest.raises(InvalidValue) as e:
        erasure.erase(db, 7, "care.anna", "again", T0 + 20, key)
    assert e.value.field == "customer_id"
    assert db.execute("SELECT count(*) FROM trail").fetchone()[0] == trail
    assert db.execute("SELECT value FROM meta WHERE key = 'directory_version'").fetchone() == version
    assert db.execute("SELECT secure_delete FROM pragma_secure_delete").fetchone()[0] == 0  # as it was


def test_erase_command_asks_and_names_the_field(runner, db, shop_floor):
    r = runner.invoke(args=["customer-erase", "7", "--actor", "care.anna", "--reason", "x"], input="n\n")
    assert r.exit_code == 1 and "nothing was erased" in r.output
    assert db.execute("SELECT status FROM customers WHERE id = 7").fetchone()[0] == "active"
    r = runner.invoke(args=["customer-erase", "70", "--actor", "care.anna", "--reason", "x", "--yes"])
    assert r.exit_code == 1 and "customer_id: no customer 70" in r.output
    r = runner.invoke(args=["customer-erase", "7", "--actor", "care.anna", "--reason", "", "--yes"])
    assert r.exit_code == 1 and "reason:" in r.output
    assert db.execute("SELECT status FROM customers WHERE id = 7").fetchone()[0] == "active"


def test_quarantined_records_lose_the_card(app, db, shop_floor):
    record = '{"card":"0%s","kind":"sale","seq":9,"tier":"x"}' % CARD
    db.execute("INSERT INTO quarantine(reader_id, seq, hash, t, code, field, detail, acked_t, record) "
               "VALUES('R1', 9, 'h', ?, 'batch.record', 'record.tier', 'must be an integer', ?, ?)", [T0, T0, record])
    db.execute("INSERT INTO quarantine(reader_id, seq, hash, t, code, field, detail, acked_t, record) "
               "VALUES('R1', 10, 'h', ?, 'batch.record', 'record.tier', 'x', ?, ?)",
               [T0, T0, '{"card":"1%s","kind":"sale"}' % CARD])  # another card that contains its digits
    erasure.erase(db, 7, "care.anna", "richiesta", T0 + 10, app.config["ERASURE_KEY"])
    assert db.execute("SELECT seq, record FROM quarantine ORDER BY seq").fetchall() == [
        (9, '{"card":"","kind":"sale","seq":9,"tier":"x"}'), (10, '{"card":"1%s","kind":"sale"}' % CARD)]


def test_a_seal_the_key_no_longer_opens_passes_its_version_without_an_entry(app, db, runner, shop_floor):
    reader = shop_floor
    r = runner.invoke(args=["customer-erase", "--card", CARD, "--actor", "care.anna", "--reason", "x", "--yes"])
    assert r.exit_code == 0, r.output
    # the erasure key replaced after a breach (docs/privacy.md, section 7): the reader at
    # version 2 is not stuck on a page that cannot be made; it moves to version 3
    app.config["ERASURE_KEY"] = b"the new key after a breach"
    page = decode(reader.get("/api/v1/sync/directory?since=2&limit=100").data)
    assert page == {"entries": [], "from": 2, "more": False, "to": 3}
    page = decode(reader.get("/api/v1/sync/directory?since=1&limit=100").data)
    assert page == {"entries": [[KEPT_CARD, 0, 0]], "from": 1, "more": False, "to": 3}


def test_an_erasure_committed_while_a_batch_is_checked_still_anonymises_it(app, db, shop_floor):
    """The tombstones are looked up under the write lock, not when the batch is checked:
    an erasure that commits in between must not let the card's receipt in whole."""
    from loyalty.backend.sync import ingest
    from loyalty.protocol.records import batch_body
    reader = shop_floor
    body = batch_body("R1", [reader.record("sale", card=CARD, tier=1, lines=shop.basket()["lines"], gross=997)],
                      {"pending": 1})
    stored = ingest.load_reader(db, "R1")
    checked = ingest._Checked(db, stored, body, stored["acked_seq"], stored["acked_hash"])
    erasure.erase(db, 7, "care.anna", "richiesta", T0 + 10, app.config["ERASURE_KEY"])  # meanwhile
    ingest._store(db, checked, stored, body, "00000000000000aa", T0 + 20, 0, 300, None, app.config["ERASURE_KEY"])
    assert db.execute("SELECT card, record, audit FROM receipts WHERE seq = 4").fetchone() == (None, None, "erased")
