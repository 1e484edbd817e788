"""docs/openapi.json against the real backend: schemathesis generates requests from the
contract, a provisioned reader signs each one, and the answers must fit the contract.

The backend runs as in a store (backend/serve.py on waitress, a separate process, its
auditor beside it) on loopback. For every operation of the contract schemathesis draws
requests that fit it (positive) and requests that break it (negative), a bounded number
of each, derandomized: the same requests on every run of the same tests (Hypothesis also
draws constants it finds in the modules loaded, so this file run alone draws other
requests than the whole suite does; the thresholds below hold for both with room). Every request goes out signed as reader R1 signs: the
signing hook (ReaderSigning) writes X-Reader, X-Timestamp, X-Nonce and X-Signature over
the exact bytes sent, after it has made a JSON body canonical (a batch must be, or it is
refused before its records are looked at). Most batches are also made to follow what the
backend holds (`follow`: the reader's id, consecutive seqs chained from the stored ones,
totals that add up), so their records reach the record schema; the others keep what was
drawn, so the envelope's refusals come too. One request in twenty is signed with another
key, so the unsigned refusal is judged as well.

It fails on any 5xx, on any answer outside the contract (status, content type, headers,
body schema), and on anything stored from a refused request: the receipts, the day totals,
the quarantine's acknowledged records and the reader's acknowledged seq are read before and
after every call (tests/test_hostile_batches.py holds each refusal to every table). And at
least 80 % of the requests must get past the signature to the checks behind it: a signing
hook that signs the wrong bytes would make every request a batch.signature refusal, and
this test would pass green while testing nothing.

The numbers are printed (pytest -s): requests, how many got past the signature, the time.
"""
import json
import re
import sqlite3
import time
import urllib.parse
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings, strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_headers_conformance,
                                               response_schema_conformance, status_code_conformance)

from loyalty.protocol.canonical import encode
from loyalty.protocol.errors import EncodingError
from loyalty.protocol.records import Totals, body_digest, record_hash, sign
from loyalty.testing.chain import Chain

SPEC = Path(__file__).resolve().parents[1] / "docs" / "openapi.json"
SCHEMA = schemathesis.openapi.from_path(SPEC)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
# refusals of the request's credentials, before anything else of it is looked at
AT_THE_DOOR = {"batch.reader", "batch.signature", "batch.stale", "batch.replay"}
EXAMPLES = {GenerationMode.POSITIVE: 100, GenerationMode.NEGATIVE: 50}  # per operation
# a refusal of a record's content, not of its place in the batch (reader, seq, prev)
CONTENT = re.compile(r"records\[\d+\]\.(?!reader$|seq$|prev$)")
READER = "R1"
STORED = ("SELECT (SELECT count(*) FROM receipts), (SELECT total(gross) FROM receipts), "
          "(SELECT total(receipts) FROM day_totals), (SELECT total(gross) FROM day_totals), "
          "(SELECT total(discount) FROM day_totals), "
          "(SELECT count(*) FROM quarantine WHERE acked_t IS NOT NULL), "
          "(SELECT acked_seq FROM readers WHERE id='%s')" % READER)


def integers(value):
    """`value` with every integral float as an int: JSON Schema's "integer" takes 2.0,
    which schemathesis may send as `2.0`; canonical JSON writes that number `2`."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [integers(v) for v in value]
    if isinstance(value, dict):
        return {k: integers(v) for k, v in value.items()}
    return value


def canonical(body):
    """The canonical bytes of a JSON body; the bytes as they are when they hold no JSON or
    a value canonical JSON cannot write (a fraction)."""
    try:
        return encode(integers(json.loads(body)))
    except (ValueError, EncodingError, RecursionError):
        return body


class ReaderSigning(requests.auth.AuthBase):
    """Signs a request as the reader does (docs/protocol.md section 4), over the bytes that
    go out: requests applies auth after it has prepared the URL and the body."""

    def __init__(self, reader, key):
        self.reader = reader
        self.key = key
        self.count = 0
        self.forge = False  # sign the next requests with another key

    def __call__(self, request):
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        if body:
            body = canonical(body)
            request.body = body
            request.headers["Content-Length"] = str(len(body))
        self.count += 1
        nonce = "%016x" % self.count  # unique for this server's database, and the same every run
        t = int(time.time())
        url = urllib.parse.urlsplit(request.url)
        target = url.path + ("?" + url.query if url.query else "")
        key = bytes(32) if self.forge else self.key
        request.headers.update({"X-Reader": self.reader, "X-Timestamp": str(t), "X-Nonce": nonce,
                                "X-Signature": sign(key, request.method, target, t, nonce, body_digest(body))})
        return request


def follow(body, reader, acked_seq, acked_hash):
    """The drawn batch `body` made to follow what the backend holds: the reader's id, its
    records numbered and chained from the last acknowledged one, totals that add up. What
    is not a batch or not a record is left as drawn."""
    if not isinstance(body, dict):
        return body
    body = dict(integers(body), reader=reader)
    records = body.get("records")
    if not isinstance(records, list):
        return body
    prev = acked_hash
    out = []
    totals = Totals()
    for i, rec in enumerate(records):
        if isinstance(rec, dict):
            rec = dict(rec, reader=reader, seq=acked_seq + 1 + i, prev=prev)
            totals.add(rec)
            try:
                prev = record_hash(encode(rec))
            except EncodingError:
                pass
        out.append(rec)
    body["records"] = out
    body["totals"] = totals.as_dict()
    return body


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    with Chain(tmp_path_factory.mktemp("schemathesis"), readers=[READER]) as chain:
        yield chain


@pytest.fixture
def backend_db(backend):
    """A connection to the running backend's database, to count what it stored."""
    conn = sqlite3.connect(str(backend.path))
    yield conn
    conn.close()


def stored(db):
    return db.execute(STORED).fetchone()


def test_every_request_the_contract_allows_gets_an_answer_the_contract_describes(backend, backend_db):
    db = backend_db
    session = requests.Session()
    signing = session.auth = ReaderSigning(READER, backend.keys[READER])
    answers = {}  # (operation, status, refusal code) -> count
    fields = []  # where records were refused for their content: the steering got them that far
    start = time.time()

    def call(case):
        before = stored(db)
        response = case.call(base_url=backend.backend.url, session=session)
        try:
            refused = (response.json() or {}).get("refused")
        except (ValueError, AttributeError):
            refused = "not JSON"
        code = refused.get("code") if isinstance(refused, dict) else refused
        key = (case.operation.label, response.status_code, code)
        answers[key] = answers.get(key, 0) + 1
        if code == "batch.record" and CONTENT.match(refused.get("field", "")):
            fields.append(refused["field"])
        case.validate_response(response, checks=CHECKS)
        if response.status_code >= 400:
            assert stored(db) == before, "stored from a refused request: %r" % (key,)
        return response

    # the documented example: a new reader's sale, a return of part of it, a cancelled quote
    batch = SCHEMA["/api/v1/sync/batch"]["POST"]
    example = batch.definition.raw["requestBody"]["content"]["application/json"]["examples"]["three"]["value"]
    response = call(batch.Case(body=example, media_type="application/json"))
    assert response.status_code == 200 and response.json()["ack"] == 3, response.text
    assert stored(db)[0] == 3

    for result in SCHEMA.get_all_operations():
        operation = result.ok()
        for mode, examples in EXAMPLES.items():
            @given(case=operation.as_strategy(generation_mode=mode),
                   steer=st.sampled_from([True, True, True, False]), forge=st.sampled_from([False] * 19 + [True]))
            @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                      phases=[Phase.explicit, Phase.generate, Phase.shrink],
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                             HealthCheck.data_too_large])
            def fuzz(case, steer, forge):
                if steer and case.operation.method.upper() == "POST":
                    acked = db.execute("SELECT acked_seq, acked_hash FROM readers WHERE id=?", [READER]).fetchone()
                    case.body = follow(case.body, READER, acked[0] or 0, acked[1] or "0" * 64)
                signing.forge = forge
                try:
                    call(case)
                finally:
                    signing.forge = False

            fuzz()

    seconds = time.time() - start
    total = sum(answers.values())
    past = sum(n for (_, _, code), n in answers.items() if code not in AT_THE_DOOR)
    for key, n in sorted(answers.items(), key=str):
        print("%5d  %s %d %s" % (n, *key))
    print("schemathesis: %d requests, %d (%.0f %%) past the signature, %d records refused for their "
          "content, %d receipts stored, %.1f s" % (total, past, 100.0 * past / total, len(fields), stored(db)[0],
                                                   seconds))
    assert total >= 500
    assert past >= 0.8 * total, answers
    assert len(fields) >= 20, answers


def test_a_body_over_any_limit_gets_the_documented_refusal(backend):
    """A body over waitress's own limit (twice MAX_BATCH_BYTES) is answered by the app as any
    body over MAX_BATCH_BYTES: 413, batch.too_large, the contract's JSON (docs/openapi.json),
    not waitress's text page."""
    batch = SCHEMA["/api/v1/sync/batch"]["POST"]
    case = batch.Case(body={}, media_type="application/json")
    huge = b"{" + b" " * (2 * 256 * 1024 + 10) + b"}"
    url = urllib.parse.urlsplit(backend.backend.url)
    session = requests.Session()
    response = session.post("%s://%s/api/v1/sync/batch" % (url.scheme, url.netloc), data=huge,
                            headers={"X-Reader": READER, "X-Timestamp": str(int(time.time())),
                                     "X-Nonce": "f" * 16, "X-Signature": "0" * 64,
                                     "Content-Type": "application/json"})
    assert response.status_code == 413, response.text
    assert response.json()["refused"]["code"] == "batch.too_large"
    case.validate_response(response, checks=CHECKS)
