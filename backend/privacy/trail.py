"""The audit trail of customer data, and the log of who looked at it.

Both name a customer by their pseudonym (customers.pseudonym), never by name or card,
so they can outlive an erasure without keeping the person.

    note(db, "mario.rossi", "erase", "C-3f9a1c0e7b2d", reason="request by mail 2026-12-01", now=now)
    looked(db, "care.anna", "C-3f9a1c0e7b2d", "export", now=now)

Both write inside the caller's transaction: the change and its trail land together.
"""
MAX_TEXT = 500  # reason and detail: what a person typed, cut to this


def cut(text):
    return None if text is None else str(text)[:MAX_TEXT]


def note(db, actor, action, subject, reason=None, detail=None, now=None):
    """One trail row: `actor` did `action` to the customer `subject` (pseudonym), why, what."""
    db.execute("INSERT INTO trail(t, actor, action, subject, reason, detail) VALUES(?, ?, ?, ?, ?, ?)",
               [now, actor, action, subject, cut(reason), cut(detail)])


def looked(db, actor, subject, what, now=None):
    """One views row: `actor` saw `what` (a page, an export) of the customer `subject`."""
    db.execute("INSERT INTO views(t, actor, subject, what) VALUES(?, ?, ?, ?)", [now, actor, subject, cut(what)])
