"""The backend's database: SQLite through sqlite-utils, in WAL mode, with its schema.

The schema is created and changed only by `migrate()` (the `init-db` command runs it),
one numbered step at a time, each recorded in the `meta` table, so an old database is
brought forward and a new one built with the same steps.

    db = connect("instance/loyalty.db")   # sqlite_utils.Database, WAL, foreign keys on
    migrate(db)                             # -> the schema version now in force

Tables (money in cents, times in epoch seconds UTC, days as store-local YYYY-MM-DD):
  meta           key -> value: schema_version, rules_version, directory_version,
                 card_keys_version
  stores         id, name, tz (IANA zone: days and the dashboard's times are local)
  readers        id, store_id, key_hex, and what the reader last told us (sync state)
  receipts       one row per journal record, exactly once by (reader_id, seq)
  day_totals     per store and local day: sales count, gross, discount (kept at ingestion)
  batches        every batch POST: accepted or refused, with its reason
  refusals       every refused sync request, also of unknown readers and GETs
  quarantine     records a reader journaled that fail the schema: refused once, then
                 acknowledged and kept apart from receipts for a person to judge
  nonces         (reader_id, nonce) seen within the timestamp window: replays refused
  reader_samples pending receipts per reader over time (the reader page's chart)
  cards          the card directory; every change takes the next directory version
  card_history   every state each card was in (card, version, tier, status, t)
  tiers, promotions, limits   head office's rules; each change publishes rules_versions
  rules_versions every rules object readers were ever given, by version (for the audit)
  card_epochs    the issuer key of each card key epoch (docs/cards.md)
  managers       dashboard logins; store_id NULL = head office (sees every store); each
                 manager's language (NULL: the backend's default)

The customer side (docs/privacy.md; DESIGN.md section 7), schema 9:
  customers      one person: name, one contact, enrolling store, whether the desk saw
                 them to be at least 14 (needed for profiling and marketing consent),
                 household, status (active / closed / erased); `pseudonym` names them in
                 the audit trail and the access log, so those never hold the person
  households     groups customers; each member keeps their own consents
  cards.customer_id  whose card it is (NULL: not linked to anybody)
  card_events    what happened to a card, for the customer's story (issued, linked,
                 replaced, blocked, unblocked, closed), with who and when
  notices        the privacy notice (informativa) texts by version and language, kept for ever
  consents       every consent given or withdrawn: customer, purpose (scheme, profiling,
                 marketing), given 1/0, time, channel (desk, web, phone), operator, notice
                 version; the newest row per customer and purpose is in force
  product_day_totals  per store, local day, SKU and category: quantity, gross, discount
                 and lines folded out of receipts (nothing in it reaches a card)
  receipts.lines     how many lines the receipt had (stays when its lines are folded)
  receipts.folded_t  when its lines left it (record NULL from then on)
  care_contacts  customer care's contacts: channel, operator, reason, note, outcome
  marketing_log  marketing messages sent to a customer (marketing data: 24 months)
  trail          the audit trail of customer data: who, when, what, why, about which
                 pseudonym
  views          every view of a customer's data by staff: who, when, which pseudonym
  directory_removals  the cards of erased customers readers must still drop, sealed
                 (docs/privacy.md), by the directory version of their removal
  shopper_codes  the one-time codes shoppers sign in with (a hash, never the code), schema 11
  managers.role  head_office / store_manager / care (schema 11); customers.name_key: the
                 name as search compares it; readers.disabled_t: taken out by head office
  customer_words each word of each customer's name, for search (schema 12)
  tombstones     keyed hashes (never the number) of the cards of erased customers: a
                 receipt a reader syncs late for such a card is anonymised on arrival

Schema 10: receipts_unfolded, an index of the receipts still holding lines by time, and
the fold of every receipt already stored that was due (backend/privacy/minimise.py).
"""
import contextlib
import os
import sqlite3

import sqlite_utils

from loyalty.i18n import _
from loyalty.protocol.records import GENESIS  # the chain's start: the acked hash of a new reader

BUSY_MS = 10000  # a writer waits this long for another's transaction (batches are short)


class SchemaError(Exception):
    """The database's schema is newer than this code knows, or was not created."""


def connect(path):
    """A sqlite-utils Database on `path` with WAL, a busy timeout and foreign keys on.

    check_same_thread is off because the WSGI server's threads take connections from
    Flask's request context one at a time; a connection is never shared at once.
    """
    path = str(path)
    if path != ":memory:" and not os.path.exists(path):
        # readers' keys live in here: readable by the backend's user only (SQLite gives
        # the -wal and -shm files the database file's mode)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    conn = sqlite3.connect(path, timeout=BUSY_MS / 1000, check_same_thread=False,
                           isolation_level=None)
    db = sqlite_utils.Database(conn)
    db.enable_wal()
    # FULL: a commit is on the disk before the answer leaves. The answer's ack makes the
    # reader delete its only copy of those receipts, so a power cut after it must not
    # take them back (WAL with NORMAL survives a killed process, not a power cut).
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=%d" % BUSY_MS)
    return db


def _v1(db):
    db["meta"].create({"key": str, "value": str}, pk="key")
    db["stores"].create({"id": str, "name": str, "tz": str}, pk="id")
    db["readers"].create({
        "id": str, "store_id": str, "name": str, "key_hex": str, "created": int,
        # the sync state, updated at every verified contact
        "last_contact": int,        # time of the last request whose signature verified
        "last_batch": int,          # time of the last accepted batch
        "acked_seq": int,           # highest contiguous seq stored (what the answer acks)
        "acked_hash": str,          # hash of that record (GENESIS before the first)
        "pending": int,             # receipts still on the reader after our answer
        "oldest_t": int,            # time of the oldest of them (None when none)
        "journal": str,             # ok / nearly_full / full
        "used": int, "capacity": int, "free_flash": int,
        "firmware": str, "rules_version": int, "directory_version": int,
        "clock_offset": int,        # server time - reader's X-Timestamp at last contact
        "clock_drift": int,         # the reader's own last clock correction
        "last_error": str,          # the reader's last error code
        "last_refusal_at": int, "last_refusal_code": str,
        "status_json": str,         # the whole status object as the reader sent it
    }, pk="id", foreign_keys=[("store_id", "stores", "id")],
        defaults={"acked_seq": 0, "acked_hash": GENESIS, "pending": 0})
    db["receipts"].create({
        "reader_id": str, "seq": int, "store_id": str, "kind": str, "t": int, "day": str,
        "receipt": str, "card": str, "tier": int, "gross": int, "discount": int,
        "rules": int, "hash": str, "batch_id": int, "record": str,
        "audit": str,               # NULL not yet checked, 'ok', 'mismatch'
        "audit_detail": str,
    }, pk=("reader_id", "seq"))
    db["receipts"].create_index(["store_id", "day"])
    db["receipts"].create_index(["card", "t"])
    db["receipts"].create_index(["audit"])
    db["day_totals"].create({"store_id": str, "day": str, "receipts": int, "gross": int,
                             "discount": int}, pk=("store_id", "day"))
    db["batches"].create({
        "id": int, "reader_id": str, "t": int, "outcome": str, "http_status": int,
        "code": str, "field": str, "detail": str, "first_seq": int, "last_seq": int,
        "count": int, "fresh": int, "gross": int, "discount": int, "ack": int, "bytes": int,
    }, pk="id")
    db["batches"].create_index(["reader_id", "t"])
    db["refusals"].create({
        "id": int, "reader_id": str, "t": int, "endpoint": str, "http_status": int,
        "code": str, "field": str, "detail": str, "remote": str,
    }, pk="id")
    db["refusals"].create_index(["reader_id", "t"])
    db["nonces"].create({"reader_id": str, "nonce": str, "t": int}, pk=("reader_id", "nonce"))
    db["nonces"].create_index(["t"])
    db["reader_samples"].create({"reader_id": str, "t": int, "pending": int}, pk=("reader_id", "t"))
    db["cards"].create({"card": str, "tier": int, "status": int, "version": int, "updated": int},
                       pk="card")
    db["cards"].create_index(["version"])
    db["tiers"].create({"id": int, "code": str, "name": str, "bp": int}, pk="id")
    db["promotions"].create({
        "id": str, "kind": str, "sku": str, "category": str, "min_cents": int, "bp": int,
        "cents": int, "tiers": str, "from_t": int, "to_t": int, "active": int,
    }, pk="id")
    db["limits"].create({"key": str, "value": int}, pk="key")
    db["rules_versions"].create({"version": int, "rules": str, "created": int}, pk="version")
    db["managers"].create({"username": str, "password_hash": str, "store_id": str,
                           "created": int}, pk="username")
    for key in ("rules_version", "directory_version"):
        db["meta"].insert({"key": key, "value": "0"})


def _v2(db):
    # a refusal of a request whose signature did not verify is written down, but it may
    # come from anybody: it must not change the reader's state on the dashboard
    db["refusals"].add_column("verified", int)
    # full loads page through the cards in numeric order: (length, text)
    db.execute("CREATE INDEX IF NOT EXISTS cards_by_number ON cards(length(card), card)")


def _v3(db):
    # each change of a card (cards keeps only the last): a reader's directory may be a
    # few versions behind, so the audit must know every tier a card has had, and when
    db["card_history"].create({"card": str, "version": int, "tier": int, "status": int, "t": int},
                              pk=("card", "version"))
    db.execute("INSERT INTO card_history(card, version, tier, status, t) "
               "SELECT card, version, tier, status, updated FROM cards")


def _v4(db):
    # card keys: one issuer key per epoch (docs/cards.md); readers get them wrapped in
    # their own key, and fetch them again when card_keys_version moves
    db["card_epochs"].create({"epoch": int, "key_hex": str, "created": int}, pk="epoch")
    db["meta"].insert({"key": "card_keys_version", "value": "0"})


def _v5(db):
    # an epoch whose keys may be in a thief's hands (a reader gone missing) is retired:
    # readers drop its key, and its cards stop reading
    db["card_epochs"].add_column("retired", int, not_null_default=0)


def _v6(db):
    # the card keys version each reader reported: one still on a retired epoch's keys
    # shows on its page as behind
    db["readers"].add_column("keys_version", int)


def _v7(db):
    # each manager's language for the dashboard ("it", "en"); NULL: the backend's default
    db["managers"].add_column("lang", str)


def _v8(db):
    # records that fail the schema (docs/protocol.md, "Quarantine"): first as the
    # refusal's note of the record a reader's batch was refused for (acked_t NULL, only
    # its hash), then, when the reader sends the same bytes again, the record itself,
    # acknowledged and kept out of receipts and figures until a person judges it
    db.execute("CREATE TABLE quarantine (reader_id TEXT NOT NULL REFERENCES readers(id), seq INTEGER NOT NULL, "
               "hash TEXT NOT NULL, t INTEGER NOT NULL, code TEXT, field TEXT, detail TEXT, acked_t INTEGER, "
               "batch_id INTEGER, record TEXT, judged_t INTEGER, judged_by TEXT, judgement TEXT, note TEXT, "
               "PRIMARY KEY (reader_id, seq))")
    db["batches"].add_column("quarantined", int)


def _v9(db):
    # the customer side (docstring above; docs/privacy.md). Plain SQL that PostgreSQL
    # runs too: a later step moves the backend onto it
    for sql in (
        "CREATE TABLE households (id INTEGER PRIMARY KEY, name TEXT, created_t INTEGER NOT NULL)",
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, pseudonym TEXT NOT NULL UNIQUE, name TEXT, "
        "contact TEXT, store_id TEXT REFERENCES stores(id), household_id INTEGER REFERENCES households(id), "
        "age_ok INTEGER NOT NULL DEFAULT 0 CHECK (age_ok IN (0, 1)), "
        "status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'closed', 'erased')), "
        "created_t INTEGER NOT NULL, created_by TEXT, updated_t INTEGER, closed_t INTEGER, erased_t INTEGER)",
        "CREATE INDEX customers_by_household ON customers(household_id)",
        "CREATE INDEX customers_by_status ON customers(status, closed_t)",
        "ALTER TABLE cards ADD COLUMN customer_id INTEGER REFERENCES customers(id)",
        "CREATE INDEX cards_by_customer ON cards(customer_id)",
        "CREATE TABLE card_events (id INTEGER PRIMARY KEY, card TEXT, customer_id INTEGER REFERENCES customers(id), "
        "t INTEGER NOT NULL, event TEXT NOT NULL, operator TEXT, detail TEXT)",
        "CREATE INDEX card_events_by_customer ON card_events(customer_id, t)",
        "CREATE TABLE notices (version INTEGER NOT NULL, lang TEXT NOT NULL, text TEXT NOT NULL, "
        "published_t INTEGER NOT NULL, published_by TEXT, PRIMARY KEY (version, lang))",
        "CREATE TABLE consents (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id), "
        "purpose TEXT NOT NULL CHECK (purpose IN ('scheme', 'profiling', 'marketing')), "
        "given INTEGER NOT NULL CHECK (given IN (0, 1)), t INTEGER NOT NULL, "
        "channel TEXT NOT NULL CHECK (channel IN ('desk', 'web', 'phone')), operator TEXT, "
        "notice_version INTEGER NOT NULL)",
        "CREATE INDEX consents_by_customer ON consents(customer_id, purpose, id)",
        "CREATE TABLE product_day_totals (store_id TEXT NOT NULL, day TEXT NOT NULL, sku TEXT NOT NULL, "
        "category TEXT NOT NULL, qty INTEGER NOT NULL, gross INTEGER NOT NULL, discount INTEGER NOT NULL, "
        "lines INTEGER NOT NULL, PRIMARY KEY (store_id, day, sku, category))",
        "ALTER TABLE receipts ADD COLUMN lines INTEGER",
        "ALTER TABLE receipts ADD COLUMN folded_t INTEGER",
        "UPDATE receipts SET lines = json_array_length(record, '$.lines')",
        "CREATE TABLE care_contacts (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id), "
        "t INTEGER NOT NULL, channel TEXT NOT NULL, operator TEXT, reason TEXT, note TEXT, outcome TEXT)",
        "CREATE INDEX care_contacts_by_customer ON care_contacts(customer_id, t)",
        "CREATE INDEX care_contacts_by_t ON care_contacts(t)",
        "CREATE TABLE marketing_log (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id), "
        "t INTEGER NOT NULL, channel TEXT, campaign TEXT)",
        "CREATE INDEX marketing_log_by_t ON marketing_log(t)",
        "CREATE TABLE trail (id INTEGER PRIMARY KEY, t INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, "
        "subject TEXT, reason TEXT, detail TEXT)",
        "CREATE INDEX trail_by_subject ON trail(subject, t)",
        "CREATE INDEX trail_by_t ON trail(t)",
        "CREATE TABLE views (id INTEGER PRIMARY KEY, t INTEGER NOT NULL, actor TEXT NOT NULL, subject TEXT NOT NULL, "
        "what TEXT)",
        "CREATE INDEX views_by_t ON views(t)",
        "CREATE INDEX views_by_subject ON views(subject, t)",
        "CREATE TABLE tombstones (hash TEXT PRIMARY KEY, t INTEGER NOT NULL)",
        # an erased customer's card must leave every reader's directory, but a page of
        # the directory names the card it removes: until readers have it, the number is
        # kept here sealed with a key outside the database, never in clear
        "CREATE TABLE directory_removals (version INTEGER PRIMARY KEY, sealed TEXT NOT NULL, t INTEGER NOT NULL)",
    ):
        db.execute(sql)


def _v10(db):
    # minimisation in storage (backend/privacy/minimise.py): the receipts still holding
    # lines, by time, are what the daily fold and retention look for among millions
    # (partial: a folded receipt leaves the index). Then the rule for the receipts already
    # stored: audited ok, past the default return window (30 days) now, no profiling
    # consent in force (nobody had consented yet) -> their lines are folded. The rule's SQL
    # is written out here, not taken from minimise.py; the fold itself is fold.fold_where's
    # (a change to how lines are summed changes what this step writes on an old database)
    import time
    from loyalty.backend.privacy.fold import fold_where
    db.execute("CREATE INDEX receipts_unfolded ON receipts(t) WHERE record IS NOT NULL")
    now = int(time.time())
    fold_where(db, "r.audit = 'ok' AND r.t < ? AND NOT EXISTS (SELECT 1 FROM cards c JOIN consents k "
               "ON k.customer_id = c.customer_id WHERE c.card = coalesce(nullif(ltrim(r.card, '0'), ''), '0') "
               "AND k.purpose = 'profiling' AND k.given = 1 AND k.id = (SELECT max(n.id) FROM consents n "
               "WHERE n.customer_id = k.customer_id AND n.purpose = 'profiling'))", [now - 30 * 86400], now)


def _v11(db):
    # the customer pages and the shopper's page (issue 16): roles of the staff who sign in
    # (head office, store manager, customer care; those without a store were head office),
    # a customer's name as search compares it (backend/checks.name_key), the one-time
    # codes shoppers sign in with (only a hash of each), readers head office took out
    from loyalty.backend.checks import name_key
    for sql in (
        "ALTER TABLE managers ADD COLUMN role TEXT NOT NULL DEFAULT 'store_manager' "
        "CHECK (role IN ('head_office', 'store_manager', 'care'))",
        "UPDATE managers SET role = 'head_office' WHERE store_id IS NULL",
        "ALTER TABLE customers ADD COLUMN name_key TEXT",
        "CREATE INDEX customers_by_name_key ON customers(name_key)",
        "CREATE INDEX customers_by_contact ON customers(contact)",
        "CREATE TABLE shopper_codes (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id), "
        "code_hash TEXT NOT NULL, t INTEGER NOT NULL, expires_t INTEGER NOT NULL, "
        "tries INTEGER NOT NULL DEFAULT 0, used_t INTEGER)",
        "CREATE INDEX shopper_codes_by_customer ON shopper_codes(customer_id, t)",
        "ALTER TABLE readers ADD COLUMN disabled_t INTEGER",
    ):
        db.execute(sql)
    db.conn.executemany("UPDATE customers SET name_key = ? WHERE id = ?",
                        [(name_key(n), i) for i, n in db.execute("SELECT id, name FROM customers WHERE name IS NOT NULL")])


def _v12(db):
    # search (backend/care/search.py) without reading every name: each word of each
    # customer's name, indexed (backend/customers/names.py), and the cards by their last
    # 4 digits
    db.execute("CREATE TABLE customer_words (word TEXT NOT NULL, customer_id INTEGER NOT NULL REFERENCES customers(id), "
               "PRIMARY KEY (word, customer_id))")
    db.execute("CREATE INDEX customer_words_by_customer ON customer_words(customer_id)")
    # "the last 4 digits of the card, and the name": the cards ending so, by an index of
    # the expression search uses (numbers are kept without leading zeros)
    db.execute("CREATE INDEX cards_by_last4 ON cards(substr('0000' || card, -4))")
    db.conn.executemany("INSERT OR IGNORE INTO customer_words(word, customer_id) VALUES(?, ?)",
                        [(w, i) for i, key in db.execute("SELECT id, name_key FROM customers WHERE name_key IS NOT NULL")
                         for w in key.split()])


MIGRATIONS = [_v1, _v2, _v3, _v4, _v5, _v6, _v7, _v8, _v9, _v10, _v11, _v12]  # step n brings the schema from version n-1 to n; append, never edit


def schema_version(db):
    if "meta" not in db.table_names():
        return 0
    row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    return int(row[0]) if row else 0


def migrate(db, to=None):
    """Bring the schema to the newest version (or to version `to`: the tests build the
    databases of older versions so), one step per transaction; returns it."""
    have = schema_version(db)
    if have > len(MIGRATIONS):
        raise SchemaError(_("database schema %(have)d is newer than this code (%(known)d)", have=have,
                            known=len(MIGRATIONS)))
    to = len(MIGRATIONS) if to is None else to
    if not have <= to <= len(MIGRATIONS):
        raise ValueError("cannot bring schema %d to %d (this code knows 1 to %d)" % (have, to, len(MIGRATIONS)))
    for n in range(have, to):
        with transaction(db):
            MIGRATIONS[n](db)
            db["meta"].upsert({"key": "schema_version", "value": str(n + 1)}, pk="key")
    return to


def require_schema(db):
    """Raise SchemaError unless the schema is the one this code was written for."""
    have = schema_version(db)
    if have != len(MIGRATIONS):
        raise SchemaError(_("database schema is %(have)d, this code needs %(known)d: run "
                            "`flask --app loyalty.backend.app init-db`", have=have, known=len(MIGRATIONS)))


@contextlib.contextmanager
def transaction(db):
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception (the connection is in
    autocommit mode): what must be written together is, or nothing is.

        with transaction(db):
            db.execute("INSERT ...")
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.conn.rollback()
        raise
    db.conn.commit()


def meta_int(db, key):
    row = db.execute("SELECT value FROM meta WHERE key=?", [key]).fetchone()
    return int(row[0]) if row else 0


def set_meta(db, key, value):
    db.execute("INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
               [key, str(value)])
