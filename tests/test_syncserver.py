"""The reference sync server signs only answers to requests whose signature verified:
otherwise anyone could make it sign a refusal with a nonce of their choosing."""
import http.client
import json
import os
import time
from urllib.parse import urlsplit

from loyalty.testing import shop
from loyalty.protocol import canonical
from loyalty.protocol.records import GENESIS, batch_body, body_digest, make_record, sign, sign_answer
from loyalty.testing.syncserver import SyncServer


def post(url, headers, body=b'{}'):
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        conn.request("POST", "/api/v1/sync/batch", body=body, headers=headers)
        r = conn.getresponse()
        return r.status, r.getheader("X-Signature"), r.read()
    finally:
        conn.close()


def test_only_verified_requests_get_signed_answers():
    key = bytes.fromhex(shop.key_hex())
    srv = SyncServer(readers={"R1": key}, rules=shop.rules()).start()
    try:
        t = int(time.time())
        forged = {"X-Reader": "R1", "X-Timestamp": str(t), "X-Nonce": "00" * 8, "X-Signature": "00"}
        status, sig, _ = post(srv.url, forged)
        assert (status, sig) == (401, None)  # as the backend answers a bad signature
        body = b'{"reader":"R1","records":[],"status":{},"totals":{"count":0,"discount":0,"gross":0}}'
        nonce = "11" * 8
        good = {"X-Reader": "R1", "X-Timestamp": str(t), "X-Nonce": nonce,
                "X-Signature": sign(key, "POST", "/api/v1/sync/batch", t, nonce, body_digest(body))}
        status, sig, answer = post(srv.url, good, body)
        assert status == 200 and sig == sign_answer(key, nonce, 200, body_digest(answer))
    finally:
        srv.stop()


# -- the same refusal, the same status, from both servers --------------------------------

def _backend(tmp_path, monkeypatch):
    """The backend's app on a new database with store S1 and reader R1; -> (app, R1's key)."""
    from loyalty.backend import headoffice
    from loyalty.backend.app import create_app
    from loyalty.backend.db import connect, migrate

    monkeypatch.setenv("LOYALTY_INSTANCE", str(tmp_path / "instance"))
    app = create_app({"DATABASE": str(tmp_path / "loyalty.db"), "SECRET_KEY": "test", "TESTING": True})
    db = connect(app.config["DATABASE"])
    try:
        migrate(db)
        headoffice.add_store(db, "S1", "Milano Centro")
        key = headoffice.add_reader(db, "R1", "S1")
    finally:
        db.conn.close()
    return app, key


def _refusals(key, now):
    """(code, HTTP status as docs/openapi.json gives it, headers, body) for each refusal both
    servers make; a nonce is spent once."""
    path = "/api/v1/sync/batch"

    def signed(body, t=now, reader="R1", nonce=None, with_key=key):
        nonce = nonce or os.urandom(8).hex()
        return {"X-Reader": reader, "X-Timestamp": str(t), "X-Nonce": nonce,
                "X-Signature": sign(with_key, "POST", path, t, nonce, body_digest(body))}

    empty = b'{"reader":"R1","records":[],"status":{},"totals":{"count":0,"discount":0,"gross":0}}'
    wrong_totals = empty.replace(b'"gross":0', b'"gross":5')
    second = canonical.encode(make_record("sale", "R1", 2, GENESIS, now, shop.GOLD, 2, [], 0, 0, [], 1))
    gap = batch_body("R1", [second], {})
    too_large = b"x" * (256 * 1024 + 1)
    replayed = signed(empty, nonce="ab" * 8)
    return [
        ("batch.reader", 401, signed(empty, reader="R9"), empty),
        ("batch.signature", 401, signed(empty, with_key=b"\x01" * 32), empty),
        ("batch.too_large", 413, signed(too_large), too_large),
        ("batch.stale", 400, signed(empty, t=now - 3600), empty),
        ("batch.totals", 400, signed(wrong_totals), wrong_totals),
        ("batch.gap", 409, signed(gap), gap),
        (None, 200, replayed, empty),            # accepted: spends the nonce
        ("batch.replay", 400, replayed, empty),
    ]


def test_both_servers_answer_each_refusal_with_the_same_status(tmp_path, monkeypatch):
    app, key = _backend(tmp_path, monkeypatch)
    client = app.test_client()
    srv = SyncServer(readers={"R1": key}, rules=shop.rules()).start()
    try:
        now = int(time.time())
        for code, want, headers, body in _refusals(key, now):
            ours = client.post("/api/v1/sync/batch", data=body, headers=headers)
            status, _, answer = post(srv.url, headers, body)
            refused = json.loads(answer)["refused"]
            assert (refused and refused["code"]) == (ours.get_json()["refused"] and ours.get_json()["refused"]["code"]) \
                == (code or None), code
            assert (ours.status_code, status) == (want, want), code
    finally:
        srv.stop()
