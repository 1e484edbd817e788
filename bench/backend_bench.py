"""The backend's benchmarks: ingestion through the real HTTP server, and the stores overview.

1. Ingestion: READERS readers post batches of 200 receipts at once, each from its own
   thread and each batch on a connection of its own (as the firmware does), to the backend
   on waitress on loopback, run as on a two-core server: `backend.serve --processes 2
   --threads 1` with its auditor beside it. Every batch is signed, checked, stored and
   acknowledged; the audit follows in the auditor. Baseline, same run: the rows the
   backend stored (the columns ingestion writes), executemany'd into an empty database of
   the same schema, one transaction per 200 rows (the raw SQLite ceiling). Target: ratio
   >= 0.5. Also: how long after the last acknowledgement the auditor had audited the last
   receipt, and the audit's own throughput (one process, the same receipts audited again,
   which must give the same verdicts).
2. The stores overview with 2,000 readers in 100 stores and 5,000,000 receipts (bench/
   bigshop.py builds that database once): server time of overview.stores_overview and of
   GET /stores and /stores.json through Flask. Target: <= 150 ms. Baseline, same run: a
   bare SELECT of every reader row.

    python bench/backend_bench.py [--readers 4] [--batches 25] [--processes 2] [--receipts 5000000]
"""
import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path


import bigshop  # beside this script: bench/ is the script's folder, first on the path
from loyalty.backend import auditor, auth, db as dbmod, headoffice
from loyalty.backend.app import create_app
from loyalty.backend.dashboard import overview
from loyalty.backend.sync import ingest
from loyalty.sim import sampleshop
from loyalty.sim.backendproc import Backend
from loyalty.testing.readerclient import ReaderClient

BATCH = 200


def _wait_audited(path, timeout=600):
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
            start = time.perf_counter()
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            acked = time.perf_counter()
            http_s = acked - start
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
    return {"receipts": total, "http_s": http_s, "raw_s": raw_s, "audits": audit_counts,
            "audited_after": audited_after, "audit_s": audit_s, "processes": processes, "threads": threads,
            "readers": readers, "bytes_per_batch": sum(len(b) for bs in bodies for b in bs) // (readers * batches)}


def _median_ms(fn, runs):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), max(times)


def stores_overview(receipts=5_000_000, runs=15):
    path = bigshop.build(receipts, log=lambda s: print(s, flush=True))
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
          "server: %d process(es) x %d thread(s), auditor beside them" % (
              m["readers"], m["receipts"], BATCH, m["bytes_per_batch"], m["processes"], m["threads"]))
    print("  through HTTP (waitress, signed, checked, stored, acknowledged): %8.0f receipts/s (%.2f s)" % (
        http_rate, m["http_s"]))
    print("  raw SQLite executemany of the same rows, 200 per commit:        %8.0f receipts/s (%.2f s)" % (
        raw_rate, m["raw_s"]))
    print("  ratio %.3f; target at least 0.5: %s" % (ratio, "ok" if ratio >= 0.5 else "MISSED"))
    print("  audit: the last receipt audited %.2f s after the last acknowledgement; on its own the audit "
          "runs at %.0f receipts/s (%s)" % (m["audited_after"], m["receipts"] / m["audit_s"],
                                             ", ".join("%s %d" % kv for kv in sorted(m["audits"].items()))))
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
    ap.add_argument("--batches", type=int, default=25, help="batches of 200 receipts per reader")
    ap.add_argument("--processes", type=int, default=2, help="server processes (backend.serve --processes)")
    ap.add_argument("--threads", type=int, default=1, help="threads per server process")
    ap.add_argument("--receipts", type=int, default=5_000_000)
    ap.add_argument("--skip-overview", action="store_true", help="only the ingestion benchmark")
    args = ap.parse_args(argv)
    report_ingestion(ingestion(args.readers, args.batches, args.processes, args.threads))
    if args.skip_overview:
        return
    print()
    report_overview(stores_overview(args.receipts))


if __name__ == "__main__":
    main()
