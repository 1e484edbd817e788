"""Customers, their cards and consents as plain rows, for tests that need them before the
enrolment code exists (it is another branch's): replace these with its functions later.

    cid = customer(db, "C-1", store="S1", t=T)
    card(db, "6001000000000042", cid)
    consent(db, cid, "profiling", 1, t=T)
"""


def customer(db, pseudonym, store=None, t=0, status="active", erased_t=None, id=None):
    """A customer row (id: the next one unless given); -> its id."""
    return db.execute("INSERT INTO customers(id, pseudonym, name, contact, store_id, age_ok, status, created_t, "
                      "erased_t) VALUES(?, ?, ?, ?, ?, 1, ?, ?, ?)",
                      [id, pseudonym, "Name " + pseudonym, pseudonym.lower() + "@example.it", store, status, t,
                       erased_t]).lastrowid


def card(db, number, customer_id, tier=0, t=0):
    """The directory's card `number` (no leading zeros), owned by `customer_id` (None: nobody's)."""
    db.execute("INSERT INTO cards(card, tier, status, version, updated, customer_id) VALUES(?, ?, 0, 1, ?, ?) "
               "ON CONFLICT(card) DO UPDATE SET customer_id = excluded.customer_id", [number, tier, t, customer_id])


def consent(db, customer_id, purpose, given, t=0):
    """A consents row (given 1 or withdrawn 0) at t; the newest is in force. -> its id."""
    return db.execute("INSERT INTO consents(customer_id, purpose, given, t, channel, operator, notice_version) "
                      "VALUES(?, ?, ?, ?, 'desk', 'test', 1)", [customer_id, purpose, given, t]).lastrowid
