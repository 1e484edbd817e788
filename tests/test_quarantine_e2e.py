"""No reader is ever stuck behind one record: the real firmware on MicroPython, whose
journal holds a record an older firmware wrote against the schema (a line of quantity 0),
syncs with the backend on a real server. The batch is refused once; the reader sends
the same bytes again, the backend takes the record into quarantine and acknowledges it,
the journal moves on, and the record stays out of the figures, on the reader's page."""
import os
import subprocess
import time

from loyalty.testing.chain import Chain, wait_for
from loyalty.sim import simboard

# Run by the reader's own MicroPython with the firmware's journal: what an older firmware,
# without the record check, appended (firmware/app.py checks every record since).
INJECT = """
import sys
from journal import Journal
from protocol.records import make_record
j = Journal(sys.argv[1], capacity=512 * 1024)
line = {"sku": "8001", "cat": "frutta", "qty": 0, "price": 250}
rec = make_record("sale", "R1", 0, "", int(sys.argv[2]), "6001000000000042", 2, [line], 0, 0, [], 1,
                  "T-old", "Q99")
print("journaled", j.append(rec))
"""


def journal_old_record(r, folder):
    script = folder / "inject.py"
    script.write_text(INJECT)
    env = dict(os.environ, MICROPYPATH=":".join(str(b) for b in r._builds()))
    out = subprocess.run([simboard.micropython(), "-X", "heapsize=256k", str(script),
                          r.cfg["root"] + "/journal", str(int(time.time()))],
                         env=env, cwd=str(simboard.ROOT), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    return int(out.stdout.split()[-1])


def test_a_reader_with_a_bad_record_in_its_journal_is_not_stuck(tmp_path):
    with Chain(tmp_path, readers=["R1"]) as chain:
        r = chain.reader("R1")
        chain.shop(r, "T-1")
        wait_for(lambda: chain.synced(r), timeout=30, what="the first sale acknowledged")
        r.power_cut()
        bad_seq = journal_old_record(r, tmp_path)
        assert bad_seq == 2
        r.start()
        q, c = chain.shop(r, "T-3")
        assert c["seq"] == 3 and c["discount"] > 0

        # refused once (the reader shows it), then quarantined when the same bytes come again
        wait_for(lambda: chain.db_rows("SELECT count(*) FROM batches WHERE outcome='refused'")[0][0] >= 1,
                 timeout=30, what="the first refusal")
        refused = chain.db_rows("SELECT code, field FROM batches WHERE outcome='refused'")[0]
        assert tuple(refused) == ("batch.record", "records[0].lines[0].qty")
        wait_for(lambda: chain.synced(r), timeout=60, what="the reader's journal to move on")
        assert r.status()["pending"] == 0

        assert [row[0] for row in chain.db_rows("SELECT seq FROM receipts ORDER BY seq")] == [1, 3]
        (seq, field, acked, record), = chain.db_rows("SELECT seq, field, acked_t, record FROM quarantine")
        assert (seq, field) == (2, "records[0].lines[0].qty") and acked is not None and '"qty":0' in record
        # the figures count the two real sales only
        assert chain.db_rows("SELECT sum(receipts) FROM day_totals")[0][0] == 2
        page = chain.dashboard().json("/readers/R1.json")
        assert page["reader"]["acked_seq"] == 3
        assert [q["seq"] for q in page["quarantine"]] == [2] and page["quarantine_unjudged"] == 1
        chain.wait_audited("R1")
        assert [row[0] for row in chain.db_rows("SELECT audit FROM receipts")] == ["ok", "ok"]
