"""The auditor (backend/auditor.py): receipts stored awaiting audit, audited afterwards with
the verdicts ingestion used to give, whatever the chunks, by two auditors at once, from
the loop, the CLI and `python -m loyalty.backend.auditor`; the reader page counts what awaits."""
import subprocess
import sys
import threading
import time

import pytest

from loyalty.testing import shop
from loyalty.backend import auditor, headoffice
from loyalty.backend.dashboard import overview
from loyalty.backend.audit import Auditor, RulesBook
from loyalty.backend.db import connect
from dashrows import add_manager, login
from loyalty.protocol import engine
from loyalty.protocol.canonical import decode

DAY = 86400
LINE = [{"sku": "1", "cat": "x", "qty": 1, "price": 338}]  # gold (50 %) takes 1.69 of it
LONG_AGO = 1600000000
OTHER_GOLD = "6001000000000067"  # a second gold card


def audit_everything(db, limit=auditor.CHUNK):
    book = RulesBook()
    total = 0
    while True:
        n = auditor.audit_pending(db, book, limit=limit)
        if not n:
            return total
        total += n


def verdicts(db):
    return {(r, s): (a, d) for r, s, a, d in db.execute("SELECT reader_id, seq, audit, audit_detail FROM receipts")}


def as_at_ingestion(db, reader_id, batches):
    """The verdicts ingestion gave before the auditor existed: one Auditor per batch, over
    what was stored before the batch (its first seq - 1, that receipt's time)."""
    book = RulesBook()
    out = {}
    first = 1
    for records in batches:
        recs = [decode(x) for x in records]
        row = db.execute("SELECT t FROM receipts WHERE reader_id=? AND seq=?", [reader_id, first - 1]).fetchone()
        cards = {r["card"] for r in recs if r["kind"] == "sale" and r["discount"]}
        a = Auditor(db, reader_id, book, first - 1, row[0] if row else None, cards)
        for rec in recs:
            out[(reader_id, rec["seq"])] = a.check(rec)
        first += len(recs)
    return out


def send(r, records):
    resp, _ = r.send(records)
    assert resp.status_code == 200, resp.data  # a mismatch is never a refusal
    return decode(resp.data)


def reversal(r, kind, sale, returning, returned, **override):
    s = decode(sale)
    rev = (engine.void(s["lines"], s["disc"], returned) if kind == "void"
           else engine.reverse(s["lines"], s["disc"], returned, returning))
    fields = dict(card=s["card"], tier=s["tier"], lines=s["lines"], gross=rev["gross"], discount=rev["discount"],
                  disc=rev["disc"], rules=s["rules"], ref=s["seq"], returned=returned, returning=returning)
    fields.update(override)
    return r.record(kind, **fields)


@pytest.fixture(autouse=True)
def directory(db):
    """The gold cards in the directory since long before the tests' sales: the audit allows
    a tier only if the card had it at the sale."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(headoffice.common, "now", lambda: LONG_AGO)
        headoffice.import_cards(db, [(shop.GOLD, 2), (OTHER_GOLD, 2)])


@pytest.fixture
def day_rules(db):
    """Gold 50 %, a card's day limit of 2.00 on a reader."""
    headoffice.add_tier(db, 0, "base", 200)
    headoffice.add_tier(db, 2, "gold", 5000)
    version = headoffice.set_limits(db, receipt_max_cents=5000, offline_receipt_max_cents=5000,
                                    card_day_max_cents=200, stale_hours=48)
    return headoffice.rules_at(db, version)


def day_batches(r, rules):
    """Three batches whose verdicts depend on where one batch ends and the next begins."""
    d = (int(time.time()) // DAY - 3) * DAY
    sale = r.sale(rules, LINE, t=d + 3600)                                      # day d: 1.69 of 2.00
    first = [sale, r.sale(rules, LINE, card=OTHER_GOLD, t=d + 3660),
             reversal(r, "return", sale, [1], [0], t=d + DAY + 600)]           # a return stamped day d+1
    # the reader's day is rolled by sales, not returns: this batch is audited from the
    # last stored receipt's day (d+1), where the card has used nothing yet
    second = [r.sale(rules, LINE, t=d + 7200),                                 # clock back on day d
              r.sale(rules, LINE, t=d + DAY + 700),                            # greedy: 1.69 again
              r.record("void", lines=LINE, rules=rules["version"], t=d + DAY + 800)]
    third = [reversal(r, "void", second[0], [1], [0], t=d + DAY + 900),
             reversal(r, "return", sale, [1], [0], t=d + DAY + 950),           # returned twice
             r.sale(rules, LINE, t=d + 2 * DAY)]
    return [first, second, third]


# -- the request path ------------------------------------------------------------------------

def test_ingestion_acknowledges_before_the_audit(db, signed_reader, shop_rules, client):
    r = signed_reader()
    rules = headoffice.rules_at(db, shop_rules)
    t = int(time.time())
    q = engine.quote(rules, shop.basket()["lines"], 2, {"now": t, "last_sync": t, "card_day_used": 0})
    disc = [dict(d) for d in q["disc"]]
    disc[-1]["cents"] += 50
    answer = send(r, [r.sale(rules, t=t), r.sale(rules, t=t, discount=q["discount"] + 50, disc=disc)])
    assert answer["ack"] == 2 and answer["refused"] is None
    assert list(verdicts(db).values()) == [(None, None)] * 2
    assert auditor.awaiting(db) == auditor.awaiting(db, "R1") == 2 and auditor.awaiting(db, "R2") == 0
    page = overview.reader_detail(db, "R1", t, client.application.config)
    assert (page["awaiting_audit"], page["mismatches_total"]) == (2, 0)

    assert auditor.audit_pending(db, RulesBook()) == 2
    assert [v[0] for _, v in sorted(verdicts(db).items())] == ["ok", "mismatch"]
    page = overview.reader_detail(db, "R1", t, client.application.config)
    assert (page["awaiting_audit"], page["mismatches_total"]) == (0, 1)
    assert auditor.audit_pending(db, RulesBook()) == 0  # nothing twice


def test_the_reader_page_says_how_many_await_audit(db, signed_reader, shop_rules, client):
    r = signed_reader()
    rules = headoffice.rules_at(db, shop_rules)
    send(r, [r.sale(rules) for _ in range(3)])
    add_manager(db)
    login(client)
    assert client.get("/readers/R1.json").get_json()["awaiting_audit"] == 3
    assert '3 receipts awaiting audit' in client.get("/readers/R1").get_data(as_text=True)
    audit_everything(db)
    assert client.get("/readers/R1.json").get_json()["awaiting_audit"] == 0
    assert '0 receipts awaiting audit' in client.get("/readers/R1").get_data(as_text=True)


# -- the verdicts ----------------------------------------------------------------------------

@pytest.mark.parametrize("limit", [1, 2, 4, 500])
def test_the_verdicts_ingestion_gave_whatever_the_chunks(db, signed_reader, day_rules, limit):
    r1, r2 = signed_reader("R1"), signed_reader("R2")
    b1, b2 = day_batches(r1, day_rules), day_batches(r2, day_rules)
    for a, b in zip(b1, b2):  # the two readers' receipts interleave in storing order
        send(r1, a)
        send(r2, b)
    want = as_at_ingestion(db, "R1", b1)
    want.update(as_at_ingestion(db, "R2", b2))
    assert audit_everything(db, limit) == 18
    assert verdicts(db) == want
    got = [want[("R1", seq)][0] for seq in range(1, 10)]
    assert got == ["ok", "ok", "ok", "ok", "mismatch", "ok", "ok", "mismatch", "ok"]
    # the batch boundary matters: audited in one pass, the sale of the second batch would
    # count the first batch's sale on day d and be a mismatch
    one_pass = Auditor(db, "R1", RulesBook(), 0, None)
    assert [one_pass.check(decode(x))[0] for x in b1[0] + b1[1]][3] == "mismatch"


def test_the_card_day_counts_this_readers_stored_sales_only(db, signed_reader, day_rules):
    # the day's usage comes from the cards' index (audit.day_used_sql), which also finds
    # the card's receipts on other readers and its returns: they must not count
    r1, r2 = signed_reader("R1"), signed_reader("R2")
    d = (int(time.time()) // DAY - 1) * DAY
    sale = r1.sale(day_rules, LINE, t=d + 3600)                                   # 1.69 of R1's 2.00
    send(r1, [sale, reversal(r1, "return", sale, [1], [0], t=d + 3700)])
    send(r2, [r2.sale(day_rules, LINE, card=OTHER_GOLD, t=d + 3600)])
    send(r2, [r2.sale(day_rules, LINE, t=d + 3800)])                             # R2's day: 1.69 again
    send(r1, [r1.sale(day_rules, LINE, t=d + 3900)])                             # a return gives nothing back
    assert audit_everything(db) == 5
    v = verdicts(db)
    assert [v[("R1", s)][0] for s in (1, 2, 3)] == ["ok", "ok", "mismatch"]
    assert "day used 1.69" in v[("R1", 3)][1]
    assert [v[("R2", s)][0] for s in (1, 2)] == ["ok", "ok"]


def test_two_auditors_at_once_write_each_verdict_once(app, db, signed_reader, shop_rules):
    rules = headoffice.rules_at(db, shop_rules)
    sent = {}
    for name in ("R1", "R2", "R3"):
        r = signed_reader(name)
        sent[name] = []
        for _ in range(3):
            records = [r.sale(rules) for _ in range(15)] + [r.overpaid_sale(rules)]  # one mismatch a batch
            send(r, records)
            sent[name].append(records)
    want = {}
    for name, batches in sent.items():
        want.update(as_at_ingestion(db, name, batches))
    start = threading.Barrier(2)
    counts = []

    def audit():
        own = connect(app.config["DATABASE"])
        try:
            tally = {}
            book = RulesBook()
            start.wait()
            while auditor.audit_pending(own, book, limit=7, verdicts=tally) or auditor.awaiting(own):
                pass
            counts.append(tally)
        finally:
            own.conn.close()

    threads = [threading.Thread(target=audit) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(want) == 144 and sum(1 for v in want.values() if v[0] == "mismatch") >= 9
    for verdict in ("ok", "mismatch"):
        assert sum(c.get(verdict, 0) for c in counts) == sum(1 for v in want.values() if v[0] == verdict)
    assert verdicts(db) == want


def test_a_receipt_nobody_could_have_sent_does_not_stop_the_audit(db, signed_reader, shop_rules):
    r = signed_reader()
    rules = headoffice.rules_at(db, shop_rules)
    send(r, [r.sale(rules)])
    db["receipts"].insert({"reader_id": "R0", "seq": 1, "store_id": "S1", "kind": "sale", "record": "{not json"})
    send(r, [r.sale(rules)])
    assert audit_everything(db) == 3
    v = verdicts(db)
    assert v[("R0", 1)] == ("mismatch", "the audit cannot read this receipt's record")
    assert v[("R1", 1)][0] == v[("R1", 2)][0] == "ok"


# -- the loop, the command, the module -------------------------------------------------------

def test_the_loop_audits_what_arrives_until_stopped(app, db, signed_reader, shop_rules):
    r = signed_reader()
    rules = headoffice.rules_at(db, shop_rules)
    stop = threading.Event()
    loop = threading.Thread(target=auditor.run, args=(app.config["DATABASE"], stop, 0.02))
    loop.start()
    try:
        send(r, [r.sale(rules), r.overpaid_sale(rules)])
        end = time.time() + 10
        while auditor.awaiting(db) and time.time() < end:
            time.sleep(0.02)
        assert [v[0] for _, v in sorted(verdicts(db).items())] == ["ok", "mismatch"]
    finally:
        stop.set()
        loop.join(5)
    assert not loop.is_alive()


class Burst:
    """A `stop` for auditor.run that drives it: while run waits, the next batch arrives
    (for the first `batches` waits); notes how many receipts were audited at each wait."""

    def __init__(self, db, post, batches, looks_after=5):
        self.db, self.post, self.batches, self.looks_after = db, post, batches, looks_after
        self.audited = []

    def is_set(self):
        return len(self.audited) >= self.batches + self.looks_after

    def wait(self, _seconds):
        self.audited.append(self.db.execute("SELECT count(*) FROM receipts WHERE audit IS NOT NULL").fetchone()[0])
        if len(self.audited) <= self.batches:
            self.post()


@pytest.mark.parametrize("patience", [100.0, 0.03])
def test_the_loop_lets_a_burst_pass_first_but_not_for_ever(app, db, signed_reader, shop_rules, patience):
    r = signed_reader()
    rules = headoffice.rules_at(db, shop_rules)
    burst = Burst(db, lambda: send(r, [r.sale(rules) for _ in range(5)]), batches=8)
    auditor.run(app.config["DATABASE"], burst, interval=0.01, patience=patience)
    assert burst.audited[-1] == 40  # all audited once the batches stopped coming
    during = burst.audited[:8]
    if patience > 1:
        assert during == [0] * 8  # nothing written while the batches kept coming
    else:
        assert during[-1] > 0  # three waits, then it audits alongside the burst


def batch_of(db):
    return {(r, s): b for r, s, b in db.execute("SELECT reader_id, seq, batch_id FROM receipts")}


def audited(db):
    return {k for k, v in verdicts(db).items() if v[0] is not None}


def test_auditors_share_the_work_by_batch(db, signed_reader, shop_rules):
    rules = headoffice.rules_at(db, shop_rules)
    sent = {}
    for name in ("R1", "R2"):
        r = signed_reader(name)
        sent[name] = []
        for _ in range(3):
            records = [r.sale(rules) for _ in range(4)] + [r.overpaid_sale(rules)]
            send(r, records)
            sent[name].append(records)
    want = as_at_ingestion(db, "R1", sent["R1"])
    want.update(as_at_ingestion(db, "R2", sent["R2"]))
    # stored some other way, without a batch: auditor 0's share
    db["receipts"].insert({"reader_id": "R0", "seq": 1, "store_id": "S1", "kind": "sale", "record": "{not json"})
    book = RulesBook()
    while auditor.audit_pending(db, book, limit=3, part=(1, 2)):
        pass
    odd = {k for k, b in batch_of(db).items() if b is not None and b % 2}
    assert audited(db) == odd and len(odd) == 15  # batches 1, 3, 5 of the six
    while auditor.audit_pending(db, book, limit=3, part=(0, 2)):
        pass
    assert auditor.awaiting(db) == 0
    got = verdicts(db)
    assert got.pop(("R0", 1)) == ("mismatch", "the audit cannot read this receipt's record")
    assert got == want  # the verdicts one auditor gives, whoever audited which batch


@pytest.mark.parametrize("k", [0, 1])
def test_in_a_burst_auditor_0_audits_every_share_and_the_others_wait(app, db, signed_reader, shop_rules, k):
    r = signed_reader()
    rules = headoffice.rules_at(db, shop_rules)
    send(r, [r.sale(rules) for _ in range(5)])  # batch 1, share 1 of 2
    send(r, [r.sale(rules) for _ in range(5)])  # batch 2, share 0
    burst = Burst(db, lambda: send(r, [r.sale(rules) for _ in range(5)]), batches=8)
    auditor.run(app.config["DATABASE"], burst, interval=0.01, patience=0.03, part=(k, 2))
    shares = batch_of(db)
    mine = {key for key, b in shares.items() if b % 2 == k}
    theirs = set(shares) - mine
    done = audited(db)
    assert mine <= done  # its whole share, once the batches stopped coming
    if k == 0:
        assert done & theirs  # during the burst it audited the other share too
        assert burst.audited[7] > burst.audited[0]
    else:
        assert done == mine
        assert burst.audited[:8] == [5] * 8  # its share of the backlog, then nothing in the burst


@pytest.mark.parametrize("part", ["2/2", "-1/2", "1", "a/2", "1/2/3"])
def test_an_auditor_part_is_k_of_n(app, part, capsys):
    with pytest.raises(SystemExit) as e:
        auditor.main(["--db", app.config["DATABASE"], "--part=" + part, "--once"])
    assert e.value.code == 2
    assert "%s is not K/N with 0 <= K < N" % part in capsys.readouterr().err


def test_chunks_grow_while_the_auditor_is_behind(app, db, signed_reader, shop_rules, monkeypatch):
    r = signed_reader()
    rules = headoffice.rules_at(db, shop_rules)
    for _ in range(8):
        send(r, [r.sale(rules) for _ in range(5)])
    sizes = []
    audit_pending = auditor.audit_pending

    def spy(db, book, limit, verdicts=None, part=None):
        sizes.append(limit)
        return audit_pending(db, book, limit, verdicts, part)

    monkeypatch.setattr(auditor, "audit_pending", spy)
    auditor.run(app.config["DATABASE"], Burst(db, None, batches=0, looks_after=2), interval=0.01, limit=4, most=16)
    assert auditor.awaiting(db) == 0
    # 40 receipts: 4, 8, 16 (full chunks), then 12 of 16: caught up, small chunks again
    assert sizes == [4, 8, 16, 16, 4]


def test_the_audit_command(db, signed_reader, shop_rules, runner):
    r = signed_reader()
    rules = headoffice.rules_at(db, shop_rules)
    send(r, [r.sale(rules), r.sale(rules), r.overpaid_sale(rules)])
    result = runner.invoke(args=["audit"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "audited 3 receipts, 1 mismatch"
    assert runner.invoke(args=["audit"]).output.strip() == "audited 0 receipts, 0 mismatches"


def test_python_m_backend_auditor_once(app, db, signed_reader, shop_rules):
    r = signed_reader()
    rules = headoffice.rules_at(db, shop_rules)
    send(r, [r.sale(rules), r.overpaid_sale(rules)])
    out = subprocess.run([sys.executable, "-m", "loyalty.backend.auditor", "--db", app.config["DATABASE"], "--once"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "audited 2 receipts, 1 mismatch"
    assert auditor.awaiting(db) == 0
