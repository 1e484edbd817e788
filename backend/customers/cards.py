"""A customer's cards: issued or linked to them, replaced, blocked, unblocked.

The directory (headoffice's `cards`, the pages readers fetch) says whether a card gets
its discount; `cards.customer_id` says whose it is, so a customer's receipts are found
through all their cards, the old ones too. Every change writes a `card_events` row
(the customer's story) and a trail row under the customer's pseudonym, in the same
transaction as the directory change.

    issue(db, "6001000000000042", 1, customer="7", operator="desk.anna", now=now)  # desks
    replace_card(db, "6001000000000042", "6001000000000043", "desk.anna", now)       # lost card
    block_card(db, "6001000000000043", "desk.anna", "stolen", now)
    unblock_card(db, "6001000000000043", "desk.anna", now)
"""
from loyalty.backend.db import transaction
from loyalty.backend.headoffice import cards as directory
from loyalty.backend.headoffice import common
from loyalty.backend.headoffice.common import InvalidValue, NotFound, card_text
from loyalty.backend.customers import fields
from loyalty.backend.privacy import trail
from loyalty.i18n import _


def event(db, card, customer, what, operator, now, detail=None):
    """Inside the caller's transaction: one card_events row and its trail row."""
    db.execute("INSERT INTO card_events(card, customer_id, t, event, operator, detail) VALUES(?, ?, ?, ?, ?, ?)",
               [card, customer["id"], now, what, operator, detail])
    trail.note(db, operator or "-", "card." + what, customer["pseudonym"], detail=detail, now=now)


def put(db, card, tier, customer, operator, now):
    """Inside the caller's transaction: `card` (checked text) issued to `customer` with
    `tier`, or, already in the directory and nobody's, linked to them (its tier as
    given, or kept when `tier` is None). Returns the directory version, or None when the
    directory did not change."""
    row = db.execute("SELECT tier, status, customer_id FROM cards WHERE card = ?", [card]).fetchone()
    if row is None:
        if tier is None:
            raise InvalidValue("tier", _("a new card needs its tier"))
        directory.check_new_card(db, card, tier)
        version = directory.write_card(db, card, tier, directory.ACTIVE, now)
        what = "issued"
    else:
        if row[2] is not None:
            raise InvalidValue("card", _("card %(card)s belongs to a customer already", card=card))
        if row[1] != directory.ACTIVE:
            raise InvalidValue("card", _("card %(card)s is blocked or removed: give another card", card=card))
        if tier is not None and tier != row[0]:
            if not db.execute("SELECT 1 FROM tiers WHERE id = ?", [tier]).fetchone():
                raise NotFound("tier", _("no tier %(tier)r: add it first (add-tier)", tier=tier))
            version = directory.write_card(db, card, tier, directory.ACTIVE, now)
        else:
            version = None
        what = "linked"
    if customer is not None:
        db.execute("UPDATE cards SET customer_id = ? WHERE card = ?", [customer["id"], card])
        event(db, card, customer, what, operator, now)
    return version


def issue(db, card, tier, customer=None, operator=None, now=None):
    """What the issuing desks call once the card reads back: the card in the directory with
    its tier and, given a customer (id, pseudonym or card), theirs, in one transaction.
    Returns the directory version."""
    now = common.now() if now is None else now
    card = card_text(card, "card")
    if operator is not None:
        operator = fields.operator(operator)
    with transaction(db):
        who = fields.active_customer(db, customer) if customer is not None else None
        version = put(db, card, tier, who, operator, now)
    return version


def check_customer(db, customer):
    """Raise unless `customer` (or None) can take a new card: the desks ask before they
    write one."""
    if customer is not None:
        fields.active_customer(db, customer)


def _owned(db, card, field="card"):
    """(card, tier, status, the owner as fields.customer gives it) of a card linked to an
    active customer."""
    card = card_text(card, field)
    row = db.execute("SELECT tier, status, customer_id FROM cards WHERE card = ?", [card]).fetchone()
    if row is None:
        raise NotFound(field, _("card %(card)s is not in the directory", card=card))
    if row[2] is None:
        raise InvalidValue(field, _("card %(card)s belongs to no customer: use set-card", card=card))
    return card, row[0], row[1], fields.need_active(fields.customer(db, str(row[2])), field)


def replace_card(db, old, new, operator, now):
    """A lost or broken card: `old` blocked, `new` (a new number, or one in the directory
    that is nobody's) gets its tier and its customer. Returns the directory version."""
    operator = fields.operator(operator)
    new = card_text(new, "new")
    with transaction(db):
        old, tier, status, owner = _owned(db, old, "old")
        if new == old:
            raise InvalidValue("new", _("the new card must differ from the old one"))
        try:
            put(db, new, tier, None, operator, now)
        except (InvalidValue, NotFound) as e:
            raise type(e)("new", e.message)
        db.execute("UPDATE cards SET customer_id = ? WHERE card = ?", [owner["id"], new])
        version = directory.write_card(db, old, tier, directory.BLOCKED, now)
        event(db, old, owner, "replaced", operator, now, detail="by " + new)
        event(db, new, owner, "issued", operator, now, detail="replaces " + old)
    return version


def _set_status(db, card, status, what, operator, reason, now):
    operator = fields.operator(operator)
    if reason is not None:
        reason = fields.plain_text(reason, trail.MAX_TEXT, "reason")
    with transaction(db):
        card, tier, old, owner = _owned(db, card)
        if old == directory.REMOVED:
            raise InvalidValue("card", _("card %(card)s was removed from the directory", card=card))
        if old == status:
            return None
        version = directory.write_card(db, card, tier, status, now)
        event(db, card, owner, what, operator, now, detail=reason)
    return version


def block_card(db, card, operator, reason, now):
    """Block a customer's card (it gets no discount); None when it already was."""
    return _set_status(db, card, directory.BLOCKED, "blocked", operator, reason, now)


def unblock_card(db, card, operator, now, reason=None):
    """Make a customer's blocked card active again; None when it already was."""
    return _set_status(db, card, directory.ACTIVE, "unblocked", operator, reason, now)
