"""The checkout state machine: basket -> card -> quote -> commit or void.

Sans-I/O: the till link task hands it validated messages, the card task hands it card
identities, and it answers with the messages for the till; what the display shows and
which signal the buzzer plays are left in `screen` and `signals` for the display task.

    idle --basket--> basket --card--> quoted --commit--> idle (sale journaled)
                        ^                  \\--void----> idle (void journaled)
                        \\-- a new basket replaces the one waiting (the old quote is voided)

A discount is granted only if it can be recorded: the quote checks that the journal has
room, and if the commit cannot be written the till is told the discount is withdrawn
(`discount: 0` in `committed`); the sale itself always goes through.

    co = Checkout("R1", journal, cards, rules, days, Screen("it"))
    co.till({"type": "basket", "receipt": "T1-1", "lines": [...]}, now)
    co.card({"card": "6001000000000042", "kind": "applet", "verified": True}, now)
"""
import gc

from protocol import canonical, engine
from protocol.canonical import text_size
from protocol.checks import is_digits
from protocol.errors import JournalError, ProtocolError, TillError
from protocol.recordcheck import check_content
from protocol.records import make_record

from journal import MAX_RECORD

_BLOCKED = 1

IDLE = "idle"
BASKET = "basket"
QUOTED = "quoted"


def _record_bound(lines, disc):
    """An upper bound of a sale record's size, without encoding it (that allocates): the
    texts measured exactly (canonical.text_size), numbers at their most digits.

    A line {"cat":..,"price":N,"qty":N,"sku":..} is 36 bytes of keys and punctuation with
    its comma, 12 digits at most; a discount line {"cents":N,"line":N,"rule":..} 27 and
    14; 800 bytes cover the record's own fields (prev alone is 66, receipt and card 21).
    """
    n = 800
    for line in lines:
        n += 48 + text_size(line["sku"]) + text_size(line["cat"])
    for d in disc:
        n += 41 + text_size(d["rule"])
    return n


def _free():
    gc.collect()
    return gc.mem_free()


def masked(card):
    return "*" * max(0, len(card) - 4) + card[-4:]


class Checkout:
    def __init__(self, reader, journal, cards, rules, days, screen):
        self.reader = reader
        self.journal = journal
        self.cards = cards
        self.rules = rules
        self.days = days
        self.screen = screen
        self.state = IDLE
        self.basket = None
        self.quote = None
        self.signals = []  # feedback patterns to play, oldest first
        self.last_error = ""
        self.sync = None  # the sync client, for its state in the status answer
        self._quotes = 0

    # -- till side --------------------------------------------------------------------
    def till(self, msg, now):
        """Answer one validated till message; a TillError becomes an `error` answer."""
        try:
            return getattr(self, "_on_" + msg["type"])(msg, now)
        except ProtocolError as e:
            return [self.error(e)]

    def error(self, e):
        self.last_error = e.code
        self.signals.append("error")
        return {"type": "error", "code": e.code, "field": e.field, "detail": e.detail,
                "text": self.screen.show("error", reason=e.code)[1]}

    def _on_status(self, msg, now):
        return [self.status(now)]

    def status(self, now):
        s = self.journal.stats()
        return {"type": "status", "state": self.state, "pending": s["pending"], "journal": s["level"],
                "next_seq": s["next_seq"], "rules": self.rules.version,
                "directory": self.cards.version, "last_sync": self.rules.last_sync or 0,
                "last_error": self.last_error, "time": now, "heap_free": _free(),
                "sync_error": self.sync.last_error if self.sync else "",
                "clock_drift": self.sync.clock_drift if self.sync else 0,
                "refused": self.sync.last_refusal if self.sync else None,
                "keys": self.sync.keys.version if self.sync and self.sync.keys else 0}

    def _on_basket(self, msg, now):
        replies = []
        if self.state == QUOTED:
            replies.extend(self._void_quote(now))
        self.basket = {"receipt": msg["receipt"], "lines": msg["lines"]}
        self.quote = None
        self.state = BASKET
        gross = engine.gross(msg["lines"])
        self.screen.show("tap_card", amount=gross)
        replies.append({"type": "ready", "receipt": msg["receipt"], "gross": gross})
        return replies

    def _need_quote(self, msg):
        if self.state != QUOTED:
            raise TillError("till.state", "type", "no quote is waiting (state %s)" % self.state)
        if msg["quote"] != self.quote["quote"]:
            raise TillError("till.unknown_quote", "quote", "the waiting quote is " + self.quote["quote"])

    def _on_commit(self, msg, now):
        self._need_quote(msg)
        q = self.quote
        if msg["paid"] != q["gross"] - q["discount"]:
            raise TillError("till.field", "paid", "must equal gross - discount = %d" % (q["gross"] - q["discount"]))
        rec = make_record("sale", self.reader, 0, "", now, q["card"], q["tier"], self.basket["lines"],
                          q["gross"], q["discount"], q["disc"], q["rules"], self.basket["receipt"], q["quote"])
        seq, granted, note = self._append(rec)
        if seq and granted:
            self.days.add(q["card"], granted, now, seq)
        if seq and not q["discount"]:
            note = q["note"]  # recorded, nothing withdrawn: the quote already said why
        self.state, self.basket, self.quote = IDLE, None, None
        if note:
            self.screen.show("no_discount", reason=note)
            self.signals.append("error")
        else:
            self.screen.show("committed", amount=granted)
        return [{"type": "committed", "quote": q["quote"], "seq": seq, "discount": granted, "note": note}]

    def _append(self, rec):
        """Journal a record: (seq, discount granted, note). A sale not recorded gets no discount.

        The record is checked against the schema the backend holds it to first: a record
        that breaks it would only be quarantined there, its discount never counted."""
        try:
            check_content(rec)
        except ProtocolError:
            self.last_error = "disc.bad_record"
            return 0, 0, "disc.bad_record"
        try:
            return self.journal.append(rec), rec["discount"], ""
        except (JournalError, OSError) as e:
            self.last_error = getattr(e, "code", "flash.io")
            return 0, 0, "disc.journal_full" if self.last_error == "journal.full" else "disc.journal_error"

    def _on_void(self, msg, now):
        if "seq" in msg:
            return self._reverse("void", msg, now)
        self._need_quote(msg)
        replies = self._void_quote(now)
        self.state, self.basket = IDLE, None
        return replies

    def _void_quote(self, now):
        q = self.quote
        rec = make_record("void", self.reader, 0, "", now, q["card"], q["tier"], self.basket["lines"],
                          0, 0, [], q["rules"], self.basket["receipt"], q["quote"])
        seq = self._append(rec)[0]
        self.quote = None
        self.screen.show("voided")
        return [{"type": "voided", "quote": q["quote"], "seq": seq}]

    def _on_return(self, msg, now):
        return self._reverse("return", msg, now)

    def _reverse(self, kind, msg, now):
        """A return (some quantities) or a void of a whole committed sale: reverse its discount exactly.

        The till sends the sale as it printed it; the backend checks it against the stored
        sale. The reader checks what it can: the sale's seq is one it handed out, and the
        quantities returned before include every return of that sale it still holds.
        """
        if self.state == QUOTED:
            raise TillError("till.state", "type", "finish the waiting quote first")
        ref = msg["seq"]
        if ref >= self.journal.stats()["next_seq"]:
            raise TillError("till.unknown_receipt", "seq", "this reader has not recorded sale %d" % ref)
        sale = msg["sale"]
        returned = msg.get("returned") or [0] * len(sale["lines"])
        held = self._returned_here(ref, len(sale["lines"]))
        for i in range(len(held)):
            if returned[i] < held[i]:
                raise TillError("till.field", "returned[%d]" % i,
                                "this reader already recorded %d returned for this line" % held[i])
        if kind == "void":
            rev = engine.void(sale["lines"], sale["disc"], returned)
            qty = [line["qty"] - r for line, r in zip(sale["lines"], returned)]
            if not sum(qty):
                raise TillError("till.field", "returned", "nothing of this sale is left to void")
        else:
            qty = msg["qty"]
            if not sum(qty):
                raise TillError("till.field", "qty", "must return at least one unit")
            rev = engine.reverse(sale["lines"], sale["disc"], returned, qty)
        rec = make_record(kind, self.reader, 0, "", now, sale["card"], sale["tier"], sale["lines"],
                          rev["gross"], rev["discount"], rev["disc"], self.rules.version,
                          ref=ref, returned=returned, returning=qty)
        seq, reversed_cents, note = self._append(rec)
        self.screen.show("returned", amount=-reversed_cents)
        return [{"type": "returned" if kind == "return" else "voided", "ref": ref, "seq": seq,
                 "gross": rev["gross"], "discount": reversed_cents, "note": note}]

    def _returned_here(self, ref, n):
        """Quantities per line of sale `ref` returned or voided in the records still held."""
        held = [0] * n
        for _, data in self.journal.records(self.journal.stats()["acked"] + 1, 1000000, 1 << 30):
            if b'"ref":%d,' % ref not in data:  # most records are not about this sale
                continue
            rec = canonical.decode(data)
            if rec.get("ref") != ref:
                continue
            if len(rec.get("returning", ())) != n:
                raise TillError("till.field", "sale.lines", "sale %d had %d lines, not %d" % (
                    ref, len(rec.get("returning", ())), n))
            for i in range(n):
                held[i] += rec["returning"][i]
        return held

    # -- card side --------------------------------------------------------------------
    def card(self, identity, now):
        """A card was read. Returns the quote for the till (or nothing when no basket waits)."""
        if self.state == QUOTED:
            # a second tap while the till has the quote: show the quote again, change nothing
            self._show_quote(self.quote)
            return []
        if self.state != BASKET:
            self.screen.show("wait_basket")
            self.signals.append("warn")
            return []
        if not identity.get("verified") or not is_digits(identity.get("card")):
            # a number that is not 1 to 19 digits could not be recorded: no discount for it
            self.signals.append("error")
            self.screen.show("error", reason="card.unreadable")
            return [{"type": "error", "code": "card.unreadable", "field": "card", "detail": identity.get("why", ""),
                     "text": self.screen.lines[1]}]
        card = identity["card"]
        lines = self.basket["lines"]
        rules = self.rules.rules
        found = self.cards.lookup(card)
        note = ""
        tier = rules["default_tier"] if rules else 0
        if found is None:
            note = "card.unknown"
        else:
            tier = found[0]
        ctx = {"now": now, "last_sync": self.rules.last_sync, "card_day_used": self.days.used(card, now)}
        if rules is None:
            result, note = self._nothing(lines), "disc.no_rules"
        elif found is None and identity.get("kind") == "uid":
            # a UID proves nothing (anyone can clone one): only the directory vouches for it
            result, note = self._nothing(lines), "card.not_registered"
        elif found is not None and found[1] == _BLOCKED:
            result, note = self._nothing(lines), "card.blocked"
        else:
            try:
                result = engine.quote(rules, lines, tier, ctx)
            except MemoryError:
                # a basket too big for the heap left now: the sale goes on without discount,
                # and the card task lives on
                gc.collect()
                result, note = self._nothing(lines), "disc.memory"
            if note != "disc.memory":
                tier = result["tier"]  # a tier the rules do not know falls back to the default
            if result["stale"] and not note:
                note = "disc.stale_rules"
            size = _record_bound(lines, result["disc"])
            if size + 16 > MAX_RECORD:  # the journal keeps 16 bytes for seq's digits
                result, note = self._nothing(lines), "disc.too_large"
            elif not self.journal.room_for(size):
                result, note = self._nothing(lines), "disc.journal_full"
        self._quotes += 1
        qid = "Q%d" % self._quotes
        self.quote = {"quote": qid, "card": card, "tier": tier, "gross": result["gross"], "note": note,
                      "discount": result["discount"], "disc": result["disc"], "rules": self.rules.version}
        self.state = QUOTED
        self._show_quote(self.quote)
        if result["discount"]:
            self.signals.append("ok")
        else:
            self.signals.append("error" if note in ("card.blocked", "card.not_registered") else "warn")
        return [{"type": "quote", "quote": qid, "receipt": self.basket["receipt"], "card": masked(card),
                 "tier": tier, "gross": result["gross"], "discount": result["discount"],
                 "disc": result["disc"], "capped": result.get("capped", []), "note": note}]

    def _show_quote(self, q):
        if q["discount"]:
            self.screen.show("discount", amount=q["discount"])
        else:
            self.screen.show("no_discount", reason=q["note"] or "disc.no_rules")

    def _nothing(self, lines):
        return {"gross": engine.gross(lines), "discount": 0, "disc": [], "capped": [], "stale": False,
                "tier": self.rules.rules["default_tier"] if self.rules.rules else 0}
