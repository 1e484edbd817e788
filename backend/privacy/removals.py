"""The directory removals of erased customers' cards, sealed under the instance's key.

An erased customer's card must leave every reader's directory, and a directory page
names the card it removes (docs/directory.md, status REMOVED). The `cards` row goes at
erasure, so that the number leaves the database file; until readers have fetched the
removal, its page entry is kept in `directory_removals` under the directory version it
took, with the number sealed: encrypted under a key derived from the instance's erasure
key, which never enters the database. Pages since an older version unseal it
(backend/headoffice/cards.py directory_page); a full load never sees it.

    version = remove_card(db, key, "6001000000000042", now)   # inside a transaction
    removed_since(db, key, since=41, limit=100)    # -> [("6001000000000042", 0, 2, version)]
    prune(db, now)                                 # rows every reader has, or 90 days old

The seal is the standard library's: a keystream of HMAC-SHA256 over a random 16-byte
salt and the version, XORed with the 8-byte number (the readers' form), then a 16-byte
HMAC tag over salt, version and sealed bytes (a row moved to another version or altered
does not unseal). The salt keeps two seals apart even if a restored backup hands out a
version twice. No new dependency: the `cryptography` package in the environment comes
with esptool, not by our choice.
"""
import hashlib
import hmac
import os

from loyalty.backend.db import meta_int, set_meta
from loyalty.protocol import delta

KEPT_AFTER_CONTACT = 30 * 86400  # readers heard from in this long must have a removal before it goes
KEPT_AT_MOST = 90 * 86400        # after this a removal goes whatever the readers' versions
_SALT = 16
_TAG = 16


class SealBroken(Exception):
    """A sealed removal does not open with this key (another instance's key, or altered)."""


def _keys(key):
    def derive(label):
        return hmac.new(key, label, hashlib.sha256).digest()
    return derive(b"loyalty directory removal seal v1"), derive(b"loyalty directory removal tag v1")


def seal(key, version, card):
    """The card number `card` sealed for directory version `version`, as hex text."""
    stream_key, tag_key = _keys(key)
    salt = os.urandom(_SALT)
    where = salt + version.to_bytes(8, "big")
    stream = hmac.new(stream_key, where, hashlib.sha256).digest()[:8]
    number = int(card).to_bytes(8, "big")
    sealed = bytes(a ^ b for a, b in zip(number, stream))
    tag = hmac.new(tag_key, where + sealed, hashlib.sha256).digest()[:_TAG]
    return (salt + sealed + tag).hex()


def unseal(key, version, text):
    """The card number (text, no leading zeros) sealed in `text` for `version`."""
    stream_key, tag_key = _keys(key)
    raw = bytes.fromhex(text)
    if len(raw) != _SALT + 8 + _TAG:
        raise SealBroken(version)
    salt, sealed, tag = raw[:_SALT], raw[_SALT:_SALT + 8], raw[_SALT + 8:]
    where = salt + version.to_bytes(8, "big")
    if not hmac.compare_digest(tag, hmac.new(tag_key, where + sealed, hashlib.sha256).digest()[:_TAG]):
        raise SealBroken(version)
    stream = hmac.new(stream_key, where, hashlib.sha256).digest()[:8]
    return str(int.from_bytes(bytes(a ^ b for a, b in zip(sealed, stream)), "big"))


def remove_card(db, key, card, now):
    """Inside a transaction: take `card` out of the directory for good. The next directory
    version is a sealed removal; the cards row and its history go. Returns the version."""
    version = meta_int(db, "directory_version") + 1
    db.execute("INSERT INTO directory_removals(version, sealed, t) VALUES(?, ?, ?)",
               [version, seal(key, version, card), now])
    db.execute("DELETE FROM cards WHERE card = ?", [card])
    # the history names the card at every version; the audit of receipts of this card
    # no longer needs it: they keep no card (backend/privacy/erasure.py)
    db.execute("DELETE FROM card_history WHERE card = ?", [card])
    set_meta(db, "directory_version", version)
    return version


def removed_since(db, key, since, limit):
    """The oldest `limit` removals after version `since`: [(card, tier 0, REMOVED, version)]."""
    if key is None:
        # without the key the removals cannot be named: a page without them would leave
        # erased customers' cards on the readers
        if db.execute("SELECT 1 FROM directory_removals WHERE version > ? LIMIT 1", [since]).fetchone():
            raise SealBroken("no erasure key given")
        return []
    return [(unseal(key, v, s), 0, delta.REMOVED, v) for v, s in db.execute(
        "SELECT version, sealed FROM directory_removals WHERE version > ? ORDER BY version LIMIT ?",
        [since, limit])]


def prune(db, now):
    """Delete the removals every reader heard from in the last 30 days has applied (its
    directory_version at or past it), and any older than 90 days whatever the readers say:
    the seal must not outlive the erasure for ever. A reader silent for longer than that
    keeps the card in its copy until its directory is loaded again from version 0
    (docs/directory.md). Returns how many went."""
    behind = db.execute("SELECT min(coalesce(directory_version, 0)) FROM readers WHERE last_contact >= ?",
                        [now - KEPT_AFTER_CONTACT]).fetchone()[0]
    cur = db.execute("DELETE FROM directory_removals WHERE t < ? OR version <= ?",
                     [now - KEPT_AT_MOST, 2 ** 63 - 1 if behind is None else behind])
    return cur.rowcount
