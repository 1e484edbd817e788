"""The dashboard's data: the stores overview and the reader page, as plain dicts.

No Flask here: each function takes a sqlite_utils.Database and values, so the views,
the tests and the benchmark call the same code. The views render the dicts as HTML or
send them as they are (the JSON twins): plain numbers (cents, epoch seconds) with
formatted strings beside them (`*_text`: euro amounts, dates and times in the store's own
time zone, in the current language and its conventions: loyalty.i18n, CLDR through Babel).

    db = backend.db.connect("instance/loyalty.db")
    page = stores_overview(db, int(time.time()), {"LAGGING_AFTER": 300, "OFFLINE_AFTER": 1800})
    page["stores"][0]["readers"][0]["state"]     # "in_sync", "lagging", ...
    reader_detail(db, "R1", int(time.time()), cfg)["batches"]   # the last 20 batches

The overview must stay fast with thousands of readers and millions of receipts, so it
never reads the receipts table: the readers table holds each reader's sync state (kept
at every contact) and day_totals each store's day (kept at ingestion), read by its
primary key. SQL is built by the *_sql functions and run by `_rows`.
"""
from datetime import datetime, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from loyalty import i18n
from loyalty.backend import auditor
from loyalty.backend.config import DEFAULTS
from loyalty.backend.dashboard import readerstate
from loyalty.backend.db import meta_int
from loyalty.i18n import N_, _

BATCHES_SHOWN = 20
REFUSALS_SHOWN = 20
MISMATCHES_SHOWN = 50
QUARANTINE_SHOWN = 50
CHART_SPAN = 24 * 3600

def _with_state(columns):
    """`columns` and every column the reader's state is judged from (readerstate.COLUMNS)."""
    return columns + tuple(c for c in readerstate.COLUMNS if c not in columns)


# Every column the dashboard shows; never key_hex (the reader's secret).
READER_COLUMNS = _with_state(("id", "store_id", "name", "acked_seq", "used", "capacity", "free_flash",
                              "firmware", "clock_offset", "clock_drift", "keys_version"))
OVERVIEW_COLUMNS = _with_state(("id", "store_id", "name", "used", "capacity"))


# -- formatting --------------------------------------------------------------------------

def euro(cents):
    """Cents as euro in the current language: '1.234,56 €' in Italian, '€1,234.56' in English."""
    return i18n.euro(int(cents or 0))


@lru_cache(maxsize=None)
def zone(name):
    """The store's ZoneInfo; UTC when the name is empty or unknown (the page still opens)."""
    try:
        return ZoneInfo(name) if name else timezone.utc
    except (ZoneInfoNotFoundError, ValueError):
        return timezone.utc


def local_day(t, tz):
    """The store-local day of epoch second t: 'YYYY-MM-DD' (the key of day_totals)."""
    return datetime.fromtimestamp(t, tz).strftime("%Y-%m-%d")


def day_text(t, tz):
    """The store-local day of epoch second t for people: '1 mar 2025', 'Mar 1, 2025'."""
    return i18n.date(datetime.fromtimestamp(t, tz))


def local_time(t, tz):
    """Epoch second t in the store's zone: '1 mar 2025, 14:03:05 CET'; '—' for None."""
    if t is None:
        return "—"
    return i18n.datetime(datetime.fromtimestamp(t, tz))


def ago(t, now):
    """'12 min ago' (a time in the future, a clock's doing, reads 'just now'); '—' for None."""
    if t is None:
        return "—"
    if now - t < 1:
        return _("just now")
    return _("%(duration)s ago", duration=readerstate.duration(now - t))


def signed_seconds(s):
    """'+3 s', '-75 s', '0 s'; '—' for None (clock offsets and drifts)."""
    if s is None:
        return "—"
    return _("%(seconds)s s", seconds="%+d" % s if s else "0")


def size(n):
    """Bytes for people: '512 B', '48,5 KiB' ('48.5 KiB' in English), '1,5 MiB'; '—' for None."""
    if n is None:
        return "—"
    if n < 1024:
        return _("%(n)s B", n=i18n.number(n))
    if n < 1024 * 1024:
        return _("%(n)s KiB", n=i18n.number(round(n / 1024, 1)))
    return _("%(n)s MiB", n=i18n.number(round(n / 1024 / 1024, 1)))


def percent(used, capacity):
    if not capacity or used is None:
        return None
    return round(100.0 * used / capacity, 1)


def journal_text(journal, used, capacity):
    """'ok, 35% used', 'nearly full, 92.5% used', 'unknown' (Italian: 'ok, 35% usato')."""
    words = readerstate.journal_word(journal)
    p = percent(used, capacity)
    return words if p is None else _("%(state)s, %(percent)s used", state=words, percent=i18n.percent(p / 100))


def error_text(code):
    """The shared error table's sentence for a code (shared/protocol/errortexts.py), in the
    current language; '' for none."""
    return i18n.error_text(code) if code else ""


OUTCOMES = {"accepted": N_("accepted"), "refused": N_("refused")}
KINDS = {"sale": N_("sale"), "void": N_("void"), "return": N_("return")}
# what a person decided about a record in quarantine; it stays out of the figures either way
JUDGEMENTS = {"reader_fault": N_("the reader's fault: kept out of the figures"),
              "to_correct": N_("to correct by hand in the till's records")}


def word(words, code):
    """A code's word in the current language (`words`: code -> English), or the code itself."""
    return _(words[code]) if code in words else (code or "")


# -- SQL ----------------------------------------------------------------------------------

def stores_sql(store_id=None):
    sql, params = "SELECT id, name, tz FROM stores", []
    if store_id is not None:
        sql, params = sql + " WHERE id = ?", [store_id]
    return sql + " ORDER BY name, id", params


def readers_sql(columns, store_id=None, reader_id=None):
    sql, where, params = "SELECT %s FROM readers" % ", ".join(columns), [], []
    if store_id is not None:
        where.append("store_id = ?")
        params.append(store_id)
    if reader_id is not None:
        where.append("id = ?")
        params.append(reader_id)
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql + " ORDER BY store_id, id", params


def day_totals_sql(wanted):
    """wanted: [(store_id, day)]. One primary-key lookup per store, never a scan."""
    values = ", ".join(["(?, ?)"] * len(wanted))
    sql = ("WITH want(store_id, day) AS (VALUES %s) "
           "SELECT d.store_id, d.day, d.receipts, d.gross, d.discount "
           "FROM want JOIN day_totals AS d ON d.store_id = want.store_id AND d.day = want.day"
           % values)
    return sql, [v for pair in wanted for v in pair]


def batches_sql(reader_id, limit=BATCHES_SHOWN):
    return ("SELECT id, t, outcome, http_status, code, field, detail, first_seq, last_seq, count, "
            "fresh, gross, discount, ack, bytes FROM batches WHERE reader_id = ? "
            "ORDER BY t DESC, id DESC LIMIT ?", [reader_id, limit])


def refusals_sql(reader_id, limit=REFUSALS_SHOWN):
    """The latest refusals of the reader's own (verified) requests and, apart, the latest
    of requests that only claimed its id: a flood of forged requests (anybody can send
    them) must not push the reader's real refusals off its page."""
    one = ("SELECT * FROM (SELECT id, t, endpoint, http_status, code, field, detail, remote, verified "
           "FROM refusals WHERE reader_id = ? AND %s ORDER BY t DESC, id DESC LIMIT ?)")
    return ("%s UNION ALL %s ORDER BY t DESC, id DESC" % (one % "verified = 1", one % "coalesce(verified, 0) = 0"),
            [reader_id, limit, reader_id, limit // 2])


def mismatches_sql(reader_id, limit=MISMATCHES_SHOWN):
    return ("SELECT seq, receipt, t, kind, card, gross, discount, audit_detail FROM receipts "
            "WHERE reader_id = ? AND audit = 'mismatch' ORDER BY seq DESC LIMIT ?",
            [reader_id, limit])


def quarantine_sql(reader_id, limit=QUARANTINE_SHOWN):
    """The records of this reader taken into quarantine (acknowledged, kept out of the
    figures), those awaiting a person's judgement first."""
    return ("SELECT seq, t, acked_t, code, field, detail, record, judged_t, judged_by, judgement, note "
            "FROM quarantine WHERE reader_id = ? AND acked_t IS NOT NULL "
            "ORDER BY judged_t IS NOT NULL, seq DESC LIMIT ?", [reader_id, limit])


def count_sql(table, reader_id, extra=""):
    return "SELECT count(*) AS n FROM %s WHERE reader_id = ?%s" % (table, extra), [reader_id]


def samples_sql(reader_id, since):
    return ("SELECT t, pending FROM reader_samples WHERE reader_id = ? AND t >= ? ORDER BY t",
            [reader_id, since])


def _rows(db, query):
    sql, params = query
    cur = db.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def _chunks(items, size):
    for i in range(0, len(items), size):
        yield items[i:i + size]


# -- the backend's own versions -------------------------------------------------------------

def backend_versions(db):
    """Our rules, directory and card keys versions, and when the first two were published
    (None if unknown)."""
    rules = meta_int(db, "rules_version")
    directory = meta_int(db, "directory_version")
    row = db.execute("SELECT created FROM rules_versions WHERE version = ?", [rules]).fetchone()
    # the card that took the version last; the cards table's version index finds it
    card = db.execute("SELECT updated FROM cards WHERE version = ? LIMIT 1", [directory]).fetchone()
    return {"rules_version": rules, "directory_version": directory,
            "keys_version": meta_int(db, "card_keys_version"),
            "rules_since": row[0] if row else None, "directory_since": card[0] if card else None}


def _thresholds(cfg):
    return (int(cfg.get("LAGGING_AFTER", DEFAULTS["LAGGING_AFTER"])),
            int(cfg.get("OFFLINE_AFTER", DEFAULTS["OFFLINE_AFTER"])))


def _state(reader, now, lag, off, versions):
    return readerstate.state(reader, now, lag, off, versions["rules_version"],
                             versions["directory_version"], versions["rules_since"],
                             versions["directory_since"])


def legend(cfg):
    lag, off = _thresholds(cfg)
    return [{"state": s, "word": w, "colour": c, "rule": r}
            for s, w, c, r in readerstate.legend(lag, off)]


# -- the stores overview --------------------------------------------------------------------

def _overview_reader(r, now, tz, lag, off, versions, words):
    st, reason = _state(r, now, lag, off, versions)
    oldest_age = now - r["oldest_t"] if r["pending"] and r["oldest_t"] is not None else None
    return {
        "id": r["id"], "name": r["name"], "state": st, "state_text": words[st],
        "reason": reason,
        "last_contact": r["last_contact"], "last_contact_text": local_time(r["last_contact"], tz),
        "last_contact_ago": ago(r["last_contact"], now),
        "pending": r["pending"] or 0, "oldest_t": r["oldest_t"] if r["pending"] else None,
        "oldest_age": oldest_age,
        "oldest_age_text": "—" if oldest_age is None else readerstate.duration(oldest_age),
        "journal": r["journal"], "used": r["used"], "capacity": r["capacity"],
        "journal_text": journal_text(r["journal"], r["used"], r["capacity"]),
    }


def stores_overview(db, now, cfg, store_id=None):
    """Every store (or only `store_id`) with its readers' states and today's totals.

    cfg: a mapping with LAGGING_AFTER and OFFLINE_AFTER (Flask's app.config will do).
    Returns {"now", "lagging_after", "offline_after", "rules_version", "directory_version",
    "states": {state: n}, "legend": [...], "stores": [{"id", "name", "tz", "today",
    "receipts", "gross", "discount", "gross_text", "discount_text", "states": {state: n},
    "readers": [{"id", "name", "state", "state_text", "reason", "last_contact", ...}]}]}.
    """
    lag, off = _thresholds(cfg)
    versions = backend_versions(db)
    stores = _rows(db, stores_sql(store_id))
    wanted = []
    for s in stores:
        s["zone"] = zone(s["tz"])
        s["today"] = local_day(now, s["zone"])
        wanted.append((s["id"], s["today"]))
    totals = {}
    for part in _chunks(wanted, 400):  # 2 parameters each, under SQLite's old 999 limit
        for row in _rows(db, day_totals_sql(part)):
            totals[row["store_id"]] = row
    by_store = {}
    for r in _rows(db, readers_sql(OVERVIEW_COLUMNS, store_id=store_id)):
        by_store.setdefault(r["store_id"], []).append(r)

    everywhere = dict.fromkeys(readerstate.STATES, 0)
    words = readerstate.words()
    out = []
    for s in stores:
        tz = s.pop("zone")
        day = totals.get(s["id"], {})
        readers = [_overview_reader(r, now, tz, lag, off, versions, words) for r in by_store.get(s["id"], [])]
        counts = dict.fromkeys(readerstate.STATES, 0)
        for r in readers:
            counts[r["state"]] += 1
            everywhere[r["state"]] += 1
        gross, discount = day.get("gross", 0), day.get("discount", 0)
        s.update({"today_text": day_text(now, tz), "receipts": day.get("receipts", 0), "gross": gross,
                  "discount": discount,
                  "gross_text": euro(gross), "discount_text": euro(discount),
                  "states": counts, "readers": readers})
        out.append(s)
    zones = {s["tz"] for s in out}
    shown_in = zone(zones.pop()) if len(zones) == 1 else timezone.utc
    return {"now": now, "now_text": local_time(now, shown_in),
            "lagging_after": lag, "offline_after": off,
            "rules_version": versions["rules_version"],
            "directory_version": versions["directory_version"],
            "states": everywhere, "legend": legend(cfg), "stores": out}


# -- the reader page ------------------------------------------------------------------------

def _nice_ceiling(n):
    """The smallest of 1, 2, 5, 10, 20, 50, ... at or above n (the chart's top)."""
    step = 1
    while True:
        for m in (1, 2, 5):
            if m * step >= n:
                return m * step
        step *= 10


def pending_chart(samples, now, tz, width=640, height=180):
    """Geometry of the inline-SVG chart of pending receipts over the CHART_SPAN up to now.

    samples: [(t, pending)] in time order. Returns the polyline's points, the plot box
    and axis ticks with labels (hours in the store's zone), or "empty": True.
    """
    left, right, top, bottom = 44, width - 12, 12, height - 28
    start = now - CHART_SPAN
    inside = [(t, p) for t, p in samples if start <= t <= now]
    ymax = _nice_ceiling(max([p or 0 for _, p in inside] + [1]))

    def x(t):
        return left + (t - start) * (right - left) / CHART_SPAN

    def y(p):
        return bottom - (p or 0) * (bottom - top) / ymax

    x_ticks = []
    hour = (start // 3600 + 1) * 3600
    while hour <= now:
        local = datetime.fromtimestamp(hour, tz)
        if local.hour % 6 == 0:
            x_ticks.append({"x": round(x(hour), 1), "label": i18n.hour(local)})
        hour += 3600
    y_ticks = [{"y": round(y(v), 1), "label": str(v)}
               for v in sorted({0, ymax // 2, ymax}) if v == 0 or v * 2 == ymax or v == ymax]
    points = ["%.1f,%.1f" % (x(t), y(p)) for t, p in inside]
    last = inside[-1] if inside else None
    return {
        "width": width, "height": height, "empty": not inside, "count": len(inside),
        "left": left, "right": right, "top": top, "bottom": bottom, "ymax": ymax,
        "points": " ".join(points), "x_ticks": x_ticks, "y_ticks": y_ticks,
        "last": None if last is None else {"x": round(x(last[0]), 1), "y": round(y(last[1]), 1),
                                           "pending": last[1]},
        "start_text": local_time(start, tz), "end_text": local_time(now, tz),
    }


def _batch(b, tz):
    b = dict(b)
    b.update({"t_text": local_time(b["t"], tz), "code_text": error_text(b["code"]),
              "outcome_text": word(OUTCOMES, b["outcome"]),
              "gross_text": None if b["gross"] is None else euro(b["gross"]),
              "discount_text": None if b["discount"] is None else euro(b["discount"])})
    return b


def _refusal(r, tz):
    r = dict(r)
    r.update({"t_text": local_time(r["t"], tz), "code_text": error_text(r["code"])})
    return r


def _mismatch(m, tz):
    m = dict(m)
    m.update({"t_text": local_time(m["t"], tz), "kind_text": word(KINDS, m["kind"]),
              "gross_text": None if m["gross"] is None else euro(m["gross"]),
              "discount_text": None if m["discount"] is None else euro(m["discount"])})
    return m


def _quarantined(q, tz):
    q = dict(q)
    q.update({"t_text": local_time(q["acked_t"], tz), "code_text": error_text(q["code"]),
              "judged_t_text": local_time(q["judged_t"], tz) if q["judged_t"] else None,
              "judgement_text": word(JUDGEMENTS, q["judgement"]) if q["judgement"] else None})
    return q


def reader_detail(db, reader_id, now, cfg):
    """Everything the reader page shows, or None for an unknown reader.

    Returns {"reader": {...columns, "state", "state_text", "reason", *_text},
    "store": {"id", "name", "tz"}, "backend": {"rules_version", "directory_version"},
    "batches": [...], "refusals": [...], "refusals_total", "mismatches": [...],
    "mismatches_total", "awaiting_audit" (receipts stored, not yet audited: their
    mismatches are not known yet), "quarantine": [...] (records acknowledged but kept out
    of the figures: docs/protocol.md, "Quarantine"), "quarantine_unjudged", "samples": [[t, pending]], "chart": {...}, "legend": [...]}.
    """
    found = _rows(db, readers_sql(READER_COLUMNS, reader_id=reader_id))
    if not found:
        return None
    r = found[0]
    store = _rows(db, stores_sql(r["store_id"]))
    store = store[0] if store else {"id": r["store_id"], "name": r["store_id"], "tz": None}
    tz = zone(store["tz"])
    lag, off = _thresholds(cfg)
    versions = backend_versions(db)
    st, reason = _state(r, now, lag, off, versions)
    pending = r["pending"] or 0
    oldest_age = now - r["oldest_t"] if pending and r["oldest_t"] is not None else None
    r.update({
        "state": st, "state_text": readerstate.words()[st], "reason": reason, "pending": pending,
        "last_contact_text": local_time(r["last_contact"], tz),
        "last_contact_ago": ago(r["last_contact"], now),
        "last_batch_text": local_time(r["last_batch"], tz),
        "oldest_t_text": local_time(r["oldest_t"], tz) if pending else "—",
        "oldest_age": oldest_age,
        "oldest_age_text": "—" if oldest_age is None else readerstate.duration(oldest_age),
        "clock_offset_text": signed_seconds(r["clock_offset"]),
        "clock_drift_text": signed_seconds(r["clock_drift"]),
        "flash_percent": percent(r["used"], r["capacity"]),
        "journal_text": journal_text(r["journal"], r["used"], r["capacity"]),
        "last_error_text": error_text(r["last_error"]),
        "last_refusal_text": error_text(r["last_refusal_code"]),
        "last_refusal_at_text": local_time(r["last_refusal_at"], tz),
        "rules_behind": (r["rules_version"] is not None
                         and r["rules_version"] < versions["rules_version"]),
        "directory_behind": (r["directory_version"] is not None
                             and r["directory_version"] < versions["directory_version"]),
        "keys_behind": r["keys_version"] is not None and r["keys_version"] < versions["keys_version"],
    })
    samples = [(s["t"], s["pending"]) for s in _rows(db, samples_sql(reader_id, now - CHART_SPAN))]
    return {
        "now": now, "now_text": local_time(now, tz),
        "reader": r, "store": {"id": store["id"], "name": store["name"], "tz": store["tz"]},
        "backend": {"rules_version": versions["rules_version"],
                    "directory_version": versions["directory_version"],
                    "keys_version": versions["keys_version"]},
        "batches": [_batch(b, tz) for b in _rows(db, batches_sql(reader_id))],
        "refusals": [_refusal(x, tz) for x in _rows(db, refusals_sql(reader_id))],
        "refusals_total": _rows(db, count_sql("refusals", reader_id))[0]["n"],
        "mismatches": [_mismatch(m, tz) for m in _rows(db, mismatches_sql(reader_id))],
        "mismatches_total": _rows(db, count_sql("receipts", reader_id, " AND audit = 'mismatch'"))[0]["n"],
        "awaiting_audit": auditor.awaiting(db, reader_id),
        "quarantine": [_quarantined(q, tz) for q in _rows(db, quarantine_sql(reader_id))],
        "quarantine_unjudged": _rows(db, count_sql("quarantine", reader_id,
                                                   " AND acked_t IS NOT NULL AND judged_t IS NULL"))[0]["n"],
        "samples": [list(s) for s in samples],
        "chart": pending_chart(samples, now, tz),
        "legend": legend(cfg),
    }
