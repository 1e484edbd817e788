"""Head office's data: stores, readers and their keys, tiers, promotions, limits, cards.

Plain functions over a sqlite_utils.Database; the CLI (backend/cli.py) and tests call
them. Every change of tiers, promotions or limits publishes the complete rules object
(docs/discount.md, what protocol.engine.check_rules accepts) as the next rules version,
in the same transaction: rules that the engine refuses are never published and nothing
changes. Every changed card takes the next directory version, so readers fetch only
what changed (docs/directory.md).

    add_store(db, "S1", "Milano Centro")
    key = add_reader(db, "R1", "S1")                # 32 random bytes, kept as key_hex
    add_tier(db, 0, "base", 200)                    # publishes rules version 1
    set_limits(db, receipt_max_cents=5000)          # version 2
    import_cards(db, [("6001000000000042", 0)])     # directory version 1
    directory_page(db, since=0, limit=100)          # b'{"entries":[["6001000000000042",0,0]],...'

Limits not set yet take DEFAULT_LIMITS; the default tier is the lowest tier id until
set_limits(default_tier=...) names another.
"""
import json
import os
import re
import time
import zoneinfo

from backend.db import meta_int, set_meta, transaction
from protocol import delta, engine, loyaltycard
from protocol.errors import DeltaError, RulesError

DEFAULT_LIMITS = {
    "receipt_max_cents": 5000,          # head office's maximum discount per receipt
    "offline_receipt_max_cents": 3000,  # the reader's floor limit per receipt
    "card_day_max_cents": 10000,        # per card per day on one reader
    "stale_hours": 48,                  # after this long without a sync: base rate only
}
LIMIT_KEYS = tuple(DEFAULT_LIMITS) + ("default_tier", "ntag_signature")
ACTIVE, BLOCKED, REMOVED = delta.ACTIVE, delta.BLOCKED, delta.REMOVED
STATUS_WORDS = {"active": ACTIVE, "blocked": BLOCKED, "removed": REMOVED}
KINDS = ("sku", "category", "threshold")

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
_CHUNK = 500  # cards looked up per query on import (SQLite's variable limit is far above)


class HeadOfficeError(Exception):
    """A change head office asked for cannot be made; `field` names the input at fault."""

    def __init__(self, field, message):
        super().__init__("%s: %s" % (field, message) if field else message)
        self.field = field
        self.message = message


class NotFound(HeadOfficeError):
    """The store, reader, tier, promotion or card named does not exist."""


class AlreadyExists(HeadOfficeError):
    """The id is taken."""


class InvalidValue(HeadOfficeError):
    """A value breaks a rule (format, range, time zone)."""


class RulesRefused(HeadOfficeError):
    """The change would publish rules the engine refuses; `error` is the RulesError."""

    def __init__(self, error):
        super().__init__(error.field, "%s (%s)" % (error.detail, error.code))
        self.error = error


def _now():
    return int(time.time())


def _need_id(value, field):
    if not isinstance(value, str) or not _ID.match(value):
        raise InvalidValue(field, "must be 1 to 32 letters, digits, '.', '_' or '-', starting with a letter or digit")
    if value.lower().endswith(".json"):
        # /readers/<id>.json is the JSON twin of /readers/<id>: an id cannot end so
        raise InvalidValue(field, "must not end in .json")
    return value


def _need_int(value, lo, hi, field):
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise InvalidValue(field, "must be an integer from %d to %d" % (lo, hi))
    return value


def _need_text(value, lo, hi, field):
    if not isinstance(value, str) or not lo <= len(value) <= hi:
        raise InvalidValue(field, "must be text of %d to %d characters" % (lo, hi))
    return value


# ------------------------------------------------------------------ stores and readers


def add_store(db, id, name, tz="Europe/Rome"):
    """A new store; `tz` is its IANA time zone (its days and the dashboard's times are local)."""
    _need_id(id, "id")
    _need_text(name, 1, 100, "name")
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise InvalidValue("tz", "%r is not a known time zone (e.g. Europe/Rome)" % (tz,))
    with transaction(db):
        if db.execute("SELECT 1 FROM stores WHERE id=?", [id]).fetchone():
            raise AlreadyExists("id", "store %s exists already" % id)
        db.execute("INSERT INTO stores(id, name, tz) VALUES(?, ?, ?)", [id, name, tz])


def add_reader(db, id, store_id, name=""):
    """A new reader in `store_id`; returns its key (32 random bytes), stored as key_hex.

    The key is what the reader signs with: hand it over only through write_provisioning.
    """
    _need_id(id, "id")
    _need_text(name, 0, 100, "name")
    key = os.urandom(32)
    with transaction(db):
        if not db.execute("SELECT 1 FROM stores WHERE id=?", [store_id]).fetchone():
            raise NotFound("store", "no store %r: add it first" % (store_id,))
        if db.execute("SELECT 1 FROM readers WHERE id=?", [id]).fetchone():
            raise AlreadyExists("id", "reader %s exists already" % id)
        db.execute("INSERT INTO readers(id, store_id, name, key_hex, created) VALUES(?, ?, ?, ?, ?)",
                   [id, store_id, name, key.hex(), _now()])
    return key


def write_provisioning(path, reader_id, key, backend_url, store_id):
    """Write the reader's provisioning file (tools/flash.py reads it): JSON, mode 0600.

    {"reader", "key" (hex), "backend", "store", "created"}. An existing file is never
    overwritten (FileExistsError): it may belong to a reader already flashed.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, mode=0o700, exist_ok=True)
    data = json.dumps({"reader": reader_id, "key": key.hex(), "backend": backend_url,
                       "store": store_id, "created": _now()}, indent=2, sort_keys=True) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(data)
    return path


# ------------------------------------------------------------------ rules


def _limits(db):
    values = dict(DEFAULT_LIMITS)
    for key, value in db.execute("SELECT key, value FROM limits"):
        values[key] = value
    return values


def build_rules(db, version):
    """The rules object as the tables hold it now, numbered `version` (not checked here)."""
    tiers = [{"id": i, "code": c, "bp": bp}
             for i, c, bp in db.execute("SELECT id, code, bp FROM tiers ORDER BY id")]
    limits = _limits(db)
    default_tier = limits.get("default_tier")
    if default_tier is None and tiers:
        default_tier = tiers[0]["id"]
    promotions = []
    # rowid order is the order they were added: the engine applies promotions in list order
    for row in db.execute("SELECT id, kind, sku, category, min_cents, bp, cents, tiers, from_t, to_t "
                          "FROM promotions WHERE active=1 ORDER BY rowid"):
        pid, kind, sku, category, min_cents, bp, cents, tiers_json, from_t, to_t = row
        p = {"id": pid, "kind": kind}
        for name, value in (("sku", sku), ("category", category), ("min_cents", min_cents),
                            ("bp", bp), ("cents", cents), ("from", from_t), ("to", to_t)):
            if value is not None:
                p[name] = value
        if tiers_json is not None:
            p["tiers"] = json.loads(tiers_json)
        promotions.append(p)
    rules = {"version": version, "tiers": tiers, "default_tier": default_tier,
             "promotions": promotions,
             "limits": {"receipt_max_cents": limits["receipt_max_cents"]},
             "offline": {"receipt_max_cents": limits["offline_receipt_max_cents"],
                         "card_day_max_cents": limits["card_day_max_cents"],
                         "stale_hours": limits["stale_hours"]}}
    if limits.get("ntag_signature"):
        # only when asked for: the rules of a chain that does not check stay as they were
        rules["cards"] = {"ntag_signature": True}
    return rules


def _publish(db):
    """Inside a transaction: check the rules the tables now make and publish them."""
    version = meta_int(db, "rules_version") + 1
    rules = build_rules(db, version)
    try:
        engine.check_rules(rules)
    except RulesError as e:
        raise RulesRefused(e)
    db.execute("INSERT INTO rules_versions(version, rules, created) VALUES(?, ?, ?)",
               [version, json.dumps(rules, sort_keys=True, separators=(",", ":")), _now()])
    set_meta(db, "rules_version", version)
    return version


def current_rules(db):
    """(version, rules dict) readers are given now, or (0, None) before any was published."""
    version = meta_int(db, "rules_version")
    rules = rules_at(db, version) if version else None
    return (version, rules) if rules is not None else (0, None)


def rules_at(db, version):
    """The rules object published as `version`, or None."""
    row = db.execute("SELECT rules FROM rules_versions WHERE version=?", [version]).fetchone()
    return json.loads(row[0]) if row else None


def add_tier(db, id, code, bp, name=""):
    """A new tier; returns the rules version published."""
    _need_int(id, 0, 255, "id")
    _need_text(code, 1, 32, "code")
    _need_int(bp, 0, 10000, "bp")
    _need_text(name, 0, 100, "name")
    with transaction(db):
        if db.execute("SELECT 1 FROM tiers WHERE id=?", [id]).fetchone():
            raise AlreadyExists("id", "tier %d exists already: change it with set_tier" % id)
        db.execute("INSERT INTO tiers(id, code, name, bp) VALUES(?, ?, ?, ?)", [id, code, name, bp])
        return _publish(db)


def set_tier(db, id, code=None, bp=None, name=None):
    """Change a tier's code, rate or name; returns the rules version published."""
    _need_int(id, 0, 255, "id")
    changes = {}
    if code is not None:
        changes["code"] = _need_text(code, 1, 32, "code")
    if bp is not None:
        changes["bp"] = _need_int(bp, 0, 10000, "bp")
    if name is not None:
        changes["name"] = _need_text(name, 0, 100, "name")
    if not changes:
        raise InvalidValue("", "nothing to change: give a code, a rate (bp) or a name")
    with transaction(db):
        if not db.execute("SELECT 1 FROM tiers WHERE id=?", [id]).fetchone():
            raise NotFound("id", "no tier %d" % id)
        sets = ", ".join("%s=?" % k for k in changes)
        db.execute("UPDATE tiers SET %s WHERE id=?" % sets, list(changes.values()) + [id])
        return _publish(db)


def add_promotion(db, id, kind, sku=None, category=None, min_cents=None, bp=None, cents=None,
                  tiers=None, from_t=None, to_t=None):
    """A new promotion (docs/discount.md: kind sku, category or threshold; bp or cents;
    optional tiers and from/to epoch seconds); returns the rules version published."""
    _need_text(id, 1, 32, "id")
    if kind not in KINDS:
        raise InvalidValue("kind", "must be one of " + ", ".join(KINDS))
    # the engine judges the rules as a whole; these only keep what SQLite stores in range
    for name, value in (("min_cents", min_cents), ("bp", bp), ("cents", cents)):
        if value is not None:
            _need_int(value, 0, 10 ** 12, name)
    for name, value in (("from", from_t), ("to", to_t)):
        if value is not None:
            _need_int(value, 0, 2 ** 40, name)
    if tiers is not None:
        tiers = [_need_int(t, 0, 255, "tiers") for t in tiers]
        if not tiers:
            raise InvalidValue("tiers", "an empty list would give the promotion to nobody: leave it out for every tier")
    row = {"id": id, "kind": kind, "sku": sku, "category": category, "min_cents": min_cents,
           "bp": bp, "cents": cents, "tiers": None if tiers is None else json.dumps(tiers),
           "from_t": from_t, "to_t": to_t, "active": 1}
    with transaction(db):
        if db.execute("SELECT 1 FROM promotions WHERE id=?", [id]).fetchone():
            raise AlreadyExists("id", "promotion %s exists already (ended ones keep their id)" % id)
        names = list(row)
        db.execute("INSERT INTO promotions(%s) VALUES(%s)" % (", ".join(names), ", ".join("?" * len(names))),
                   [row[n] for n in names])
        # the engine judges the promotion (kind's keys, ranges, from < to) as published
        return _publish(db)


def end_promotion(db, id):
    """Withdraw a promotion from the rules (its row stays, for the history); returns the version."""
    with transaction(db):
        row = db.execute("SELECT active FROM promotions WHERE id=?", [id]).fetchone()
        if row is None:
            raise NotFound("id", "no promotion %r" % (id,))
        if not row[0]:
            raise InvalidValue("id", "promotion %s has ended already" % id)
        db.execute("UPDATE promotions SET active=0 WHERE id=?", [id])
        return _publish(db)


def set_limits(db, **values):
    """Set offline limits (keys of LIMIT_KEYS; None leaves one as it is); returns the version."""
    for key in values:
        if key not in LIMIT_KEYS:
            raise InvalidValue(key, "unknown limit; known: " + ", ".join(LIMIT_KEYS))
    values = {k: v for k, v in values.items() if v is not None}
    if not values:
        raise InvalidValue("", "nothing to change: give at least one limit")
    for key, value in values.items():
        _need_int(value, 0, 1 if key == "ntag_signature" else 10 ** 9, key)
    with transaction(db):
        for key, value in values.items():
            db.execute("INSERT INTO limits(key, value) VALUES(?, ?) "
                       "ON CONFLICT(key) DO UPDATE SET value=excluded.value", [key, value])
        return _publish(db)


# ------------------------------------------------------------------ card keys


def new_card_epoch(db):
    """Start the next card key epoch with a fresh random issuer key; returns the epoch.

    Cards issued from now on carry it; readers fetch the new key at their next sync
    and keep the older ones, so cards of every epoch still read.
    """
    with transaction(db):
        last = db.execute("SELECT max(epoch) FROM card_epochs").fetchone()[0] or 0
        if last >= 255:
            raise InvalidValue("epoch", "all 255 card key epochs are used")
        db.execute("INSERT INTO card_epochs(epoch, key_hex, created) VALUES(?, ?, ?)",
                   [last + 1, os.urandom(32).hex(), _now()])
        set_meta(db, "card_keys_version", meta_int(db, "card_keys_version") + 1)
    return last + 1


def retire_card_epoch(db, epoch):
    """Retire `epoch`: readers drop its issuer key at their next sync, so cards made with
    it no longer read (card.key) and whoever holds the key can mint no more. Use it when
    a reader (which holds every key) goes missing, after starting a new epoch and issuing
    new cards to its shoppers."""
    with transaction(db):
        row = db.execute("SELECT retired FROM card_epochs WHERE epoch=?", [epoch]).fetchone()
        if row is None:
            raise NotFound("epoch", "no card key epoch %r" % (epoch,))
        if row[0]:
            raise InvalidValue("epoch", "epoch %d is retired already" % epoch)
        db.execute("UPDATE card_epochs SET retired=1 WHERE epoch=?", [epoch])
        set_meta(db, "card_keys_version", meta_int(db, "card_keys_version") + 1)


def current_epoch(db):
    """The epoch new cards are issued in (the newest not retired), or None."""
    return db.execute("SELECT max(epoch) FROM card_epochs WHERE retired=0").fetchone()[0]


def issuer_key(db, epoch):
    """The issuer key (32 bytes) of `epoch`; NotFound if there is no such epoch."""
    row = db.execute("SELECT key_hex FROM card_epochs WHERE epoch=?", [epoch]).fetchone()
    if row is None:
        raise NotFound("epoch", "no card key epoch %r: start one with new-card-epoch" % (epoch,))
    return bytes.fromhex(row[0])


def active_issuer_keys(db):
    """{epoch: issuer key} of every epoch not retired: what verifies cards today."""
    return {e: bytes.fromhex(k) for e, k in
            db.execute("SELECT epoch, key_hex FROM card_epochs WHERE retired=0 ORDER BY epoch")}


def card_keys_for(db, reader_key):
    """(version, [[epoch, wrapped hex], ...]): every issuer key not retired, wrapped for one reader."""
    keys = [[e, loyaltycard.wrap_issuer_key(reader_key, e, k).hex()] for e, k in active_issuer_keys(db).items()]
    return meta_int(db, "card_keys_version"), keys


def issue_card_key(db, card):
    """(epoch, card key) for personalising a new card of the current epoch."""
    epoch = current_epoch(db)
    if epoch is None:
        raise NotFound("epoch", "no card key epoch yet: start one with new-card-epoch")
    return epoch, loyaltycard.card_key(issuer_key(db, epoch), _card_text(card, "card"))


# ------------------------------------------------------------------ cards


def _card_text(card, field):
    try:
        return str(delta.card_number(card, field))  # without leading zeros: "0042" is card 42
    except DeltaError as e:
        raise InvalidValue(e.field, e.detail)


def _status(value, field):
    if isinstance(value, str) and value.strip().lower() in STATUS_WORDS:
        return STATUS_WORDS[value.strip().lower()]
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    return _need_int(value, 0, 2, field)


def _tier(value, field):
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    return _need_int(value, 0, 255, field)


def _write_changes(db, changes, now):
    """Inside a transaction: give each (card, tier, status) change the next version."""
    version = meta_int(db, "directory_version")
    rows = []
    for card, tier, status in changes:
        version += 1
        rows.append((card, tier, status, version, now))
    db.conn.executemany(
        "INSERT INTO cards(card, tier, status, version, updated) VALUES(?, ?, ?, ?, ?) "
        "ON CONFLICT(card) DO UPDATE SET tier=excluded.tier, status=excluded.status, "
        "version=excluded.version, updated=excluded.updated", rows)
    # every state a card was ever in, with when: the audit asks which tier a reader's
    # directory could have given a card at the time of a sale
    db.conn.executemany("INSERT INTO card_history(card, tier, status, version, t) VALUES(?, ?, ?, ?, ?)", rows)
    set_meta(db, "directory_version", version)
    return version


def import_cards(db, rows):
    """Import (card, tier[, status]) rows; returns (cards changed, directory version).

    Every row is checked before anything is written (InvalidValue names `rows[i].field`);
    cards whose tier and status are already as given take no new version. A card
    missing its status is active, or keeps the status it has.
    """
    wanted = {}
    for i, row in enumerate(rows):
        where = "rows[%d]" % i
        if not isinstance(row, (list, tuple)) or len(row) not in (2, 3):
            raise InvalidValue(where, "must be (card, tier) or (card, tier, status)")
        card = _card_text(row[0], where + ".card")
        tier = _tier(row[1], where + ".tier")
        status = _status(row[2], where + ".status") if len(row) == 3 and row[2] not in (None, "") else None
        wanted.pop(card, None)  # a card twice: the last row counts, in its place
        wanted[card] = (tier, status)
    with transaction(db):
        have = {}
        cards = list(wanted)
        for k in range(0, len(cards), _CHUNK):
            part = cards[k:k + _CHUNK]
            for card, tier, status in db.execute(
                    "SELECT card, tier, status FROM cards WHERE card IN (%s)" % ",".join("?" * len(part)), part):
                have[card] = (tier, status)
        changes = []
        for card, (tier, status) in wanted.items():
            old = have.get(card)
            if status is None:
                status = old[1] if old else ACTIVE
            if old != (tier, status):
                changes.append((card, tier, status))
        version = _write_changes(db, changes, _now()) if changes else meta_int(db, "directory_version")
    return len(changes), version


def check_new_card(db, card, tier):
    """Raise unless `card` can be issued now: a number not in the directory yet and a tier
    that exists (the issuing desks ask before they write a card, set_card after)."""
    if db.execute("SELECT 1 FROM cards WHERE card=?", [card]).fetchone():
        raise AlreadyExists("card", "card %s is in the directory already: give a new number" % card)
    if not isinstance(tier, int) or not db.execute("SELECT 1 FROM tiers WHERE id=?", [tier]).fetchone():
        raise NotFound("tier", "no tier %r: add it first (flask --app backend.app add-tier)" % (tier,))


def set_card(db, card, tier=None, status=None):
    """Set a card's tier and/or status (0 active, 1 blocked, 2 removed).

    A card not in the directory needs a tier. Returns the directory version of the
    change, or None when the card already was as asked.
    """
    card = _card_text(card, "card")
    if tier is not None:
        tier = _tier(tier, "tier")
    if status is not None:
        status = _status(status, "status")
    if tier is None and status is None:
        raise InvalidValue("", "nothing to change: give a tier or a status")
    with transaction(db):
        old = db.execute("SELECT tier, status FROM cards WHERE card=?", [card]).fetchone()
        if old is None and tier is None:
            raise NotFound("card", "card %s is not in the directory: give its tier to add it" % card)
        new = (old[0] if tier is None else tier,
               (old[1] if old else ACTIVE) if status is None else status)
        if old is not None and tuple(old) == new:
            return None
        return _write_changes(db, [(card, new[0], new[1])], _now())


def _full_load_sql(after):
    """The next page of a full load: cards numerically above `after`, in numeric order.

    Card numbers are stored without leading zeros, so numeric order is (length, text).
    Two queries, the second only when the first does not fill the page: the cards as
    long as `after` above it (a search on the primary key, as every card of a chain
    usually has the same length), then the longer ones."""
    text = str(after)
    return [("SELECT card, tier, status FROM cards WHERE card > ? AND length(card) = ? AND status != 2 "
             "ORDER BY card LIMIT ?", [text, len(text)]),
            ("SELECT card, tier, status FROM cards WHERE length(card) > ? AND status != 2 "
             "ORDER BY length(card), card LIMIT ?", [len(text)])]


def directory_page(db, since, limit, after=0):
    """A directory page (canonical bytes, protocol.delta.make_page), as readers fetch them.

    since 0: a page of a full load, the active and blocked cards numerically above
    `after`, `to` the directory version now. since > 0: the oldest `limit` changes
    after version `since`, sorted by card, `to` the version of the last one.
    """
    db.execute("BEGIN")  # one snapshot: the version and the cards agree
    try:
        if since == 0:
            version = meta_int(db, "directory_version")
            rows = []
            for sql, params in _full_load_sql(after):
                rows += db.execute(sql, params + [limit + 1 - len(rows)]).fetchall()
                if len(rows) > limit:
                    break
            return delta.make_page(0, version, rows[:limit], len(rows) > limit)
        rows = db.execute("SELECT card, tier, status, version FROM cards WHERE version > ? "
                          "ORDER BY version LIMIT ?", [since, limit + 1]).fetchall()
        page = rows[:limit]
        to = page[-1][3] if page else max(since, 0)
        entries = sorted(((int(c), t, s) for c, t, s, _ in page))
        return delta.make_page(since, to, entries, len(rows) > limit)
    finally:
        db.conn.commit()
