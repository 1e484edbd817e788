"""Fixtures for the backend's tests: an app on a temporary database, its clients, readers.

    def test_x(app, client, runner, db, make_reader, signed_reader, shop_rules): ...

  app            create_app with a temporary DATABASE and instance folder, schema migrated
  client/runner  app.test_client() / app.test_cli_runner()
  db             a sqlite_utils.Database on the app's file (closed after the test)
  make_reader    make_reader("R1", store="S1") -> key bytes (the store is added if new)
  shop_rules     publishes tests/support/shop.py's tiers, promotions and limits; -> rules version
  signed_reader  signed_reader("R1", store="S1", tz=...) -> a Reader that signs requests as the firmware does
                 and builds chained journal records (see class Reader)
"""
import os
import time

import pytest

from loyalty.testing import shop
from loyalty.backend import headoffice
from loyalty.backend.app import create_app
from loyalty.backend.db import connect, migrate
from loyalty.protocol import engine
from loyalty.protocol.canonical import decode, encode
from loyalty.protocol.records import GENESIS, batch_body, body_digest, make_record, record_hash, sign, sign_answer

STATUS = {"pending": 0, "oldest_t": 0, "journal": "ok", "used": 100, "capacity": 100000,
          "free_flash": 500000, "firmware": "0.1.0", "rules": 0, "directory": 0,
          "clock": 0, "clock_drift": 0, "last_error": "", "refused": ""}


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("LOYALTY_INSTANCE", str(tmp_path / "instance"))
    path = tmp_path / "loyalty.db"
    app = create_app({"DATABASE": str(path), "SECRET_KEY": "test", "TESTING": True})
    db = connect(path)
    try:
        migrate(db)
    finally:
        db.conn.close()
    return app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def db(app):
    d = connect(app.config["DATABASE"])
    yield d
    d.conn.close()


@pytest.fixture
def make_reader(db):
    def make(reader="R1", store="S1", tz="Europe/Rome"):
        if not db.execute("SELECT 1 FROM stores WHERE id=?", [store]).fetchone():
            headoffice.add_store(db, store, "Store " + store, tz)
        return headoffice.add_reader(db, reader, store, "Till " + reader)
    return make


def publish_shop_rules(db, receipt_max=5000, card_day_max=20000, stale_hours=48):
    """tests/support/shop.py's rules through headoffice; returns the version published last."""
    r = shop.rules(receipt_max=receipt_max, card_day_max=card_day_max, stale_hours=stale_hours)
    for t in r["tiers"]:
        headoffice.add_tier(db, t["id"], t["code"], t["bp"])
    for p in r["promotions"]:
        extra = {k: v for k, v in p.items() if k not in ("id", "kind")}
        headoffice.add_promotion(db, p["id"], p["kind"], **extra)
    return headoffice.set_limits(db, receipt_max_cents=receipt_max, offline_receipt_max_cents=receipt_max,
                                 card_day_max_cents=card_day_max, stale_hours=stale_hours, default_tier=0)


@pytest.fixture
def shop_rules(db):
    return publish_shop_rules(db)


class Reader:
    """A reader as the backend sees it: signed requests (as firmware/syncclient.py signs
    them) and a journal of chained records (seq, prev) built like firmware/app.py builds them."""

    def __init__(self, client, reader_id, key):
        self.client = client
        self.id = reader_id
        self.key = key
        self.seq = 0
        self.prev = GENESIS
        self.journal = []  # the canonical bytes of every record made, in seq order

    # -- requests -----------------------------------------------------------------------
    def headers(self, method, path, body=b"", t=None, nonce=None, key=None):
        t = int(time.time()) if t is None else t
        nonce = os.urandom(8).hex() if nonce is None else nonce
        return {"X-Reader": self.id, "X-Timestamp": str(t), "X-Nonce": nonce,
                "X-Signature": sign(key or self.key, method, path, t, nonce, body_digest(body)),
                "Content-Type": "application/json"}

    def post(self, body, headers=None, **sign_args):
        path = "/api/v1/sync/batch"
        h = headers or self.headers("POST", path, body, **sign_args)
        return self.client.post(path, data=body, headers=h)

    def get(self, path, **sign_args):
        return self.client.get(path, headers=self.headers("GET", path, **sign_args))

    def signed_by_us(self, response, request_nonce):
        """Is the answer signed with this reader's key over `request_nonce`?"""
        want = sign_answer(self.key, request_nonce, response.status_code, body_digest(response.data))
        return response.headers.get("X-Signature") == want

    def send(self, records, status=None):
        """POST a batch of `records` (canonical bytes); returns (response, request nonce)."""
        body = batch_body(self.id, records, dict(STATUS, **(status or {})))
        h = self.headers("POST", "/api/v1/sync/batch", body)
        return self.post(body, headers=h), h["X-Nonce"]

    # -- records ------------------------------------------------------------------------
    def record(self, kind, t=None, card=shop.GOLD, tier=2, lines=(), gross=0, discount=0, disc=(),
               rules=0, receipt="", quote="", **extra):
        """The next record of this reader's journal (canonical bytes), chained."""
        self.seq += 1
        rec = make_record(kind, self.id, self.seq, self.prev, int(time.time()) if t is None else t,
                          card, tier, list(lines), gross, discount, list(disc), rules,
                          receipt or "T-%d" % self.seq, quote or ("Q%d" % self.seq if kind != "return" else ""),
                          **extra)
        data = encode(rec)
        self.prev = record_hash(data)
        self.journal.append(data)
        return data

    def sale(self, ruleset, lines=None, card=shop.GOLD, tier=2, t=None, used=0, stale=False, **override):
        """A sale as the firmware records it: engine.quote's result under `ruleset`
        (`override`: record fields to forge)."""
        t = int(time.time()) if t is None else t
        lines = shop.basket()["lines"] if lines is None else lines
        q = engine.quote(ruleset, lines, tier, {"now": t, "last_sync": None if stale else t,
                                                "card_day_used": used})
        fields = {"card": card, "tier": q["tier"], "lines": lines, "gross": q["gross"],
                  "discount": q["discount"], "disc": q["disc"], "rules": ruleset["version"], "t": t}
        fields.update(override)
        return self.record("sale", **fields)

    def overpaid_sale(self, ruleset, **kw):
        """A sale that passes the schema but whose discount is a cent more than the engine
        gives: what the audit is there to find."""
        q = decode(self.sale(ruleset, **kw))
        self.seq -= 1
        self.journal.pop()
        self.prev = q["prev"]
        disc = [dict(d) for d in q["disc"]]
        disc[-1]["cents"] += 1
        return self.sale(ruleset, discount=q["discount"] + 1, disc=disc, **kw)


@pytest.fixture
def signed_reader(client, make_reader):
    def make(reader_id="R1", store="S1", tz="Europe/Rome"):
        return Reader(client, reader_id, make_reader(reader_id, store, tz))
    return make
