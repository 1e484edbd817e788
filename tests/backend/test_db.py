"""The schema's numbered migrations: an old database is brought forward with its data."""
import pytest

from loyalty.backend import db as dbmod


def test_a_version_1_database_is_migrated_and_keeps_its_rows(tmp_path):
    db = dbmod.connect(tmp_path / "old.db")
    try:
        with db.conn:
            db.execute("BEGIN IMMEDIATE")
            dbmod.MIGRATIONS[0](db)
            db["meta"].upsert({"key": "schema_version", "value": "1"}, pk="key")
        db.execute("INSERT INTO refusals(reader_id, t, endpoint, http_status, code) VALUES('R1', 5, 'batch', 401, 'batch.signature')")
        db.execute("INSERT INTO cards(card, tier, status, version, updated) VALUES('6001000000000042', 2, 0, 1, 5)")
        assert dbmod.schema_version(db) == 1
        with pytest.raises(dbmod.SchemaError, match="init-db"):
            dbmod.require_schema(db)
        assert dbmod.migrate(db) == len(dbmod.MIGRATIONS) >= 2
        dbmod.require_schema(db)
        assert db.execute("SELECT reader_id, code, verified FROM refusals").fetchall() == [("R1", "batch.signature", None)]
        assert db.execute("SELECT card, tier FROM cards").fetchall() == [("6001000000000042", 2)]
        # the card's history starts with the state it had
        assert db.execute("SELECT card, version, tier, status, t FROM card_history").fetchall() == [
            ("6001000000000042", 1, 2, 0, 5)]
        plan = " ".join(str(r) for r in db.execute(
            "EXPLAIN QUERY PLAN SELECT card FROM cards WHERE card > '6' AND length(card) = 16 ORDER BY card").fetchall())
        assert "cards_by_number" in plan
    finally:
        db.conn.close()


def test_a_newer_database_is_refused(tmp_path):
    db = dbmod.connect(tmp_path / "new.db")
    try:
        dbmod.migrate(db)
        dbmod.set_meta(db, "schema_version", len(dbmod.MIGRATIONS) + 1)
        with pytest.raises(dbmod.SchemaError, match="newer"):
            dbmod.migrate(db)
    finally:
        db.conn.close()


def test_migrations_11_and_12_give_roles_to_the_logins_and_search_keys_to_the_names(tmp_path):
    db = dbmod.connect(tmp_path / "v10.db")
    try:
        dbmod.migrate(db, to=10)
        with dbmod.transaction(db):
            db.execute("INSERT INTO stores(id, name, tz) VALUES('S1', 'Centro', 'Europe/Rome')")
            db.execute("INSERT INTO managers(username, password_hash, store_id, created) VALUES"
                       "('sede', 'x', NULL, 0), ('giulia', 'x', 'S1', 0)")
            db.execute("INSERT INTO customers(pseudonym, name, store_id, created_t) VALUES"
                       "('C-1', 'D’Angelo  Niccolò', 'S1', 0), ('C-2', NULL, 'S1', 0)")
        dbmod.migrate(db)
        assert db.execute("SELECT username, role FROM managers ORDER BY username").fetchall() == [
            ("giulia", "store_manager"), ("sede", "head_office")]
        assert db.execute("SELECT pseudonym, name_key FROM customers ORDER BY id").fetchall() == [
            ("C-1", "dangelo niccolo"), ("C-2", None)]
        # schema 12: each word of the name, for search
        assert db.execute("SELECT word, customer_id FROM customer_words ORDER BY word").fetchall() == [
            ("dangelo", 1), ("niccolo", 1)]
    finally:
        db.conn.close()
