"""The card directory: importing and changing cards, and the pages readers fetch.

Every changed card takes the next directory version, so readers fetch only what
changed (docs/directory.md).

    import_cards(db, [("6001000000000042", 0)])   # directory version 1
    set_card(db, "6001000000000042", status="blocked")
    directory_page(db, since=0, limit=100)        # b'{"entries":[["6001000000000042",0,1]],...'
"""
from loyalty.backend import checks
from loyalty.backend.db import meta_int, set_meta, transaction
from loyalty.backend.headoffice import common
from loyalty.backend.headoffice.common import AlreadyExists, InvalidValue, NotFound, card_text
from loyalty.backend.privacy import removals
from loyalty.protocol import delta
from loyalty.i18n import _

ACTIVE, BLOCKED, REMOVED = delta.ACTIVE, delta.BLOCKED, delta.REMOVED
STATUS_WORDS = {"active": ACTIVE, "blocked": BLOCKED, "removed": REMOVED}
_CHUNK = 500  # cards looked up per query on import (SQLite's variable limit is far above)


def _status(value, field):
    if isinstance(value, str) and value.strip().lower() in STATUS_WORDS:
        return STATUS_WORDS[value.strip().lower()]
    if isinstance(value, str):
        value = checks.digits(value.strip())
    return checks.integer(value, 0, 2, field, InvalidValue)


def _tier(value, field):
    if isinstance(value, str):
        value = checks.digits(value.strip())
    return checks.integer(value, 0, 255, field, InvalidValue)


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
            raise InvalidValue(where, _("must be (card, tier) or (card, tier, status)"))
        card = card_text(row[0], where + ".card")
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
        version = _write_changes(db, changes, common.now()) if changes else meta_int(db, "directory_version")
    return len(changes), version


def write_card(db, card, tier, status, now):
    """Inside the caller's transaction: `card` (as card_text gives it) at `tier` and
    `status` with the next directory version; returns it. For changes that must land
    with others (a card linked to its customer at the desk, a replacement)."""
    return _write_changes(db, [(card, tier, status)], now)


def check_new_card(db, card, tier):
    """Raise unless `card` can be issued now: a number not in the directory yet and a tier
    that exists (the issuing desks ask before they write a card, set_card after)."""
    if db.execute("SELECT 1 FROM cards WHERE card=?", [card]).fetchone():
        raise AlreadyExists("card", _("card %(card)s is in the directory already: give a new number", card=card))
    if not isinstance(tier, int) or not db.execute("SELECT 1 FROM tiers WHERE id=?", [tier]).fetchone():
        raise NotFound("tier", _("no tier %(tier)r: add it first (flask --app loyalty.backend.app add-tier)", tier=tier))


def set_card(db, card, tier=None, status=None):
    """Set a card's tier and/or status (0 active, 1 blocked, 2 removed).

    A card not in the directory needs a tier. Returns the directory version of the
    change, or None when the card already was as asked.
    """
    card = card_text(card, "card")
    if tier is not None:
        tier = _tier(tier, "tier")
    if status is not None:
        status = _status(status, "status")
    if tier is None and status is None:
        raise InvalidValue("", _("nothing to change: give a tier or a status"))
    with transaction(db):
        old = db.execute("SELECT tier, status FROM cards WHERE card=?", [card]).fetchone()
        if old is None and tier is None:
            raise NotFound("card", _("card %(card)s is not in the directory: give its tier to add it", card=card))
        new = (old[0] if tier is None else tier,
               (old[1] if old else ACTIVE) if status is None else status)
        if old is not None and tuple(old) == new:
            return None
        return _write_changes(db, [(card, new[0], new[1])], common.now())


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


def directory_page(db, since, limit, after=0, key=None):
    """A directory page (canonical bytes, protocol.delta.make_page), as readers fetch them.

    since 0: a page of a full load, the active and blocked cards numerically above
    `after`, `to` the directory version now. since > 0: the oldest `limit` changes
    after version `since`, sorted by card, `to` the version of the last one; the cards
    of erased customers among them as REMOVED, unsealed with `key` (the instance's
    erasure key: backend/privacy/removals.py).
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
        rows = sorted(rows + removals.removed_since(db, key, since, limit + 1), key=lambda r: r[3])
        page = rows[:limit]
        to = page[-1][3] if page else max(since, 0)
        # a card removed and issued again within one page: its latest state, once
        latest = {int(c): (t, s) for c, t, s, _ in page}
        entries = sorted((c, t, s) for c, (t, s) in latest.items())
        return delta.make_page(since, to, entries, len(rows) > limit)
    finally:
        db.conn.commit()
