"""A seeded fuzz of sync batches over real HTTP: valid batches as readers build them, mutated,
re-signed, posted to the real backend (one waitress server on loopback for the whole run).

Each round takes a reader's next records as its firmware makes them (sales priced by the
engine, cancelled quotes, returns and voided sales reversed by it: loyalty.testing.
readerjournal), mutates the decoded records (a value of another type, a number at or past
a boundary, a key dropped or added, a hostile text, a record duplicated, dropped or
swapped, a kind changed, a stored record sent again, ...), encodes them canonically again,
chains them and recomputes the totals (mostly, so the batch gets past the cheap checks),
signs the body and posts it. A few rounds spoil the bytes instead (a float, white space, a
lone surrogate's escape).

The oracle is `judge`, written here from docs/protocol.md sections 3-4 and the schema of
issue 14, without the backend's code (protocol.recordcheck and batchcheck are not called):
every batch it finds invalid must be refused with a 4xx (never a 5xx) and leave receipts,
day totals, acknowledged quarantine and the reader's ack as they were; every batch it finds
valid must be accepted, acknowledged to its last record, with its new records stored.
A round that would send again, byte for byte, a new record refused before is skipped: the
backend rightly takes such a record into quarantine (tests/test_hostile_batches.py).
Everything goes over HTTP; no Flask test client.

    .venv/bin/pytest -q -s tests/test_batch_fuzz.py      # prints the counts
"""
import copy
import hashlib
import json
import random
import sqlite3
import time
import unicodedata

from loyalty.protocol.canonical import encode
from loyalty.protocol.records import record_hash
from loyalty.testing.readerjournal import STATUS, BatchLab, totals_of

SEED = 14
ROUNDS = 2200
READERS = 40

# -- the oracle: docs/protocol.md sections 3-4 and issue 14's schema, written again --------

MONEY = 2 ** 40
BIDI_CONTROLS = {chr(c) for c in [0x061C, 0x200E, 0x200F] + list(range(0x202A, 0x202F)) + list(range(0x2066, 0x206A))}
COMMON = {"v", "kind", "reader", "seq", "prev", "t", "receipt", "quote", "card", "tier", "lines", "gross",
          "discount", "disc", "rules"}
REVERSAL = {"ref", "returned", "returning"}
STATUS_INTS = {"pending": (0, 2 ** 40), "oldest_t": (0, 2 ** 40), "used": (0, 2 ** 40), "capacity": (0, 2 ** 40),
               "free_flash": (-1, 2 ** 40), "rules": (0, 2 ** 53), "directory": (0, 2 ** 53), "keys": (0, 2 ** 53),
               "clock": (0, 2 ** 40), "clock_drift": (-(2 ** 40), 2 ** 40)}
STATUS_TEXTS = {"firmware": 32, "last_error": 64, "refused": 64}


class Invalid(Exception):
    pass


def need(ok, why):
    if not ok:
        raise Invalid(why)


def is_int(v, lo, hi):
    return type(v) is int and lo <= v <= hi  # a bool is not an integer


def is_text(v, lo, hi):
    """Text of lo..hi characters that may be stored: no control characters (Unicode Cc), no
    surrogates (Cs), no bidirectional controls (Unicode's Bidi_Control property)."""
    return isinstance(v, str) and lo <= len(v) <= hi and not any(
        unicodedata.category(c) in ("Cc", "Cs") or c in BIDI_CONTROLS for c in v)


def check_lines(lines):
    need(isinstance(lines, list) and 1 <= len(lines) <= 200, "lines: 1 to 200")
    for line in lines:
        need(isinstance(line, dict) and set(line) == {"sku", "cat", "qty", "price"}, "line keys")
        need(is_text(line["sku"], 1, 32) and is_text(line["cat"], 0, 32), "line texts")
        need(is_int(line["qty"], 1, 9999) and is_int(line["price"], 0, 10 ** 7), "line numbers")


def check_content(rec, seq, sales):
    """A new record's content. `sales`: {seq: number of lines} of this reader's sales
    (stored, or earlier in the batch)."""
    kind = rec.get("kind")
    need(kind in ("sale", "void", "return"), "kind")
    reversal = kind == "return" or (kind == "void" and "ref" in rec)
    need(set(rec) == (COMMON | REVERSAL if reversal else COMMON), "keys")
    need(rec["v"] == 1 and type(rec["v"]) is int, "v")
    need(is_int(rec["t"], 0, 2 ** 40) and is_int(rec["tier"], 0, 255) and is_int(rec["rules"], 0, 2 ** 53), "ints")
    card = rec["card"]
    need(isinstance(card, str) and 1 <= len(card) <= 19 and all("0" <= c <= "9" for c in card), "card")
    check_lines(rec["lines"])
    lines = rec["lines"]
    n = len(lines)
    need(is_int(rec["gross"], -MONEY, MONEY) and is_int(rec["discount"], -MONEY, MONEY), "money")
    need(is_text(rec["receipt"], 0 if reversal else 1, 32) and is_text(rec["quote"], 0 if reversal else 1, 32), "ids")
    if reversal:
        ref = rec["ref"]
        need(is_int(ref, 1, 2 ** 53) and ref < seq, "ref")
        need(sales.get(ref) == n, "ref names a sale of as many lines")
        before, now = rec["returned"], rec["returning"]
        for q in (before, now):
            need(isinstance(q, list) and len(q) == n and all(is_int(x, 0, 9999) for x in q), "quantities")
        for i in range(n):
            need(before[i] + now[i] <= lines[i]["qty"], "returns more than sold")
            if kind == "void":
                need(before[i] + now[i] == lines[i]["qty"], "a void returns all that is left")
        need(sum(now) >= 1, "returns nothing")
        room = [now[i] * lines[i]["price"] for i in range(n)]
        need(rec["gross"] == -sum(room), "return gross")
        sign = -1
    else:
        room = [0] * n if kind == "void" else [line["qty"] * line["price"] for line in lines]
        need(rec["gross"] == sum(room), "gross")
        sign = 1
    disc = rec["disc"]
    need(isinstance(disc, list) and len(disc) <= 4 * n, "disc list")
    given = [0] * n
    for d in disc:
        need(isinstance(d, dict) and set(d) == {"cents", "line", "rule"}, "disc keys")
        need(is_int(d["line"], 0, n - 1) and is_text(d["rule"], 1, 42), "disc line, rule")  # "threshold:" + 32
        cents = d["cents"]
        need(type(cents) is int and cents * sign >= 1, "disc sign")
        given[d["line"]] += cents * sign
        need(given[d["line"]] <= room[d["line"]], "disc beyond its line")
    need(rec["discount"] == sum(d["cents"] for d in disc), "discount")


def check_status(status):
    need(isinstance(status, dict), "status")
    for k, v in status.items():
        if k in STATUS_INTS:
            need(is_int(v, *STATUS_INTS[k]), "status " + k)
        elif k in STATUS_TEXTS:
            need(is_text(v, 0, STATUS_TEXTS[k]), "status " + k)
        else:
            need(k == "journal" and v in ("ok", "nearly_full", "full"), "status " + k)


def cents(v):
    return v if type(v) is int else 0


def judge(batch, reader, stored, sales):
    """None if `batch` (the decoded body) is a valid batch of `reader`, else why not.
    stored: {seq: hash} of the reader's stored records; sales: {seq: lines} of its stored sales."""
    try:
        need(isinstance(batch, dict) and set(batch) <= {"reader", "records", "status", "totals"}, "batch keys")
        need(batch.get("reader") == reader, "batch reader")
        records = batch.get("records")
        need(isinstance(records, list) and len(records) <= 200, "records")
        check_status(batch.get("status"))
        top = max(stored) if stored else 0
        sales = dict(sales)
        last = None  # (seq, hash) of the record before
        for rec in records:
            need(isinstance(rec, dict) and rec.get("reader") == reader and is_text(rec.get("reader"), 1, 32),
                 "record reader")
            seq, prev = rec.get("seq"), rec.get("prev")
            need(is_int(seq, 1, 2 ** 53), "seq")
            need(isinstance(prev, str) and len(prev) == 64 and all(c in "0123456789abcdef" for c in prev), "prev")
            h = hashlib.sha256(encode(rec)).hexdigest()
            if last is None:
                # the first record: a stored one (sent again) or the one after the last stored
                need(seq <= top + 1, "gap after the stored records")
                want_prev = stored.get(seq - 1, "0" * 64 if seq == 1 else None)
            else:
                need(seq == last[0] + 1, "gap in the batch")
                want_prev = last[1]
            need(prev == want_prev, "chain")
            if seq <= top:
                need(stored[seq] == h, "a stored record altered")
            else:
                check_content(rec, seq, sales)
                if rec["kind"] == "sale":
                    sales[seq] = len(rec["lines"])
            last = (seq, h)
        totals = batch.get("totals")
        want = {"count": len(records), "discount": sum(cents(r.get("discount")) for r in records),
                "gross": sum(cents(r.get("gross")) for r in records)}
        need(isinstance(totals, dict) and set(totals) == set(want) and all(type(v) is int for v in totals.values())
             and totals == want, "totals")
    except Invalid as e:
        return str(e)
    return None


# -- the readers and the mutations ---------------------------------------------------------

class Model:
    """A reader as the fuzz knows it: its journal (what it makes next) and what is stored."""

    def __init__(self, journal):
        self.j = journal
        self.stored = {}  # seq -> hash
        self.sales = {}  # seq -> number of lines, of the stored sales
        self.sent_refused = set()  # (seq, hash) of records in refused batches: never sent twice

    def save(self):
        j = self.j
        return j.seq, j.prev, copy.deepcopy(j.sales)

    def restore(self, saved):
        self.j.seq, self.j.prev, self.j.sales = saved[0], saved[1], saved[2]

    def accepted(self, records):
        j = self.j
        for rec in records:
            seq = rec["seq"]
            if seq in self.stored:
                continue
            self.stored[seq] = record_hash(encode(rec))
            if rec["kind"] == "sale":
                self.sales[seq] = len(rec["lines"])
                j.sales[seq] = {"lines": rec["lines"], "disc": rec["disc"], "card": rec["card"], "tier": rec["tier"],
                                "returned": [0] * len(rec["lines"])}
            elif "ref" in rec:
                s = j.sales[rec["ref"]]
                s["returned"] = [min(line["qty"], a + b) for line, a, b in zip(s["lines"], s["returned"],
                                                                                rec["returning"])]
        top = max(self.stored) if self.stored else 0
        j.seq, j.prev, j.acked = top, self.stored.get(top, "0" * 64), top
        j.sales = {s: v for s, v in j.sales.items() if s in self.sales}


def base_records(rng, m):
    """The next records of a reader, as its firmware would make them."""
    j = m.j
    out = []
    for _ in range(rng.choice([0, 1, 1, 2, 2, 3, 3, 4, 5, 8])):
        left = {s: j.left(s) for s in j.sales}
        open_sales = [s for s, l in left.items() if sum(l)]
        roll = rng.random()
        if open_sales and roll < 0.2:
            s = rng.choice(open_sales)
            returning = [rng.randint(0, x) for x in left[s]]
            if not sum(returning):
                returning[[i for i, x in enumerate(left[s]) if x][0]] = 1
            out.append(j.ret(s, returning))
        elif open_sales and roll < 0.3:
            out.append(j.void_sale(rng.choice(open_sales)))
        elif roll < 0.45:
            out.append(j.cancelled())
        else:
            out.append(j.sale(tier=rng.choice([0, 1, 2])))
    return out


HOSTILE_TEXTS = ["", "x" * 32, "x" * 33, "y" * 42, "y" * 43, "caff\u00e8", "\u2615", "a\u200bb", "a\u2028b",
                 "\ufeff", "a\x00b", "\x1b[2J", "a\x7f", "a\x85", "a\x9f", "\u202egnp", "a\u200eb", "\u2066x\u2069",
                 "\u061c", "tab\t", "nl\n", " ", "0", "-1", "null", "\u00a0", "\U0001F600" * 8, "\U0001F600" * 33]
BOUNDARIES = [-(2 ** 63), -(2 ** 40) - 1, -(2 ** 40), -10000, -1, 0, 1, 2, 255, 256, 9999, 10000, 10 ** 7,
              10 ** 7 + 1, 2 ** 31, 2 ** 40, 2 ** 40 + 1, 2 ** 53, 2 ** 53 + 1, 2 ** 63, 10 ** 30]
OTHER_TYPES = [None, True, False, "1", "", [], {}, [1], {"a": 1}, "1.5", 0]


def paths(obj, prefix=()):
    """Every (container, key) inside a record, for a mutation to pick from."""
    out = []
    if isinstance(obj, dict):
        for k in obj:
            out.append((obj, k))
            out += paths(obj[k], prefix + (k,))
    elif isinstance(obj, list):
        for i in range(len(obj)):
            out.append((obj, i))
            out += paths(obj[i], prefix + (i,))
    return out


def resum(rec):
    """Make a record's money agree with its lines and discount lines again, where it can."""
    try:
        lines, disc = rec["lines"], rec["disc"]
        if rec.get("kind") == "sale":
            rec["gross"] = sum(line["qty"] * line["price"] for line in lines)
        elif "ref" in rec:
            rec["gross"] = -sum(q * line["price"] for q, line in zip(rec["returning"], lines))
        rec["discount"] = sum(d["cents"] for d in disc)
    except (KeyError, TypeError, IndexError):
        pass


def as_list(v):
    return v if isinstance(v, list) else []


def mutate(rng, records, stored_bytes):
    """Spoil `records` in place (one or two mutations); returns (records, may_rechain, names,
    a change of the status or the batch or None)."""
    names = []
    may_rechain = True
    for _ in range(rng.choice([1, 1, 1, 2])):
        choice = rng.randrange(17)
        if not records and choice < 14:
            choice = 14
        rec = rng.choice(records) if records else None
        try:
            found = _mutate(rng, choice, rec, records, stored_bytes, names)
        except (TypeError, KeyError, IndexError, ValueError, AttributeError):
            continue  # a mutation that does not fit what an earlier one left: the batch as it is
        if found == "no rechain":
            may_rechain = False
        elif found is not None:
            return records, may_rechain, names, found
    return records, may_rechain, names, None


def _mutate(rng, choice, rec, records, stored_bytes, names):
    """One mutation; returns "no rechain", a status or batch change, or None."""
    if choice == 0:  # a value of another type
        box, key = rng.choice(paths(rec))
        box[key] = copy.deepcopy(rng.choice(OTHER_TYPES))
        names.append("type")
    elif choice == 1:  # a number at or past a boundary
        nums = [(b, k) for b, k in paths(rec) if type(b[k]) is int]
        if nums:
            box, key = rng.choice(nums)
            box[key] = rng.choice(BOUNDARIES)
        names.append("boundary")
    elif choice == 2:  # a key dropped
        keyed = [(b, k) for b, k in paths(rec) if isinstance(b, dict)]
        box, key = rng.choice(keyed)
        del box[key]
        names.append("drop key")
    elif choice == 3:  # a key added
        target = rng.choice([rec] + [x for x in as_list(rec.get("lines")) if isinstance(x, dict)]
                            + [x for x in as_list(rec.get("disc")) if isinstance(x, dict)])
        target[rng.choice(["x", "note", "ref", "returned", "returning", "discount", "sku", "v"])] = \
            rng.choice([0, 1, "x", [], [0]])
        names.append("add key")
    elif choice == 4:  # a hostile text
        texts = [(b, k) for b, k in paths(rec) if isinstance(b[k], str) and k != "prev"]
        box, key = rng.choice(texts)
        box[key] = rng.choice(HOSTILE_TEXTS)
        names.append("text")
    elif choice == 5:  # a record duplicated
        i = rng.randrange(len(records))
        records.insert(i + 1, copy.deepcopy(records[i]))
        names.append("duplicate")
    elif choice == 6:  # a record dropped
        del records[rng.randrange(len(records))]
        names.append("drop record")
    elif choice == 7 and len(records) > 1:  # two records swapped
        i, k = rng.sample(range(len(records)), 2)
        records[i], records[k] = records[k], records[i]
        names.append("swap")
    elif choice == 8:  # the chain or the numbering spoiled
        if rng.random() < 0.5:
            rec["seq"] = rec["seq"] + rng.choice([-1, 1, 2, 100])
        else:
            rec["prev"] = rng.choice(["0" * 64, "f" * 64, rec["prev"].upper(), rec["prev"][:-1] + "0"])
        names.append("chain")
        return "no rechain"
    elif choice == 9:  # another kind
        rec["kind"] = rng.choice(["sale", "void", "return", "refund"])
        if rng.random() < 0.5:
            resum(rec)
        names.append("kind")
    elif choice == 10:  # a line's quantity or price changed, the money summed again (mostly)
        lines = [x for x in as_list(rec.get("lines")) if isinstance(x, dict)]
        if lines:
            line = rng.choice(lines)
            key = rng.choice(["qty", "price"])
            line[key] = rng.choice([1, 2, 3, 9999, 10000, 10 ** 7, 0, -1])
            if rng.random() < 0.7:
                resum(rec)
        names.append("line")
    elif choice == 11:  # a discount line dropped, added or changed by a cent, the sum again (mostly)
        disc = rec.get("disc")
        if isinstance(disc, list):
            r = rng.random()
            if disc and r < 0.4:
                del disc[rng.randrange(len(disc))]
            elif disc and r < 0.7 and isinstance(disc[0], dict):
                d = rng.choice([x for x in disc if isinstance(x, dict)])
                if type(d.get("cents")) is int:
                    d["cents"] += rng.choice([-1, 1])
            else:
                sign = -1 if "ref" in rec else 1
                disc.append({"cents": sign * rng.choice([1, 5, 10 ** 6]), "line": rng.choice([0, 1, 5]),
                             "rule": rng.choice(["promo:X", "tier:gold", ""])})
            if rng.random() < 0.8:
                resum(rec)
        names.append("disc")
    elif choice == 12:  # a line added or dropped, the money summed again (mostly)
        lines = rec.get("lines")
        if isinstance(lines, list):
            if lines and rng.random() < 0.5:
                lines.pop()
            else:
                lines.append({"sku": "9%03d" % rng.randrange(1000), "cat": "varie", "qty": 1, "price": 100})
            if rng.random() < 0.7:
                resum(rec)
        names.append("lines")
    elif choice == 13:  # a return's quantities or ref changed
        if "ref" in rec:
            key = rng.choice(["ref", "returned", "returning"])
            if key == "ref":
                rec["ref"] = rng.choice([1, rec["ref"] - 1, rec["ref"] + 1, rec["seq"], rec["seq"] - 1])
            elif isinstance(rec[key], list) and rec[key]:
                i = rng.randrange(len(rec[key]))
                rec[key][i] = rng.choice([0, 1, 2, 3, -1])
            if rng.random() < 0.5:
                resum(rec)
        names.append("return")
    elif choice == 14:  # a stored record sent again first, as stored or altered
        if stored_bytes:
            seq = rng.choice(sorted(stored_bytes)[-3:])
            old = json.loads(stored_bytes[seq])
            if rng.random() < 0.3:
                old["t"] = old["t"] + 1
            records[:0] = [old]  # not the last stored one: a gap after it
        names.append("stored again")
    elif choice == 15:  # the status spoiled
        names.append("status")
        return rng.choice([
            {"pending": -1}, {"pending": "3"}, {"pending": True}, {"journal": "half"}, {"battery": 1},
            {"firmware": "0.1\x1b"}, {"firmware": "f" * 33}, {"firmware": "f" * 32}, {"free_flash": -1},
            {"free_flash": -2}, {"clock_drift": -(2 ** 40)}, {"last_error": "e" * 64}, {"journal": "full"},
            {"oldest_t": 2 ** 40 + 1}, {"refused": "\u202e"}])
    else:  # the batch's reader or an unknown key
        names.append("batch")
        return rng.choice([{"reader": "H001"}, {"extra": 1}, {"reader": ""}])
    return None


def rechain(records):
    """Chain the records again: each `prev` the hash of the one before (the first keeps its own)."""
    prev = None
    for rec in records:
        if not isinstance(rec, dict):
            prev = None
            continue
        if prev is not None:
            rec["prev"] = prev
        prev = record_hash(encode(rec))
    return records


BYTE_SPOILERS = [  # (what, old, new): the body is no longer canonical: always refused
    ("float", b'"rules":', b'"rules":1.0,"x":'), ("space", b'"records":[', b'"records": ['),
    ("lone surrogate", b'"receipt":"', b'"receipt":"\\ud800'), ("escaped slash", b'"quote":"', b'"quote":"\\/'),
    ("duplicate key", b'"card":', b'"card":"1","card":'), ("exponent", b'"tier":', b'"tier":1e0,"x":'),
]


def test_mutated_batches_are_judged_as_the_schema_says(tmp_path):
    rng = random.Random(SEED)
    counts = {"sent": 0, "mutated": 0, "mutated invalid refused": 0, "mutated still valid accepted": 0,
              "byte-spoiled refused": 0, "unmutated accepted": 0, "unmutated invalid refused": 0}
    kinds = {}
    wrong = []
    start = time.time()
    with BatchLab(tmp_path, readers=READERS) as lab:
        models = [Model(lab.journal(seed=SEED * 1000 + i)) for i in range(READERS)]
        for i, m in enumerate(models):
            m.j.t = 1700000000 + i * 10 ** 6  # the records' times too are the seed's
        stored_bytes = {m.j.reader: {} for m in models}
        db = sqlite3.connect("file:%s?mode=ro" % lab.path, uri=True)

        def held(reader):
            r = db.execute("SELECT count(*), total(gross), total(discount) FROM receipts").fetchone()
            d = db.execute("SELECT total(receipts), total(gross), total(discount) FROM day_totals").fetchone()
            q = db.execute("SELECT count(*) FROM quarantine WHERE acked_t IS NOT NULL").fetchone()
            a = db.execute("SELECT acked_seq FROM readers WHERE id=?", [reader]).fetchone()
            return r + d + q + a

        for n in range(ROUNDS):
            m = rng.choice(models)
            j = m.j
            saved = m.save()
            j.pending = []
            records = base_records(rng, m)
            if n % 500 == 250:  # a batch of 201 records, one over the limit
                records += [j.sale() for _ in range(201 - len(records))]
            status = dict(STATUS, pending=len(records))
            mutated = rng.random() < 0.8
            spoil_bytes = None
            extra = None
            names = ["none"]
            if mutated:
                if rng.random() < 0.04 and records:
                    spoil_bytes = rng.choice(BYTE_SPOILERS)
                    names = ["bytes: " + spoil_bytes[0]]
                else:
                    records, may_rechain, names, extra = mutate(rng, records, stored_bytes[j.reader])
                    if may_rechain and rng.random() < 0.9:
                        rechain(records)
            batch = {"reader": j.reader, "records": records, "status": status}
            if extra and "reader" in extra:
                batch["reader"] = extra["reader"]
            elif extra and "extra" in extra:
                batch["extra"] = extra["extra"]
            elif extra:
                status.update(extra)
            batch["totals"] = totals_of(records) if not mutated or rng.random() < 0.9 else \
                dict(totals_of(records), gross=totals_of(records)["gross"] + rng.choice([0, 1]))
            body = encode(batch)
            verdict = "a byte spoiled" if spoil_bytes else judge(batch, j.reader, m.stored, m.sales)
            if spoil_bytes:
                if spoil_bytes[1] not in body:
                    m.restore(saved)
                    continue
                body = body.replace(spoil_bytes[1], spoil_bytes[2], 1)
            fresh = [r for r in records if isinstance(r, dict) and type(r.get("seq")) is int
                     and r["seq"] > (max(m.stored) if m.stored else 0)]
            if verdict is not None and not spoil_bytes and any(
                    (r["seq"], record_hash(encode(r))) in m.sent_refused for r in fresh):
                m.restore(saved)  # the same bytes again would be taken into quarantine: not this test's matter
                continue
            before = held(j.reader)
            status_code, answer = lab.post(j, body)
            after = held(j.reader)
            counts["sent"] += 1
            counts["mutated"] += mutated
            for name in names:
                kinds[name] = kinds.get(name, 0) + 1
            what = "round %d, %s, mutations %s, oracle: %s -> %s %s" % (
                n, j.reader, names, verdict or "valid", status_code, answer and answer.get("refused"))
            if verdict is None:
                ok = status_code == 200 and answer is not None and answer["refused"] is None and \
                    answer["ack"] == max(max(m.stored, default=0), max((r["seq"] for r in records), default=0))
                ok = ok and after[0] == before[0] + len(fresh)
                if ok:
                    counts["mutated still valid accepted" if mutated else "unmutated accepted"] += 1
                    m.accepted(records)
                    for r in records:
                        stored_bytes[j.reader].setdefault(r["seq"], encode(r))
                else:
                    wrong.append(what)
                    m.restore(saved)
            else:
                ok = 400 <= status_code < 500 and answer is not None and answer["refused"] is not None \
                    and after == before
                if ok:
                    counts["byte-spoiled refused" if spoil_bytes else "mutated invalid refused" if mutated
                           else "unmutated invalid refused"] += 1  # the latter: 201 records
                    m.sent_refused.update((r["seq"], record_hash(encode(r))) for r in fresh)
                else:
                    wrong.append(what + " (held %r -> %r)" % (before, after))
                m.restore(saved)
        db.close()
    took = time.time() - start
    report = "%s in %.1f s; mutations %s" % (counts, took, dict(sorted(kinds.items())))
    print("\nbatch fuzz: " + report)
    assert not wrong, "%d batches judged otherwise than the schema:\n  %s\n%s" % (
        len(wrong), "\n  ".join(wrong[:30]), report)
    assert counts["sent"] >= 2000, report
    assert counts["mutated invalid refused"] >= 500 and counts["mutated still valid accepted"] >= 100, report
