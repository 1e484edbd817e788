"""Rectification: a customer's name or contact corrected at their request, with a trail row.

The trail row says which field changed, who changed it, when and why; never the old or
the new value (the trail outlives an erasure: it must not keep the person).

    rectify(db, 7, "contact", "mario.rossi@example.it", "care.anna", "wrong address", now)   # -> True

The checks here are the ones any writer of a name or a contact needs (enrolment too):
`check_name`, `check_contact`, `check_actor`, `check_reason`; each raises InvalidValue
naming the field.
"""
import re
import unicodedata

from loyalty.backend.db import transaction
from loyalty.backend.headoffice.common import InvalidValue
from loyalty.backend.privacy import subject, trail
from loyalty.i18n import _

NAME_MAX = 100
CONTACT_MAX = 254  # the longest e-mail address RFC 5321 lets through
ACTOR_MAX = 64
REASON_MAX = trail.MAX_TEXT
FIELDS = ("name", "contact")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+$")
_PHONE = re.compile(r"^\+?[0-9][0-9 ./-]*[0-9]$")


def _plain(value, lo, hi, field):
    """Text of lo..hi characters once trimmed, without control or invisible formatting
    characters (a name is printed on pages and exports; a line break or a right-to-left
    override in it would forge what they show)."""
    if not isinstance(value, str):
        raise InvalidValue(field, _("must be text"))
    value = value.strip()
    if not lo <= len(value) <= hi:
        raise InvalidValue(field, _("must be text of %(lo)d to %(hi)d characters", lo=lo, hi=hi))
    if any(unicodedata.category(c)[0] == "C" or unicodedata.category(c) in ("Zl", "Zp") for c in value):
        raise InvalidValue(field, _("must not contain control characters"))
    return value


def check_name(value, field="name"):
    value = _plain(value, 1, NAME_MAX, field)
    if not any(c.isalpha() for c in value):
        raise InvalidValue(field, _("must contain letters"))
    return " ".join(value.split())


def check_contact(value, field="contact"):
    """An e-mail address, or a phone number (6 to 15 digits, an optional leading +; spaces,
    dots, dashes and slashes between the digits are dropped)."""
    value = _plain(value, 3, CONTACT_MAX, field)
    if "@" in value:
        if not _EMAIL.match(value):
            raise InvalidValue(field, _("must be an e-mail address (name@example.it) or a phone number"))
        return value
    digits = re.sub(r"[ ./-]", "", value)
    if not _PHONE.match(value) or not 6 <= len(digits.lstrip("+")) <= 15:
        raise InvalidValue(field, _("must be an e-mail address (name@example.it) or a phone number"))
    return digits


def check_actor(value, field="actor"):
    return _plain(value, 1, ACTOR_MAX, field)


def check_reason(value, field="reason"):
    return _plain(value, 1, REASON_MAX, field)


def rectify(db, customer_id, field, value, actor, reason, now):
    """Set the customer's `field` (name or contact) to `value`; True if it changed (a value
    as it already was changes nothing and writes no trail row). An erased customer cannot
    be rectified: there is nobody left to correct."""
    if field not in FIELDS:
        raise InvalidValue("field", _("must be name or contact"))
    value = (check_name if field == "name" else check_contact)(value, field)
    actor, reason = check_actor(actor), check_reason(reason)
    with transaction(db):
        customer = subject.find(db, customer_id=customer_id)
        if customer["status"] == "erased":
            raise InvalidValue("customer_id", _("customer %(id)d was erased", id=customer["id"]))
        if customer[field] == value:
            return False
        db.execute("UPDATE customers SET %s = ?, updated_t = ? WHERE id = ?" % field, [value, now, customer["id"]])
        trail.note(db, actor, "rectify", customer["pseudonym"], reason=reason, detail=field, now=now)
    return True
