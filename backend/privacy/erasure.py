"""Erasure: a customer's personal data deleted, their receipts kept as anonymous figures.

    erase(db, 7, "care.anna", "request by mail of 2026-12-01", now, key)
    # -> {"pseudonym": "C-3f9a1c0e7b2d", "cards": 2, "receipts": 31, "checkpoint": True, "exports": 0}

In one transaction:
  - the customer's name and contact become NULL, status 'erased', erased_t now; they leave
    their household (a household left empty goes: its name may be the family's);
  - each of their cards: a tombstone (backend/privacy/tombstones.py: a keyed hash, never
    the number) so that receipts a reader syncs late are anonymised on arrival; the card
    leaves the directory through a sealed removal (backend/privacy/removals.py: its
    `cards` row and `card_history` go); card_events keep what happened and when, without
    the card number or the free-text detail;
  - the receipts of those cards lose their card and their lines (fold.fold_where, even
    inside the return window: the customer is gone); their totals stay in every figure;
    an audit verdict already given stays, one still awaited becomes 'erased' (the record
    it needs is gone);
  - records of those cards held in quarantine lose the card number;
  - customer care's contacts (free text about the person), the marketing log and the
    shopper's one-time codes go;
  - the consent history stays under the customer id, which names nobody any more: it is
    the proof that whatever was done with their data before was consented to;
  - the exports kept in the instance's exports folder (customer-export's default) are
    overwritten and deleted; a copy written elsewhere or handed over is out of reach;
  - one trail row names the pseudonym, the actor and the reason (the reason is what the
    actor typed: it must not name the person).

The erasing connection runs with PRAGMA secure_delete=ON (freed space is zeroed, not left
in the file) and checkpoints the WAL afterwards (TRUNCATE), so that the name, contact and
card numbers are gone from the database file and its -wal; `checkpoint` is False when
other connections kept the WAL from being emptied (it is emptied at a later checkpoint).

Erasing a customer erased already is refused (InvalidValue on customer_id), nothing written.
"""
import os
import re

from loyalty.backend.customers import names
from loyalty.backend.db import transaction
from loyalty.backend.headoffice.common import InvalidValue
from loyalty.backend.privacy import fold, removals, subject, tombstones, trail
from loyalty.backend.privacy.rectification import check_actor, check_reason
from loyalty.i18n import _


def _scrub_quarantine(db, card):
    """Take the card number out of quarantined records (kept for a person to judge)."""
    number = re.compile(r"(?<![0-9])0*%s(?![0-9])" % card)
    for reader, seq, record, detail in db.execute(
            "SELECT reader_id, seq, record, detail FROM quarantine WHERE instr(record, ?) > 0 OR instr(detail, ?) > 0",
            [card, card]).fetchall():
        db.execute("UPDATE quarantine SET record = ?, detail = ? WHERE reader_id = ? AND seq = ?",
                   [record and number.sub("", record), detail and number.sub("", detail), reader, seq])


def _erase_card(db, key, card, now):
    """The card's tombstone, its sealed removal from the directory, its receipts anonymised;
    returns how many receipts it had."""
    tombstones.bury(db, key, card, now)
    if db.execute("SELECT 1 FROM cards WHERE card = ?", [card]).fetchone():
        removals.remove_card(db, key, card, now)
    else:  # out of the directory already: readers dropped it, its history may remain
        db.execute("DELETE FROM card_history WHERE card = ?", [card])
    written = subject.written_forms(card)
    where = "r.card IN (%s)" % ",".join("?" * len(written))
    fold.fold_where(db, where, written, now)
    db.execute("UPDATE receipts SET audit = ? WHERE audit IS NULL AND card IN (%s)" % ",".join("?" * len(written)),
               [tombstones.AUDIT_ERASED] + written)
    cur = db.execute("UPDATE receipts SET card = NULL WHERE card IN (%s)" % ",".join("?" * len(written)), written)
    # events of the card before it was linked to anybody (issued, imported) name it too
    db.execute("UPDATE card_events SET card = NULL, detail = NULL WHERE card IN (%s)" % ",".join("?" * len(written)),
               written)
    _scrub_quarantine(db, card)
    return cur.rowcount


def _delete_exports(folder, pseudonym):
    """Delete the customer's exports kept in `folder` (named <pseudonym>-...), their bytes
    overwritten first; returns how many."""
    if not folder or not os.path.isdir(folder):
        return 0
    gone = 0
    for name in sorted(os.listdir(folder)):
        if name.startswith(pseudonym + "-"):
            path = os.path.join(folder, name)
            with open(path, "r+b") as f:
                f.write(b"\0" * os.fstat(f.fileno()).st_size)
                f.flush()
                os.fsync(f.fileno())
            os.unlink(path)
            gone += 1
    return gone


def erase(db, customer_id, actor, reason, now, key, exports=None):
    """Erase the customer (module docstring); returns what was done. `exports`: the folder
    of the instance's exports (customer-export's default): the customer's go too."""
    actor, reason = check_actor(actor), check_reason(reason)
    secure = db.execute("PRAGMA secure_delete").fetchone()[0]
    db.execute("PRAGMA secure_delete=ON")
    try:
        with transaction(db):
            customer = subject.find(db, customer_id)
            cid = customer["id"]
            if customer["status"] == "erased":
                raise InvalidValue("customer_id", _("customer %(id)d was erased already", id=cid))
            cards = subject.cards_of(db, cid)
            receipts = sum(_erase_card(db, key, card, now) for card in cards)
            db.execute("UPDATE card_events SET card = NULL, detail = NULL WHERE customer_id = ?", [cid])
            db.execute("DELETE FROM care_contacts WHERE customer_id = ?", [cid])
            db.execute("DELETE FROM marketing_log WHERE customer_id = ?", [cid])
            db.execute("DELETE FROM shopper_codes WHERE customer_id = ?", [cid])
            names.set_search_name(db, cid, None)  # name_key and the name's words for search
            db.execute("UPDATE customers SET name = NULL, contact = NULL, household_id = NULL, status = 'erased', "
                       "erased_t = ?, updated_t = ? WHERE id = ?", [now, now, cid])
            if customer["household_id"] is not None:
                db.execute("DELETE FROM households WHERE id = ? AND NOT EXISTS "
                           "(SELECT 1 FROM customers WHERE household_id = ?)",
                           [customer["household_id"], customer["household_id"]])
            trail.note(db, actor, "erase", customer["pseudonym"], reason=reason,
                       detail="cards=%d receipts=%d" % (len(cards), receipts), now=now)
            removals.prune(db, now)
        busy = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
    finally:
        db.execute("PRAGMA secure_delete=%d" % (1 if secure else 0))
    return {"pseudonym": customer["pseudonym"], "cards": len(cards), "receipts": receipts, "checkpoint": not busy,
            "exports": _delete_exports(exports, customer["pseudonym"])}
