"""A chain the size of the overview target: 100 stores, 2,000 readers, 5 million receipts.

Built straight into the backend's schema (backend/db.py) with executemany, the way a
year of ingestion would have left it: receipts spread over the last 60 days, the day
totals they add up to, each reader's sync state in every shape the dashboard knows
(in sync, lagging, offline, refused, never seen), a day of pending-receipt samples.
Built once and kept in build/bench (about 1.5 GB); rebuilt when the schema changes.

    path = bigshop.build(receipts=5_000_000)
"""
import json
import os
import random
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from loyalty.backend import db as dbmod

STORES = 100
READERS = 2000
DAYS = 60
RECORD = json.dumps({"v": 1, "kind": "sale", "lines": [{"sku": "1001", "cat": "latticini", "qty": 2, "price": 149}],
                     "disc": [{"line": 0, "rule": "promo:LATTE10", "cents": 30}], "pad": "x" * 120},
                    separators=(",", ":"))


def path_for(receipts):
    return ROOT / "build" / "bench" / ("bigshop-s%d-%d.db" % (len(dbmod.MIGRATIONS), receipts))


def build(receipts=5_000_000, now=None, log=print):
    path = path_for(receipts)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in path.parent.glob("bigshop-s*-%d.db" % receipts):  # built for an older schema
        old.unlink()
    tmp = path.with_suffix(".tmp")
    for p in (tmp, Path(str(tmp) + "-wal"), Path(str(tmp) + "-shm")):
        if p.exists():
            p.unlink()
    now = int(now or time.time())
    rng = random.Random(7)
    db = dbmod.connect(tmp)
    dbmod.migrate(db)
    db.execute("PRAGMA synchronous=OFF")  # a bench fixture: a crash only means building it again
    start = time.time()
    with db.conn:
        db.execute("BEGIN")
        db.conn.executemany("INSERT INTO stores(id, name, tz) VALUES(?, ?, ?)",
                            [("S%03d" % s, "Supermercato %03d" % s, "Europe/Rome") for s in range(STORES)])
        rows = []
        for r in range(READERS):
            shape = r % 20
            contact = None if shape == 19 else now - (7200 if shape == 18 else rng.randint(0, 120))
            pending = rng.randint(20, 80) if shape in (16, 17) else rng.randint(0, 3)
            rows.append(("R%04d" % r, "S%03d" % (r % STORES), "Cassa %d" % r, os.urandom(32).hex(), now - 86400 * 90,
                         contact, contact, 0, dbmod.GENESIS, pending,
                         None if not pending else now - (3600 if shape in (16, 17) else 30),
                         "nearly_full" if shape == 17 else "ok", 1000, 524288, 900000, "0.1.0", 7, 200,
                         0, 0, "", now - 60 if shape == 15 else None, "batch.chain" if shape == 15 else None))
        db.conn.executemany(
            "INSERT INTO readers(id, store_id, name, key_hex, created, last_contact, last_batch, acked_seq,"
            " acked_hash, pending, oldest_t, journal, used, capacity, free_flash, firmware, rules_version,"
            " directory_version, clock_offset, clock_drift, last_error, last_refusal_at, last_refusal_code)"
            " VALUES(" + ",".join("?" * 23) + ")", rows)
    per_reader = receipts // READERS
    totals = {}
    seq_of = [0] * READERS
    chunk = 50_000
    done = 0
    while done < receipts:
        batch = []
        for i in range(done, min(done + chunk, receipts)):
            r = i % READERS
            seq_of[r] += 1
            store = "S%03d" % (r % STORES)
            t = now - DAYS * 86400 + (seq_of[r] * DAYS * 86400) // (per_reader + 1)
            day = time.strftime("%Y-%m-%d", time.gmtime(t + 3600))
            gross, disc = rng.randint(100, 9000), rng.randint(0, 300)
            key = (store, day)
            tot = totals.setdefault(key, [0, 0, 0])
            tot[0] += 1
            tot[1] += gross
            tot[2] += disc
            batch.append(("R%04d" % r, seq_of[r], store, "sale", t, day, "R%04d-%d" % (r, seq_of[r]),
                          "6001%012d" % rng.randint(1, 200000), 0, gross, disc, 7, "%064x" % i, 0, RECORD, "ok", None))
        with db.conn:
            db.execute("BEGIN")
            db.conn.executemany("INSERT INTO receipts(reader_id, seq, store_id, kind, t, day, receipt, card, tier, gross,"
                                " discount, rules, hash, batch_id, record, audit, audit_detail)"
                                " VALUES(" + ",".join("?" * 17) + ")", batch)
        done += len(batch)
        if done % 1_000_000 == 0:
            log("  %d receipts in %.0f s" % (done, time.time() - start))
    with db.conn:
        db.execute("BEGIN")
        db.conn.executemany("INSERT INTO day_totals(store_id, day, receipts, gross, discount) VALUES(?, ?, ?, ?, ?)",
                            [(s, d, v[0], v[1], v[2]) for (s, d), v in totals.items()])
        db.conn.executemany("UPDATE readers SET acked_seq=? WHERE id=?",
                            [(seq_of[r], "R%04d" % r) for r in range(READERS)])
        samples = [("R%04d" % r, now - k * 300, rng.randint(0, 5)) for r in range(0, READERS, 10) for k in range(288)]
        db.conn.executemany("INSERT INTO reader_samples(reader_id, t, pending) VALUES(?, ?, ?)", samples)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.execute("ANALYZE")
    db.conn.close()
    os.replace(tmp, path)
    log("  built %s in %.0f s" % (path.name, time.time() - start))
    return path
