"""A chain the size of the overview target, whose customers shop as real ones do.

100 stores (Europe/Rome), 2,000 readers (20 a store, one of each sync shape the
dashboard knows: in sync, lagging, offline, refused, never seen...) and, by default,
500,000 customers over 13 months ending at `now` (5.2 million receipts, 6.2 GB, 13
minutes of CPU to build; 150,000 customers: 1.6 million, 2 GB, 3 minutes), built straight
into the backend's schema (backend/db.py) the way ingestion, the desks and the daily
minimisation job would have left it. Seeded: the same seed, size and `now` give the same
database. Built once and kept in build/bench, keyed by schema version, generator version
and size; a bench fixture, so written with synchronous OFF.

    path = bigshop.build()                                   # 500,000 customers, 13 months
    path = bigshop.build(customers=2000, folder=tmp, now=T)  # a tiny one for a test

What is in it:
  customers  each enrolled at a home store (stores differ in size), 15 % of them during
             the span; 12 % in two-person households; 97 % seen by the desk to be at
             least 14. Each has a card; 3 % had it replaced (the old one blocked).
  visits     a mixture of four kinds of shopper, in visits a year: 52 % occasional
             (1 or 2), 30 % monthly-ish (3-12), 14 % regular (13-51), 4 % weekly or more
             (52-130, log-uniform within each band): about 10 visits a year on average,
             so 500,000 customers make some 5.2 million receipts in 13 months. 88 % of
             visits are at the home store, at opening hours (Mon-Sat 8:00-21:00 with
             morning and evening peaks, Sunday and minor holidays 9:00-13:00, closed on
             1 Jan, Easter, 1 May, 25 Dec), more on Fridays and Saturdays, half as many
             again the day before a holiday, and in the week before Christmas.
  baskets    1-40 lines (skewed, mean about 10) from a catalogue of about 3,000 SKUs in
             20 Italian supermarket categories, popular ones more often (Zipf); 1 unit
             mostly, up to 12; about 8 % of SKUs on a fortnight's flyer promotion (10-30
             %), as discount lines of the record.
  returns    1.5 % of sales: within 14 days, at the same reader, some units of one or two
             lines back (record kind 'return', `ref` the sale's seq, its discount reversed
             in proportion).
  consents   scheme for everybody at enrolment (notice version 1, published before the
             first customer); of those at least 14, profiling given by 36 % at the desk
             (8 % of them withdraw later, 5 % of the others give it later), marketing by
             26 % (10 % withdraw, 2 % give later): in force about 35 % and 24 %.
  records    kept (canonical JSON, with their lines) only as minimisation leaves them:
             a receipt's lines are folded into product_day_totals (record NULL, folded_t
             set, with backend/privacy/fold.py's line_totals) once its return window
             (RETURN_WINDOW_DAYS, 30) has closed if its customer had no profiling consent
             then or withdrew it later, and for everybody after PROFILING_MONTHS (12,
             DESIGN.md section 7): the daily job (backend/privacy/retention.py) run at
             `now` finds nothing left to fold. Receipts' hashes are placeholders (the chain is
             not real: no bench audits this data); every receipt's audit is 'ok'.
"""
import bisect
import datetime
import json
import math
import os
import random
import time
import zoneinfo
from pathlib import Path

from loyalty.backend import db as dbmod
from loyalty.backend.checks import name_key
from loyalty.backend.config import DEFAULTS
from loyalty.backend.privacy.fold import line_totals
from loyalty.backend.privacy.retention import months_back

ROOT = Path(__file__).resolve().parent.parent

GENERATOR = 6  # in the file's name: a change of what is generated builds it again
STORES = 100
READERS = 2000
SHAPES = 20  # each store has one reader of each shape (see _readers)
CUSTOMERS = 500_000
MONTHS = 13
TZ = "Europe/Rome"
RULES = 1
RETURN_WINDOW = DEFAULTS["RETURN_WINDOW_DAYS"] * 86400  # as the daily job folds (privacy/minimise.py, retention.py)
RETURN_SHARE = 0.015
HOME_SHARE = 0.88
# (share of customers, lowest, highest visits a year): log-uniform within a band
FREQUENCY = ((0.52, 1, 2), (0.30, 3, 12), (0.14, 13, 51), (0.04, 52, 130))
# category: (SKUs, lowest and highest price in cents, how often a basket takes one)
CATEGORIES = {
    "ortofrutta": (260, 49, 599, 1.6), "latticini": (220, 59, 699, 1.4), "macelleria": (140, 299, 2499, 0.8),
    "salumi e formaggi": (200, 149, 1899, 0.9), "pescheria": (90, 399, 2999, 0.3),
    "panetteria": (110, 39, 499, 1.2), "pasta e riso": (170, 59, 399, 1.0), "dispensa": (300, 49, 699, 1.0),
    "conserve e sughi": (160, 79, 499, 0.6), "colazione e dolci": (230, 99, 599, 0.8),
    "bevande": (260, 29, 399, 1.1), "vini e alcolici": (180, 299, 2999, 0.4), "surgelati": (170, 149, 899, 0.6),
    "gastronomia": (80, 199, 1499, 0.5), "uova": (20, 149, 399, 0.5), "igiene": (200, 99, 899, 0.4),
    "casa": (180, 99, 999, 0.4), "infanzia": (70, 199, 2499, 0.15), "animali": (80, 49, 1599, 0.2),
    "bazar": (120, 199, 2999, 0.1),
}
QTY = [1] * 72 + [2] * 17 + [3] * 5 + [4] * 3 + [6] * 2 + [12]  # units of a line, per 100 lines
FIRST = ("Giulia Francesca Chiara Sara Martina Anna Valentina Elena Laura Alessia Paola Maria Rosa Silvia "
         "Marco Luca Giuseppe Francesco Alessandro Andrea Matteo Lorenzo Davide Simone Stefano Paolo Roberto "
         "Antonio Giovanni Fabio Niccolò").split()
LAST = ("Rossi Russo Ferrari Esposito Bianchi Romano Colombo Ricci Marino Greco Bruno Gallo Conti De-Luca "
        "Mancini Costa Giordano Rizzo Lombardi Moretti Barbieri Fontana Santoro Mariani Rinaldi Caruso Ferrara "
        "Galli Martini Leone D'Angelo").split()
_INSERT_RECEIPT = ("INSERT INTO receipts(reader_id, seq, store_id, kind, t, day, receipt, card, tier, gross, discount, "
                   "rules, hash, batch_id, record, audit, audit_detail, lines, folded_t) VALUES(%s)" % ",".join("?" * 19))


def path_for(customers=CUSTOMERS, months=MONTHS, folder=None):
    folder = Path(folder) if folder else ROOT / "build" / "bench"
    return folder / ("bigshop-s%d-g%d-c%d-m%d.db" % (len(dbmod.MIGRATIONS), GENERATOR, customers, months))


def build(customers=CUSTOMERS, months=MONTHS, now=None, seed=7, log=print, folder=None):
    """The database's path, built first unless it is there already."""
    path = path_for(customers, months, folder)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    current = "bigshop-s%d-g%d-" % (len(dbmod.MIGRATIONS), GENERATOR)
    for old in path.parent.glob("bigshop-s*.db"):  # built for an older schema or generator: GBs each
        if not old.name.startswith(current):
            old.unlink()
    tmp = path.with_suffix(".tmp")
    for p in (tmp, Path(str(tmp) + "-wal"), Path(str(tmp) + "-shm")):
        if p.exists():
            p.unlink()
    start = time.time()
    db = dbmod.connect(tmp)
    dbmod.migrate(db)
    db.execute("PRAGMA synchronous=OFF")  # a bench fixture: a crash only means building it again
    db.execute("PRAGMA cache_size=-400000")  # 400 MB: the indexes of millions of receipts
    counts = generate(db, customers, months, int(now or time.time()), seed, log)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.execute("ANALYZE")
    db.conn.close()
    os.replace(tmp, path)
    log("  built %s in %.0f s: %s; %.2f GB" % (path.name, time.time() - start,
                                                ", ".join("%s %d" % kv for kv in counts.items()),
                                                path.stat().st_size / 1e9))
    return path


def generate(db, customers, months, now, seed, log=print):
    """Fill a migrated, empty database; returns counts of what it wrote."""
    rng = random.Random(seed)
    calendar = Calendar(now, months)
    shop = Catalogue(rng)
    people = Customers(rng, customers, calendar)
    with dbmod.transaction(db):
        _stores_and_readers(db, rng, now, calendar.start)
        people.write(db, now)
    counts = {"customers": customers}
    counts.update(_receipts(db, rng, calendar, shop, people, now, log))
    return counts


class Calendar:
    """The span's days in Europe/Rome: each day's weight and its opening slots (half hours)."""

    def __init__(self, now, months):
        self.now = now
        zone = zoneinfo.ZoneInfo(TZ)
        today = datetime.datetime.fromtimestamp(now, zone).date()
        first = today - datetime.timedelta(days=int(months * 30.44) + 1)
        self.days, self.weights = [], []
        d = first
        while d <= today:
            weight, hours = _day_shape(d)
            slots = []
            for h2 in range(hours[0] * 2, hours[1] * 2):
                at = datetime.datetime(d.year, d.month, d.day, h2 // 2, 30 * (h2 % 2), tzinfo=zone)
                slots.append((int(at.timestamp()), _HOUR_WEIGHT[h2 // 2]))
            cw, total = [], 0.0
            for _, w in slots:
                total += w
                cw.append(total)
            self.days.append((d.isoformat(), [s for s, _ in slots], cw, total))
            self.weights.append(weight)
            d += datetime.timedelta(days=1)
        self.start = int(datetime.datetime(first.year, first.month, first.day, tzinfo=zone).timestamp())
        self.cw = []
        total = 0.0
        for w in self.weights:
            total += w
            self.cw.append(total)

    def day_of(self, t):
        return min(len(self.days) - 1, max(0, (t - self.start) // 86400))


# half-hour slots open, by local hour: morning and evening peaks, a quiet lunch
_HOUR_WEIGHT = [0] * 8 + [0.6, 0.9, 1.3, 1.4, 1.1, 0.6, 0.5, 0.6, 0.9, 1.3, 1.6, 1.4, 0.7, 0, 0, 0]
_CLOSED = {(1, 1), (5, 1), (12, 25)}
_HOLIDAYS = {(1, 6), (4, 25), (6, 2), (8, 15), (11, 1), (12, 8), (12, 26)}


def _easter(y):
    a, b, c = y % 19, y // 100, y % 100
    d, e = b // 4, b % 4
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    l_ = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * l_) // 451
    month, day = divmod(h + l_ - 7 * m + 114, 31)
    return datetime.date(y, month, day + 1)


def _day_shape(d):
    """(weight, (opening hour, closing hour)) of a local day."""
    easter = _easter(d.year)
    if (d.month, d.day) in _CLOSED or d == easter:
        return 0.0, (8, 8)
    short = d.weekday() == 6 or (d.month, d.day) in _HOLIDAYS or d == easter + datetime.timedelta(days=1)
    weight = (0.9, 0.85, 0.9, 0.95, 1.15, 1.5, 0.5)[d.weekday()]
    if short:
        weight = 0.5
    nxt = d + datetime.timedelta(days=1)
    if (nxt.month, nxt.day) in _CLOSED | _HOLIDAYS or nxt == easter:
        weight *= 1.5  # the day before a holiday
    if d.month == 12 and 18 <= d.day <= 24:
        weight *= 1.6
    return weight, ((9, 13) if short else (8, 21))


class Catalogue:
    """SKUs (code, category, price) with a Zipf popularity, and each fortnight's flyer."""

    def __init__(self, rng):
        self.skus, weights = [], []
        n = 0
        for cat, (count, lo, hi, pull) in CATEGORIES.items():
            for k in range(count):
                n += 1
                price = int(math.exp(rng.uniform(math.log(lo), math.log(hi))))
                self.skus.append(("80%05d%06d" % (n, rng.randrange(10 ** 6)), cat, price // 10 * 10 + 9))
                weights.append(pull / (k + 3) ** 0.9)  # within a category, a few sell most
        order = list(range(len(self.skus)))
        rng.shuffle(order)  # codes do not follow popularity
        self.skus = [self.skus[i] for i in order]
        weights = [weights[i] for i in order]
        self.cw, total = [], 0.0
        for w in weights:
            total += w
            self.cw.append(total)
        self.total = total
        self._flyers = {}
        self._rng = random.Random(rng.random())

    def flyer(self, period):
        """{sku index: (bp, rule)} on promotion in fortnight `period`."""
        f = self._flyers.get(period)
        if f is None:
            picks = self._rng.sample(range(len(self.skus)), len(self.skus) // 12)
            f = self._flyers[period] = {i: (self._rng.choice((1000, 1500, 2000, 2500, 3000)),
                                            "promo:VOL%03d-%s" % (period, self.skus[i][0])) for i in picks}
        return f


# basket sizes 1-40: a gamma-like shape with mean about 10
_SIZE_CW = []
_acc = 0.0
for _k in range(1, 41):
    _acc += _k ** 0.7 * math.exp(-_k / 5.6)
    _SIZE_CW.append(_acc)
del _acc, _k


class Customers:
    """Who they are, their cards, consents, and how often they shop (lists by index; id = index + 1)."""

    def __init__(self, rng, n, cal):
        now_t = cal.now
        store_w = [rng.uniform(0.5, 2.0) for _ in range(STORES)]  # stores differ in size
        self.store_cw = _cumulative(store_w)
        self.home, self.created, self.rate, self.age_ok, self.tier = [], [], [], [], []
        self.card, self.card2, self.replaced = [], [], []
        self.household = []
        self.prof_given, self.prof_withdrawn, self.consents = [], [], []
        for i in range(n):
            if i % 2 and self.household[i - 1] is not None:
                home = self.home[i - 1]  # a household's second member shops at the first's store
                self.household.append(self.household[i - 1])
            else:
                home = _pick(rng, self.store_cw)
                self.household.append((i // 2 + 1) if (i % 2 == 0 and rng.random() < 0.12) else None)
            self.home.append(home)
            if rng.random() < 0.15:
                created = rng.randrange(cal.start, now_t - 86400)
            else:
                created = cal.start - rng.randrange(86400, 4 * 365 * 86400)
            self.created.append(created)
            u = rng.random()
            for share, lo, hi in FREQUENCY:
                if u < share or hi == FREQUENCY[-1][2]:
                    rate = (rng.choice((1, 2)) if hi == 2 else
                            math.exp(rng.uniform(math.log(lo), math.log(hi + 1))))
                    break
                u -= share
            self.rate.append(rate)
            self.tier.append(2 if rate >= 52 and rng.random() < 0.6 else (1 if rate >= 13 and rng.random() < 0.5 else 0))
            self.age_ok.append(1 if rng.random() < 0.97 else 0)
            self.card.append("6001%011d0" % (i + 1))
            if rng.random() < 0.03:
                self.card2.append("6001%011d1" % (i + 1))
                self.replaced.append(rng.randrange(max(created, cal.start), now_t - 86400))
            else:
                self.card2.append(None)
                self.replaced.append(None)
            self._consents(rng, i, created, now_t)

    def _consents(self, rng, i, created, now_t):
        """(t, customer id, purpose, given, channel) rows; profiling's given and withdrawn times."""
        rows = self.consents
        rows.append((created, i + 1, "scheme", 1, "desk"))
        given = withdrawn = None
        if self.age_ok[i]:
            for purpose, first, leave, late in (("profiling", 0.36, 0.08, 0.05), ("marketing", 0.26, 0.10, 0.02)):
                g = w = None
                if rng.random() < first:
                    g = created
                    rows.append((created, i + 1, purpose, 1, "desk"))
                    if rng.random() < leave:
                        w = rng.randrange(max(created, now_t - 500 * 86400), now_t) + 1
                        rows.append((w, i + 1, purpose, 0, rng.choice(("web", "phone", "desk"))))
                else:
                    rows.append((created, i + 1, purpose, 0, "desk"))
                    if rng.random() < late:
                        g = rng.randrange(max(created, now_t - 500 * 86400), now_t) + 1
                        rows.append((g, i + 1, purpose, 1, rng.choice(("web", "phone", "desk"))))
                if purpose == "profiling":
                    given, withdrawn = g, w
        self.prof_given.append(given)
        self.prof_withdrawn.append(withdrawn)

    def card_at(self, i, t):
        r = self.replaced[i]
        return self.card2[i] if r is not None and t >= r else self.card[i]

    def folded_at(self, i, t, now):
        """When minimisation folded the lines of customer i's receipt of time t (None: kept)."""
        due = t + RETURN_WINDOW
        if due > now:
            return None
        g = self.prof_given[i]
        if g is None or g > due:
            return due
        w = self.prof_withdrawn[i]
        if w is not None:
            return max(due, w)
        keep = t + now - months_back(now, DEFAULTS["PROFILING_MONTHS"])
        return keep if keep <= now else None

    def write(self, db, now):
        n = len(self.home)
        published = min(self.created) - 86400
        db.conn.executemany("INSERT INTO notices(version, lang, text, published_t, published_by) VALUES(1, ?, ?, ?, ?)",
                            [("it", "Informativa sul trattamento dei dati personali (versione 1).", published, "sede"),
                             ("en", "Privacy notice (version 1).", published, "sede")])
        db.conn.executemany("INSERT INTO households(id, name, created_t) VALUES(?, ?, ?)",
                            [(h, "Famiglia %d" % h, self.created[2 * h - 2]) for h in sorted(
                                {h for h in self.household if h is not None})])
        rng = random.Random(n)
        rows = []
        for i in range(n):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            # as the desk stores them (customers/fields.contact): a phone without spaces
            contact = ("%s.%s%d@example.it" % (name_key(first), name_key(last), i) if rng.random() < 0.6 else
                       "+393%02d%07d" % (rng.randrange(100), rng.randrange(10 ** 7)))
            full = "%s %s" % (first, last.replace("-", " "))
            rows.append((i + 1, "%024x" % rng.getrandbits(96), full, name_key(full), contact,
                         "S%03d" % self.home[i], self.household[i], self.age_ok[i], self.created[i],
                         "desk:S%03d" % self.home[i]))
        db.conn.executemany("INSERT INTO customers(id, pseudonym, name, name_key, contact, store_id, household_id, "
                            "age_ok, created_t, created_by) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        # the words search ranges over (backend/customers/names.py)
        db.conn.executemany("INSERT INTO customer_words(word, customer_id) VALUES(?, ?)",
                            [(w, r[0]) for r in rows for w in sorted(set(r[3].split()))])
        db.conn.executemany("INSERT INTO consents(customer_id, purpose, given, t, channel, operator, notice_version) "
                            "VALUES(?, ?, ?, ?, ?, ?, 1)",
                            [(c, p, g, t, ch, "desk:S%03d" % self.home[c - 1] if ch == "desk" else ch)
                             for t, c, p, g, ch in sorted(self.consents)])
        # the directory: each card's issue and each block takes the next version
        changes, events = [], []
        for i in range(n):
            op = "desk:S%03d" % self.home[i]
            changes.append((self.created[i], self.card[i], self.tier[i], 0, i + 1))
            events += [(self.card[i], i + 1, self.created[i], "issued", op), (self.card[i], i + 1, self.created[i], "linked", op)]
            if self.card2[i]:
                r = self.replaced[i]
                changes.append((r, self.card2[i], self.tier[i], 0, i + 1))
                changes.append((r, self.card[i], self.tier[i], 1, i + 1))
                events += [(self.card[i], i + 1, r, "replaced", op), (self.card[i], i + 1, r, "blocked", op),
                           (self.card2[i], i + 1, r, "issued", op), (self.card2[i], i + 1, r, "linked", op)]
        changes.sort()
        history = [(card, v + 1, tier, status, t) for v, (t, card, tier, status, _) in enumerate(changes)]
        last = {}
        for v, (t, card, tier, status, cid) in enumerate(changes):
            last[card] = (card, tier, status, v + 1, t, cid)
        db.conn.executemany("INSERT INTO cards(card, tier, status, version, updated, customer_id) VALUES(?, ?, ?, ?, ?, ?)",
                            list(last.values()))
        db.conn.executemany("INSERT INTO card_history(card, version, tier, status, t) VALUES(?, ?, ?, ?, ?)", history)
        db.conn.executemany("INSERT INTO card_events(card, customer_id, t, event, operator) VALUES(?, ?, ?, ?, ?)",
                            sorted(events, key=lambda e: e[2]))
        dbmod.set_meta(db, "directory_version", len(changes))
        db.conn.executemany("INSERT INTO tiers(id, code, name, bp) VALUES(?, ?, ?, ?)",
                            [(0, "BASE", "Base", 0), (1, "SILVER", "Argento", 200), (2, "GOLD", "Oro", 400)])


def _cumulative(weights):
    out, total = [], 0.0
    for w in weights:
        total += w
        out.append(total)
    return out


def _pick(rng, cw, lo=0):
    """An index drawn by cumulative weights cw, from index lo on."""
    base = cw[lo - 1] if lo else 0.0
    return min(len(cw) - 1, bisect.bisect_right(cw, base + rng.random() * (cw[-1] - base)))


def _stores_and_readers(db, rng, now, start):
    db.conn.executemany("INSERT INTO stores(id, name, tz) VALUES(?, ?, ?)",
                        [("S%03d" % s, "Supermercato %03d" % s, TZ) for s in range(STORES)])
    rows = []
    for r in range(READERS):
        shape = _shape(r)
        contact = None if shape == 19 else now - (7200 if shape == 18 else rng.randint(0, 120))
        pending = rng.randint(20, 80) if shape in (16, 17) else rng.randint(0, 3)
        rows.append(("R%04d" % r, "S%03d" % (r % STORES), "Cassa %d" % r, "%064x" % rng.getrandbits(256),
                     start - 86400 * 30, contact, contact, 0, dbmod.GENESIS, pending,
                     None if not pending else now - (3600 if shape in (16, 17) else 30),
                     "nearly_full" if shape == 17 else "ok", 1000, 524288, 900000, "0.1.0", RULES, 200,
                     0, 0, "", now - 60 if shape == 15 else None, "batch.chain" if shape == 15 else None))
    db.conn.executemany(
        "INSERT INTO readers(id, store_id, name, key_hex, created, last_contact, last_batch, acked_seq,"
        " acked_hash, pending, oldest_t, journal, used, capacity, free_flash, firmware, rules_version,"
        " directory_version, clock_offset, clock_drift, last_error, last_refusal_at, last_refusal_code)"
        " VALUES(" + ",".join("?" * 23) + ")", rows)


def _shape(r):
    # reader r is in store r % STORES; its shape: 15 refused its last batch, 16-17 lag
    # behind with a backlog (17's journal nearly full), 18 offline, 19 never seen (and
    # so without receipts), the rest in sync. Every store has one reader of each.
    return (r // STORES) % SHAPES


def _receipts(db, rng, cal, shop, people, now, log):
    """Visits day by day, in time order: receipts (sales and returns), day totals and
    the product totals of the lines minimisation folded."""
    n = len(people.home)
    ndays = len(cal.days)
    visits_on = [[] for _ in range(ndays)]
    rand = rng.random
    for i in range(n):
        first = cal.day_of(max(people.created[i], cal.start))
        years = (ndays - first) / 365.0
        want = people.rate[i] * years
        k = max(1, int(want) + (rand() < want - int(want)))
        for _ in range(k):
            visits_on[_pick(rng, cal.cw, first)].append(i)
    tills = [[r for r in range(s, READERS, STORES) if _shape(r) != 19] for s in range(STORES)]
    till_cw = _cumulative([1.0 / (k + 2) for k in range(len(tills[0]))])  # the first tills are busiest
    store_cw = people.store_cw
    size_cw, size_total = _SIZE_CW, _SIZE_CW[-1]
    sku_cw, sku_total, skus = shop.cw, shop.total, shop.skus
    qty_table = QTY
    home, card_at, folded_at, tier_of = people.home, people.card_at, people.folded_at, people.tier
    seq_of, prev_of = [0] * READERS, [dbmod.GENESIS] * READERS
    returns_due = {}
    dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
    pick = bisect.bisect_right
    rowid = 0
    counts = {"receipts": 0, "sales": 0, "returns": 0, "kept records": 0, "folded": 0}
    started = time.time()
    db.execute("BEGIN")
    for d, (day, slot_t, slot_cw, slot_total) in enumerate(cal.days):
        if not slot_total:  # closed: its visits and returns move to the next day
            if d + 1 < ndays:
                visits_on[d + 1] += visits_on[d]
                returns_due.setdefault(d + 1, []).extend(returns_due.pop(d, ()))
            continue
        flyer = shop.flyer(d // 14)
        todo = []
        for i in visits_on[d]:
            s = home[i] if rand() < HOME_SHARE else pick(store_cw, rand() * store_cw[-1])
            r = tills[s][pick(till_cw, rand() * till_cw[-1])]
            t = slot_t[pick(slot_cw, rand() * slot_total)] + int(rand() * 1800)
            if t < now:
                todo.append((t, r, i, None))
        for r, i, ref in returns_due.pop(d, ()):
            t = slot_t[pick(slot_cw, rand() * slot_total)] + int(rand() * 1800)
            if t < now:
                todo.append((t, r, i, ref))
        todo.sort(key=lambda v: v[0])
        rows, products = [], {}
        for t, r, i, ref in todo:
            seq_of[r] += 1
            seq = seq_of[r]
            rid = "R%04d" % r
            store = "S%03d" % (r % STORES)
            if ref is None:
                lines, disc, gross, discount = [], [], 0, 0
                for _ in range(min(40, 1 + pick(size_cw, rand() * size_total))):
                    k = min(len(skus) - 1, pick(sku_cw, rand() * sku_total))
                    sku, cat, price = skus[k]
                    q = qty_table[int(rand() * 100)]
                    cents = q * price
                    promo = flyer.get(k)
                    if promo is not None:
                        off = cents * promo[0] // 10000
                        if off:
                            disc.append({"cents": off, "line": len(lines), "rule": promo[1]})
                            discount += off
                    lines.append({"cat": cat, "price": price, "qty": q, "sku": sku})
                    gross += cents
                rec = {"v": 1, "kind": "sale", "reader": rid, "seq": seq, "prev": prev_of[r], "t": t,
                       "card": card_at(i, t), "tier": tier_of[i], "lines": lines, "gross": gross,
                       "discount": discount, "disc": disc, "rules": RULES, "receipt": "%d-%06d" % (r, seq),
                       "quote": "Q%d-%d" % (r, seq)}
                if rand() < RETURN_SHARE:
                    back = d + rng.randint(1, 14)
                    if back < ndays:
                        returns_due.setdefault(back, []).append((r, i, rec))
                counts["sales"] += 1
            else:
                rec = _return_of(rng, ref, seq, prev_of[r], t, card_at(i, t), r)
                counts["returns"] += 1
            kind = rec["kind"]
            rowid += 1
            h = "%064x" % rowid  # a placeholder, not the record's hash
            prev_of[r] = h
            folded = folded_at(i, t, now)
            if folded is None:
                text = dumps(rec)
                counts["kept records"] += 1
            else:
                text = None
                counts["folded"] += 1
                for sku, cat, units, cents, off, nl in line_totals(kind, rec):
                    p = products.get((store, sku, cat))
                    if p is None:
                        products[(store, sku, cat)] = [units, cents, off, nl]
                    else:
                        p[0] += units
                        p[1] += cents
                        p[2] += off
                        p[3] += nl
            rows.append((rid, seq, store, kind, t, day, rec["receipt"], rec["card"], rec["tier"], rec["gross"],
                         rec["discount"], RULES, h, None, text, "ok", None, len(rec["lines"]), folded))
        db.conn.executemany(_INSERT_RECEIPT, rows)
        # the day's totals as ingestion keeps them, from the rows just written (rowid order is
        # time order; NOT INDEXED: the planner would walk the whole (store_id, day) index)
        db.execute("INSERT INTO day_totals(store_id, day, receipts, gross, discount) SELECT store_id, day, "
                   "sum(kind = 'sale'), sum(gross), sum(discount) FROM receipts NOT INDEXED WHERE rowid > ? "
                   "GROUP BY store_id, day", [rowid - len(rows)])
        db.conn.executemany("INSERT INTO product_day_totals(store_id, day, sku, category, qty, gross, discount, lines) "
                            "VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
                            [(s, day, sku, cat) + tuple(v) for (s, sku, cat), v in sorted(products.items())])
        counts["receipts"] += len(rows)
        visits_on[d] = None
        if d % 30 == 29:
            db.conn.commit()
            log("  %s: %d receipts in %.0f s" % (day, counts["receipts"], time.time() - started))
            db.execute("BEGIN")
    db.conn.executemany("UPDATE readers SET acked_seq=?, acked_hash=? WHERE id=?",
                        [(seq_of[r], prev_of[r], "R%04d" % r) for r in range(READERS)])
    samples = [("R%04d" % r, now - k * 300, rng.randint(0, 5)) for r in range(0, READERS, 10) for k in range(288)]
    db.conn.executemany("INSERT INTO reader_samples(reader_id, t, pending) VALUES(?, ?, ?)", samples)
    db.conn.commit()
    return counts


def _return_of(rng, sale, seq, prev, t, card, r):
    """A return of some units of one or two of `sale`'s lines, its discount reversed in proportion."""
    lines = sale["lines"]
    n = len(lines)
    returning = [0] * n
    for j in rng.sample(range(n), 2 if n > 1 and rng.random() < 0.2 else 1):
        returning[j] = rng.randint(1, lines[j]["qty"])
    disc = []
    for d in sale["disc"]:
        back = d["cents"] * returning[d["line"]] // lines[d["line"]]["qty"]
        if back:
            disc.append({"cents": -back, "line": d["line"], "rule": d["rule"]})
    return {"v": 1, "kind": "return", "reader": sale["reader"], "seq": seq, "prev": prev, "t": t, "card": card,
            "tier": sale["tier"], "lines": lines, "gross": -sum(q * line["price"] for q, line in zip(returning, lines)),
            "discount": sum(d["cents"] for d in disc), "disc": disc, "rules": RULES,
            "receipt": "%d-%06dR" % (r, seq), "quote": "", "ref": sale["seq"], "returned": [0] * n,
            "returning": returning}
