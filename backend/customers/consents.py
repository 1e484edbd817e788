"""Consents: which are in force (the newest `consents` row of a customer for a purpose),
and giving or withdrawing one.

Three purposes (DESIGN.md section 7): `scheme` (joining: the discount itself),
`profiling` (analysing what the customer buys) and `marketing` (contacting them). Each
is given or withdrawn on its own, and the whole history stays: what is in force is the
newest row (highest id) per customer and purpose. No row means not given.

    in_force(db, 7)                    # {"scheme": True, "profiling": False, "marketing": False}
    db.execute("SELECT ... WHERE customer_id IN (%s)" % consenting_sql("profiling"))
    give(db, "7", "marketing", "desk", "anna", 2, now)
    withdraw(db, "7", "profiling", "web", "self", 2, now)   # the receipts' lines fold at once
    object_marketing(db, "7", "care.luca", "phoned: no more mail", now)

Every row says when, through which channel (desk, web, phone), who took it and which
version of the privacy notice the customer saw; each change is in the audit trail too
(privacy.trail, under the customer's pseudonym). Profiling and marketing need a customer
the desk saw to be at least 14 (Italian law: D.Lgs. 196/2003 art. 2-quinquies).
"""
from loyalty.backend.config import DEFAULTS
from loyalty.backend.db import transaction
from loyalty.backend.headoffice.common import InvalidValue
from loyalty.backend.customers import fields, notices
from loyalty.backend.customers.inforce import PURPOSES, consenting_sql, in_force  # noqa: F401 (this module's API too)
from loyalty.backend.privacy import trail
from loyalty.backend.privacy.minimise import fold_withdrawn
from loyalty.i18n import _

NEEDS_AGE = ("profiling", "marketing")
RETURN_WINDOW_DAYS = DEFAULTS["RETURN_WINDOW_DAYS"]  # the app's setting, given by the commands


def purpose(value):
    if value not in PURPOSES:
        raise InvalidValue("purpose", _("must be one of %(choices)s", choices=", ".join(PURPOSES)))
    return value


def record(db, customer, purpose_, given, channel, operator, notice_version, now, reason=None):
    """Inside the caller's transaction: one consents row and its trail row, for a
    `customer` as fields.customer() returns it, the other values already checked."""
    if given and purpose_ in NEEDS_AGE and not customer["age_ok"]:
        raise InvalidValue(purpose_, _("needs a customer of at least 14: the desk did not check the age"))
    db.execute("INSERT INTO consents(customer_id, purpose, given, t, channel, operator, notice_version) "
               "VALUES(?, ?, ?, ?, ?, ?, ?)",
               [customer["id"], purpose_, int(bool(given)), now, channel, operator, notice_version])
    trail.note(db, operator, "consent.%s.%s" % (purpose_, "given" if given else "withdrawn"), customer["pseudonym"],
               reason=reason, detail="channel=%s notice=%d" % (channel, notice_version), now=now)


def _change(db, ref, purpose_, given, channel, operator, notice_version, now, reason=None,
            return_window_days=RETURN_WINDOW_DAYS):
    purpose_ = purpose(purpose_)
    channel = fields.channel(channel)
    operator = fields.operator(operator)
    if reason is not None:
        reason = fields.plain_text(reason, trail.MAX_TEXT, "reason")
    with transaction(db):
        customer = fields.active_customer(db, ref)
        notice_version = fields.notice(db, notice_version)
        record(db, customer, purpose_, given, channel, operator, notice_version, now, reason)
        if purpose_ == "profiling" and not given:
            # the customer's receipts lose their lines now, not at the next nightly run
            fold_withdrawn(db, customer["id"], now, return_window_days)
    return customer["id"]


def give(db, customer, purpose, channel, operator, notice_version, now):
    """Record `purpose` given by `customer` (id, pseudonym or card: fields.customer);
    returns the customer id."""
    return _change(db, customer, purpose, True, channel, operator, notice_version, now)


def withdraw(db, customer, purpose, channel, operator, notice_version, now, reason=None,
             return_window_days=RETURN_WINDOW_DAYS):
    """Record `purpose` withdrawn; for profiling the customer's receipts are minimised at
    once. Returns the customer id."""
    return _change(db, customer, purpose, False, channel, operator, notice_version, now, reason,
                   return_window_days)


def object_marketing(db, customer, operator, reason, now, channel="desk"):
    """The customer objects to marketing (GDPR art. 21): marketing withdrawn, with the
    reason in the trail, under the notice in force now."""
    if reason is None:  # an objection says why (withdraw checks the text)
        raise InvalidValue("reason", _("must be text of 1 to %(hi)d characters, without control characters",
                                       hi=trail.MAX_TEXT))
    return withdraw(db, customer, "marketing", channel, operator, notices.current(db), now, reason=reason)
