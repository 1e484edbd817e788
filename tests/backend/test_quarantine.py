"""Quarantine (docs/protocol.md, "Quarantine"): a record a reader journaled that breaks the
schema is refused once, then, sent again byte for byte, acknowledged into quarantine, kept
out of receipts and figures, and shown on the reader's page for a person to judge."""
import pytest

from loyalty.backend import headoffice
from loyalty.protocol.canonical import decode, encode
from loyalty.protocol.records import record_hash
from dashrows import add_manager, csrf_from, login


@pytest.fixture
def reader(signed_reader, shop_rules, db):
    r = signed_reader()
    r.rules = headoffice.rules_at(db, shop_rules)
    return r


def bad_sale(r):
    """The reader's next record: a sale with a line of quantity 0, as a buggy firmware wrote it."""
    data = r.sale(r.rules)
    rec = decode(data)
    rec["lines"][0]["qty"] = 0
    bad = encode(rec)
    r.journal[-1] = bad
    r.prev = record_hash(bad)
    return bad


def rows(db, sql):
    return [tuple(x) for x in db.execute(sql).fetchall()]


def test_refused_once_then_quarantined_and_kept_out_of_the_figures(db, reader):
    good = reader.sale(reader.rules)
    bad = bad_sale(reader)
    after = reader.sale(reader.rules)
    batch = [good, bad, after]

    resp, _ = reader.send(batch)
    assert resp.status_code == 400
    assert resp.json["refused"]["code"] == "batch.record"
    assert resp.json["refused"]["field"] == "records[1].lines[0].qty"
    assert rows(db, "SELECT count(*) FROM receipts") == [(0,)]
    # the refusal notes the record's hash, not the record
    assert rows(db, "SELECT seq, hash, acked_t, record FROM quarantine") == [(2, record_hash(bad), None, None)]

    resp, _ = reader.send(batch)  # the reader cannot change its journal: it sends the same bytes
    assert resp.status_code == 200 and resp.json["ack"] == 3 and resp.json["refused"] is None
    assert rows(db, "SELECT seq FROM receipts ORDER BY seq") == [(1,), (3,)]
    (seq, h, acked, record, code, field), = rows(db, "SELECT seq, hash, acked_t, record, code, field FROM quarantine")
    assert (seq, h, record.encode(), code, field) == (2, record_hash(bad), bad, "batch.record", "records[1].lines[0].qty")
    assert acked is not None
    # the day's figures hold the two good sales only
    want = [decode(good), decode(after)]
    assert rows(db, "SELECT receipts, gross, discount FROM day_totals") == [
        (2, sum(r["gross"] for r in want), sum(r["discount"] for r in want))]
    assert rows(db, "SELECT count, fresh, quarantined FROM batches WHERE outcome = 'accepted'") == [(3, 3, 1)]

    # the answer lost on the way: the same batch once more changes nothing
    before = rows(db, "SELECT * FROM quarantine") + rows(db, "SELECT seq, hash FROM receipts")
    resp, _ = reader.send(batch)
    assert resp.status_code == 200 and resp.json["ack"] == 3
    assert rows(db, "SELECT * FROM quarantine") + rows(db, "SELECT seq, hash FROM receipts") == before
    # a record later in the chain returns to normal at once
    resp, _ = reader.send([reader.sale(reader.rules)])
    assert resp.status_code == 200 and resp.json["ack"] == 4


def test_other_bytes_at_that_seq_are_refused_again(db, reader):
    bad = bad_sale(reader)
    resp, _ = reader.send([bad])
    assert resp.status_code == 400
    # a batch whose record 1 differs (a forger, not the reader's journal): refused again
    rec = decode(bad)
    rec["receipt"] = "T-other"
    other = encode(rec)
    resp, _ = reader.send([other])
    assert resp.status_code == 400 and resp.json["refused"]["field"] == "records[0].lines[0].qty"
    assert rows(db, "SELECT hash, acked_t FROM quarantine") == [(record_hash(other), None)]
    assert rows(db, "SELECT coalesce(acked_seq, 0) FROM readers") == [(0,)]
    # and the envelope is never quarantined: a record without a valid prev is refused every time
    rec["prev"] = "X" * 64
    broken = encode(rec)
    for _ in range(2):
        resp, _ = reader.send([broken])
        assert resp.status_code == 400 and resp.json["refused"]["field"] == "records[0].prev"
    assert rows(db, "SELECT count(*) FROM quarantine WHERE acked_t IS NOT NULL") == [(0,)]


def test_a_refusal_for_anything_else_notes_nothing(db, reader):
    good = reader.sale(reader.rules)
    resp, _ = reader.send([good], status={"pending": -1})
    assert resp.status_code == 400 and resp.json["refused"]["code"] == "batch.status"
    assert rows(db, "SELECT count(*) FROM quarantine") == [(0,)]


def test_the_reader_page_shows_it_and_a_person_judges_it(db, reader, client):
    bad = bad_sale(reader)
    for _ in range(2):
        resp, _ = reader.send([bad])
    assert resp.status_code == 200
    db["stores"].insert({"id": "S2", "name": "Other", "tz": "Europe/Rome"})
    add_manager(db, "giulia")
    add_manager(db, "marco", store_id="S2")
    login(client)
    page = client.get("/readers/R1.json").json
    (q,), unjudged = page["quarantine"], page["quarantine_unjudged"]
    assert (q["seq"], q["code"], q["field"], q["judged_t"], unjudged) == (1, "batch.record", "records[0].lines[0].qty", None, 1)
    html = client.get("/readers/R1").get_data(as_text=True)
    assert 'data-quarantined="1"' in html
    token = csrf_from(html)

    url = "/readers/R1/quarantine/1"
    assert client.post(url, data={"csrf_token": token, "judgement": "nonsense"}).status_code == 400
    assert client.post(url, data={"csrf_token": token, "judgement": "reader_fault",
                                  "note": "x\u202ey"}).status_code == 400
    assert client.post(url, data={"csrf_token": "wrong", "judgement": "reader_fault"}).status_code == 400
    assert client.post("/readers/R1/quarantine/9", data={"csrf_token": token,
                                                          "judgement": "reader_fault"}).status_code == 404
    assert rows(db, "SELECT judged_t FROM quarantine") == [(None,)]
    resp = client.post(url, data={"csrf_token": token, "judgement": "reader_fault",
                                  "note": "firmware 1.2 wrote qty 0\r\nfor weighed goods"})
    assert resp.status_code == 303
    assert rows(db, "SELECT judged_by, judgement, note FROM quarantine") == [
        ("giulia", "reader_fault", "firmware 1.2 wrote qty 0\nfor weighed goods")]
    page = client.get("/readers/R1.json").json
    assert page["quarantine_unjudged"] == 0 and page["quarantine"][0]["judged_by"] == "giulia"

    # another store's manager cannot see or judge it
    client.post("/logout", data={"csrf_token": token})
    login(client, "marco")
    assert client.get("/readers/R1.json").status_code == 404
    token = csrf_from(client.get("/stores").get_data(as_text=True))
    assert client.post(url, data={"csrf_token": token, "judgement": "to_correct"}).status_code == 404
    assert rows(db, "SELECT judgement FROM quarantine") == [("reader_fault",)]
