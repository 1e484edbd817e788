"""A reader's journal in plain Python, for the tests that forge batches: sales, cancelled
quotes, returns and voided sales as firmware/app.py records them (the shared engine prices
and reverses them), chained by hash, and batches of them signed and posted over HTTP to a
backend of many readers (one server for a whole test module).

Records stay dicts until a batch is made of them, so a test can spoil one first; the
chain (`seq`, `prev`) is filled in when a record is made, over the record as it was then.

    with BatchLab(tmp_path, readers=50) as lab:          # backend on loopback, no auditor
        j = lab.journal()                                 # a reader nobody used yet
        a = j.sale(); j.cancelled(); j.void_sale(a)
        status, answer = lab.post(j, j.body(j.pending))   # signed as the reader signs
        j.stored(answer["ack"])                           # what the backend acknowledged
"""
import http.client
import os
import random
import time
from pathlib import Path

from loyalty.backend import db as dbmod, headoffice
from loyalty.protocol import engine
from loyalty.protocol.canonical import encode
from loyalty.protocol.records import GENESIS, body_digest, make_record, record_hash, sign
from loyalty.sim import sampleshop
from loyalty.sim.backendproc import Backend

BATCH = "/api/v1/sync/batch"
CATALOGUE = [("1001", "latticini", 149), ("1002", "latticini", 239), ("8001", "caffe", 429),
             ("2001", "panetteria", 99), ("3001", "frutta", 189), ("4001", "pasta", 119),
             ("5001", "detersivi", 549), ("6001", "bevande", 79)]
STATUS = {"clock": 0, "clock_drift": 0, "capacity": 524288, "directory": 0, "firmware": "0.1.0",
          "free_flash": 1000000, "journal": "ok", "keys": 0, "last_error": "", "oldest_t": 0,
          "pending": 0, "refused": "", "rules": 0, "used": 0}


def totals_of(records):
    """A batch's totals as docs/protocol.md and records.Totals count them: what is not an
    int (a bool is not) counts as 0."""
    def cents(v):
        return v if type(v) is int else 0
    return {"count": len(records), "discount": sum(cents(r.get("discount")) if isinstance(r, dict) else 0
                                                   for r in records),
            "gross": sum(cents(r.get("gross")) if isinstance(r, dict) else 0 for r in records)}


class ReaderJournal:
    """One reader's records, made as its firmware makes them."""

    def __init__(self, reader, key, rules, seed=0, t0=None):
        self.reader = reader
        self.key = key
        self.rules = rules
        self.rng = random.Random(seed)
        self.t = int(time.time()) - 86400 if t0 is None else t0
        self.seq = 0
        self.prev = GENESIS
        self.pending = []  # records made and not yet acknowledged
        self.acked = 0  # the backend's ack
        self.sales = {}  # seq -> {"lines", "disc", "card", "tier", "returned"}: what a till keeps

    # -- records --------------------------------------------------------------------------
    def _add(self, rec):
        self.seq += 1
        rec["seq"], rec["prev"] = self.seq, self.prev
        self.prev = record_hash(encode(rec))
        self.pending.append(rec)
        return rec

    def _next_t(self):
        self.t += self.rng.randint(1, 90)
        return self.t

    def basket(self, n=None):
        n = self.rng.randint(1, 4) if n is None else n
        return [{"sku": s, "cat": c, "qty": self.rng.randint(1, 3), "price": p}
                for s, c, p in self.rng.sample(CATALOGUE, n)]

    def sale(self, lines=None, tier=2, card=None):
        """A committed sale, its discount quoted by the engine under the rules."""
        lines = self.basket() if lines is None else lines
        t = self._next_t()
        card = card or sampleshop.card_number(self.rng.randint(1, 50))
        q = engine.quote(self.rules, lines, tier, {"now": t, "last_sync": t, "card_day_used": 0})
        rec = self._add(make_record("sale", self.reader, 0, "", t, card, q["tier"], lines, q["gross"],
                                    q["discount"], q["disc"], self.rules["version"],
                                    receipt="%s-%d" % (self.reader, self.seq + 1), quote="q%d" % (self.seq + 1)))
        self.sales[rec["seq"]] = {"lines": lines, "disc": q["disc"], "card": card, "tier": q["tier"],
                                  "returned": [0] * len(lines)}
        return rec

    def cancelled(self, lines=None, tier=2, card=None):
        """A quote the till voided: journaled with its basket and no money."""
        lines = self.basket() if lines is None else lines
        return self._add(make_record("void", self.reader, 0, "", self._next_t(),
                                     card or sampleshop.card_number(7), tier, lines, 0, 0, [],
                                     self.rules["version"], receipt="%s-%d" % (self.reader, self.seq + 1),
                                     quote="q%d" % (self.seq + 1)))

    def ret(self, sale, returning):
        """A return of `returning` units per line of `sale` (a record or its seq)."""
        ref = sale["seq"] if isinstance(sale, dict) else sale
        s = self.sales[ref]
        rev = engine.reverse(s["lines"], s["disc"], s["returned"], returning)
        return self._reversal("return", ref, s, rev, list(returning))

    def void_sale(self, sale):
        """A void of a committed sale: all of it that was not returned yet."""
        ref = sale["seq"] if isinstance(sale, dict) else sale
        s = self.sales[ref]
        rev = engine.void(s["lines"], s["disc"], s["returned"])
        rest = [line["qty"] - r for line, r in zip(s["lines"], s["returned"])]
        return self._reversal("void", ref, s, rev, rest)

    def _reversal(self, kind, ref, s, rev, returning):
        rec = self._add(make_record(kind, self.reader, 0, "", self._next_t(), s["card"], s["tier"],
                                    [dict(line) for line in s["lines"]], rev["gross"], rev["discount"],
                                    rev["disc"], self.rules["version"], ref=ref, returned=list(s["returned"]),
                                    returning=returning))
        s["returned"] = [a + b for a, b in zip(s["returned"], returning)]
        return rec

    def left(self, ref):
        """Units of sale `ref` not returned yet, per line."""
        s = self.sales[ref]
        return [line["qty"] - r for line, r in zip(s["lines"], s["returned"])]

    def stored(self, ack):
        """The backend acknowledged up to `ack`: those records leave `pending`."""
        self.acked = ack
        self.pending = [r for r in self.pending if r["seq"] > ack]

    # -- batches and requests ---------------------------------------------------------------
    def body(self, records, status=None, totals=None):
        """The canonical bytes of a batch of `records` (dicts, or bytes taken as they are)."""
        parts = [r if isinstance(r, bytes) else encode(r) for r in records]
        head = encode({"reader": self.reader})[:-1]
        tail = encode({"status": dict(STATUS) if status is None else status,
                       "totals": totals_of(records) if totals is None else totals})[1:]
        return head + b',"records":[' + b",".join(parts) + b"]," + tail

    def headers(self, body, t=None, nonce=None, key=None, path=BATCH):
        t = int(time.time()) if t is None else t
        nonce = os.urandom(8).hex() if nonce is None else nonce
        return {"X-Reader": self.reader, "X-Timestamp": str(t), "X-Nonce": nonce,
                "X-Signature": sign(key or self.key, "POST", path, t, nonce, body_digest(body)),
                "Content-Type": "application/json"}


class BatchLab:
    """A backend on a real WSGI server (waitress, a separate process, no auditor: the
    tests read every table and nothing else may write) with `readers` readers in store S1,
    each for one test to use on its own."""

    def __init__(self, folder, readers=100, config=None, prefix="H"):
        self.folder = Path(folder)
        self.path = self.folder / "loyalty.db"
        self.names = ["%s%03d" % (prefix, i) for i in range(1, readers + 1)]
        db = dbmod.connect(self.path)
        try:
            dbmod.migrate(db)
            self.keys = sampleshop.seed(db, {"S1": self.names}, cards=50)
            self.rules = headoffice.current_rules(db)[1]
        finally:
            db.conn.close()
        instance = self.folder / "instance"
        instance.mkdir(exist_ok=True)
        (instance / "config.py").write_text("".join("%s = %r\n" % kv for kv in (config or {}).items()))
        self.backend = Backend(self.path, instance, log=self.folder / "backend.log", auditor=False)
        self.used = 0
        self.conn = None

    def start(self):
        self.backend.start()
        return self

    def stop(self):
        if self.conn is not None:
            self.conn.close()
        self.backend.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def journal(self, seed=None):
        """The journal of a reader no test used yet."""
        name = self.names[self.used]
        self.used += 1
        return ReaderJournal(name, self.keys[name], self.rules, seed=self.used if seed is None else seed)

    def send(self, body, headers, method="POST", path=BATCH):
        """One request on a kept connection: (HTTP status, headers dict, answer bytes)."""
        for attempt in (0, 1):
            kept = self.conn is not None
            if not kept:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.backend.port, timeout=60)
            try:
                self.conn.request(method, path, body=body, headers=headers)
                r = self.conn.getresponse()
                data = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return r.status, {k.lower(): v for k, v in r.getheaders()}, data
            except (ConnectionError, http.client.HTTPException):
                # a kept connection the server had closed (idle): once more on a new one
                self.conn.close()
                self.conn = None
                if attempt or not kept:
                    raise

    def post(self, journal, body, **sign_args):
        """POST `body` signed by `journal`'s reader; (status, answer dict or None)."""
        import json

        status, _, data = self.send(body, journal.headers(body, **sign_args))
        try:
            return status, json.loads(data)
        except ValueError:
            return status, None
