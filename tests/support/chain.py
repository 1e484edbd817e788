"""A running chain for end-to-end tests: the backend on a real WSGI server (a separate
process, waitress), its SQLite database seeded as head office would, and readers running
the real firmware on the MicroPython unix port, each behind a link the test can cut.

    with Chain(tmp_path, readers=["R1"], config={"LAGGING_AFTER": 3}) as c:
        r = c.reader("R1")                 # SimReader, started, synced once
        c.shop(r, "T-1")                   # one shopper: basket, card, commit
        c.db_rows("SELECT ...")            # read the backend's database
        c.wait_audited("R1")               # the server's auditor has audited every stored receipt
        c.dashboard().json("/stores.json")
"""
from pathlib import Path

from loyalty.backend import auth, db as dbmod
from loyalty.sim.backendproc import Backend, Dashboard
from loyalty.sim.netcut import Link
from loyalty.sim.simboard import SimReader, wait_for
from loyalty.sim import sampleshop

MANAGER = ("manager", "password-for-tests")
LINES = [{"sku": "1001", "cat": "latticini", "qty": 2, "price": 149},
         {"sku": "8001", "cat": "caffe", "qty": 1, "price": 429}]


def basket(r, receipt, lines=None):
    """The till at reader `r` opens a receipt (LINES by default) and the reader is ready for a card."""
    r.till.send({"type": "basket", "receipt": receipt, "lines": lines or LINES})
    r.till.expect("ready")


def void(r, q):
    """The till voids the quote `q`."""
    r.till.send({"type": "void", "quote": q["quote"]})
    r.till.expect("voided")


def idle(r, timeout=60):
    """Leaves the till at reader `r` as the next test expects it: no card on the reader, no
    quote waiting (a waiting quote is voided), no answer left unread. For the teardown of
    fixtures that share a reader between tests: a test that failed half-way must not make
    the next one fail. AssertionError (an error of that fixture, not of the next test) if
    the reader does not answer within `timeout` seconds. Returns the answers dropped.

    A basket left open may stay: no till message closes one without a card, and the next
    basket replaces it with a plain "ready"."""
    dropped = []
    try:
        if r.nfc is not None:
            r.nfc.clear_faults()
            r.tap_out(timeout)  # a read under way has ended: its answer comes before the status
        if r.slot is not None:
            dropped += r.card_out(timeout)
        # twice: an identity the card line (CardSim) had brought in when the first request
        # came is answered before the second
        for _ in range(2):
            early, s = r.answers_then_status(timeout)
            dropped += early
        if s["state"] == "quoted":
            assert r.till.quote is not None, "a quote waits at %s, but the till never got it" % r.reader
            void(r, r.till.quote)
            s = r.status()
    except (OSError, EOFError, AssertionError) as e:
        raise AssertionError("%s did not come back to idle (bound %d s): %s: %s"
                             % (r.reader, timeout, type(e).__name__, e))
    assert s["state"] != "quoted", s
    if dropped:
        print("%s: answers nobody read, dropped: %r" % (r.reader, dropped))
    return dropped


class Chain:
    def __init__(self, folder, readers=("R1",), config=None, cards=200, sync_interval=1, backend_env=None):
        self.folder = Path(folder)
        self.names = list(readers)
        self.config = dict(config or {})
        self.sync_interval = sync_interval
        self.path = self.folder / "loyalty.db"
        db = dbmod.connect(self.path)
        try:
            dbmod.migrate(db)
            self.keys = sampleshop.seed(db, {"S1": self.names}, cards=cards)
            auth.create_manager(db, MANAGER[0], MANAGER[1])
        finally:
            db.conn.close()
        instance = self.folder / "instance"
        instance.mkdir(exist_ok=True)
        (instance / "config.py").write_text("".join("%s = %r\n" % kv for kv in self.config.items()))
        self.backend = Backend(self.path, instance, log=self.folder / "backend.log", env=backend_env)
        self.links = {}
        self.readers = {}

    def start(self):
        self.backend.start()
        return self

    def reader(self, name, wait_sync=True, nfc=False, contact=False):
        """Start reader `name` behind its own link to the backend; wait for its first sync.
        nfc: the reader's cards come through its PN532 driver and the simulator (r.nfc)."""
        link = self.links[name] = Link(("127.0.0.1", self.backend.port)).start()
        r = SimReader(name, self.keys[name].hex(), link.url, self.folder / name,
                      sync_interval=self.sync_interval, log=self.folder / (name + ".log"), nfc=nfc,
                      contact=contact).start()
        self.readers[name] = r
        if wait_sync:
            wait_for(lambda: self.synced(r), timeout=60, what="%s's first sync" % name, every=0.2)
        return r

    def versions(self):
        db = dbmod.connect(self.path)
        try:
            return tuple(dbmod.meta_int(db, k) for k in ("rules_version", "directory_version", "card_keys_version"))
        finally:
            db.conn.close()

    def synced(self, r):
        s = r.status()
        return (s["rules"], s["directory"], s["keys"]) == self.versions() and s["pending"] == 0 \
            and s["sync_error"] == "" and s

    def db_rows(self, sql, params=()):
        db = dbmod.connect(self.path)
        try:
            return db.execute(sql, list(params)).fetchall()
        finally:
            db.conn.close()

    def wait_audited(self, name, timeout=30):
        """Wait until the server's auditor has audited every receipt of `name` stored so far
        (ingestion stores them awaiting audit and acknowledges at once)."""
        def done():
            n = self.db_rows("SELECT count(*) FROM receipts WHERE reader_id=? AND audit IS NULL", [name])[0][0]
            return n == 0
        wait_for(done, timeout=timeout, what="%s's receipts to be audited" % name, every=0.1)

    def change(self, fn, *args, **kw):
        """Run a head office function (backend.headoffice) on the live database."""
        db = dbmod.connect(self.path)
        try:
            return fn(db, *args, **kw)
        finally:
            db.conn.close()

    def dashboard(self):
        return Dashboard(self.backend.url).login(*MANAGER)

    def state_of(self, name):
        for store in self.dashboard().json("/stores.json")["stores"]:
            for r in store["readers"]:
                if r["id"] == name:
                    return r["state"]
        raise KeyError(name)

    @staticmethod
    def shop(r, receipt, card=sampleshop.card_number(10), lines=None):
        """One shopper at `r`'s till: basket, card, commit; returns (quote, committed)."""
        basket(r, receipt, lines)
        r.cards.tap(card)
        q = r.till.expect("quote")
        r.till.send({"type": "commit", "quote": q["quote"], "paid": q["gross"] - q["discount"]})
        return q, r.till.expect("committed")

    def check_exactly_once(self, name, committed):
        """Every committed receipt of `name` is stored once, as committed; the chain is whole.

        committed: {seq: receipt id} as the till was told. Returns the number checked."""
        rows = self.db_rows("SELECT seq, receipt, hash, record FROM receipts WHERE reader_id=? ORDER BY seq", [name])
        seqs = [row[0] for row in rows]
        assert seqs == list(range(1, len(seqs) + 1)), "stored seqs are not 1..n: %r" % seqs[:20]
        stored = {row[0]: row[1] for row in rows}
        for seq, receipt in committed.items():
            assert stored.get(seq) == receipt, "seq %d: stored %r, committed %r" % (seq, stored.get(seq), receipt)
        import json

        prev = "0" * 64
        for seq, _, h, record in rows:
            assert json.loads(record)["prev"] == prev, "chain broken at %d" % seq
            prev = h
        totals = self.db_rows("SELECT COALESCE(SUM(receipts), 0), COALESCE(SUM(gross), 0), COALESCE(SUM(discount), 0)"
                              " FROM day_totals")[0]
        sums = self.db_rows("SELECT COALESCE(SUM(kind='sale'), 0), COALESCE(SUM(gross), 0), COALESCE(SUM(discount), 0)"
                            " FROM receipts")[0]
        assert tuple(totals) == tuple(sums), "day totals %r differ from the receipts %r" % (totals, sums)
        return len(committed)

    def stop(self):
        for r in self.readers.values():
            r.stop()
        for link in self.links.values():
            link.stop()
        self.backend.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
