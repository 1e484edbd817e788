"""The readers' sync API through Flask's test client: batches accepted, retried, refused."""
import io
import json
import time

import pytest
from werkzeug.test import EnvironBuilder

from loyalty.testing import shop
from loyalty.backend import headoffice
from loyalty.protocol.canonical import decode, encode
from loyalty.protocol.records import batch_body, sign_answer, body_digest

BATCH = "/api/v1/sync/batch"


def counts(db):
    """Rows that an accepted batch writes (a refusal must leave them all alone)."""
    return {t: db.execute("SELECT count(*) FROM %s" % t).fetchone()[0]
            for t in ("receipts", "day_totals", "reader_samples")}


def reader_row(db, reader_id="R1"):
    cur = db.execute("SELECT * FROM readers WHERE id=?", [reader_id])
    return dict(zip([c[0] for c in cur.description], cur.fetchone()))


def refusals(db):
    return db.execute("SELECT reader_id, endpoint, http_status, code, field FROM refusals ORDER BY id").fetchall()


# -- accepted ------------------------------------------------------------------------------

def test_a_batch_is_stored_acknowledged_and_signed(db, signed_reader, shop_rules):
    r = signed_reader()
    rules = headoffice.rules_at(db, shop_rules)
    t = int(time.time())
    records = [r.sale(rules, t=t - 60), r.sale(rules, card=shop.SILVER, tier=1, t=t - 30),
               r.record("void", t=t - 10, lines=shop.basket()["lines"], rules=rules["version"])]
    resp, nonce = r.send(records, {"pending": 5, "journal": "nearly_full", "free_flash": 1234,
                                   "firmware": "0.2.0", "rules": 1, "directory": 0, "clock_drift": -7,
                                   "last_error": "sync.network"})
    assert resp.status_code == 200
    assert r.signed_by_us(resp, nonce)
    answer = decode(resp.data)
    assert answer["ack"] == 3 and answer["refused"] is None and answer["rules"] == shop_rules
    assert abs(answer["time"] - time.time()) < 5
    stored = db.execute("SELECT seq, kind, store_id, card, gross, discount, record, audit FROM receipts "
                        "ORDER BY seq").fetchall()
    assert [s[0] for s in stored] == [1, 2, 3]
    assert [s[1] for s in stored] == ["sale", "sale", "void"]
    # stored awaiting audit: the acknowledgement does not wait for the engine (backend/auditor.py)
    assert all(s[2] == "S1" and s[7] is None for s in stored)
    assert [s[6].encode() for s in stored] == records  # the canonical bytes as the reader sent them
    sales = [decode(x) for x in records[:2]]
    day = db.execute("SELECT receipts, gross, discount FROM day_totals").fetchall()
    assert day == [(2, sum(s["gross"] for s in sales), sum(s["discount"] for s in sales))]
    row = reader_row(db)
    assert row["acked_seq"] == 3 and row["acked_hash"] == db.execute(
        "SELECT hash FROM receipts WHERE seq=3").fetchone()[0]
    # the reader had 5 pending before this batch of 3 was acknowledged: 2 are left, newer
    # than the batch's last record
    assert row["pending"] == 2 and row["oldest_t"] == t - 10
    assert (row["journal"], row["free_flash"], row["firmware"], row["rules_version"],
            row["clock_drift"], row["last_error"]) == ("nearly_full", 1234, "0.2.0", 1, -7, "sync.network")
    assert row["last_contact"] and row["last_batch"] and abs(row["clock_offset"]) < 5
    assert json.loads(row["status_json"])["firmware"] == "0.2.0"
    batch = db.execute("SELECT outcome, http_status, first_seq, last_seq, count, fresh, ack FROM batches").fetchall()
    assert batch == [("accepted", 200, 1, 3, 3, 3, 3)]
    assert db.execute("SELECT pending FROM reader_samples").fetchall() == [(2,)]


def test_the_day_is_the_stores_local_day(db, signed_reader, shop_rules):
    r = signed_reader("NY1", store="NY", tz="America/New_York")
    rules = headoffice.rules_at(db, shop_rules)
    t = 1767243599  # 2026-01-01 04:59:59 UTC: still 31 December in New York (EST, UTC-5)
    resp, _ = r.send([r.sale(rules, t=t, stale=True)])
    assert resp.status_code == 200
    assert db.execute("SELECT day FROM receipts").fetchone()[0] == "2025-12-31"
    assert db.execute("SELECT store_id, day FROM day_totals").fetchall() == [("NY", "2025-12-31")]


def test_nothing_pending_means_no_oldest(db, signed_reader, shop_rules):
    r = signed_reader()
    rules = headoffice.rules_at(db, shop_rules)
    resp, _ = r.send([r.sale(rules)], {"pending": 1, "oldest_t": 1700000000})
    assert resp.status_code == 200
    row = reader_row(db)
    assert row["pending"] == 0 and row["oldest_t"] is None


def test_a_status_only_batch_keeps_the_reported_oldest(db, signed_reader):
    r = signed_reader()
    resp, _ = r.send([], {"pending": 4, "oldest_t": 1700000000})
    assert resp.status_code == 200 and decode(resp.data)["ack"] == 0
    row = reader_row(db)
    assert (row["pending"], row["oldest_t"]) == (4, 1700000000)
    assert counts(db)["receipts"] == 0
    # a report without records is contact, not history: no batches row
    assert row["last_batch"] and db.execute("SELECT count(*) FROM batches").fetchone()[0] == 0


def test_the_same_batch_twice_stores_once(db, signed_reader, shop_rules):
    r = signed_reader()
    rules = headoffice.rules_at(db, shop_rules)
    records = [r.sale(rules) for _ in range(4)]
    first, _ = r.send(records)
    before = counts(db)
    totals = db.execute("SELECT receipts, gross, discount FROM day_totals").fetchall()
    again, nonce = r.send(records)  # the answer was lost: the reader sends it again (new nonce)
    assert again.status_code == 200 and r.signed_by_us(again, nonce)
    assert decode(again.data)["ack"] == 4
    assert counts(db)["receipts"] == before["receipts"] == 4
    assert db.execute("SELECT receipts, gross, discount FROM day_totals").fetchall() == totals
    assert db.execute("SELECT fresh FROM batches ORDER BY id").fetchall() == [(4,), (0,)]


def test_batches_continue_the_chain(db, signed_reader, shop_rules):
    r = signed_reader()
    rules = headoffice.rules_at(db, shop_rules)
    first = [r.sale(rules) for _ in range(2)]
    assert r.send(first)[0].status_code == 200
    # an overlapping batch: 2 again (not acknowledged on the reader) and 3..4 new
    second = [r.sale(rules) for _ in range(2)]
    resp, _ = r.send(first[1:] + second)
    assert resp.status_code == 200 and decode(resp.data)["ack"] == 4
    assert [s for s, in db.execute("SELECT seq FROM receipts ORDER BY seq")] == [1, 2, 3, 4]


def test_samples_are_taken_at_most_every_sample_every(app, db, signed_reader, shop_rules):
    r = signed_reader()
    rules = headoffice.rules_at(db, shop_rules)
    for _ in range(3):
        assert r.send([r.sale(rules)], {"pending": 1})[0].status_code == 200
    assert db.execute("SELECT count(*) FROM reader_samples").fetchone()[0] == 1
    app.config["SAMPLE_EVERY"] = 0
    db.execute("DELETE FROM reader_samples")
    assert r.send([r.sale(rules)], {"pending": 3})[0].status_code == 200
    assert db.execute("SELECT pending FROM reader_samples").fetchall() == [(2,)]
    # a week of samples is kept: older ones go when the next is taken
    now = int(time.time())
    db.execute("INSERT INTO reader_samples(reader_id, t, pending) VALUES('R1', ?, 9), ('R1', ?, 8)",
               [now - 8 * 86400, now - 6 * 86400])
    assert r.send([r.sale(rules)], {"pending": 1})[0].status_code == 200
    kept = [p for (p,) in db.execute("SELECT pending FROM reader_samples ORDER BY t")]
    assert kept[0] == 8 and 9 not in kept and kept[-1] == 0


# -- refused ---------------------------------------------------------------------------------

@pytest.fixture
def started(db, signed_reader, shop_rules):
    """A reader with two records stored, and the rules."""
    r = signed_reader()
    rules = headoffice.rules_at(db, shop_rules)
    assert r.send([r.sale(rules), r.sale(rules)])[0].status_code == 200
    return r, rules


def assert_nothing_stored(db, before, acked=2):
    assert counts(db) == before
    assert reader_row(db)["acked_seq"] == acked


def test_forged_signature(db, started):
    r, rules = started
    before = counts(db)
    body = batch_body("R1", [r.sale(rules)], {})
    resp = r.post(body, key=b"\x01" * 32)
    assert resp.status_code == 401
    assert decode(resp.data)["refused"]["code"] == "batch.signature"
    assert "X-Signature" not in resp.headers  # an unverified request gets no signed answer
    # and it tells a stranger nothing: not the reader's ack (2 here), not our versions
    assert {k: v for k, v in decode(resp.data).items() if k in ("ack", "rules", "directory")} == \
        {"ack": 0, "rules": 0, "directory": 0}
    assert_nothing_stored(db, before)
    assert refusals(db) == [("R1", "batch", 401, "batch.signature", "X-Signature")]
    # written down with the reader's id, but anybody could have sent it: the reader's
    # state and its batches stay as they were
    assert db.execute("SELECT verified FROM refusals").fetchall() == [(0,)]
    row = reader_row(db)
    assert row["last_refusal_code"] is None and row["last_refusal_at"] is None
    assert db.execute("SELECT count(*) FROM batches WHERE outcome='refused'").fetchone()[0] == 0


def test_a_body_changed_after_signing(db, started):
    r, rules = started
    before = counts(db)
    body = batch_body("R1", [r.sale(rules)], {})
    h = r.headers("POST", BATCH, body)
    resp = r.post(body.replace(b'"R1"', b'"R2"', 1), headers=h)
    assert resp.status_code == 401 and decode(resp.data)["refused"]["code"] == "batch.signature"
    assert_nothing_stored(db, before)


def test_stale_timestamp_is_signed_and_carries_our_time(db, started):
    r, rules = started
    before = counts(db)
    body = batch_body("R1", [r.sale(rules)], {})
    h = r.headers("POST", BATCH, body, t=int(time.time()) - 3600)
    resp = r.post(body, headers=h)
    assert resp.status_code == 400
    answer = decode(resp.data)
    assert answer["refused"]["code"] == "batch.stale" and abs(answer["time"] - time.time()) < 5
    assert answer["ack"] == 2
    assert r.signed_by_us(resp, h["X-Nonce"])
    assert_nothing_stored(db, before)
    assert refusals(db)[-1] == ("R1", "batch", 400, "batch.stale", "X-Timestamp")


def test_a_replayed_request(db, started):
    r, rules = started
    body = batch_body("R1", [r.sale(rules)], {})
    h = r.headers("POST", BATCH, body)
    assert r.post(body, headers=h).status_code == 200
    before = counts(db)
    resp = r.post(body, headers=h)
    assert resp.status_code == 400 and decode(resp.data)["refused"]["code"] == "batch.replay"
    assert r.signed_by_us(resp, h["X-Nonce"])
    assert_nothing_stored(db, before, acked=3)
    assert refusals(db)[-1] == ("R1", "batch", 400, "batch.replay", "X-Nonce")


def test_a_replayed_refused_request_is_refused_as_a_replay(db, started):
    r, rules = started
    r.sale(rules)  # seq 3, never sent: seq 4 alone is a gap
    body = batch_body("R1", [r.sale(rules)], {})
    h = r.headers("POST", BATCH, body)
    assert decode(r.post(body, headers=h).data)["refused"]["code"] == "batch.gap"
    assert decode(r.post(body, headers=h).data)["refused"]["code"] == "batch.replay"


def test_unknown_reader(db, client, started):
    before = counts(db)
    body = b'{"reader":"R9","records":[],"status":{},"totals":{"count":0,"discount":0,"gross":0}}'
    h = {"X-Reader": "R9", "X-Timestamp": str(int(time.time())), "X-Nonce": "ab" * 8, "X-Signature": "00" * 32}
    resp = client.post(BATCH, data=body, headers=h)
    assert resp.status_code == 401 and "X-Signature" not in resp.headers
    assert decode(resp.data)["refused"]["code"] == "batch.reader"
    assert counts(db) == before
    assert refusals(db) == [("R9", "batch", 401, "batch.reader", "X-Reader")]
    assert db.execute("SELECT count(*) FROM batches WHERE reader_id='R9'").fetchone()[0] == 0


def test_body_over_the_limit_is_refused_from_its_length(app, db, started):
    r, rules = started
    app.config["MAX_BATCH_BYTES"] = 1000
    before = counts(db)
    body = batch_body("R1", [r.sale(rules) for _ in range(5)], {})
    assert len(body) > 1000
    resp = r.post(body)
    assert resp.status_code == 413 and decode(resp.data)["refused"]["code"] == "batch.too_large"
    assert "X-Signature" not in resp.headers  # decided before the body (and so the signature) is read
    assert_nothing_stored(db, before)
    assert refusals(db)[-1] == ("R1", "batch", 413, "batch.too_large", "body")


def test_body_over_the_limit_without_a_length(app, client, db, started):
    r, rules = started
    app.config["MAX_BATCH_BYTES"] = 1000
    before = counts(db)
    body = batch_body("R1", [r.sale(rules) for _ in range(5)], {})
    h = r.headers("POST", BATCH, body)
    # a chunked upload: the WSGI server knows no length, only the end of the stream
    builder = EnvironBuilder(path=BATCH, method="POST", headers=h)
    environ = builder.get_environ()
    builder.close()
    environ.pop("CONTENT_LENGTH", None)
    environ.update({"wsgi.input": io.BytesIO(body), "wsgi.input_terminated": True,
                    "HTTP_TRANSFER_ENCODING": "chunked"})
    app_iter, status, _ = client.run_wsgi_app(environ, buffered=True)
    answer = decode(b"".join(app_iter))
    assert status.startswith("413") and answer["refused"]["detail"] == "over 1000 bytes"
    assert_nothing_stored(db, before)


@pytest.mark.parametrize("mangle,field", [
    (lambda body: body[:-5], "body"),                                   # malformed JSON
    (lambda body: body.replace(b'"reader":', b'"reader": ', 1), "body"),  # not canonical
    (lambda body: b"\xff" + body, "body"),                              # not UTF-8
])
def test_malformed_or_non_canonical_body(db, started, mangle, field):
    r, rules = started
    before = counts(db)
    body = mangle(batch_body("R1", [r.sale(rules)], {}))
    h = r.headers("POST", BATCH, body)
    resp = r.post(body, headers=h)
    assert resp.status_code == 400
    refused = decode(resp.data)["refused"]
    assert (refused["code"], refused["field"]) == ("batch.record", field)
    assert r.signed_by_us(resp, h["X-Nonce"])
    assert_nothing_stored(db, before)
    assert refusals(db)[-1] == ("R1", "batch", 400, "batch.record", field)


def test_a_record_with_a_float(db, started):
    r, rules = started
    before = counts(db)
    body = batch_body("R1", [r.sale(rules)], {}).replace(b'"v":1', b'"v":1.0')
    resp = r.post(body)
    assert resp.status_code == 400 and decode(resp.data)["refused"]["code"] == "batch.record"
    assert_nothing_stored(db, before)


def test_a_gap(db, started):
    r, rules = started
    before = counts(db)
    r.sale(rules)  # seq 3 stays on the reader
    resp, nonce = r.send([r.sale(rules)], status={"pending": 250, "oldest_t": int(time.time()) - 7200})
    assert resp.status_code == 409
    refused = decode(resp.data)["refused"]
    assert (refused["code"], refused["field"]) == ("batch.gap", "records[0].seq")
    assert r.signed_by_us(resp, nonce) and decode(resp.data)["ack"] == 2
    assert_nothing_stored(db, before)
    assert db.execute("SELECT outcome, http_status, code FROM batches ORDER BY id DESC LIMIT 1").fetchone() == \
        ("refused", 409, "batch.gap")
    row = reader_row(db)
    assert row["last_refusal_code"] == "batch.gap"
    # nothing was acknowledged: what the refused batch says waits on the reader is kept
    assert row["pending"] == 250 and int(time.time()) - row["oldest_t"] >= 7200, dict(row)


def test_a_chain_broken_across_batches(db, started):
    r, rules = started
    before = counts(db)
    r.prev = "ab" * 32  # seq 3 does not follow the stored seq 2
    resp, _ = r.send([r.sale(rules)])
    assert resp.status_code == 409
    refused = decode(resp.data)["refused"]
    assert (refused["code"], refused["field"]) == ("batch.chain", "records[0].prev")
    assert_nothing_stored(db, before)


def test_a_stored_record_sent_again_altered(db, started):
    r, rules = started
    before = counts(db)
    altered = decode(r.journal[1])
    altered["receipt"] = "T-other"
    resp, _ = r.send([encode(altered)])
    assert resp.status_code == 409 and decode(resp.data)["refused"]["code"] == "batch.chain"
    assert_nothing_stored(db, before)


def test_wrong_totals(db, started):
    r, rules = started
    before = counts(db)
    body = batch_body("R1", [r.sale(rules)], {})
    totals = decode(body)["totals"]
    wrong = body.replace(encode(totals), encode(dict(totals, discount=totals["discount"] + 1)))
    resp = r.post(wrong)
    assert resp.status_code == 400
    assert (decode(resp.data)["refused"]["code"], decode(resp.data)["refused"]["field"]) == ("batch.totals", "totals")
    assert_nothing_stored(db, before)


def test_an_accepted_batch_after_a_refusal(db, started):
    r, rules = started
    sale = r.sale(rules)
    body = batch_body("R1", [sale], {})
    # an old request, signed by the reader, sent again (by anybody): not the reader's state
    assert r.post(body, t=int(time.time()) - 3600).status_code == 400
    assert reader_row(db)["last_refusal_code"] is None
    totals = decode(body)["totals"]
    wrong = body.replace(encode(totals), encode(dict(totals, count=totals["count"] + 1)))
    assert r.post(wrong).status_code == 400  # the reader's own, verified: its state
    assert reader_row(db)["last_refusal_code"] == "batch.totals"
    resp, _ = r.send([sale])
    assert resp.status_code == 200 and decode(resp.data)["ack"] == 3
    row = reader_row(db)
    assert row["last_refusal_code"] == "batch.totals" and row["last_batch"] >= row["last_refusal_at"]


# -- rules and directory down ------------------------------------------------------------

def test_rules_come_down_signed(db, signed_reader, shop_rules):
    r = signed_reader()
    path = "/api/v1/sync/rules?since=0"
    h = r.headers("GET", path)
    resp = r.client.get(path, headers=h)
    assert resp.status_code == 200
    assert resp.headers["X-Signature"] == sign_answer(r.key, h["X-Nonce"], 200, body_digest(resp.data))
    answer = decode(resp.data)
    assert answer["version"] == shop_rules == answer["rules"]["version"]
    assert answer["rules"] == headoffice.rules_at(db, shop_rules)
    assert reader_row(db)["last_contact"]
    # a change publishes the next version, and the next fetch brings it
    headoffice.set_tier(db, 2, bp=700)
    answer = decode(r.get("/api/v1/sync/rules?since=%d" % shop_rules).data)
    assert answer["version"] == shop_rules + 1
    assert [t["bp"] for t in answer["rules"]["tiers"] if t["id"] == 2] == [700]


def test_no_rules_yet(db, signed_reader):
    r = signed_reader()
    resp = r.get("/api/v1/sync/rules?since=0")
    assert resp.status_code == 404 and decode(resp.data) == {"rules": None, "version": 0}


def test_a_get_is_signed_with_its_query(db, signed_reader, shop_rules):
    r = signed_reader()
    h = r.headers("GET", "/api/v1/sync/rules?since=0")
    resp = r.client.get("/api/v1/sync/rules?since=1", headers=h)  # signed for another query
    assert resp.status_code == 401 and "X-Signature" not in resp.headers
    assert refusals(db) == [("R1", "rules", 401, "batch.signature", "X-Signature")]


def test_a_replayed_get(db, signed_reader, shop_rules):
    r = signed_reader()
    path = "/api/v1/sync/rules?since=0"
    h = r.headers("GET", path)
    assert r.client.get(path, headers=h).status_code == 200
    resp = r.client.get(path, headers=h)
    assert resp.status_code == 400 and decode(resp.data)["refused"]["code"] == "batch.replay"
    assert refusals(db) == [("R1", "rules", 400, "batch.replay", "X-Nonce")]


def pages(r, since, limit, after=None):
    path = "/api/v1/sync/directory?since=%d&limit=%d" % (since, limit)
    if after is not None:
        path = "/api/v1/sync/directory?since=0&after=%d&limit=%d" % (after, limit)
    resp = r.get(path)
    assert resp.status_code == 200, resp.data
    return decode(resp.data)


def test_directory_full_load_then_deltas(db, signed_reader):
    r = signed_reader()
    cards = [("6001000000000042", 2), ("6001000000000017", 1, 1), ("99", 0), ("123456789", 1),
             ("6001000000000099", 0, 2)]
    headoffice.import_cards(db, cards)
    version = 5
    # a full load, two entries a page: sorted by number, removed cards left out
    got, after = [], 0
    while True:
        page = pages(r, 0, 2, after)
        assert page["from"] == 0 and page["to"] == version
        got += page["entries"]
        if not page["more"]:
            break
        after = int(page["entries"][-1][0])
    assert got == [["99", 0, 0], ["123456789", 1, 0], ["6001000000000017", 1, 1], ["6001000000000042", 2, 0]]
    # changes after the load come as deltas, the oldest first, numbered by version
    headoffice.set_card(db, "6001000000000042", status=1)
    headoffice.set_card(db, "99", status=2)
    headoffice.set_card(db, "55", tier=1)
    page = pages(r, version, 2)
    assert (page["from"], page["to"], page["more"]) == (5, 7, True)
    assert page["entries"] == [["99", 0, 2], ["6001000000000042", 2, 1]]
    page = pages(r, 7, 2)
    assert (page["from"], page["to"], page["more"], page["entries"]) == (7, 8, False, [["55", 1, 0]])
    page = pages(r, 8, 2)
    assert (page["from"], page["to"], page["more"], page["entries"]) == (8, 8, False, [])


@pytest.mark.parametrize("query", ["since=x", "since=0&limit=0", "since=0&after=-1", "limit=1e3"])
def test_directory_bad_queries(db, signed_reader, query):
    r = signed_reader()
    path = "/api/v1/sync/directory?" + query
    h = r.headers("GET", path)
    resp = r.client.get(path, headers=h)
    assert resp.status_code == 400 and decode(resp.data)["refused"]["code"] == "delta.format"
    assert r.signed_by_us(resp, h["X-Nonce"])
    assert refusals(db)[0][1:4] == ("directory", 400, "delta.format")


def test_old_nonces_are_pruned(app, db, signed_reader):
    r = signed_reader()
    now = int(time.time())
    db.execute("INSERT INTO nonces(reader_id, nonce, t) VALUES('R1', 'old', ?), ('R1', 'recent', ?)",
               [now - 2 * app.config["TIMESTAMP_WINDOW"] - 10, now - 10])
    assert r.send([])[0].status_code == 200
    kept = {n for n, in db.execute("SELECT nonce FROM nonces")}
    assert "old" not in kept and "recent" in kept and len(kept) == 2


def test_a_get_of_an_unknown_reader(db, client):
    h = {"X-Reader": "R7", "X-Timestamp": str(int(time.time())), "X-Nonce": "cd" * 8, "X-Signature": "00" * 32}
    resp = client.get("/api/v1/sync/directory?since=0", headers=h)
    assert resp.status_code == 401 and "X-Signature" not in resp.headers
    assert refusals(db) == [("R7", "directory", 401, "batch.reader", "X-Reader")]


@pytest.mark.parametrize("stamp", ["", "12.5", "-5", "soon"])
def test_a_timestamp_that_is_not_an_integer(db, started, stamp):
    r, rules = started
    body = batch_body("R1", [], {})
    h = r.headers("POST", BATCH, body)
    h["X-Timestamp"] = stamp
    resp = r.post(body, headers=h)
    assert resp.status_code == 400 and decode(resp.data)["refused"]["code"] == "batch.stale"
    assert "X-Signature" not in resp.headers  # nothing verified: nothing signed


def test_contact_is_noted_for_the_readers_own_requests_only(db, started):
    r, rules = started
    db.execute("UPDATE readers SET last_contact=1, clock_offset=NULL")
    r.post(batch_body("R1", [], {}), key=b"\x03" * 32)  # not the reader's
    assert reader_row(db)["last_contact"] == 1
    r.sale(rules)
    r.send([r.sale(rules)])  # the reader's own, refused for a gap: it is alive all the same
    assert reader_row(db)["last_contact"] > 1


def test_a_server_thread_keeps_its_connection(app, db, signed_reader, shop_rules):
    """backend/serve.py sets KEEP_DB_CONNECTIONS: a thread's sync requests share one
    connection, and nothing a failed request left open is carried into the next."""
    from loyalty.backend.sync import api as syncapi

    app.config["KEEP_DB_CONNECTIONS"] = True
    r = signed_reader()
    rules = headoffice.rules_at(db, shop_rules)
    try:
        resp, _ = r.send([r.sale(rules)])
        assert resp.status_code == 200
        kept = syncapi._held.db[1]
        kept.execute("BEGIN")  # as if a request had failed inside a transaction
        resp, _ = r.send([r.sale(rules)])
        assert resp.status_code == 200 and decode(resp.data)["ack"] == 2
        assert syncapi._held.db[1] is kept and not kept.conn.in_transaction
    finally:
        syncapi._held.db[1].conn.close()
        del syncapi._held.db
