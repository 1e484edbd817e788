"""`make demo`, the README's main command, runs its scripted part to the end: the chain set
up by the operator's commands, shoppers served, a reader cut off and caught up, every
reader in sync, no discount mismatch; customer care's contacts recorded through its page;
and a second run carries on with the same data."""
import re
import sqlite3
import subprocess
import sys

from loyalty.testing.runtimes import ROOT


def run_demo(folder):
    r = subprocess.run([sys.executable, str(ROOT / "demo" / "demo.py"), "--once", "--shoppers", "8",
                        "--pause", "0.1", "--port", "0", "--data", str(folder)],
                       capture_output=True, text=True, timeout=400, cwd=str(ROOT))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout


def stored(folder, sql):
    db = sqlite3.connect(str(folder / "instance" / "loyalty.db"))
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def test_the_demo_runs_and_keeps_its_data(tmp_path):
    out = run_demo(tmp_path)
    assert "setting up the chain" in out
    assert "*** network cut for R2" in out and "*** network back for R2" in out
    first = re.search(r"every reader in sync: (\d+) receipts at the backend, each once; (\d+) audited again"
                      r" with the engine, 0 discount mismatches", out)
    assert first and first.group(1) == first.group(2), out[-2000:]
    assert re.search(r"login: manager / \S+", out)
    # the first 120 cards less the blocked ones (sampleshop.BLOCKED) enrolled from the
    # desk's CSV; a third of the adults consent to profiling
    customers = re.search(r"(\d+) customers, (\d+) of them consenting to profiling; (\d+) receipts are customers'", out)
    assert customers and customers.group(1) == "118" and customers.group(2) == "35", out[-2000:]
    assert 0 < int(customers.group(3)) <= int(first.group(1))
    assert re.search(r"customer care: http://\S+/customers   login: care / \S+", out)
    assert re.search(r"shopper's page: http://\S+/me/   card 6001000000000001 \(Giulia Rossi\); the sign-in code "
                     r"arrives by e-mail in \S+mail", out), out[-2000:]
    # care found the Niccolò D'Angelo of card ...0022 (card 86's is another) and the shopper
    contacts = """SELECT k.card, c.name, x.channel, x.operator, x.reason FROM care_contacts x
                  JOIN customers c ON c.id = x.customer_id JOIN cards k ON k.customer_id = c.id ORDER BY x.id"""
    expected = [("6001000000000022", "Niccolò D'Angelo", "phone", "care", "Sconto non applicato"),
                ("6001000000000001", "Giulia Rossi", "email", "care", "Vedere i propri dati")]
    assert stored(tmp_path, contacts) == expected
    assert "customer care recorded a contact with Niccolò D'Angelo on their page" in out
    again = run_demo(tmp_path)
    assert "setting up the chain" not in again
    assert stored(tmp_path, contacts) == expected and "customer care recorded" not in again  # once per chain
    second = re.search(r"every reader in sync: (\d+) receipts", again)
    assert second and int(second.group(1)) > int(first.group(1))
