"""Every refusal of the sync API, over real HTTP: a 4xx with the reason, nothing stored,
and the refusal on the reader's page for its store manager to see."""
import http.client
import json
import time

import pytest

from loyalty.testing.chain import Chain, wait_for
from loyalty.testing.readerclient import ReaderClient
from loyalty.backend import headoffice
from loyalty.protocol.records import body_digest, sign_answer

BATCH = "/api/v1/sync/batch"


def send(url, body, headers):
    host, port = url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("POST", BATCH, body=body, headers=headers)
        r = conn.getresponse()
        return r.status, r.getheader("X-Signature"), r.read()
    finally:
        conn.close()


@pytest.fixture
def chain(tmp_path):
    with Chain(tmp_path, readers=["R1"], config={"MAX_BATCH_BYTES": 64 * 1024}) as c:
        yield c


def test_each_refusal_is_a_4xx_with_its_reason_stores_nothing_and_shows(chain):
    rules = chain.change(headoffice.current_rules)[1]
    r1 = ReaderClient("R1", chain.keys["R1"], chain.backend.url, rules, seed=1)
    now = int(time.time())
    first = r1.make_sales(1, now - 600)
    ok = r1.batch_body(first)
    status, _, _ = send(chain.backend.url, ok, r1.headers("POST", BATCH, ok, now))
    assert status == 200
    two, three, four = r1.make_sales(3, now - 500)

    def body_with(records, **totals):
        body = json.loads(r1.batch_body(records))
        body["totals"].update(totals)
        return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    broken = json.loads(two)
    broken["prev"] = "f" * 64
    broken = json.dumps(broken, sort_keys=True, separators=(",", ":")).encode()
    good = r1.batch_body([two])
    replayed = r1.headers("POST", BATCH, good, now)
    impostor = ReaderClient("R404", b"k" * 32, chain.backend.url, rules)
    cases = [  # (what, body, headers, status, code, signed answer)
        ("forged signature", good, ReaderClient("R1", b"x" * 32, "", rules).headers("POST", BATCH, good, now),
         401, "batch.signature", False),
        ("stale timestamp", good, r1.headers("POST", BATCH, good, now - 3600), 400, "batch.stale", True),
        ("unknown reader", good, impostor.headers("POST", BATCH, good, now), 401, "batch.reader", False),
        ("body over the limit", b"{" + b" " * 70000 + b"}", r1.headers("POST", BATCH, b"{}", now),
         413, "batch.too_large", False),
        ("malformed JSON", b'{"reader":"R1","records":[', r1.headers("POST", BATCH, b'{"reader":"R1","records":[', now),
         400, "batch.record", True),
        ("gap in the sequence", r1.batch_body([three]), r1.headers("POST", BATCH, r1.batch_body([three]), now),
         409, "batch.gap", True),
        ("broken hash chain", r1.batch_body([broken]), r1.headers("POST", BATCH, r1.batch_body([broken]), now),
         409, "batch.chain", True),
        ("wrong totals", body_with([two], discount=999999), r1.headers("POST", BATCH, body_with([two], discount=999999), now),
         400, "batch.totals", True),
        ("replayed request (first time: accepted)", good, replayed, 200, None, True),
        ("replayed request", good, replayed, 400, "batch.replay", True),
    ]
    before = chain.db_rows("SELECT count(*), sum(gross) FROM receipts")[0]
    for what, body, headers, want_status, code, signed in cases:
        status, signature, data = send(chain.backend.url, body, headers)
        answer = json.loads(data)
        assert status == want_status, (what, status, answer)
        if code is None:
            assert answer["refused"] is None and answer["ack"] == 2
            before = chain.db_rows("SELECT count(*), sum(gross) FROM receipts")[0]
            continue
        assert answer["refused"]["code"] == code, (what, answer)
        assert answer["refused"]["detail"], what  # a reason a person can read
        if signed:
            key = chain.keys["R1"]
            assert signature == sign_answer(key, headers["X-Nonce"], status, body_digest(data)), what
        else:
            assert signature is None, what
        assert chain.db_rows("SELECT count(*), sum(gross) FROM receipts")[0] == before, what
    assert before[0] == 2  # the one batch accepted between the refusals, nothing else

    page = chain.dashboard().json("/readers/R1.json")
    shown = {x["code"]: x for x in page["refusals"]}
    for what, _, _, _, code, signed in cases:
        if code and code != "batch.reader":
            assert code in shown, "%s not on the reader's page" % what
            assert shown[code]["code_text"] != code  # a sentence, not just the code
    assert not shown["batch.signature"]["verified"] and shown["batch.gap"]["verified"]
    unknown = chain.db_rows("SELECT code FROM refusals WHERE reader_id='R404'")
    assert unknown == [("batch.reader",)]  # written down, though no page is R404's
    # the reader's own refusals made it "refused"; its next good batch brings it back
    assert chain.state_of("R1") == "refused"
    # a refusal in the same second as an accepted batch counts as the later one: the good
    # batch goes in a later second than the last refusal
    refused_at = chain.db_rows("SELECT last_refusal_at FROM readers WHERE id='R1'")[0][0]
    wait_for(lambda: int(time.time()) > refused_at, timeout=5, what="the second after the last refusal",
             every=0.02)
    fine = r1.batch_body([three])
    assert send(chain.backend.url, fine, r1.headers("POST", BATCH, fine, int(time.time())))[0] == 200
    reader = [r for r in chain.dashboard().json("/stores.json")["stores"][0]["readers"] if r["id"] == "R1"][0]
    assert reader["state"] == "in_sync", reader
