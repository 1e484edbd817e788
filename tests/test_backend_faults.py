"""Faults between the readers and the backend, on a real WSGI server over loopback.

In every case each committed receipt ends up stored exactly once, the hash chain is
whole, the day totals add up to the receipts, and the reader ends in sync. Each test
says how many receipts it checked.
"""
import random
import threading
import time

import pytest

from loyalty.testing.chain import Chain, wait_for
from loyalty.testing.readerclient import ReaderClient
from loyalty.backend import headoffice
from loyalty.sim import sampleshop


def shop_many(chain, r, n, prefix, committed):
    for i in range(n):
        _, c = chain.shop(r, "%s-%03d" % (prefix, i), card=sampleshop.card_number(1 + i % 40))
        committed[c["seq"]] = "%s-%03d" % (prefix, i)


@pytest.mark.parametrize("when", ["request", "answer"])
def test_connection_dropped_before_and_after_the_commit(tmp_path, when):
    with Chain(tmp_path, readers=["R1"]) as chain:
        r = chain.reader("R1")
        link = chain.links["R1"]
        committed = {}
        for round_ in range(3):
            link.drop(when, 2)  # the next two requests die, before or after the server's commit
            shop_many(chain, r, 5, "T%d" % round_, committed)
            wait_for(lambda: link.dropped[when] >= 2 * (round_ + 1), timeout=40,
                     what="the drops of round %d (%r)" % (round_, link.dropped))
            # caught up before the next round: failures in a row back off ever longer
            wait_for(lambda: chain.synced(r), timeout=60, what="R1 to catch up")
        n = chain.check_exactly_once("R1", committed)
        assert n == 15
        if when == "answer":
            # the server did store batches whose answers were lost: the reader sent them
            # again, and the second time nothing new was stored
            again = chain.db_rows("SELECT count(*) FROM batches WHERE reader_id='R1' AND outcome='accepted'"
                                  " AND count > 0 AND fresh = 0")[0][0]
            assert again >= 1
        assert wait_for(lambda: chain.state_of("R1") == "in_sync", what="in sync on the dashboard")
        print("%s dropped: %d receipts checked, each stored once" % (when, n))


def test_the_same_batch_twice_at_once(tmp_path):
    with Chain(tmp_path, readers=["R1"]) as chain:
        db_rules = chain.change(headoffice.current_rules)[1]
        client = ReaderClient("R1", chain.keys["R1"], chain.backend.url, db_rules, seed=3)
        now = int(time.time())
        answers = []
        checked = 0
        for round_ in range(8):
            body = client.batch_body(client.make_sales(50, t0=now - 86400))
            barrier = threading.Barrier(3)

            def post():
                barrier.wait()
                answers.append(client.post_batch(body))

            threads = [threading.Thread(target=post) for _ in range(3)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            checked += 50
        assert len(answers) == 24
        assert all(status == 200 for status, _ in answers), [a for a in answers if a[0] != 200][:3]
        assert max(a["ack"] for _, a in answers) == 400
        committed = {seq: "R1-%06d" % seq for seq in range(1, 401)}
        assert chain.check_exactly_once("R1", committed) == checked == 400
        fresh = chain.db_rows("SELECT sum(fresh), count(*) FROM batches WHERE reader_id='R1' AND outcome='accepted'")[0]
        assert fresh == (400, 24)  # 24 batches taken, 400 receipts stored: none twice
        print("same batch three times at once: %d receipts checked, each stored once" % checked)


def test_server_killed_mid_batch_and_restarted(tmp_path):
    with Chain(tmp_path, readers=["R1", "R2"]) as chain:
        readers = [chain.reader("R1"), chain.reader("R2")]
        rules = chain.change(headoffice.current_rules)[1]
        client = ReaderClient("R9", None, chain.backend.url, rules, seed=5)
        chain.change(headoffice.add_store, "S9", "Magazzino")
        client.key = chain.change(headoffice.add_reader, "R9", "S9")
        committed = {"R1": {}, "R2": {}}
        stop = threading.Event()
        in_flight = threading.Event()  # set while a flood batch is on its way or being stored
        posted = {"batches": 0, "errors": 0, "started": 0, "cut": set()}

        def flood():
            # a reader with a long backlog: batches of 200, one after another, so the kill
            # lands while the server is inside a batch
            pending = []
            t0 = int(time.time()) - 3 * 86400
            while not stop.is_set():
                if not pending:
                    pending = client.make_sales(200, t0=t0)
                posted["started"] += 1
                in_flight.set()
                try:
                    status, answer = client.post_batch(client.batch_body(pending))
                except OSError:  # the server died under this batch, or was down
                    posted["cut"].add(posted["started"])
                    posted["errors"] += 1
                    time.sleep(0.05)  # a pause before trying again, as a reader backs off: not a wait
                    continue
                finally:
                    in_flight.clear()
                posted["batches"] += 1
                if status == 200:
                    pending = [p for p in pending if int(p.split(b'"seq":')[1].split(b",")[0]) > answer["ack"]]

        flooder = threading.Thread(target=flood)
        flooder.start()
        rng = random.Random(11)
        mid_batch = kills = 0
        try:
            for kill in range(8):
                if mid_batch == 3:
                    break
                for r in readers:
                    shop_many(chain, r, 4, "K%d%s" % (kill, r.reader), committed[r.reader])
                wait_for(lambda: posted["batches"] > 2 * (kill + 1), timeout=60, what="batches in flight")
                in_flight.wait(10)
                # where in the batch the kill lands, at random (a 200-receipt batch takes the
                # server longer): not a wait; the flood batch is on its way (in_flight)
                time.sleep(rng.uniform(0.0, 0.005))
                post = posted["started"]
                chain.backend.kill()
                kills += 1
                wait_for(lambda: posted["started"] > post or post in posted["cut"], timeout=30,
                         what="the flood batch in flight at kill %d to end" % kill)
                mid_batch += post in posted["cut"]  # it died with the server: cut in the middle
                for r in readers:  # the readers keep selling while the backend is down
                    shop_many(chain, r, 2, "D%d%s" % (kill, r.reader), committed[r.reader])
                chain.backend.start()
        finally:
            stop.set()
            flooder.join()
        for r in readers:
            wait_for(lambda: chain.synced(r), timeout=90, what="%s to catch up after the kills" % r.reader)
        checked = sum(chain.check_exactly_once(name, committed[name]) for name in committed)
        assert mid_batch == 3, "only %d kills landed inside a batch" % mid_batch
        flood_rows = chain.db_rows("SELECT count(*), min(seq), max(seq), count(DISTINCT seq) FROM receipts"
                                   " WHERE reader_id='R9'")[0]
        assert flood_rows[0] == flood_rows[2] == flood_rows[3] and flood_rows[1] == 1  # 1..n, none twice
        # every batch taken is stored whole: as many receipts carry its id as it had fresh
        torn = chain.db_rows("SELECT b.id, b.fresh, count(r.seq) FROM batches b LEFT JOIN receipts r"
                             " ON r.batch_id = b.id WHERE b.outcome = 'accepted' GROUP BY b.id"
                             " HAVING b.fresh != count(r.seq)")
        assert torn == []
        for name in committed:
            assert wait_for(lambda: chain.state_of(name) == "in_sync", what="%s in sync" % name)
        for name in ("R1", "R2", "R9"):  # stored before a kill, awaiting audit: audited after the restart
            chain.wait_audited(name, timeout=120)
        print("%d SIGKILLs, 3 inside a batch: %d till receipts and %d flood receipts checked, each stored once;"
              " %d posts failed" % (kills, checked, flood_rows[0], posted["errors"]))
