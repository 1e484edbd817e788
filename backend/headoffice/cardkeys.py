"""Card key epochs: the issuer key of each, wrapped for readers, and new cards' keys
(docs/cards.md).

    new_card_epoch(db)                            # 1: a fresh issuer key, never printed
    issue_card_key(db, "6001000000000042")        # (1, the card's key)
    card_keys_for(db, reader_key)                 # (version, [[1, wrapped hex]])
    retire_card_epoch(db, 1)                      # readers drop it at their next sync
"""
import os

from loyalty.backend.db import meta_int, set_meta, transaction
from loyalty.backend.headoffice import common
from loyalty.backend.headoffice.common import InvalidValue, NotFound, card_text
from loyalty.protocol import loyaltycard
from loyalty.i18n import _


def new_card_epoch(db):
    """Start the next card key epoch with a fresh random issuer key; returns the epoch.

    Cards issued from now on carry it; readers fetch the new key at their next sync
    and keep the older ones, so cards of every epoch still read.
    """
    with transaction(db):
        last = db.execute("SELECT max(epoch) FROM card_epochs").fetchone()[0] or 0
        if last >= 255:
            raise InvalidValue("epoch", _("all 255 card key epochs are used"))
        db.execute("INSERT INTO card_epochs(epoch, key_hex, created) VALUES(?, ?, ?)",
                   [last + 1, os.urandom(32).hex(), common.now()])
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
            raise NotFound("epoch", _("no card key epoch %(epoch)r", epoch=epoch))
        if row[0]:
            raise InvalidValue("epoch", _("epoch %(epoch)d is retired already", epoch=epoch))
        db.execute("UPDATE card_epochs SET retired=1 WHERE epoch=?", [epoch])
        set_meta(db, "card_keys_version", meta_int(db, "card_keys_version") + 1)


def current_epoch(db):
    """The epoch new cards are issued in (the newest not retired), or None."""
    return db.execute("SELECT max(epoch) FROM card_epochs WHERE retired=0").fetchone()[0]


def issuer_key(db, epoch):
    """The issuer key (32 bytes) of `epoch`; NotFound if there is no such epoch."""
    row = db.execute("SELECT key_hex FROM card_epochs WHERE epoch=?", [epoch]).fetchone()
    if row is None:
        raise NotFound("epoch", _("no card key epoch %(epoch)r: start one with new-card-epoch", epoch=epoch))
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
        raise NotFound("epoch", _("no card key epoch yet: start one with new-card-epoch"))
    return epoch, loyaltycard.card_key(issuer_key(db, epoch), card_text(card, "card"))
