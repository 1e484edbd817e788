"""The customer a right is exercised for, their cards, and the log of who looked at
their data (every page, JSON or export that shows it calls `looked_at`).

    customer = find(db, 7)                         # the whole row
    customer["pseudonym"]                          # "C-3f9a1c0e7b2d": what the trail names
    looked_at(db, "care.anna", customer, "export json", now)
    cards_of(db, 7)                                # ["6001000000000042", ...]
"""
from loyalty.backend.cardstates import card_key
from loyalty.backend.headoffice.common import InvalidValue, NotFound
from loyalty.backend.privacy import trail
from loyalty.i18n import _

COLUMNS = ("id", "pseudonym", "name", "contact", "store_id", "household_id", "age_ok", "status",
           "created_t", "created_by", "updated_t", "closed_t", "erased_t")


def find(db, customer_id):
    """The whole customer row as a dict; NotFound names `customer_id`. (Commands find the
    customer from what an operator types with backend/customers/fields.customer.)"""
    if isinstance(customer_id, bool) or not isinstance(customer_id, int):
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


SEEN_AGAIN_AFTER = 3600  # seconds: a page that refreshes itself every few seconds is one look


def looked_at_cards(db, actor, cards, what, now):
    """Log that staff member `actor` saw `cards` (numbers as records write them) on `what`
    (a page): one views row for each customer who holds one of them, unless the same
    actor's look at the same customer on the same page is logged within
    SEEN_AGAIN_AFTER. Inside the caller's transaction; -> rows written."""
    keys = sorted({card_key(str(c)) for c in cards if c})
    if not keys:
        return 0
    # one statement: the page calls this at every refresh
    return db.execute(
        "INSERT INTO views(t, actor, subject, what) SELECT DISTINCT ?, ?, p.pseudonym, ? FROM cards c "
        "JOIN customers p ON p.id = c.customer_id WHERE c.card IN (%s) AND NOT EXISTS (SELECT 1 FROM views v "
        "WHERE v.actor = ? AND v.subject = p.pseudonym AND v.what = ? AND v.t > ?)" % ",".join("?" * len(keys)),
        [now, actor, trail.cut(what)] + keys + [actor, trail.cut(what), now - SEEN_AGAIN_AFTER]).rowcount


def cards_of(db, customer_id):
    """The customer's cards: those linked to them now, and those their card events name
    that nobody else holds now (a replaced card taken out of the directory)."""
    cards = {r[0] for r in db.execute("SELECT card FROM cards WHERE customer_id = ?", [customer_id])}
    for (card,) in db.execute("SELECT DISTINCT e.card FROM card_events e WHERE e.customer_id = ? AND "
                              "e.card IS NOT NULL AND NOT EXISTS (SELECT 1 FROM cards c WHERE c.card = e.card "
                              "AND c.customer_id IS NOT NULL AND c.customer_id != ?)", [customer_id, customer_id]):
        cards.add(card_key(str(card)))
    return sorted(cards)


def written_forms(card):
    """The forms a reader may have written `card` in on a receipt (records keep the number
    as the card gave it): with 0 to 19 - n leading zeros, each found by the receipts' card index."""
    return ["0" * k + card for k in range(0, 20 - len(card))]
