"""The reference sync server signs only answers to requests whose signature verified:
otherwise anyone could make it sign a refusal with a nonce of their choosing."""
import http.client
import time
from urllib.parse import urlsplit

import shop
from protocol.records import body_digest, sign, sign_answer
from syncserver import SyncServer


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
        assert (status, sig) == (400, None)
        body = b'{"reader":"R1","records":[],"status":{},"totals":{"count":0,"discount":0,"gross":0}}'
        nonce = "11" * 8
        good = {"X-Reader": "R1", "X-Timestamp": str(t), "X-Nonce": nonce,
                "X-Signature": sign(key, "POST", "/api/v1/sync/batch", t, nonce, body_digest(body))}
        status, sig, answer = post(srv.url, good, body)
        assert status == 200 and sig == sign_answer(key, nonce, 200, body_digest(answer))
    finally:
        srv.stop()
