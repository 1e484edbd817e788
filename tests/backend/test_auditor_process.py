"""The auditor as backend/serve.py runs it: processes beside the WSGI server (one per core,
up to serve.MAX_AUDITORS) that audit what the server acknowledged, catch up after a
restart, are started again when one ends, and never outlive the server (SIGKILL of the
whole group, or of the server alone); --processes N shares one socket."""
import os
import signal
import threading
import time

import pytest

from loyalty.backend import headoffice, serve
from loyalty.backend.db import connect, migrate
from loyalty.sim.backendproc import Backend, group_members
from loyalty.testing.readerclient import ReaderClient
from loyalty.sim import sampleshop


@pytest.fixture
def shop_db(tmp_path):
    path = tmp_path / "loyalty.db"
    db = connect(path)
    try:
        migrate(db)
        keys = sampleshop.seed(db, {"S1": ["R1", "R2"]}, cards=40)
        rules = headoffice.current_rules(db)[1]
    finally:
        db.conn.close()
    return path, keys, rules


def rows(path, sql, params=()):
    db = connect(path)
    try:
        return db.execute(sql, list(params)).fetchall()
    finally:
        db.conn.close()


def wait(cond, what, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


AUDITORS = serve.default_auditors()


def auditors(backend):
    """{pid: its --part argument (None for a lone auditor)} of the server's auditors."""
    found = {}
    for pid in backend.pids():
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                args = f.read().decode().split("\0")
        except OSError:
            continue  # ended meanwhile
        if "loyalty.backend.auditor" in args:
            found[pid] = args[args.index("--part") + 1] if "--part" in args else None
    return found


def client(shop_db, name, backend, seed=1):
    path, keys, rules = shop_db
    return ReaderClient(name, keys[name], backend.url, rules, seed=seed,
                        cards=[sampleshop.card_number(i) for i in range(1, 41)])


def test_the_server_acknowledges_and_its_auditor_audits(shop_db, tmp_path):
    path = shop_db[0]
    with Backend(path, tmp_path / "instance", log=tmp_path / "backend.log") as b:
        assert len(b.pids()) == 1 + AUDITORS  # the server and its auditors
        c = client(shop_db, "R1", b)
        status, answer = c.post_batch(c.batch_body(c.make_sales(30, int(time.time()) - 600)))
        assert status == 200 and answer["ack"] == 30
        wait(lambda: rows(path, "SELECT count(*) FROM receipts WHERE audit IS NULL")[0][0] == 0, "the audit")
        assert rows(path, "SELECT count(*) FROM receipts WHERE audit IS NOT NULL")[0][0] == 30


def test_kill_takes_the_auditor_down_and_a_restart_audits_what_waits(shop_db, tmp_path):
    path = shop_db[0]
    b = Backend(path, tmp_path / "instance", log=tmp_path / "backend.log", auditor=False).start()
    try:
        c = client(shop_db, "R1", b)
        assert c.post_batch(c.batch_body(c.make_sales(25, int(time.time()) - 600)))[0] == 200
        pgid = b.proc.pid
        b.kill()  # as a crash: what was stored awaits audit
        assert group_members(pgid) == []
        assert rows(path, "SELECT count(*) FROM receipts WHERE audit IS NULL")[0][0] == 25
        b.auditor = True
        b.start()  # the same port and database, now with its auditor
        server_pid, auditor_pids = b.proc.pid, [p for p in b.pids() if p != b.proc.pid]
        wait(lambda: rows(path, "SELECT count(*) FROM receipts WHERE audit IS NULL")[0][0] == 0,
             "the receipts that waited to be audited")
        b.kill()
        assert group_members(server_pid) == [] and not set(auditor_pids) & set(group_members(server_pid))
    finally:
        b.stop()


def test_the_auditor_and_other_processes_end_when_the_server_dies_alone(shop_db, tmp_path):
    path = shop_db[0]
    b = Backend(path, tmp_path / "instance", log=tmp_path / "backend.log", processes=2, threads=1).start()
    try:
        pgid = b.proc.pid
        others = [p for p in b.pids() if p != pgid]
        assert len(others) == 1 + AUDITORS  # the auditors and the second server process
        os.kill(pgid, signal.SIGKILL)  # only the server: nobody kills its group
        b.proc.wait()
        wait(lambda: group_members(pgid) == [], "the auditor and the other server process to end", timeout=10)
    finally:
        b.stop()


def test_server_processes_share_the_socket_and_stop_together(shop_db, tmp_path):
    path = shop_db[0]
    b = Backend(path, tmp_path / "instance", log=tmp_path / "backend.log", processes=2, threads=1).start()
    try:
        pgid = b.proc.pid
        assert len(b.pids()) == 2 + AUDITORS  # two server processes and the auditors
        results = []

        def post_batches(name, seed):
            c = client(shop_db, name, b, seed)
            t0 = int(time.time()) - 3600
            for _ in range(6):
                results.append((name,) + c.post_batch(c.batch_body(c.make_sales(20, t0))))

        threads = [threading.Thread(target=post_batches, args=(name, i)) for i, name in enumerate(["R1", "R2"])]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted((name, status, answer["ack"]) for name, status, answer in results) == sorted(
            (name, 200, 20 * k) for name in ("R1", "R2") for k in range(1, 7))
        assert rows(path, "SELECT reader_id, count(*), max(seq) FROM receipts GROUP BY reader_id") == [
            ("R1", 120, 120), ("R2", 120, 120)]
        wait(lambda: rows(path, "SELECT count(*) FROM receipts WHERE audit IS NULL")[0][0] == 0, "the audit")
        b.stop()  # SIGTERM: the server stops its other process and its auditor, then ends
        assert group_members(pgid) == []
    finally:
        b.stop()


def test_an_auditor_that_ends_is_started_again_with_its_share(shop_db, tmp_path):
    path = shop_db[0]
    with Backend(path, tmp_path / "instance", log=tmp_path / "backend.log") as b:
        before = auditors(b)
        parts = sorted(p or "" for p in before.values())
        assert parts == (["%d/%d" % (k, AUDITORS) for k in range(AUDITORS)] if AUDITORS > 1 else [""])
        gone = max(before)
        os.kill(gone, signal.SIGKILL)
        after = {}

        def started_again():
            # one look at the processes: a SIGKILLed process still shows its command line
            # for a moment, so two looks could count it in the first and miss it in the second
            after.clear()
            after.update(auditors(b))
            return len(after) == AUDITORS and gone not in after
        wait(started_again, "the auditor to start again")
        assert sorted(p or "" for p in after.values()) == parts  # the same shares, nobody's missing
        c = client(shop_db, "R1", b)
        assert c.post_batch(c.batch_body(c.make_sales(30, int(time.time()) - 600)))[0] == 200
        wait(lambda: rows(path, "SELECT count(*) FROM receipts WHERE audit IS NULL")[0][0] == 0, "the audit")
