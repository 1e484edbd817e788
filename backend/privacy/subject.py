"""The customer a right is exercised for, found by id or by card, and the log of who
looked at their data (every page, JSON or export that shows it calls `looked_at`).

    customer = find(db, customer_id=7)            # or find(db, card="6001000000000042")
    customer["pseudonym"]                          # "C-3f9a1c0e7b2d": what the trail names
    looked_at(db, "care.anna", customer, "export json", now)
    cards_of(db, 7)                                # ["6001000000000042", ...]
"""
from loyalty.backend.headoffice.common import InvalidValue, NotFound, card_text
from loyalty.backend.privacy import trail
from loyalty.i18n import _

COLUMNS = ("id", "pseudonym", "name", "contact", "store_id", "household_id", "age_ok", "status",
           "created_t", "created_by", "updated_t", "closed_t", "erased_t")


def find(db, customer_id=None, card=None):
    """The customer row as a dict, by `customer_id` or by one of their `card`s; NotFound
    names the field given (`customer_id` or `card`)."""
    if (customer_id is None) == (card is None):
        raise InvalidValue("customer_id", _("give a customer id or a card number"))
    if card is not None:
        number = card_text(card, "card")
        row = db.execute("SELECT customer_id FROM cards WHERE card = ?", [number]).fetchone()
        if row is None or row[0] is None:
            raise NotFound("card", _("card %(card)s belongs to no customer", card=number))
        customer_id = row[0]
    if isinstance(customer_id, str) and customer_id.strip().isdigit():
        customer_id = int(customer_id)
    if not isinstance(customer_id, int) or isinstance(customer_id, bool):
        raise InvalidValue("customer_id", _("must be a whole number"))
    row = db.execute("SELECT %s FROM customers WHERE id = ?" % ", ".join(COLUMNS), [customer_id]).fetchone()
    if row is None:
        raise NotFound("customer_id", _("no customer %(id)d", id=customer_id))
    return dict(zip(COLUMNS, row))


def looked_at(db, actor, customer, what, now):
    """Log that staff member `actor` saw `what` of `customer` (a row from find); inside
    the caller's transaction. Kept at least 6 months (the retention job must not go
    below: docs/privacy.md)."""
    trail.looked(db, actor, customer["pseudonym"], what, now=now)


def cards_of(db, customer_id):
    """The customer's cards: those linked to them now, and those their card events name
    that nobody else holds now (a replaced card taken out of the directory)."""
    cards = {r[0] for r in db.execute("SELECT card FROM cards WHERE customer_id = ?", [customer_id])}
    for (card,) in db.execute("SELECT DISTINCT e.card FROM card_events e WHERE e.customer_id = ? AND "
                              "e.card IS NOT NULL AND NOT EXISTS (SELECT 1 FROM cards c WHERE c.card = e.card "
                              "AND c.customer_id IS NOT NULL AND c.customer_id != ?)", [customer_id, customer_id]):
        cards.add(str(card).lstrip("0") or "0")
    return sorted(cards)


def written_forms(card):
    """The forms a reader may have written `card` in on a receipt (records keep the number
    as the card gave it): with 0 to 19 - n leading zeros, each found by the receipts' card index."""
    return ["0" * k + card for k in range(0, 20 - len(card))]
