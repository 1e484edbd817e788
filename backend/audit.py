"""The audit: every discount a reader granted, recomputed with the shared engine.

Runs in the auditor (backend/auditor.py), after ingestion stored and acknowledged a
batch: for the batch's fresh records (oldest first) it says for each 'ok' or 'mismatch'
with a sentence (expected vs granted). No trust in the reader:

  * a sale is quoted again with protocol.engine.quote under the rules version it names.
    The reader's context is not in the record, so the audit accepts exactly what the
    engine gives for a context the reader can legitimately have had:
      - fresh rules (promotions in force at the record's time) or stale ones (tier
        base rate only: never synced, or synced too long ago);
      - a card's day usage at least what this reader already granted that card that
        day (firmware/daytotals.py: UTC days, rolled forward only, sales only), or more
        (the reader counts conservatively), so the day limit may have cut more;
      - the rules as they were when the card was tapped: the reader quotes at the tap and
        records the commit time, so for each promotion that started or ended within
        QUOTE_SLACK before the record's time, the engine's result just before that
        instant (tried only when the record's own time does not match);
      - nothing at all (discount 0: blocked card, no rules, journal full, ...).
    Anything else is a mismatch, in particular any discount above what the engine allows.
    A discount is granted at the record's tier only if a reader's directory could have
    given the card that tier (backend/cardstates.py: a state the card had up to the sale,
    or the default tier); a forged higher tier is a mismatch even when the cents add up.
  * a return or a voided sale is reversed again with engine.reverse / engine.void
    against the STORED sale it names (`ref`), with the quantities returned before as
    this reader's stored returns of that sale say (the record's `returned` must match).
  * a cancelled quote (a void without `ref`) must move no money.
  * a return or void of a sale whose lines were folded (backend/privacy/minimise.py: the
    return window had closed) cannot be checked: a mismatch whose note says so, for a
    person to look at; so is one of a sale whose earlier returns of the same card were
    folded (what they returned is gone).

    book = RulesBook()
    auditor = Auditor(db, "R1", book, stored_seq=0, stored_t=None,
                      cards=["6001000000000042"], states=CardStates(db))
    auditor.check(record)     # -> ("ok", None) or ("mismatch", "granted 4.50, ...")
"""
import datetime
import json

from loyalty.backend import checks
from loyalty.backend.sync import fastjson
from loyalty.backend.cardstates import CardStates
from loyalty.protocol import engine
from loyalty.protocol.errors import ProtocolError

OK = "ok"
MISMATCH = "mismatch"
DAY = 86400  # the reader's day totals count UTC days (firmware/daytotals.py)
QUOTE_SLACK = 1800  # seconds a quote may wait at the till for its commit


class Folded:
    """A stored sale whose lines were folded into the product totals (record NULL): a
    return or void of it cannot be checked against lines that are gone."""

    def __init__(self, folded_t, card, lines):
        self.folded_t, self.card, self.lines = folded_t, card, lines

    def note(self, kind, ref, rec):
        day = datetime.datetime.fromtimestamp(self.folded_t, datetime.timezone.utc).strftime("%Y-%m-%d")
        extra = "" if rec.get("card") == self.card else "; it names card %s, the sale was card %s" % (
            rec.get("card"), self.card)
        return ("%s of sale %d, whose lines were folded on %s (the return window had closed): it cannot be "
                "checked against them%s" % (kind, ref, day, extra))


class RulesBook:
    """Rules objects by version, read once from rules_versions: a published version never
    changes, so one book per database (the app keeps one) serves every request."""

    def __init__(self):
        self._by_version = {}

    def get(self, db, version):
        rules = self._by_version.get(version)
        if rules is None:
            row = db.execute("SELECT rules FROM rules_versions WHERE version=?", [version]).fetchone()
            if row is None:
                return None
            rules = self._by_version.setdefault(version, json.loads(row[0]))
        return rules


def _same_disc(got, want):
    """The discount lines granted are the engine's, as canonical JSON would compare them
    (faster than encoding both: this runs for every sale)."""
    if got != want:
        return False
    for d in got:
        # as Python values true == 1: a forged `"line":true` must not pass (cents are
        # checked as integers by check_record, rules are text on both sides)
        if type(d["line"]) is not int:
            return False
    return True


def day_used_sql(cards, day, reader, stored_seq):
    """What `reader`'s sales up to `stored_seq` granted each of `cards` on UTC day `day`.

    The reader and seq are tested inside the sum, not in WHERE: there SQLite (without
    ANALYZE's statistics) would take the primary key and walk the reader's whole history
    up to stored_seq, 44 ms a query at 50,000 receipts a reader and growing, where the
    cards' index (card, t) finds the day's few receipts of each card (3 ms)."""
    return ("SELECT card, sum(CASE WHEN reader_id=? AND kind='sale' AND seq<=? THEN discount ELSE 0 END) "
            "FROM receipts WHERE card IN (%s) AND t>=? AND t<? GROUP BY card" % ",".join("?" * len(cards)),
            [reader, stored_seq] + list(cards) + [day * DAY, (day + 1) * DAY])


def _money(cents):
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return "%s%d.%02d" % (sign, cents // 100, cents % 100)


def _lines_text(disc):
    if not disc:
        return "nothing"
    return ", ".join("%s %s on line %s" % (d.get("rule"), _money(d.get("cents", 0)), d.get("line"))
                     for d in disc[:6]) + (", ..." if len(disc) > 6 else "")


def _boundaries(rules, t):
    """[(instant, note)]: just before each start or end of a promotion within QUOTE_SLACK
    before t, when a quote committed at t may have been made, oldest first."""
    found = {}
    for p in rules["promotions"]:
        for key, word in (("from", "started"), ("to", "ended")):
            edge = p.get(key)
            if edge is not None and t - QUOTE_SLACK < edge <= t:
                found.setdefault(edge - 1, []).append("quoted before promotion %s %s" % (p["id"], word))
    return [(now, ", ".join(notes)) for now, notes in sorted(found.items())]


def _same(a, b):
    """Equal as canonical JSON: as Python values, true == 1 and a forged true would pass."""
    try:
        return fastjson.encode(a) == fastjson.encode(b)
    except (ProtocolError, TypeError, ValueError):
        return False


class Auditor:
    """Audits the fresh records of one reader's batch, in seq order.

    stored_seq: the highest seq stored before the batch; stored_t: that record's time
    (None for a new reader), from which the reader's day is known. cards: the cards of
    the batch's sales (their day totals and tier histories come in one query); states: a
    CardStates to share between auditors (one per chunk of receipts), else one of its own.
    """

    def __init__(self, db, reader, book, stored_seq, stored_t, cards=(), states=None):
        self.db = db
        self.cards = list(cards)  # the cards of the batch's sales: their day totals come in one query
        self.states = CardStates(db) if states is None else states
        self._states_loaded = False
        self.reader = reader
        self.book = book
        self.stored_seq = stored_seq
        self.day = -1 if stored_t is None else stored_t // DAY  # the reader's day (forward only)
        self.batch = {}         # seq -> record, the batch's records audited so far
        self.batch_used = {}    # (card, day) -> cents granted by the batch's sales
        self.stored_used = {}   # (card, day) -> cents granted by stored sales

    def check(self, rec):
        """("ok", None or a note) or ("mismatch", sentence) for one fresh record."""
        try:
            kind = rec["kind"]
            if kind == "sale":
                result = self._sale(rec)
            elif kind == "void" and "ref" not in rec:
                result = self._cancelled(rec)
            else:
                result = self._reversal(rec)
        except ProtocolError as e:
            result = (MISMATCH, "the engine refuses this record: %s" % e)
        except (TypeError, KeyError, ValueError, AttributeError, IndexError) as e:
            # a record shaped in a way nothing here expects: flagged for a person to look
            # at, never a reason to refuse the batch (the reader could never get past it)
            result = (MISMATCH, "the audit cannot read this record (%s: %s)" % (type(e).__name__, e))
        self.batch[rec["seq"]] = rec
        return result

    # -- sales ----------------------------------------------------------------------
    def _load_day(self, day, cards):
        """What this reader's stored sales granted each of `cards` on UTC day `day`."""
        for card in cards:
            self.stored_used[(card, day)] = 0
        if not self.stored_seq:
            return  # a reader's first batch: nothing stored before it
        for k in range(0, len(cards), 500):
            sql, params = day_used_sql(cards[k:k + 500], day, self.reader, self.stored_seq)
            for card, cents in self.db.execute(sql, params):
                self.stored_used[(card, day)] = cents

    def _used(self, card, day):
        key = (card, day)
        if key not in self.stored_used:
            self._load_day(day, list(set(self.cards + [card])))
        return self.stored_used[key] + self.batch_used.get(key, 0)

    def _sale(self, rec):
        # the reader's day rolls forward only, at every card tap (sales and cancelled quotes)
        day = max(self.day, rec["t"] // DAY)
        self.day = day
        try:
            return self._judge_sale(rec, day)
        finally:
            # what the reader granted counts towards the card's day, right or wrong
            if rec["discount"] > 0:
                key = (rec["card"], day)
                self.batch_used[key] = self.batch_used.get(key, 0) + rec["discount"]

    def _judge_sale(self, rec, day):
        if rec["discount"] == 0 and not rec["disc"]:
            # no discount is always allowed (blocked card, no rules, journal full): the
            # lines and their gross are all there is to check
            lines = engine.check_lines(rec["lines"])
            if rec["gross"] != engine.gross(lines):
                return MISMATCH, "gross %s, the lines add up to %s" % (_money(rec["gross"]), _money(engine.gross(lines)))
            return OK, None
        if rec["discount"] < 0:
            return MISMATCH, "a sale with a negative discount (%s)" % _money(rec["discount"])
        rules = self.book.get(self.db, rec["rules"]) if rec["rules"] else None
        if rules is None:
            return MISMATCH, "granted %s under rules version %d, which was never published" % (
                _money(rec["discount"]), rec["rules"])
        used = self._used(rec["card"], day)
        verdict = self._amounts(rules, rec, used)
        if verdict[0] == OK:
            refused = self._tier_refused(rules, rec)
            if refused:
                return MISMATCH, refused
        return verdict

    def _amounts(self, rules, rec, used):
        """The discount against the engine in every context the reader may have had."""
        first = None
        for stale in (False, True):
            verdict = self._against(rules, rec, used, stale)
            if verdict[0] == OK:
                return verdict
            first = first or verdict
        # quoted at the tap, before a promotion started or ended: only now, when the plain
        # check failed, so the common case costs nothing more
        for now, why in _boundaries(rules, rec["t"]):
            verdict = self._against(rules, rec, used, False, now)
            if verdict[0] == OK:
                return OK, "; ".join(n for n in (verdict[1], why) if n)
        return first

    def _tier_refused(self, rules, rec):
        """None, or why the record's tier was not the card's to have at the sale."""
        tier = rec["tier"]
        if tier == rules["default_tier"]:
            return None  # any card may be applied the default tier (not in the directory)
        if not self._states_loaded:
            # the history of all the batch's cards at once, not a query per sale
            self.states.load(self.cards + [rec["card"]])
            self._states_loaded = True
        allowed = self.states.tiers_allowed(rec["card"], rec["t"], rules)
        if tier in allowed:
            return None
        return "tier %d was never card %s's tier before the sale; allowed: %s" % (
            tier, rec["card"], ", ".join(str(a) for a in sorted(allowed)))

    def _quote(self, rules, rec, used, stale, now=None):
        t = rec["t"] if now is None else now
        ctx = {"now": t, "last_sync": None if stale else t, "card_day_used": used}
        return engine.quote(rules, rec["lines"], rec["tier"], ctx)

    def _against(self, rules, rec, used, stale, now=None):
        """The record against the engine in one mode (fresh or stale rules), at the
        record's time or, quoted before a promotion's boundary, at `now`."""
        mode = "stale rules" if stale else "rules v%d" % rules["version"]
        q = self._quote(rules, rec, used, stale, now)  # checks the lines too
        if rec["gross"] != q["gross"]:
            return MISMATCH, "gross %s, the lines add up to %s" % (_money(rec["gross"]), _money(q["gross"]))
        if q["tier"] != rec["tier"]:
            return MISMATCH, "tier %d is not in rules v%d" % (rec["tier"], rules["version"])
        granted = rec["discount"]
        if granted > q["discount"]:
            return MISMATCH, "granted %s, the engine allows at most %s (%s, tier %d, card's day used %s)" % (
                _money(granted), _money(q["discount"]), mode, rec["tier"], _money(used))
        note = "stale rules: tier rate only" if stale else None
        if granted < q["discount"]:
            # a reader that counted more of the card's day than we know cut more: the
            # engine's own trimming at that cap must give exactly the lines granted
            cap = rules["offline"]["card_day_max_cents"] - granted
            q = self._quote(rules, rec, cap, stale, now)
            note = "cut to %s by the card's day limit on the reader" % _money(granted) + (
                " (stale rules)" if stale else "")
        if not _same_disc(rec["disc"], q["disc"]):
            return MISMATCH, "granted %s as %s; the engine gives %s as %s (%s)" % (
                _money(granted), _lines_text(rec["disc"]), _money(q["discount"]), _lines_text(q["disc"]), mode)
        return OK, note

    # -- cancelled quotes -----------------------------------------------------------
    def _cancelled(self, rec):
        self.day = max(self.day, rec["t"] // DAY)
        if rec["gross"] != 0 or rec["discount"] != 0 or rec["disc"]:
            return MISMATCH, "a cancelled quote must move no money: gross %s, discount %s" % (
                _money(rec["gross"]), _money(rec["discount"]))
        return OK, None

    # -- returns and voided sales -----------------------------------------------------
    def _stored_sale(self, ref):
        """The stored sale `ref` (a record), None if there is none, or a Folded for a sale
        whose lines were folded (backend/privacy/fold.py: record NULL)."""
        if ref in self.batch:
            return self.batch[ref]
        # a sale of this batch is in self.batch unless it was folded meanwhile (an audit
        # done again after the fold): the stored row tells which
        row = self.db.execute("SELECT record, folded_t, card, lines FROM receipts WHERE reader_id=? AND seq=?",
                              [self.reader, ref]).fetchone()
        if row is None:
            return None
        if row[0] is None and row[1] is not None:
            return Folded(row[1], row[2], row[3])
        return json.loads(row[0]) if ref <= self.stored_seq else None

    def _folded_reversals(self, ref, card, seq):
        """Whether this reader stored, between sale `ref` and `seq`, a return or void of
        `card` whose lines were folded: it may have reversed `ref`, and its quantities are
        gone (a fold keeps no `ref`), so the quantities returned before are unknown."""
        return self.db.execute(
            "SELECT 1 FROM receipts WHERE reader_id=? AND seq>? AND seq<? AND card=? "
            "AND kind IN ('return','void') AND record IS NULL AND folded_t IS NOT NULL LIMIT 1",
            [self.reader, ref, seq, card]).fetchone() is not None

    def _returned_before(self, ref, n, seq):
        """Quantities per line of sale `ref` returned or voided by this reader before `seq`."""
        done = [0] * n
        others = [r for s, r in self.batch.items() if s < seq and r.get("ref") == ref]
        if ref <= self.stored_seq:
            rows = self.db.execute(
                "SELECT record FROM receipts WHERE reader_id=? AND seq>? AND seq<=? "
                "AND kind IN ('return','void') AND json_extract(record, '$.ref')=?",
                [self.reader, ref, self.stored_seq, ref]).fetchall()
            others = [json.loads(r[0]) for r in rows] + others
        for r in others:
            qty = r.get("returning")
            if isinstance(qty, list) and len(qty) == n:
                for i in range(n):
                    if isinstance(qty[i], int):
                        done[i] += qty[i]
        return done

    def _reversal(self, rec):
        kind = rec["kind"]
        ref = rec.get("ref")
        if not checks.is_integer(ref, 1, rec["seq"] - 1):
            return MISMATCH, "a %s must name an earlier sale of this reader (ref %r)" % (kind, ref)
        sale = self._stored_sale(ref)
        if isinstance(sale, Folded):
            return MISMATCH, sale.note(kind, ref, rec)
        if sale is None or sale.get("kind") != "sale":
            return MISMATCH, "%s of receipt %d, which is not a sale stored for this reader" % (kind, ref)
        if not _same(rec["lines"], sale["lines"]):
            return MISMATCH, "%s of sale %d with other lines than the stored sale" % (kind, ref)
        if rec["card"] != sale["card"]:
            return MISMATCH, "%s of sale %d names card %s, the sale was card %s" % (kind, ref, rec["card"], sale["card"])
        n = len(sale["lines"])
        if self._folded_reversals(ref, rec["card"], rec["seq"]):
            return MISMATCH, ("%s of sale %d cannot be checked: an earlier return or void of card %s was folded "
                              "(its lines left it after the return window), so what was returned before is "
                              "unknown" % (kind, ref, rec["card"]))
        before = self._returned_before(ref, n, rec["seq"])
        if not _same(rec.get("returned"), before):
            return MISMATCH, "%s of sale %d says %r returned before; the stored returns say %r" % (
                kind, ref, rec.get("returned"), before)
        if kind == "void":
            want = engine.void(sale["lines"], sale["disc"], before)
            rest = [max(0, line["qty"] - b) for line, b in zip(sale["lines"], before)]
            if not _same(rec.get("returning"), rest):
                return MISMATCH, "void of sale %d returns %r, what is left is %r" % (ref, rec.get("returning"), rest)
        else:
            want = engine.reverse(sale["lines"], sale["disc"], before, rec.get("returning"))
        if rec["gross"] != want["gross"] or rec["discount"] != want["discount"] or not _same(rec["disc"], want["disc"]):
            return MISMATCH, "%s of sale %d reverses %s of discount on %s; the engine reverses %s on %s" % (
                kind, ref, _money(-rec["discount"]), _money(-rec["gross"]),
                _money(-want["discount"]), _money(-want["gross"]))
        return OK, None
