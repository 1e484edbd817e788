"""The customer's story: who they are, their totals, and every event in time order,
newest first, a page at a time (plain dicts, no Flask: the page and its JSON twin show
the same).

    page = story(db, 7)                       # customer, consents in force, totals, 50 events
    page["next"]                              # "1741000000.1.R1.42": the cursor of the next page
    older = story(db, 7, before=page["next"]) # the 50 before it (no totals: they were shown)

Events (each {"kind", "t", "key", ...}): receipts (kind "sale", "return", "void": totals,
store, reader, discount, and their lines only while the stored record still holds them,
docs/privacy.md section 2), tier changes of their cards (card_history), card events,
consent changes and customer care's contacts (kinds "tier", "card", "consent", "care"). Which rows are the customer's is decided
as the access export decides it (backend/privacy/access.card_forms: the receipts of
every form their cards may be written in).

The cursor is the key of the last event shown: (t, source rank, two key columns). Two
events of the same second keep one order (the source's rank, then its key), so no page
repeats or skips one however many share a second.
"""
from loyalty.backend.customers import inforce
from loyalty.backend.headoffice.common import InvalidValue
from loyalty.backend.privacy import access, subject
from loyalty.i18n import _

PAGE = 50


class Source:
    """One kind of event: its rank (on the same second, the higher rank is newer), its
    SQL (selecting t, k1, k2 first), how its rows are found, and the types of k1, k2."""

    def __init__(self, rank, kind, sql, by, key_types):
        self.rank, self.kind, self.sql, self.by, self.key_types = rank, kind, sql, by, key_types


SOURCES = (
    Source(1, "receipt", "SELECT t, reader_id AS k1, seq AS k2, kind, store_id, reader_id, seq, receipt, card, tier, "
                         "gross, discount, lines, folded_t, record FROM receipts WHERE card IN (%s)", "forms", (str, int)),
    # a tier change: a version of a card whose tier differs from the version before
    Source(2, "tier", "SELECT t, k1, k2, card, before_tier, tier FROM (SELECT t, card AS k1, version AS k2, card, tier, "
                      "LAG(tier) OVER (PARTITION BY card ORDER BY version) AS before_tier FROM card_history "
                      "WHERE card IN (%s)) h WHERE before_tier IS NOT NULL AND before_tier <> tier", "cards", (str, int)),
    Source(3, "card", "SELECT t, id AS k1, 0 AS k2, card, event, operator, detail FROM card_events "
                      "WHERE customer_id = ?", "customer", (int, int)),
    Source(4, "consent", "SELECT t, id AS k1, 0 AS k2, purpose, given, channel, operator, notice_version "
                         "FROM consents WHERE customer_id = ?", "customer", (int, int)),
    Source(5, "care", "SELECT t, id AS k1, 0 AS k2, channel, operator, reason, note, outcome FROM care_contacts "
                      "WHERE customer_id = ?", "customer", (int, int)),
)
_RANKS = {s.rank: s for s in SOURCES}


def _in(values):
    return ",".join("?" * len(values)) or "NULL"


def cursor(t, rank, k1, k2):
    return "%d.%d.%s.%d" % (t, rank, k1, k2)


def parse_cursor(text):
    """(t, rank, k1, k2) from a cursor; InvalidValue naming `before` for anything else."""
    parts = text.split(".", 2) if isinstance(text, str) and len(text) <= 100 else []
    if len(parts) == 3:
        k1, _dot, k2 = parts[2].rpartition(".")
        try:
            rank = int(parts[1])
            if rank in _RANKS and parts[0].isdigit() and k2.isdigit() and k1:
                return int(parts[0]), rank, _RANKS[rank].key_types[0](k1), int(k2)
        except ValueError:
            pass
    raise InvalidValue("before", _("must be the cursor a page of the story gave (its \"next\")"))


def _older_than(source, before):
    """SQL and params: the source's rows whose key is below the cursor `before`."""
    if before is None:
        return "", []
    t, rank, k1, k2 = before
    if source.rank < rank:
        return " WHERE t <= ?", [t]
    if source.rank > rank:
        return " WHERE t < ?", [t]
    return " WHERE t < ? OR (t = ? AND (k1 < ? OR (k1 = ? AND k2 < ?)))", [t, t, k1, k1, k2]


def _events(db, customer_id, forms, cards, before, limit):
    found = []
    for source in SOURCES:
        if source.by == "customer":
            sql, params = source.sql, [customer_id]
        else:
            values = forms if source.by == "forms" else cards
            sql, params = source.sql % _in(values), list(values)
        where, more = _older_than(source, before)
        cur = db.execute("SELECT * FROM (%s) s%s ORDER BY t DESC, k1 DESC, k2 DESC LIMIT ?" % (sql, where),
                         params + more + [limit])
        names = [d[0] for d in cur.description]
        for row in cur.fetchall():
            event = dict(zip(names, row))
            event["rank"] = source.rank
            event.setdefault("kind", source.kind)  # a receipt's own: sale, return, void
            found.append(event)
    found.sort(key=lambda e: (e["t"], e["rank"], e["k1"], e["k2"]), reverse=True)
    page = found[:limit]
    for e in page:
        e["key"] = cursor(e["t"], e.pop("rank"), e.pop("k1"), e.pop("k2"))
        if "record" in e:
            # the lines while the record holds them (docs/privacy.md, section 2); never the record
            e["items"] = [dict(zip(("sku", "category", "qty", "price"), line))
                          for line in access.record_lines(e.pop("record"))]
    return page, (page[-1]["key"] if len(found) > limit else None)


def totals(db, forms):
    """Receipts (sales), returns, gross and discount (returns count negative, as in the
    day's totals), first and last visit (sales)."""
    row = db.execute("SELECT sum(CASE WHEN kind = 'sale' THEN 1 ELSE 0 END), "
                     "sum(CASE WHEN kind = 'return' THEN 1 ELSE 0 END), coalesce(sum(gross), 0), "
                     "coalesce(sum(discount), 0), min(CASE WHEN kind = 'sale' THEN t END), "
                     "max(CASE WHEN kind = 'sale' THEN t END) FROM receipts WHERE card IN (%s)" % _in(forms),
                     forms).fetchone()
    return {"receipts": row[0] or 0, "returns": row[1] or 0, "gross": row[2], "discount": row[3],
            "first_visit": row[4], "last_visit": row[5]}


def about(db, customer):
    """What the page shows of the customer: name, contact, store, household, age check,
    status, cards, and the consents in force with the notice version each was given under."""
    store = db.execute("SELECT id, name, tz FROM stores WHERE id = ?", [customer["store_id"]]).fetchone()
    household = db.execute("SELECT id, name FROM households WHERE id = ?", [customer["household_id"]]).fetchone()
    members = [] if household is None else [
        {"id": r[0], "name": r[1]} for r in db.execute(
            "SELECT id, name FROM customers WHERE household_id = ? AND id <> ? ORDER BY id",
            [household[0], customer["id"]])]
    newest = inforce.newest(db, customer["id"])
    return {
        "id": customer["id"], "pseudonym": customer["pseudonym"], "name": customer["name"],
        "contact": customer["contact"], "age_ok": bool(customer["age_ok"]), "status": customer["status"],
        "created_t": customer["created_t"], "closed_t": customer["closed_t"], "erased_t": customer["erased_t"],
        "store": None if store is None else {"id": store[0], "name": store[1], "tz": store[2]},
        "household": None if household is None else {"id": household[0], "name": household[1], "members": members},
        "cards": [{"card": r[0], "tier": r[1], "status": r[2]} for r in db.execute(
            "SELECT card, tier, status FROM cards WHERE customer_id = ? ORDER BY length(card), card",
            [customer["id"]])],
        "consents": [dict(newest[p], in_force=bool(newest[p]["given"])) for p in inforce.PURPOSES if p in newest],
    }


def story(db, customer_id, before=None, limit=PAGE):
    """The page of the story: {"customer", "totals", "events", "next"} (before None: the
    first page, with the customer and totals) or {"customer": {id}, "events", "next"} for
    an older page (`before`: a cursor from "next"). NotFound names `customer_id`."""
    key = None if before is None else parse_cursor(before)
    customer = subject.find(db, customer_id)
    forms = access.card_forms(db, customer_id)
    cards = subject.cards_of(db, customer_id)
    events, next_key = _events(db, customer_id, forms, cards, key, limit)
    page = {"events": events, "next": next_key, "before": before}
    if key is None:
        page["customer"] = about(db, customer)
        page["totals"] = totals(db, forms)
    else:
        page["customer"] = {"id": customer["id"], "pseudonym": customer["pseudonym"], "name": customer["name"]}
    return page
