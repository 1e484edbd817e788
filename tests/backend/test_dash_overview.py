"""backend.dashboard.overview without Flask: formatting, the SQL builders, the stores overview's numbers
(today in each store's time zone, across midnight), the chart's geometry, and the rule that
the overview never reads the receipts table."""
import sqlite3
from datetime import datetime, timezone

import pytest

from loyalty.backend.dashboard import overview
from loyalty.i18n import using
from dashrows import add_reader, add_store, dash_app, dash_db  # noqa: F401

# 23:30 UTC on 1 March 2025: already 2 March in Rome (00:30 CET), still 1 March in London
NOW = int(datetime(2025, 3, 1, 23, 30, tzinfo=timezone.utc).timestamp())
CFG = {"LAGGING_AFTER": 300, "OFFLINE_AFTER": 1800}


# -- formatting -----------------------------------------------------------------------------

@pytest.mark.parametrize("cents, italian, english", [
    (0, "0,00\xa0€", "€0.00"), (5, "0,05\xa0€", "€0.05"), (100, "1,00\xa0€", "€1.00"),
    (123456, "1.234,56\xa0€", "€1,234.56"), (100000000, "1.000.000,00\xa0€", "€1,000,000.00"),
    (-5, "-0,05\xa0€", "-€0.05"), (-123456, "-1.234,56\xa0€", "-€1,234.56"), (None, "0,00\xa0€", "€0.00")])
def test_euro_in_each_language(cents, italian, english):
    with using("it"):
        assert overview.euro(cents) == italian
    with using("en"):
        assert overview.euro(cents) == english


@pytest.mark.parametrize("t, tz, italian, english", [
    (NOW, "Europe/Rome", "2 mar 2025, 00:30:00 CET", "Mar 2, 2025, 12:30:00\u202fAM CET"),
    (NOW, "Europe/London", "1 mar 2025, 23:30:00 GMT", "Mar 1, 2025, 11:30:00\u202fPM GMT"),
    (NOW, "America/New_York", "1 mar 2025, 18:30:00 EST", "Mar 1, 2025, 6:30:00\u202fPM EST"),
    (NOW + 120 * 86400, "Europe/Rome", "30 giu 2025, 01:30:00 CEST", "Jun 30, 2025, 1:30:00\u202fAM CEST"),  # summer time
    (None, "Europe/Rome", "—", "—")])
def test_local_time_in_the_stores_zone(t, tz, italian, english):
    with using("it"):
        assert overview.local_time(t, overview.zone(tz)) == italian
    with using("en"):
        assert overview.local_time(t, overview.zone(tz)) == english


def test_an_unknown_zone_falls_back_to_utc():
    with using("it"):
        assert overview.local_time(NOW, overview.zone("Mars/Olympus")) == "1 mar 2025, 23:30:00 UTC"
    assert overview.zone("") is timezone.utc


@pytest.mark.parametrize("t, text", [
    (NOW, "just now"), (NOW + 30, "just now"), (NOW - 45, "45 s ago"), (NOW - 600, "10 min ago"),
    (None, "—")])
def test_ago(t, text):
    assert overview.ago(t, NOW) == text


@pytest.mark.parametrize("journal, used, capacity, text", [
    ("ok", 350, 1000, "ok, 35% used"), ("nearly_full", 925, 1000, "nearly full, 92.5% used"),
    ("full", None, None, "full"), (None, 1, 0, "unknown")])
def test_journal_text(journal, used, capacity, text):
    assert overview.journal_text(journal, used, capacity) == text


@pytest.mark.parametrize("n, text", [(None, "—"), (512, "512 B"), (49664, "48.5 KiB"),
                                     (1572864, "1.5 MiB")])
def test_size(n, text):
    assert overview.size(n) == text


@pytest.mark.parametrize("s, text", [(None, "—"), (0, "0 s"), (3, "+3 s"), (-75, "-75 s")])
def test_signed_seconds(s, text):
    assert overview.signed_seconds(s) == text


# -- the stores overview ----------------------------------------------------------------------

def day(db, store_id, d, receipts, gross, discount):
    db["day_totals"].insert({"store_id": store_id, "day": d, "receipts": receipts,
                             "gross": gross, "discount": discount})


@pytest.fixture
def shop(dash_db):
    add_store(dash_db, "S1", "Milano Centro", "Europe/Rome")
    add_store(dash_db, "S2", "London Soho", "Europe/London")
    add_store(dash_db, "S3", "Torino", "Europe/Rome")
    day(dash_db, "S1", "2025-03-01", 10, 100000, 5000)
    day(dash_db, "S1", "2025-03-02", 2, 2500, 125)
    day(dash_db, "S2", "2025-03-01", 7, 123456, 3456)
    day(dash_db, "S2", "2025-03-02", 99, 99, 99)
    ok = {"last_contact": NOW - 60, "last_batch": NOW - 60, "pending": 0, "journal": "ok",
          "used": 350, "capacity": 1000}
    add_reader(dash_db, "R1", "S1", **ok)
    add_reader(dash_db, "R2", "S1", **dict(ok, pending=4, oldest_t=NOW - 900))
    add_reader(dash_db, "R3", "S1", **dict(ok, last_contact=NOW - 7200, last_batch=NOW - 7200))
    add_reader(dash_db, "R4", "S1")
    add_reader(dash_db, "R5", "S1", **dict(ok, last_refusal_at=NOW - 30,
                                           last_refusal_code="batch.gap"))
    add_reader(dash_db, "R6", "S2", **ok)
    return dash_db


def by_id(items):
    return {i["id"]: i for i in items}


def test_todays_totals_in_each_stores_zone(shop):
    stores = by_id(overview.stores_overview(shop, NOW, CFG)["stores"])
    assert (stores["S1"]["today"], stores["S1"]["receipts"], stores["S1"]["gross"],
            stores["S1"]["discount"]) == ("2025-03-02", 2, 2500, 125)
    assert (stores["S2"]["today"], stores["S2"]["receipts"], stores["S2"]["gross_text"],
            stores["S2"]["discount_text"]) == ("2025-03-01", 7, "€1,234.56", "€34.56")
    assert (stores["S3"]["receipts"], stores["S3"]["gross"], stores["S3"]["discount"]) == (0, 0, 0)


def test_a_minute_before_romes_midnight_is_still_the_day_before(shop):
    stores = by_id(overview.stores_overview(shop, NOW - 31 * 60, CFG)["stores"])
    assert (stores["S1"]["today"], stores["S1"]["receipts"], stores["S1"]["gross_text"]) == \
        ("2025-03-01", 10, "€1,000.00")


def test_readers_by_state_per_store_and_overall(shop):
    page = overview.stores_overview(shop, NOW, CFG)
    stores = by_id(page["stores"])
    assert stores["S1"]["states"] == {"in_sync": 1, "lagging": 1, "refused": 1, "offline": 1,
                                      "never_seen": 1}
    assert stores["S2"]["states"]["in_sync"] == 1 and sum(stores["S2"]["states"].values()) == 1
    assert stores["S3"]["readers"] == [] and sum(stores["S3"]["states"].values()) == 0
    assert page["states"] == {"in_sync": 2, "lagging": 1, "refused": 1, "offline": 1,
                              "never_seen": 1}
    states = {r["id"]: r["state"] for r in stores["S1"]["readers"]}
    assert states == {"R1": "in_sync", "R2": "lagging", "R3": "offline", "R4": "never_seen",
                      "R5": "refused"}


def test_each_readers_line(shop):
    readers = by_id(by_id(overview.stores_overview(shop, NOW, CFG)["stores"])["S1"]["readers"])
    r2 = readers["R2"]
    assert (r2["pending"], r2["oldest_t"], r2["oldest_age"], r2["oldest_age_text"]) == \
        (4, NOW - 900, 900, "15 min")
    assert r2["last_contact_text"] == "Mar 2, 2025, 12:29:00\u202fAM CET"
    assert r2["last_contact_ago"] == "1 min ago"
    assert r2["journal_text"] == "ok, 35% used"
    assert r2["state_text"] == "lagging" and "15 min" in r2["reason"]
    assert readers["R4"]["last_contact_text"] == "—" and readers["R4"]["oldest_age"] is None
    assert "Gap in sequence" in readers["R5"]["reason"]


def test_thresholds_come_from_the_config(shop):
    relaxed = {"LAGGING_AFTER": 3600, "OFFLINE_AFTER": 86400}
    readers = by_id(by_id(overview.stores_overview(shop, NOW, relaxed)["stores"])["S1"]["readers"])
    assert readers["R2"]["state"] == "in_sync" and readers["R3"]["state"] == "lagging"


def test_one_store_only(shop):
    page = overview.stores_overview(shop, NOW, CFG, store_id="S2")
    assert [s["id"] for s in page["stores"]] == ["S2"]
    assert page["states"]["in_sync"] == 1 and sum(page["states"].values()) == 1


def test_versions_published_long_ago_make_a_silent_reader_lagging(shop):
    shop["rules_versions"].insert({"version": 1, "rules": "{}", "created": NOW - 86400})
    shop.execute("UPDATE meta SET value = '1' WHERE key = 'rules_version'")
    shop.execute("UPDATE readers SET rules_version = 0")
    readers = by_id(by_id(overview.stores_overview(shop, NOW, CFG)["stores"])["S2"]["readers"])
    assert readers["R6"]["state"] == "lagging"
    assert "rules version 0 behind ours (1)" in readers["R6"]["reason"].lower()


def test_the_overview_never_reads_receipts(shop):
    read = set()

    def authorizer(action, table, column, db_name, trigger):
        if action == sqlite3.SQLITE_READ:
            read.add(table)
        return sqlite3.SQLITE_OK

    shop.conn.set_authorizer(authorizer)
    try:
        overview.stores_overview(shop, NOW, CFG)
    finally:
        shop.conn.set_authorizer(None)
    assert {"readers", "stores", "day_totals"} <= read
    assert "receipts" not in read


def test_day_totals_are_read_for_many_stores(dash_db):
    # more stores than one statement's parameters take: the lookups go in chunks
    for i in range(450):
        add_store(dash_db, "S%03d" % i, tz="UTC")
        day(dash_db, "S%03d" % i, "2025-03-01", i, i * 100, i)
    stores = overview.stores_overview(dash_db, NOW, CFG)["stores"]
    assert len(stores) == 450
    assert all(s["receipts"] == int(s["id"][1:]) for s in stores)


def test_day_totals_sql_fetches_only_the_wanted_days(shop):
    rows = shop.execute(*overview.day_totals_sql([("S1", "2025-03-01"), ("S2", "2025-03-02"),
                                                  ("S3", "2025-03-01")])).fetchall()
    assert sorted(rows) == [("S1", "2025-03-01", 10, 100000, 5000), ("S2", "2025-03-02", 99, 99, 99)]


def test_readers_sql_never_selects_the_key():
    for columns in (overview.OVERVIEW_COLUMNS, overview.READER_COLUMNS):
        sql, params = overview.readers_sql(columns, store_id="S1", reader_id="R1")
        assert "key_hex" not in sql and params == ["S1", "R1"]


# -- the chart --------------------------------------------------------------------------------

@pytest.mark.parametrize("n, top", [(0, 1), (1, 1), (3, 5), (7, 10), (11, 20), (150, 200)])
def test_nice_ceiling(n, top):
    assert overview._nice_ceiling(n) == top


def test_chart_geometry():
    rome = overview.zone("Europe/Rome")
    samples = [(NOW - 90000, 50), (NOW - 86400, 0), (NOW - 3600, 5), (NOW, 2)]
    c = overview.pending_chart(samples, NOW, rome)
    assert not c["empty"] and c["count"] == 3  # the sample older than 24 h is left out
    points = [tuple(map(float, p.split(","))) for p in c["points"].split()]
    assert points[0] == (c["left"], c["bottom"])        # 24 h ago, 0 pending
    assert c["ymax"] == 5 and points[1][1] == c["top"]  # the highest sample reaches the top
    assert points[2][0] == c["right"] and c["last"]["pending"] == 2
    assert [t["label"] for t in c["x_ticks"]] == ["6:00\u202fAM", "12:00\u202fPM", "6:00\u202fPM", "12:00\u202fAM"]
    with using("it"):
        assert [t["label"] for t in overview.pending_chart(samples, NOW, rome)["x_ticks"]] == \
            ["06:00", "12:00", "18:00", "00:00"]
    assert [t["label"] for t in c["y_ticks"]] == ["0", "5"]


def test_chart_without_samples_is_empty():
    c = overview.pending_chart([(NOW - 90000, 3)], NOW, timezone.utc)
    assert c["empty"] and c["points"] == "" and c["last"] is None
