"""Customer care's contacts: what an operator records after talking to a customer, so
that the next contact starts where this one ended.

    add(db, 7, "care.anna", {"channel": "phone", "reason": "sconto mancante",
                             "note": "Richiamare lunedì", "outcome": "risolto"}, now)   # -> the row's id

Each value is checked (InvalidValue names the field, nothing is stored): the channel one
of CHANNELS; the reason and the outcome plain text of 1 to SHORT characters; the note
plain text of at most NOTE_MAX characters (line breaks and tabs allowed; control and
bidirectional characters refused). Notes are free text about a person: the form warns
against health and other special-category data (docs/privacy.md, section 6); the access
export carries them; erasure deletes them.
"""
from loyalty.backend.customers.fields import note_text, plain_text
from loyalty.backend.db import transaction
from loyalty.backend.headoffice.common import InvalidValue
from loyalty.backend.privacy import subject, trail
from loyalty.i18n import _

CHANNELS = ("phone", "email", "desk", "web")
SHORT = 100
NOTE_MAX = 2000


def check(form):
    """The contact's values as kept, from a form's (a dict of text)."""
    channel = form.get("channel")
    if channel not in CHANNELS:
        raise InvalidValue("channel", _("must be one of %(choices)s", choices=", ".join(CHANNELS)))
    reason = plain_text(form.get("reason"), SHORT, "reason")
    outcome = plain_text(form.get("outcome"), SHORT, "outcome")
    note = note_text(form.get("note"), NOTE_MAX, "note")
    return {"channel": channel, "reason": reason, "outcome": outcome, "note": note or None}


def add(db, customer_id, operator, form, now):
    """Record a contact with customer `customer_id` by `operator`; -> the new row's id.
    An erased customer takes none (their contacts were deleted with them)."""
    values = check(form)
    with transaction(db):
        customer = subject.find(db, customer_id)
        if customer["status"] == "erased":
            raise InvalidValue("customer_id", _("customer %(ref)s is erased: nothing can be added",
                                                ref=customer["pseudonym"]))
        new = db.execute("INSERT INTO care_contacts(customer_id, t, channel, operator, reason, note, outcome) "
                         "VALUES(?, ?, ?, ?, ?, ?, ?)", [customer_id, now, values["channel"], operator,
                                                         values["reason"], values["note"], values["outcome"]]).lastrowid
        trail.note(db, operator, "care contact", customer["pseudonym"], detail=values["channel"], now=now)
    return new
