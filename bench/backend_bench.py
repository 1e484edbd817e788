"""The backend's benchmarks: ingestion through the real HTTP server, and the stores overview.

1. Ingestion: READERS readers post batches of 200 receipts at once, each from its own
   thread and each batch on a connection of its own (as the firmware does), to the backend
   on waitress on loopback, run as on a two-core server: `backend.serve --processes 2
   --threads 1` with its auditors beside it (one per core). Every batch is signed, checked,
   stored and acknowledged; the audit follows in the auditors. By default 4 x 1,250
   batches, a million receipts: a minute or more of load, long enough for the audit's
   backlog to show (with --batches 25 the load is over before the auditor's patience).
   Baseline, same run: the rows the
   backend stored (the columns ingestion writes), executemany'd into an empty database of
   the same schema, one transaction per 200 rows (the raw SQLite ceiling). Target: ratio
   >= 0.5. Also the audit: how many receipts the auditor audited while the readers posted
   (sampled once a second, and at the last acknowledgement: AuditWatch), how long after
   the last acknowledgement it had audited the last receipt (target: at most 60 s), and
   its own throughput (one process, the same receipts audited again, which must give the
   same verdicts).
2. The stores overview with 2,000 readers in 100 stores and the receipts of 13 months of
   bench/bigshop.py's customers (it builds that database once): server time of
   overview.stores_overview and of GET /stores and /stores.json through Flask. Target:
   <= 150 ms. Baseline, same run: a bare SELECT of every reader row. By default 150,000
   customers (1.6 million receipts, 2 GB, built in some 3 minutes); the issue's full size,
   500,000 customers (5.2 million receipts, 6.2 GB), takes 13 minutes of CPU, 17 on the busy
   2-core machine, to build: --customers 500000.

    python bench/backend_bench.py [--readers 4] [--batches 1250] [--processes 2] [--customers 150000]
                                  [--months 13] [--skip-overview] [--trace]
"""
import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path


import bigshop  # beside this script: bench/ is the script's folder, first on the path
import care_bench
from loyalty.backend import auditor, auth, db as dbmod, headoffice
from loyalty.backend.app import create_app
from loyalty.backend.dashboard import overview
from loyalty.backend.sync import ingest
from loyalty.sim import sampleshop
from loyalty.sim.backendproc import Backend
from loyalty.testing.readerclient import ReaderClient

BATCH = 200
LAG_TARGET = 60  # seconds from the last acknowledgement until the last receipt is audited


def _wait_audited(path, timeout=3600):
    """Seconds (perf_counter) at which no receipt awaited audit any more."""
    db = dbmod.connect(path)
    try:
        end = time.perf_counter() + timeout
        while auditor.awaiting(db):
            if time.perf_counter() > end:
                raise SystemExit("receipts still awaiting audit after %d s" % timeout)
            time.sleep(0.005)
        return time.perf_counter()
    finally:
        db.conn.close()


class AuditWatch:
    """Samples, once a `every` seconds while the readers post, how many of the receipts
    stored so far the auditor has audited (stored: the receipts' highest rowid, as the
    bench only inserts; awaiting: auditor.awaiting), from a connection of its own."""

    def __init__(self, path, every=1.0):
        self.path, self.every = path, every
        self.samples = []  # (perf_counter, stored, awaiting)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def sample(self, db):
        stored = db.execute("SELECT coalesce(max(rowid), 0) FROM receipts").fetchone()[0]
        self.samples.append((time.perf_counter(), stored, auditor.awaiting(db)))
        return self.samples[-1]

    def _run(self):
        db = dbmod.connect(self.path)
        try:
            while not self.stop.wait(self.every):
                self.sample(db)
        finally:
            db.conn.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        db = dbmod.connect(self.path)
        try:
            self.sample(db)  # at the last acknowledgement
        finally:
            db.conn.close()


def ingestion(readers=4, batches=25, processes=2, threads=1):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = tmp / "loyalty.db"
        db = dbmod.connect(path)
        dbmod.migrate(db)
        names = ["R%d" % (i + 1) for i in range(readers)]
        keys = sampleshop.seed(db, {"S1": names[: readers // 2 or 1], "S2": names[readers // 2 or 1:]}, cards=500)
        rules = headoffice.current_rules(db)[1]
        db.conn.close()
        t0 = int(time.time()) - 2 * 86400
        cards = [sampleshop.card_number(i) for i in range(1, 501)]
        clients, bodies = [], []
        for i, name in enumerate(names):
            c = ReaderClient(name, keys[name], "http://127.0.0.1:0", rules, seed=i, cards=cards)
            clients.append(c)
            bodies.append([c.batch_body(c.make_sales(BATCH, t0)) for _ in range(batches)])
        with Backend(path, tmp / "instance", threads=threads, processes=processes,
                     log=tmp / "backend.log") as server:
            for c in clients:
                c.url = c.url._replace(netloc="127.0.0.1:%d" % server.port)
            failures = []

            def post_all(c, bs):
                for body in bs:
                    status, answer = c.post_batch(body)  # a connection per batch, as readers do
                    if status != 200:
                        failures.append((c.reader, status, answer))

            workers = [threading.Thread(target=post_all, args=(c, bs)) for c, bs in zip(clients, bodies)]
            bytes_per_batch = sum(len(b) for bs in bodies for b in bs) // (readers * batches)
            del bodies  # the workers hold theirs until they are done: a million receipts are 900 MB
            auditors = len(server.pids()) - processes
            load_start = time.perf_counter()
            with AuditWatch(path) as watch:
                for w in workers:
                    w.start()
                for w in workers:
                    w.join()
                acked = time.perf_counter()
            http_s = acked - load_start
            audited_after = _wait_audited(path) - acked
        if failures:
            raise SystemExit("batches refused: %r" % failures[:3])
        db = dbmod.connect(path)
        columns = ingest._RECEIPT_COLUMNS  # what ingestion writes (audit and audit_detail come later)
        rows = db.execute("SELECT %s FROM receipts ORDER BY reader_id, seq" % ", ".join(columns)).fetchall()
        verdicts_sql = "SELECT reader_id, seq, audit, audit_detail FROM receipts ORDER BY reader_id, seq"
        verdicts = db.execute(verdicts_sql).fetchall()
        total = readers * batches * BATCH
        if len(rows) != total:
            raise SystemExit("stored %d receipts, posted %d" % (len(rows), total))
        # the audit on its own: the same receipts once more, in this one process
        db.execute("UPDATE receipts SET audit=NULL, audit_detail=NULL")
        start = time.perf_counter()
        audit_counts = auditor.audit_all(db)
        audit_s = time.perf_counter() - start
        again = db.execute(verdicts_sql).fetchall()
        db.conn.close()
        if again != verdicts:
            raise SystemExit("the audit gave other verdicts the second time")
        raw = dbmod.connect(tmp / "raw.db")
        dbmod.migrate(raw)
        insert = "INSERT INTO receipts(%s) VALUES(%s)" % (", ".join(columns), ", ".join("?" * len(columns)))
        start = time.perf_counter()
        for i in range(0, len(rows), BATCH):
            raw.execute("BEGIN IMMEDIATE")
            raw.conn.executemany(insert, rows[i:i + BATCH])
            raw.conn.commit()
        raw_s = time.perf_counter() - start
        raw.conn.close()
    at_ack = watch.samples[-1]
    return {"receipts": total, "http_s": http_s, "raw_s": raw_s, "audits": audit_counts,
            "audited_under_load": at_ack[1] - at_ack[2], "backlog_at_ack": at_ack[2],
            "backlog_peak": max(s[2] for s in watch.samples),
            "samples": [(t - load_start, stored, waiting) for t, stored, waiting in watch.samples],
            "audited_after": audited_after, "audit_s": audit_s, "processes": processes, "threads": threads,
            "readers": readers, "bytes_per_batch": bytes_per_batch, "auditors": auditors}


def _median_ms(fn, runs):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), max(times)


def stores_overview(customers=150_000, months=bigshop.MONTHS, runs=15):
    path = bigshop.build(customers, months, log=lambda s: print(s, flush=True))
    db = dbmod.connect(path)
    now = int(time.time())
    cfg = {"LAGGING_AFTER": 300, "OFFLINE_AFTER": 1800}
    counts = db.execute("SELECT (SELECT count(*) FROM stores), (SELECT count(*) FROM readers),"
                        " (SELECT max(rowid) FROM receipts)").fetchone()
    result = {"stores": counts[0], "readers": counts[1], "receipts": counts[2]}
    overview.stores_overview(db, now, cfg)  # warm the page cache, as a running server has it
    result["baseline"] = _median_ms(lambda: db.execute("SELECT * FROM readers").fetchall(), runs)
    result["function"] = _median_ms(lambda: overview.stores_overview(db, now, cfg), runs)
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"DATABASE": str(path), "SECRET_KEY": "bench", "TESTING": True})
        try:
            auth.create_manager(db, "bench", "bench-password-1")
        except auth.ManagerError:
            pass  # made by an earlier run
        db.conn.close()
        client = app.test_client()
        page = client.get("/login")
        token = page.get_data(as_text=True).split('name="csrf_token" value="')[1].split('"')[0]
        client.post("/login", data={"username": "bench", "password": "bench-password-1", "csrf_token": token})
        for url in ("/stores", "/stores.json"):
            r = client.get(url)
            if r.status_code != 200:
                raise SystemExit("%s answered %d" % (url, r.status_code))
            result[url] = _median_ms(lambda: client.get(url).get_data(), runs)
        del tmp
    return result


def report_ingestion(m):
    http_rate = m["receipts"] / m["http_s"]
    raw_rate = m["receipts"] / m["raw_s"]
    ratio = http_rate / raw_rate
    print("ingestion: %d readers posting %d receipts in batches of %d (%d bytes each); "
          "server: %d process(es) x %d thread(s), %d auditor(s) beside them" % (
              m["readers"], m["receipts"], BATCH, m["bytes_per_batch"], m["processes"], m["threads"],
              m["auditors"]))
    print("  through HTTP (waitress, signed, checked, stored, acknowledged): %8.0f receipts/s (%.2f s)" % (
        http_rate, m["http_s"]))
    print("  raw SQLite executemany of the same rows, 200 per commit:        %8.0f receipts/s (%.2f s)" % (
        raw_rate, m["raw_s"]))
    print("  ratio %.3f; target at least 0.5: %s" % (ratio, "ok" if ratio >= 0.5 else "MISSED"))
    print("  audit under load: %d receipts audited while the readers posted (%.0f receipts/s, %.0f %% of the "
          "ingestion rate); %d awaiting at the last acknowledgement (at most %d)" % (
              m["audited_under_load"], m["audited_under_load"] / m["http_s"],
              100.0 * m["audited_under_load"] / m["receipts"], m["backlog_at_ack"], m["backlog_peak"]))
    print("  audit lag: the last receipt audited %.2f s after the last acknowledgement; target at most %d s: %s" % (
        m["audited_after"], LAG_TARGET, "ok" if m["audited_after"] <= LAG_TARGET else "MISSED"))
    print("  audit on its own (one process, the same receipts again): %.0f receipts/s (%s)" % (
        m["receipts"] / m["audit_s"], ", ".join("%s %d" % kv for kv in sorted(m["audits"].items()))))
    return ratio


def report_overview(m):
    print("stores overview: %d stores, %d readers, %d receipts (median / max of 15 runs)" % (
        m["stores"], m["readers"], m["receipts"]))
    print("  baseline, SELECT * FROM readers:        %7.1f ms / %7.1f ms" % m["baseline"])
    print("  overview.stores_overview():             %7.1f ms / %7.1f ms  (%.1f x baseline)" % (
        m["function"] + (m["function"][0] / m["baseline"][0],)))
    for url in ("/stores", "/stores.json"):
        print("  GET %-12s through Flask:           %7.1f ms / %7.1f ms  (%.1f x baseline)" % (
            (url,) + m[url] + (m[url][0] / m["baseline"][0],)))
    worst = max(m["/stores"][0], m["/stores.json"][0])
    print("  target at most 150 ms: %.1f ms, %s" % (worst, "ok" if worst <= 150 else "MISSED"))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--readers", type=int, default=4)
    ap.add_argument("--batches", type=int, default=1250, help="batches of 200 receipts per reader")
    ap.add_argument("--processes", type=int, default=2, help="server processes (backend.serve --processes)")
    ap.add_argument("--threads", type=int, default=1, help="threads per server process")
    ap.add_argument("--customers", type=int, default=150_000,
                    help="customers of bench/bigshop.py's shop (the issue's full size: 500000)")
    ap.add_argument("--months", type=int, default=bigshop.MONTHS, help="months of their receipts")
    ap.add_argument("--skip-overview", action="store_true", help="only the ingestion benchmark")
    ap.add_argument("--trace", action="store_true", help="print the audit's progress, a line a second of the load")
    args = ap.parse_args(argv)
    m = ingestion(args.readers, args.batches, args.processes, args.threads)
    report_ingestion(m)
    if args.trace:
        print("  %8s %10s %10s" % ("seconds", "stored", "awaiting"))
        for sample in m["samples"]:
            print("  %8.1f %10d %10d" % sample)
    if args.skip_overview:
        return
    print()
    report_overview(stores_overview(args.customers, args.months))
    print()
    care_bench.report(care_bench.measure(args.customers, args.months))


if __name__ == "__main__":
    main()
