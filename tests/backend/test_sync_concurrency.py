"""Each committed receipt stored exactly once when requests race: threads of one app, and
two server processes (waitress, backend/serve.py) on one SQLite file."""
import http.client
import os
import subprocess
import sys
import threading

import pytest

from loyalty.backend import headoffice
from loyalty.backend.sync.ingest import accept_batch, load_reader
from loyalty.backend.db import connect
from loyalty.protocol.canonical import decode
from loyalty.protocol.errors import ProtocolError
from loyalty.protocol.records import batch_body



def test_the_same_batch_from_many_threads_at_once(app, db, signed_reader, shop_rules):
    r = signed_reader()
    rules = headoffice.rules_at(db, shop_rules)
    records = [r.sale(rules) for _ in range(30)]
    body = batch_body("R1", records, {"pending": 30})
    start = threading.Barrier(6)
    answers = []

    def post():
        h = r.headers("POST", "/api/v1/sync/batch", body)  # a retry: same body, new nonce
        client = app.test_client()
        start.wait()
        resp = client.post("/api/v1/sync/batch", data=body, headers=h)
        answers.append((resp.status_code, decode(resp.data)["ack"]))

    threads = [threading.Thread(target=post) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [(200, 30)] * 6
    assert db.execute("SELECT count(*), count(DISTINCT seq) FROM receipts").fetchone() == (30, 30)
    assert db.execute("SELECT sum(fresh) FROM batches").fetchone()[0] == 30
    sales = [decode(x) for x in records]
    assert db.execute("SELECT receipts, discount FROM day_totals").fetchone() == (
        30, sum(s["discount"] for s in sales))


def test_accept_batch_rechecks_inside_the_lock(app, db, signed_reader, shop_rules):
    """The second of two copies, checked against the state before the first was stored,
    finds the reader's acknowledged seq moved once it holds the lock and stores nothing."""
    r = signed_reader()
    rules = headoffice.rules_at(db, shop_rules)
    body = batch_body("R1", [r.sale(rules) for _ in range(3)], {})
    reader = load_reader(db, "R1")  # read before either copy is stored
    first = accept_batch(db, load_reader(db, "R1"), body, "n1", 1, 0, 300)
    second = accept_batch(db, reader, body, "n2", 2, 0, 300)
    assert (first["fresh"], second["fresh"]) == (3, 0)
    assert second["answer"]["ack"] == 3
    assert db.execute("SELECT count(*) FROM receipts").fetchone()[0] == 3
    with pytest.raises(ProtocolError) as e:  # and a nonce seen before is a replay, inside the lock
        accept_batch(db, load_reader(db, "R1"), body, "n2", 3, 0, 300)
    assert e.value.code == "batch.replay"


def _serve(path, instance):
    env = dict(os.environ, LOYALTY_INSTANCE=str(instance))
    proc = subprocess.Popen([sys.executable, "-m", "loyalty.backend.serve", "--port", "0", "--threads", "4",
                             "--db", str(path)], env=env, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith("serving on "):
        proc.kill()
        proc.wait()
        proc.stdout.close()
        raise RuntimeError("server did not start: %r" % line)
    return proc, int(line.rsplit(":", 1)[1])


def _post(port, headers, body):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/api/v1/sync/batch", body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_two_server_processes_on_one_database(app, db, signed_reader, shop_rules, tmp_path):
    rules = headoffice.rules_at(db, shop_rules)
    readers = [signed_reader("R%d" % i) for i in range(1, 4)]
    bodies = {r.id: [batch_body(r.id, [r.sale(rules) for _ in range(20)], {}) for _ in range(3)]
              for r in readers}
    servers = [_serve(app.config["DATABASE"], tmp_path / ("instance%d" % i)) for i in range(2)]
    try:
        ports = [port for _, port in servers]
        results = []

        def reader_task(r):
            # each batch goes to both servers at once (a retry racing the original), in order
            for body in bodies[r.id]:
                out = []
                start = threading.Barrier(2)

                def send(port):
                    h = r.headers("POST", "/api/v1/sync/batch", body)
                    start.wait()
                    out.append(_post(port, h, body))

                pair = [threading.Thread(target=send, args=(p,)) for p in ports]
                for t in pair:
                    t.start()
                for t in pair:
                    t.join()
                results.extend((r.id, status, decode(data)["ack"]) for status, data in out)

        tasks = [threading.Thread(target=reader_task, args=(r,)) for r in readers]
        for t in tasks:
            t.start()
        for t in tasks:
            t.join()
    finally:
        for proc, _ in servers:
            proc.terminate()
            proc.wait(timeout=30)
            proc.stdout.close()
    assert sorted(results) == sorted((r.id, 200, 20 * (k + 1)) for r in readers for k in range(3) for _ in ports)
    check = connect(app.config["DATABASE"])
    try:
        for r in readers:
            assert check.execute("SELECT count(*), min(seq), max(seq) FROM receipts WHERE reader_id=?",
                                 [r.id]).fetchone() == (60, 1, 60)
            assert check.execute("SELECT sum(fresh) FROM batches WHERE reader_id=?", [r.id]).fetchone()[0] == 60
        assert check.execute("SELECT sum(receipts) FROM day_totals").fetchone()[0] == 180
    finally:
        check.conn.close()
