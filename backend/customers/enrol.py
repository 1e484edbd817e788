"""A customer's account: enrolment at the desk, households, closing.

Enrolment takes the minimum the scheme needs (DESIGN.md section 7): a name, one contact
(an e-mail address or a phone number), the store, and whether the desk saw the customer
to be at least 14; nothing else about the person is asked or kept. The customer joins
with a card (new, or one in the directory that is nobody's) and gives the `scheme`
consent; profiling and marketing are given only when asked for, never by default, and
only by a customer of at least 14.

    enrol(db, "Maria Rossi", "maria@example.it", "S1", "6001000000000042", 0, age_ok=True,
          consents={"scheme", "marketing"}, channel="desk", operator="desk.anna",
          notice_version=2, now=now)                     # -> the customer id
    household = add_household(db, "Rossi", "desk.anna", now)
    join_household(db, "7", household, "desk.anna", now)
    close_customer(db, "7", "desk.anna", "asked at the desk", now)

Everything of one call is written in one transaction, or nothing is.
"""
from loyalty.backend.db import transaction
from loyalty.backend.headoffice import cards as directory
from loyalty.backend.headoffice.common import InvalidValue, NotFound, card_text
from loyalty.backend.customers import cards, consents as consent, fields, names
from loyalty.backend.privacy import trail
from loyalty.i18n import _


def _consents(given, age_ok):
    """The set of purposes given: an iterable of purposes, or {purpose: True/False}."""
    if isinstance(given, dict):
        given = [p for p, yes in given.items() if yes]
    given = set(consent.purpose(p) for p in (given or ()))
    if "scheme" not in given:
        raise InvalidValue("scheme", _("joining needs the customer's consent to the scheme"))
    for p in consent.NEEDS_AGE:
        if p in given and not age_ok:
            raise InvalidValue(p, _("needs a customer of at least 14: the desk did not check the age"))
    return given


def check(db, name, contact, store_id, card, tier, age_ok, consents, channel, operator, notice_version):
    """The values as kept, or the error naming the first field at fault; reads only."""
    if age_ok not in (True, False, 0, 1):
        raise InvalidValue("age_ok", _("must be yes or no"))
    return {"name": fields.name(name), "contact": fields.contact(contact), "store": fields.store(db, store_id),
            "card": card_text(card, "card"), "tier": tier, "age_ok": int(age_ok),
            "consents": _consents(consents, age_ok), "channel": fields.channel(channel),
            "operator": fields.operator(operator), "notice": fields.notice(db, notice_version)}


def write(db, v, household, now):
    """Inside the caller's transaction: the customer of checked values `v` (check()), their
    card and their consents; returns the customer id."""
    if household is not None and not db.execute("SELECT 1 FROM households WHERE id = ?", [household]).fetchone():
        raise NotFound("household", _("no household %(household)s", household=household))
    pseudonym = fields.pseudonym()
    cur = db.execute("INSERT INTO customers(pseudonym, name, contact, store_id, household_id, age_ok, status, "
                     "created_t, created_by) VALUES(?, ?, ?, ?, ?, ?, 'active', ?, ?) RETURNING id",
                     [pseudonym, v["name"], v["contact"], v["store"], household, v["age_ok"], now, v["operator"]])
    who = {"id": cur.fetchone()[0], "pseudonym": pseudonym, "status": "active", "age_ok": v["age_ok"]}
    names.set_search_name(db, who["id"], v["name"])
    trail.note(db, v["operator"], "enrol", pseudonym, detail="store=%s channel=%s" % (v["store"], v["channel"]),
               now=now)
    cards.put(db, v["card"], v["tier"], who, v["operator"], now)
    # every purpose gets its row: a refusal is on record with the notice it answered
    for p in consent.PURPOSES:
        consent.record(db, who, p, p in v["consents"], v["channel"], v["operator"], v["notice"], now)
    return who["id"]


def enrol(db, name, contact, store_id, card, tier, age_ok, consents, channel, operator, notice_version,
          household=None, now=None):
    """Enrol a customer with their card; returns the customer id (module docstring)."""
    values = check(db, name, contact, store_id, card, tier, age_ok, consents, channel, operator, notice_version)
    with transaction(db):
        return write(db, values, household, now)


def add_household(db, name, operator, now):
    """A new household (its name optional); returns its id."""
    operator = fields.operator(operator)
    if name is not None:
        name = fields.plain_text(name, fields.MAX_NAME, "name")
    with transaction(db):
        return db.execute("INSERT INTO households(name, created_t) VALUES(?, ?) RETURNING id",
                          [name, now]).fetchone()[0]


def join_household(db, customer, household, operator, now):
    """Put `customer` in `household` (None: out of any); each keeps their own consents."""
    operator = fields.operator(operator)
    with transaction(db):
        who = fields.active_customer(db, customer)
        if household is not None and not db.execute("SELECT 1 FROM households WHERE id = ?",
                                                     [household]).fetchone():
            raise NotFound("household", _("no household %(household)s", household=household))
        db.execute("UPDATE customers SET household_id = ?, updated_t = ? WHERE id = ?", [household, now, who["id"]])
        trail.note(db, operator, "household", who["pseudonym"], detail="household=%s" % household, now=now)
    return who["id"]


def close_customer(db, customer, operator, reason, now):
    """Close an account: status closed, its cards blocked (the retention job erases it
    later). Returns the directory version, or None when no card changed."""
    operator = fields.operator(operator)
    reason = fields.plain_text(reason, trail.MAX_TEXT, "reason")
    version = None
    with transaction(db):
        who = fields.active_customer(db, customer)
        db.execute("UPDATE customers SET status = 'closed', closed_t = ?, updated_t = ? WHERE id = ?",
                   [now, now, who["id"]])
        trail.note(db, operator, "close", who["pseudonym"], reason=reason, now=now)
        for card, tier in db.execute("SELECT card, tier FROM cards WHERE customer_id = ? AND status = ? ORDER BY card",
                                     [who["id"], directory.ACTIVE]).fetchall():
            version = directory.write_card(db, card, tier, directory.BLOCKED, now)
            cards.event(db, card, who, "closed", operator, now)
    return version
