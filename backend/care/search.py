"""Finding a customer from what a caller says: a whole card number, the last 4 digits of
a card with (part of) the name, the name, or the contact.

    find(db, "6001000000000042")     # the card's holder (leading zeros allowed: "0042" is card 42)
    find(db, "0042 rossi")           # a card ending in 0042 held by a customer named like "rossi"
    find(db, "D'Angelo")             # names compared as customers.name_key: "dangelo", "Niccolò" = "niccolo"
    find(db, "mario@example.it")     # the contact, as the desk stored it (customers/fields.contact)
    find(db, "+39 333 123 4567")     # a phone, written any way the desk accepts

Returns {"q", "results": [at most LIMIT customers], "more": bool}. A name matches when
every word typed begins a word of the name ("ross" finds "Giulia Rossi", "d'angelo
niccolò" finds "Niccolò D'Angelo"). Erased customers are never found by name (their
name and name_key are gone, and the status is checked as well). Bad input (empty, longer
than MAX, control characters, only marks) raises InvalidValue naming `q`.
"""
from loyalty.backend.checks import name_key
from loyalty.backend.customers import fields, names
from loyalty.backend.headoffice.common import HeadOfficeError, InvalidValue
from loyalty.i18n import _
from loyalty.protocol.checks import text_fault

LIMIT = 50
MAX = 100
CARD_DIGITS = 19
_COLUMNS = ("id", "pseudonym", "name", "contact", "store_id", "status")


def _name_condition(words, candidates):
    """SQL and params: every word begins a word of name_key (a space before each word of
    the key, so "ross" matches "giulia rossi" and not "scarossi"), among `candidates`
    (SQL and params selecting customer ids through an index: a name must never cost a
    read of every name)."""
    sql = " AND ".join(["(' ' || p.name_key) LIKE ?"] * len(words))
    params = ["%% %s%%" % w.replace("%", "").replace("_", "") for w in words]
    return "p.id IN (%s) AND %s" % (candidates[0], sql), candidates[1] + params


def last4_sql(last4):
    """SQL and params selecting the holders of the cards whose number ends in `last4`,
    through the cards' index of that expression (schema 12)."""
    return "SELECT customer_id FROM cards WHERE substr('0000' || card, -4) = ?", [last4]


def _customers(db, where, params):
    rows = db.execute("SELECT %s FROM customers p WHERE %s ORDER BY p.name_key, p.id LIMIT ?"
                      % (", ".join("p." + c for c in _COLUMNS), where), params + [LIMIT + 1]).fetchall()
    return [dict(zip(_COLUMNS, r)) for r in rows]


def check(q):
    """The query as searched (stripped); InvalidValue naming `q` for bad input."""
    if not isinstance(q, str) or not 1 <= len(q.strip()) <= MAX or text_fault(q) is not None:
        raise InvalidValue("q", _("must be text of 1 to %(hi)d characters, without control characters: a card "
                                  "number, the last 4 digits of a card and the name, a name, or a contact", hi=MAX))
    return q.strip()


def find(db, q):
    q = check(q)
    words = q.split()
    if q.isascii() and q.isdigit():
        if len(q) > CARD_DIGITS:
            raise InvalidValue("q", _("a card number has at most %(n)d digits", n=CARD_DIGITS))
        # a whole card number, or a phone stored without marks
        found = _customers(db, "p.id IN (SELECT customer_id FROM cards WHERE card = ?) OR p.contact = ?",
                           [q.lstrip("0") or "0", q])
    elif "@" in q or (q.lstrip("+")[:1].isdigit() and not any(ch.isalpha() for ch in q)):
        try:
            contact = fields.contact(q)
        except HeadOfficeError:
            raise InvalidValue("q", _("not an e-mail address or a phone number the desk would take"))
        found = _customers(db, "p.contact = ?", [contact])
    else:
        digits = [w for w in words if w.isascii() and w.isdigit()]
        name_words = name_key(" ".join(w for w in words if w not in digits)).split()
        if not name_words:
            raise InvalidValue("q", _("give a name, or the last 4 digits of a card with the name"))
        if len(digits) > 1 or (digits and len(digits[0]) != 4):
            raise InvalidValue("q", _("with a name, give only the last 4 digits of a card"))
        if digits:
            # the holders of the cards ending so, through the cards' index of their last 4
            # digits (schema 12; kept without leading zeros: card 42 ends in "0042"): a
            # handful, whatever the name
            candidates = last4_sql(digits[0])
        else:
            # the customers with a word of their name beginning with the longest word typed
            candidates = names.word_prefix_sql(max(name_words, key=len))
        where, params = _name_condition(name_words, candidates)
        found = _customers(db, "p.status <> 'erased' AND p.name_key IS NOT NULL AND " + where, params)
    more = len(found) > LIMIT
    found = found[:LIMIT]
    ids = [c["id"] for c in found]
    cards = {}
    for card, cid in db.execute("SELECT card, customer_id FROM cards WHERE customer_id IN (%s) ORDER BY length(card), "
                                "card" % (",".join("?" * len(ids)) or "NULL"), ids):
        cards.setdefault(cid, []).append(card)
    for c in found:
        c["cards"] = cards.get(c["id"], [])
    return {"q": q, "results": found, "more": more}
