"""Retention (backend/privacy/retention.py): each period removes exactly what is older,
worked on hand-picked dates with rows one second either side of each cutoff; the command;
a run killed mid-way leaves the database whole and the next run finishes the job."""
import calendar
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from loyalty.backend.db import connect, transaction
from loyalty.backend.privacy import daily, retention

from customerrows import card, consent, customer
from test_minimise import receipt


def utc(y, mo, d, h=0, mi=0, s=0):
    return calendar.timegm((y, mo, d, h, mi, s))


NOW = utc(2026, 3, 31, 12)  # Tuesday 31 March 2026, 12:00 UTC


def test_months_are_calendar_months_back_in_utc_clamped_to_the_months_end():
    assert retention.months_back(NOW, 1) == utc(2026, 2, 28, 12)
    assert retention.months_back(utc(2024, 3, 31, 23, 59, 59), 1) == utc(2024, 2, 29, 23, 59, 59)  # leap year
    assert retention.months_back(NOW, 12) == utc(2025, 3, 31, 12)
    assert retention.months_back(NOW, 13) == utc(2025, 2, 28, 12)
    assert retention.months_back(utc(2026, 1, 31), 2) == utc(2025, 11, 30)
    assert retention.months_back(utc(2026, 1, 15, 8, 30), 60) == utc(2021, 1, 15, 8, 30)


# each kind's cutoff at NOW with the defaults, by hand
PROFILING = utc(2025, 3, 31, 12)   # 12 months
MARKETING = utc(2024, 3, 31, 12)   # 24 months
CARE = utc(2024, 1, 31, 12)        # 26 months
TRAIL = utc(2021, 3, 31, 12)       # 60 months
VIEWS = utc(2025, 3, 31, 12)       # 12 months
CONSENTS = utc(2021, 3, 31, 12)    # 60 months


def _three(cutoff):
    return (cutoff - 1, cutoff, cutoff + 1)


def _setup(db):
    with transaction(db):
        yes = customer(db, "C-yes", t=utc(2020, 1, 1))
        card(db, "6001000000000001", yes)
        yes_consent = consent(db, yes, "profiling", 1, t=utc(2020, 1, 1))  # in force: stays
        for i, t in enumerate(_three(PROFILING)):        # a consenting customer's receipts
            receipt(db, i + 1, "6001000000000001", t)
        receipt(db, 4, "9999", PROFILING - 1, audit="mismatch")  # kept for a person: not longer than this
        receipt(db, 5, "9999", PROFILING - 1, audit=None)
        for table, cutoff in (("marketing_log", MARKETING), ("care_contacts", CARE)):
            for t in _three(cutoff):
                extra = ", 'desk'" if table == "care_contacts" else ""
                db.execute("INSERT INTO %s(customer_id, t, channel) VALUES(?, ?%s)"
                           % (table, extra if extra else ", 'mail'"), [yes, t])
        for t in _three(TRAIL):
            db.execute("INSERT INTO trail(t, actor, action, subject) VALUES(?, 'anna', 'erase', 'C-x')", [t])
        for t in _three(NOW - retention.SHOPPER_CODES_KEPT):
            db.execute("INSERT INTO shopper_codes(customer_id, code_hash, t, expires_t) VALUES(?, 'h', ?, ?)",
                       [yes, t, t + 600])
        for t in _three(VIEWS):
            db.execute("INSERT INTO views(t, actor, subject, what) VALUES(?, 'anna', 'C-yes', 'page')", [t])
        # consents: the living customer's superseded rows either side of the cutoff, and
        # their rows in force however old; erased customers either side of the cutoff
        old = customer(db, "C-old", t=utc(2019, 1, 1))
        ids = {"yes": yes_consent, "superseded_before": consent(db, old, "marketing", 1, t=CONSENTS - 1),
               "superseded_at": consent(db, old, "marketing", 0, t=CONSENTS),
               "in_force": consent(db, old, "marketing", 1, t=CONSENTS + 1),
               "in_force_old": consent(db, old, "scheme", 1, t=utc(2019, 1, 1))}
        gone = customer(db, "C-gone", t=utc(2019, 1, 1), status="erased", erased_t=CONSENTS - 1)
        ids["erased_before"] = consent(db, gone, "scheme", 1, t=utc(2019, 1, 1))
        late = customer(db, "C-late", t=utc(2019, 1, 1), status="erased", erased_t=CONSENTS)
        ids["erased_at"] = consent(db, late, "scheme", 1, t=utc(2019, 1, 1))
    return ids


def _ts(db, table):
    return [t for (t,) in db.execute("SELECT t FROM %s ORDER BY t" % table)]


def test_retention_removes_exactly_what_is_older_than_each_period(db):
    ids = _setup(db)
    removed = retention.run(db, NOW)
    assert removed == {"fold_due": 0, "profiling": 3, "quarantine": 0, "marketing": 1, "care_contacts": 1,
                       "trail": 1, "views": 1, "consents": 2, "closed_accounts": 0, "shopper_codes": 1,
                       "directory_removals": 0}
    assert {s for (s,) in db.execute("SELECT seq FROM receipts WHERE record IS NOT NULL")} == {2, 3}
    assert _ts(db, "marketing_log") == [MARKETING, MARKETING + 1]
    assert _ts(db, "care_contacts") == [CARE, CARE + 1]
    assert _ts(db, "trail") == [TRAIL, TRAIL + 1]
    assert _ts(db, "views") == [VIEWS, VIEWS + 1]
    day = NOW - retention.SHOPPER_CODES_KEPT
    assert _ts(db, "shopper_codes") == [day, day + 1]
    kept = {i for (i,) in db.execute("SELECT id FROM consents")}
    assert kept == {ids[k] for k in ("yes", "superseded_at", "in_force", "in_force_old", "erased_at")}
    # the same run again removes nothing
    assert set(retention.run(db, NOW).values()) == {0}


CLOSED = utc(2025, 12, 31, 12)     # 3 months (CLOSED_ACCOUNT_MONTHS)


def test_accounts_closed_longer_than_their_period_are_erased_and_the_others_kept(db):
    with transaction(db):
        ids = {}
        for name, closed_t in (("before", CLOSED - 1), ("at", CLOSED), ("after", CLOSED + 1)):
            ids[name] = customer(db, "C-" + name, t=utc(2020, 1, 1), status="closed")
            db.execute("UPDATE customers SET closed_t = ? WHERE id = ?", [closed_t, ids[name]])
            card(db, "600100000000000%d" % ids[name], ids[name])
    with pytest.raises(retention.RetentionSettingError) as e:  # nothing can be erased without the key
        retention.run(db, NOW)
    assert e.value.setting == "ERASURE_KEY"
    removed = retention.run(db, NOW, {"ERASURE_KEY": b"k" * 32})
    assert removed["closed_accounts"] == 1
    state = {p: (s, n) for p, s, n in db.execute("SELECT pseudonym, status, name FROM customers")}
    assert state == {"C-before": ("erased", None), "C-at": ("closed", "Name C-at"), "C-after": ("closed", "Name C-after")}
    assert [c for (c,) in db.execute("SELECT card FROM cards ORDER BY card")] == [
        "600100000000000%d" % ids["at"], "600100000000000%d" % ids["after"]]
    assert db.execute("SELECT actor, action, subject FROM trail").fetchall() == [("retention", "erase", "C-before")]
    assert retention.run(db, NOW, {"ERASURE_KEY": b"k" * 32})["closed_accounts"] == 0


def test_a_period_under_its_least_is_refused_by_name_and_nothing_is_removed(db, runner, app):
    _setup(db)
    with pytest.raises(retention.RetentionSettingError) as e:
        retention.run(db, NOW, {"VIEWS_MONTHS": 5})
    assert e.value.setting == "VIEWS_MONTHS"
    app.config["PROFILING_MONTHS"] = "12"
    result = runner.invoke(args=["retention"])
    assert result.exit_code == 1 and "PROFILING_MONTHS" in result.output
    assert db.execute("SELECT count(*) FROM receipts WHERE record IS NULL").fetchone()[0] == 0


def test_the_command_prints_each_kind_with_its_count(db, runner):
    now = int(time.time())
    with transaction(db):
        receipt(db, 1, "9999", now - 31 * 86400)
        receipt(db, 2, "9999", now - 400 * 86400, audit="mismatch")
        db.execute("INSERT INTO trail(t, actor, action) VALUES(?, 'anna', 'x')", [now - 3000 * 86400])
    result = runner.invoke(args=["retention"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "receipts whose lines were folded (return window closed, no profiling consent): 1" in lines
    assert "receipts whose lines were folded (older than the profiling period): 1" in lines
    assert "audit trail entries removed: 1" in lines
    assert len(lines) == len(retention.kinds())


def test_the_daily_job_runs_at_the_next_local_hour_and_refuses_a_wrong_one():
    import datetime
    tz = datetime.timezone(datetime.timedelta(hours=1))
    at = datetime.datetime(2026, 3, 31, 3, 29, 59, tzinfo=tz)
    assert daily.next_run(at, 3, 30) == datetime.datetime(2026, 3, 31, 3, 30, tzinfo=tz)
    assert daily.next_run(at.replace(minute=30, second=0), 3, 30) == datetime.datetime(2026, 4, 1, 3, 30, tzinfo=tz)
    assert daily.at_time("03:30") == (3, 30)
    for wrong in ("3.30", "24:00", "03:60", "", None):
        with pytest.raises(ValueError, match="RETENTION_AT"):
            daily.at_time(wrong)


# -- a run killed mid-way -------------------------------------------------------------

LINES = [{"sku": "80%02d" % k, "cat": "c%d" % (k % 4), "qty": 1 + k % 3, "price": 100 + k} for k in range(4)]


def _big(path, receipts=40000):
    """A database whose receipts are all past the profiling period: many chunks to fold."""
    from loyalty.backend.db import migrate
    db = connect(path)
    migrate(db)
    t0 = int(time.time()) - 500 * 86400
    rows = []
    for i in range(receipts):
        lines = LINES[i % 4:] + LINES[:i % 4]
        rec = {"kind": "sale", "seq": i + 1, "lines": lines[:1 + i % 4]}
        rows.append(("R%d" % (i % 3), i + 1, "S%d" % (i % 2), t0 + i * 60, "2024-%02d-%02d" % (1 + i % 12, 1 + i % 28),
                     "600100%010d" % (i % 500), json.dumps(rec), 1 + i % 4))
    with transaction(db):
        db.conn.executemany("INSERT INTO receipts(reader_id, seq, store_id, kind, t, day, card, tier, gross, discount, "
                            "rules, hash, record, audit, lines) VALUES(?, ?, ?, 'sale', ?, ?, ?, 0, 0, 0, 0, 'h', ?, "
                            "'ok', ?)", rows)
        c = customer(db, "C-1", t=t0)
        db.conn.executemany("INSERT INTO marketing_log(customer_id, t) VALUES(?, ?)",
                            [(c, t0 - 300 * 86400 - i) for i in range(3000)])
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.conn.close()
    return sum(line["qty"] for row in rows for line in json.loads(row[6])["lines"])


def _units(db):
    """Units in the product totals plus units in lines still on receipts."""
    folded = db.execute("SELECT coalesce(sum(qty), 0) FROM product_day_totals").fetchone()[0]
    left = db.execute("SELECT coalesce(sum(json_extract(j.value, '$.qty')), 0) FROM receipts, "
                      "json_each(receipts.record, '$.lines') j WHERE record IS NOT NULL").fetchone()[0]
    return folded + left


def _state(db):
    return (db.execute("SELECT reader_id, seq, record, folded_t IS NOT NULL FROM receipts ORDER BY reader_id, seq"
                       ).fetchall(),
            db.execute("SELECT * FROM product_day_totals ORDER BY 1, 2, 3, 4").fetchall(),
            db.execute("SELECT * FROM marketing_log ORDER BY id").fetchall())


def test_a_run_killed_mid_way_leaves_the_database_whole_and_the_next_run_finishes(tmp_path):
    instance = tmp_path / "instance"
    instance.mkdir()
    path = tmp_path / "big.db"
    units = _big(path)
    shutil.copy(path, tmp_path / "ref.db")
    (instance / "config.py").write_text("DATABASE = %r\nSECRET_KEY = 'test'\n" % str(path))
    env = dict(os.environ, LOYALTY_INSTANCE=str(instance))
    cmd = [sys.executable, "-m", "flask", "--app", "loyalty.backend.app", "retention"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    watch = connect(path)
    try:
        # kill -9 once the first chunk is committed
        deadline = time.time() + 60
        while watch.execute("SELECT count(*) FROM receipts WHERE folded_t IS NOT NULL").fetchone()[0] == 0:
            assert proc.poll() is None and time.time() < deadline, proc.communicate()
            time.sleep(0.005)
        assert proc.poll() is None, "the run ended before it could be killed: make the database bigger"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
        folded = watch.execute("SELECT count(*) FROM receipts WHERE folded_t IS NOT NULL").fetchone()[0]
        assert 0 < folded < 40000
        assert watch.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert _units(watch) == units  # every unit either in the totals or still on its receipt, once
    finally:
        watch.conn.close()
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    ref = connect(tmp_path / "ref.db")
    db = connect(path)
    try:
        retention.run(ref, int(time.time()))
        assert _units(db) == units
        assert db.execute("SELECT count(*) FROM receipts WHERE record IS NOT NULL").fetchone()[0] == 0
        assert _state(db) == _state(ref)
    finally:
        ref.conn.close()
        db.conn.close()
