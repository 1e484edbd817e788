"""Rectification: a customer's name or contact corrected at their request, with a trail row.

The trail row says which field changed, who changed it, when and why; never the old or
the new value (the trail outlives an erasure: it must not keep the person).

    rectify(db, 7, "contact", "mario.rossi@example.it", "care.anna", "wrong address", now)   # -> True

The name and the contact are checked as at enrolment (backend/customers/fields.py); the
actor and the reason as plain text (check_actor, check_reason); each error names the field.
"""
from loyalty.backend.customers import fields, names
from loyalty.backend.db import transaction
from loyalty.backend.headoffice.common import InvalidValue
from loyalty.backend.privacy import subject, trail
from loyalty.i18n import _

FIELDS = ("name", "contact")


def check_actor(value, field="actor"):
    return fields.plain_text(value, fields.MAX_OPERATOR, field)


def check_reason(value, field="reason"):
    return fields.plain_text(value, trail.MAX_TEXT, field)


def rectify(db, customer_id, field, value, actor, reason, now):
    """Set the customer's `field` (name or contact) to `value`; True if it changed (a value
    as it already was changes nothing and writes no trail row). An erased customer cannot
    be rectified: there is nobody left to correct."""
    if field not in FIELDS:
        raise InvalidValue("field", _("must be name or contact"))
    value = (fields.name if field == "name" else fields.contact)(value)  # enrolment's checks
    actor, reason = check_actor(actor), check_reason(reason)
    with transaction(db):
        customer = subject.find(db, customer_id)
        if customer["status"] == "erased":
            raise InvalidValue("customer_id", _("customer %(id)d was erased", id=customer["id"]))
        if customer[field] == value:
            return False
        db.execute("UPDATE customers SET %s = ?, updated_t = ? WHERE id = ?" % field, [value, now, customer["id"]])
        if field == "name":  # what search compares
            names.set_search_name(db, customer["id"], value)
        trail.note(db, actor, "rectify", customer["pseudonym"], reason=reason, detail=field, now=now)
    return True
