"""The fold: a receipt's lines leave it for per-store, per-day product totals.

A receipt's lines (SKU, category, quantity, price) are profiling data (DESIGN.md
section 7): linked to a card, they tell what a person buys. When a receipt may no longer
keep them (docs/privacy.md says when), they are added to `product_day_totals` (store,
store-local day, SKU, category: units, gross, discount, lines) and the receipt keeps
only its totals: `record` becomes NULL (and so does the audit's note), `folded_t` says when. Nothing that covers a
card (the receipt's id, hash, time or seq) goes into the product totals, so they cannot
be joined back to a person.

    with transaction(db):
        fold_where(db, "r.card = ?", ["6001000000000042"], now)   # -> receipts folded

Signs: a sale adds its units and cents; a return or a voided sale takes away the units
it returns (`returning`) and their cents, and its discount lines (negative) take away
discount; a cancelled quote (a void without `ref`) moved nothing and adds nothing.
"""
import json

CHUNK = 500  # receipts folded per round: each round reads and rewrites this many rows

_ADD = ("INSERT INTO product_day_totals(store_id, day, sku, category, qty, gross, discount, lines) "
        "VALUES(?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(store_id, day, sku, category) DO UPDATE SET "
        "qty = qty + excluded.qty, gross = gross + excluded.gross, discount = discount + excluded.discount, "
        "lines = lines + excluded.lines")


def line_totals(kind, rec):
    """[(sku, category, units, cents, discount cents, lines)] a record adds to the product
    totals; [] for a cancelled quote or a record without readable lines."""
    lines = rec.get("lines") if isinstance(rec, dict) else None
    if not isinstance(lines, list) or (kind == "void" and "ref" not in rec):
        return []
    discount = [0] * len(lines)
    for d in rec.get("disc") or ():
        if isinstance(d, dict) and isinstance(d.get("line"), int) and 0 <= d["line"] < len(lines):
            discount[d["line"]] += d.get("cents", 0)
    reversal = kind in ("return", "void")
    returning = rec.get("returning") if reversal else None
    out = []
    for i, line in enumerate(lines):
        if reversal:
            units = -(returning[i] if isinstance(returning, list) and i < len(returning) else 0)
        else:
            units = line.get("qty", 0)
        out.append((str(line.get("sku", "")), str(line.get("cat", "")), units, units * line.get("price", 0),
                    discount[i], 0 if reversal else 1))
    return out


def add_totals(db, rows):
    """Add the lines of records given as (store_id, day, kind, record text) to the product
    totals, inside the caller's transaction (fold_rows; ingestion for a buried card)."""
    sums = {}
    for store, day, kind, text in rows:
        try:
            rec = json.loads(text)
        except (TypeError, ValueError):
            rec = None  # nothing readable to fold: the record goes all the same
        for sku, cat, units, cents, disc, n in line_totals(kind, rec):
            key = (store, day, sku, cat)
            s = sums.get(key)
            if s is None:
                s = sums[key] = [0, 0, 0, 0]
            s[0] += units
            s[1] += cents
            s[2] += disc
            s[3] += n
    db.conn.executemany(_ADD, [k + tuple(v) for k, v in sorted(sums.items())])


def fold_rows(db, rows, now):
    """Fold receipts given as (rowid, store_id, day, kind, record text), inside the
    caller's transaction; returns how many were folded."""
    add_totals(db, [r[1:] for r in rows])
    # the audit's note goes too: it may name a line and its promotion ("promo:LATTE10 on
    # line 2"), which says what was bought
    db.conn.executemany("UPDATE receipts SET record = NULL, audit_detail = NULL, folded_t = ? WHERE rowid = ?",
                        [(now, r[0]) for r in rows])
    return len(rows)


def fold_where(db, condition, params, now, limit=None):
    """Fold the receipts `r` still holding lines for which `condition` (SQL over receipts
    r) holds, CHUNK at a time, inside the caller's transaction; at most `limit` if
    given. Returns how many were folded."""
    done = 0
    while limit is None or done < limit:
        take = CHUNK if limit is None else min(CHUNK, limit - done)
        rows = db.execute("SELECT r.rowid, r.store_id, r.day, r.kind, r.record FROM receipts r "
                          "WHERE r.record IS NOT NULL AND (%s) LIMIT ?" % condition, list(params) + [take]).fetchall()
        if not rows:
            break
        done += fold_rows(db, rows, now)
        if len(rows) < take:
            break
    return done
