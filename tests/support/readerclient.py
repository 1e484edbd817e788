"""A reader's sync side in plain Python: chained records, signed batches, posted over HTTP.

For the load benchmark and the fault tests, which need many readers posting real batches
without a MicroPython process each. The records are what the firmware writes: sales whose
discounts come from the shared engine, chained by hash, numbered from 1.

    r = ReaderClient("R1", key, "http://127.0.0.1:8000", rules)
    body = r.batch_body(r.make_sales(200, t0=1_700_000_000))
    status, answer = r.post_batch(body)
"""
import http.client
import json
import os
import random
import urllib.parse

from loyalty.protocol import engine
from loyalty.protocol.canonical import encode
from loyalty.protocol.records import GENESIS, batch_body, body_digest, make_record, record_hash, sign

CATALOGUE = [("1001", "latticini", 149), ("1002", "latticini", 239), ("8001", "caffe", 429),
             ("2001", "panetteria", 99), ("3001", "frutta", 189), ("3002", "frutta", 259),
             ("4001", "pasta", 119), ("5001", "detersivi", 549), ("6001", "bevande", 79)]

STATUS = {"pending": 0, "oldest_t": 0, "journal": "ok", "used": 0, "capacity": 524288,
          "free_flash": 1000000, "firmware": "0.1.0", "rules": 0, "directory": 0, "clock": 0,
          "clock_drift": 0, "last_error": "", "refused": ""}


class ReaderClient:
    def __init__(self, reader, key, url, rules, seed=None, cards=("6001000000000042",)):
        self.reader = reader
        self.key = key
        self.url = urllib.parse.urlsplit(url)
        self.rules = rules
        self.rng = random.Random(seed)
        self.cards = list(cards)
        self.seq = 0
        self.prev = GENESIS

    def make_sales(self, n, t0, lines=(2, 8)):
        """n chained sale records (canonical bytes), one a minute from t0, as the engine prices them."""
        out = []
        for i in range(n):
            basket = [{"sku": s, "cat": c, "qty": self.rng.randint(1, 3), "price": p}
                      for s, c, p in self.rng.sample(CATALOGUE, self.rng.randint(*lines))]
            card = self.rng.choice(self.cards)
            t = t0 + 60 * (self.seq + 1)
            q = engine.quote(self.rules, basket, 0, {"now": t, "last_sync": t, "card_day_used": 0})
            self.seq += 1
            rec = make_record("sale", self.reader, self.seq, self.prev, t, card, q["tier"], basket,
                              q["gross"], q["discount"], q["disc"], self.rules["version"],
                              receipt="%s-%06d" % (self.reader, self.seq), quote="q%d" % self.seq)
            data = encode(rec)
            self.prev = record_hash(data)
            out.append(data)
        return out

    def batch_body(self, records, pending=None):
        status = dict(STATUS, pending=len(records) if pending is None else pending,
                      rules=self.rules["version"])
        return batch_body(self.reader, records, status)

    def headers(self, method, path, body, t):
        nonce = os.urandom(8).hex()
        return {"X-Reader": self.reader, "X-Timestamp": str(t), "X-Nonce": nonce,
                "X-Signature": sign(self.key, method, path, t, nonce, body_digest(body)),
                "Content-Type": "application/json"}

    def post_batch(self, body, t=None, conn=None):
        """POST one batch, freshly signed; returns (HTTP status, answer dict)."""
        import time

        path = self.url.path.rstrip("/") + "/api/v1/sync/batch"
        headers = self.headers("POST", path, body, int(time.time()) if t is None else t)
        own = conn is None
        if own:
            conn = http.client.HTTPConnection(self.url.hostname, self.url.port, timeout=60)
        try:
            conn.request("POST", path, body=body, headers=headers)
            r = conn.getresponse()
            return r.status, json.loads(r.read())
        finally:
            if own:
                conn.close()
