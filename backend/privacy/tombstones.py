"""Tombstones: the keyed hashes of the cards of erased customers, never their numbers.

A reader offline for days may sync a receipt of a card whose customer was erased in the
meantime. Ingestion asks whether the card is buried and, if so, stores the receipt
anonymised (backend/sync/ingest.py). The hash is HMAC-SHA256 under the instance's
erasure key (app.config["ERASURE_KEY"], kept in the instance folder and never in the
database: with the key beside the hashes anybody holding a copy of the database could
try every card number of a chain, a few billion, in minutes).

    bury(db, key, "6001000000000042", now)          # inside the erasure's transaction
    buried(db, key, ["6001000000000042", "7"])      # -> {"6001000000000042"}
"""
import hashlib
import hmac

from loyalty.backend.cardstates import card_key

# the audit verdict of a receipt whose record went with its customer before the audit
# could read it (receipts.audit; the auditor looks only at NULL)
AUDIT_ERASED = "erased"


def card_hash(key, card):
    """The tombstone of `card` (text of digits; leading zeros carry no meaning), as hex."""
    number = card_key(str(card))
    return hmac.new(key, number.encode("ascii"), hashlib.sha256).hexdigest()


def bury(db, key, card, now):
    """Write the tombstone of `card` (once: burying it again changes nothing)."""
    db.execute("INSERT INTO tombstones(hash, t) VALUES(?, ?) ON CONFLICT(hash) DO NOTHING",
               [card_hash(key, card), now])


def buried(db, key, cards):
    """The cards among `cards` (a batch's: up to a few hundred) that have a tombstone; one query."""
    hashes = {}  # hash -> the cards as given ("42" and "0042" are one card)
    for card in set(cards):
        if isinstance(card, str) and card:
            hashes.setdefault(card_hash(key, card), []).append(card)
    if not hashes:
        return set()
    rows = db.execute("SELECT hash FROM tombstones WHERE hash IN (%s)" % ",".join("?" * len(hashes)),
                      list(hashes)).fetchall()
    return {card for r in rows for card in hashes[r[0]]}
