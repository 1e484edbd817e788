"""One-time codes a shopper signs in with: made, kept only as a keyed hash, checked.

A code is 6 random digits (secrets), good for `minutes` and `tries` wrong guesses; the
table `shopper_codes` keeps HMAC-SHA256 of it under the app's secret, never the code. A
new code voids the customer's earlier ones, and a customer gets at most `per_hour` codes
an hour (more would let anyone flood their mailbox).

    sent = issue(db, "6001000000000042", key, now, Limits())
    sent.kind        # "email": sent.code goes to sent.contact; "phone", "limit" or "unknown": nothing to send
    check(db, "6001000000000042", "123456", key, now, Limits())   # the customer id, or None

Neither function says to its caller's page whether the card exists: the page gives one
answer for every kind (backend/shopper/views.py), and both do the same hashing either way.
No Flask here: plain arguments, the caller's clock.
"""
import collections
import hashlib
import hmac
import secrets

from loyalty.backend.db import transaction
from loyalty.backend.headoffice.common import InvalidValue, card_text
from loyalty.i18n import _

DIGITS = 6

Limits = collections.namedtuple("Limits", "minutes tries per_hour", defaults=(10, 5, 3))
Issued = collections.namedtuple("Issued", "kind customer_id pseudonym contact code")


def limits(config):
    """The Limits an app's config sets (backend/config.py: SHOPPER_CODE_*)."""
    return Limits(config["SHOPPER_CODE_MINUTES"], config["SHOPPER_CODE_TRIES"], config["SHOPPER_CODES_PER_HOUR"])


def card(value):
    """The card number a shopper typed (spaces allowed between digits), as the directory keeps it."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidValue("card", _("type the number printed on your card"))
    return card_text("".join(value.split()), "card")


def code(value):
    """The code a shopper typed: DIGITS digits (spaces allowed)."""
    typed = "".join(value.split()) if isinstance(value, str) else ""
    if len(typed) != DIGITS or not (typed.isascii() and typed.isdigit()):
        raise InvalidValue("code", _("the code is the %(n)d digits in the e-mail", n=DIGITS))
    return typed


def _hash(key, customer_id, typed):
    return hmac.new(key, ("%d:%s" % (customer_id, typed)).encode(), hashlib.sha256).hexdigest()


def _holder(db, number):
    """(id, pseudonym, contact) of the active customer holding card `number`, or None."""
    return db.execute("SELECT p.id, p.pseudonym, p.contact FROM cards c JOIN customers p ON p.id = c.customer_id "
                      "WHERE c.card = ? AND p.status = 'active'", [number]).fetchone()


def issue(db, number, key, now, lim=Limits()):
    """A new code for the holder of card `number` (already checked by card()), if there is
    one whose contact is an e-mail address and who has had fewer than lim.per_hour codes in
    the last hour. The code's hash is stored (and the earlier codes voided) in one
    transaction; the caller sends Issued.code to Issued.contact when kind is "email"."""
    typed = "".join(secrets.choice("0123456789") for _ in range(DIGITS))
    with transaction(db):
        holder = _holder(db, number)
        if holder is None:
            return Issued("unknown", None, None, None, None)
        customer_id, pseudonym, contact = holder
        if not contact or "@" not in contact:
            return Issued("phone", customer_id, pseudonym, None, None)
        recent = db.execute("SELECT count(*) FROM shopper_codes WHERE customer_id = ? AND t > ?",
                            [customer_id, now - 3600]).fetchone()[0]
        if recent >= lim.per_hour:
            return Issued("limit", customer_id, pseudonym, None, None)
        db.execute("UPDATE shopper_codes SET expires_t = ? WHERE customer_id = ? AND used_t IS NULL AND expires_t > ?",
                   [now, customer_id, now])
        db.execute("INSERT INTO shopper_codes(customer_id, code_hash, t, expires_t, tries) VALUES(?, ?, ?, ?, 0)",
                   [customer_id, _hash(key, customer_id, typed), now, now + 60 * lim.minutes])
    return Issued("email", customer_id, pseudonym, contact, typed)


def check(db, number, typed, key, now, lim=Limits()):
    """The id of the customer holding card `number` if `typed` is their live code (not
    used, not expired, fewer than lim.tries wrong guesses); the code is then used up. A
    wrong guess counts against the code. None otherwise, whatever the reason."""
    with transaction(db):
        holder = _holder(db, number)
        row = None if holder is None else db.execute(
            "SELECT id, code_hash FROM shopper_codes WHERE customer_id = ? AND used_t IS NULL AND expires_t > ? "
            "AND tries < ? ORDER BY id DESC LIMIT 1", [holder[0], now, lim.tries]).fetchone()
        given = _hash(key, holder[0] if holder else 0, typed)
        if row is None:
            return None
        if not hmac.compare_digest(given, row[1]):
            db.execute("UPDATE shopper_codes SET tries = tries + 1 WHERE id = ?", [row[0]])
            return None
        db.execute("UPDATE shopper_codes SET used_t = ? WHERE id = ?", [now, row[0]])
    return holder[0]
