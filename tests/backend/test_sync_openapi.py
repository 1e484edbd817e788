"""docs/openapi.json describes exactly the sync API: its routes and methods, its refusal
codes and their HTTP statuses, the header rules the server applies, and the schema the
server holds records, status and batches to (its keys, ranges and lengths are the ones of
shared/protocol/recordcheck.py and batchcheck.py). tests/test_schemathesis.py holds the
running server to the same contract with generated requests."""
import json
import re
import time
from pathlib import Path

import pytest

from loyalty.backend.sync import api
from loyalty.protocol import batchcheck, engine, errors, recordcheck
from loyalty.protocol.canonical import decode, encode
from loyalty.protocol.checks import MAX_RULE, text_fault
from loyalty.protocol.records import GENESIS, body_digest, sign
from loyalty.protocol.status import MAX_BODY, TIMESTAMP_WINDOW, http_status

SPEC = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
BATCH = "/api/v1/sync/batch"


def spec():
    with open(SPEC) as f:
        return json.load(f)


def schemas():
    return spec()["components"]["schemas"]


def header_pattern(name):
    return re.compile(spec()["components"]["parameters"][name]["schema"]["pattern"])


def example_batch():
    op = spec()["paths"][BATCH]["post"]
    return op["requestBody"]["content"]["application/json"]["examples"]["three"]["value"]


def documented_codes(response):
    """The refusal codes a response's description names (`Refusal codes: a, b.`)."""
    m = re.search(r"Refusal codes: ([a-z_., ]+)\.", response["description"])
    return m.group(1).replace(" ", "").split(",") if m else []


def test_every_route_is_described_and_nothing_else(app):
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("syncapi."):
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                routes.add((rule.rule, method.lower()))
    doc = spec()
    assert doc["openapi"].startswith("3.1")
    described = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert routes == described and len(routes) == 4


def test_refusal_codes_and_statuses_are_the_ones_we_answer():
    doc = spec()
    codes = doc["components"]["schemas"]["Refusal"]["properties"]["code"]["enum"]
    # every code of the sync API's table, and the query's: no more, no fewer
    assert set(codes) == {c for c, *_ in errors.codes() if c.startswith("batch.")} | {"delta.format"}
    answered = set()
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            names = [p["$ref"].rsplit("/", 1)[1] for p in op["parameters"] if "$ref" in p]
            assert names == ["XReader", "XTimestamp", "XNonce", "XSignature"]
            for status, response in op["responses"].items():
                named = documented_codes(response)
                assert set(named) <= set(codes), (path, status, named)
                for code in named:
                    assert http_status(code) == int(status), (path, code, status)
                answered |= set(named)
                for code in codes:
                    if code in response["description"]:
                        assert code in named, (path, status, code)
            # every operation says where each credential refusal goes
            assert {"batch.reader", "batch.signature", "batch.stale", "batch.replay"} <= {
                c for r in op["responses"].values() for c in documented_codes(r)}, path
    assert answered == set(codes)
    batch = {c for r in doc["paths"][BATCH]["post"]["responses"].values() for c in documented_codes(r)}
    assert batch == {c for c in codes if c.startswith("batch.")}


def test_limits_are_the_servers():
    s = schemas()
    assert s["Batch"]["properties"]["records"]["maxItems"] == recordcheck.MAX_RECORDS == 200
    assert MAX_BODY == 256 * 1024 and TIMESTAMP_WINDOW == 300
    described = spec()["info"]["description"]
    assert "256 KiB" in described and "300 s" in described
    assert "256 KiB" in spec()["paths"][BATCH]["post"]["responses"]["413"]["description"]


def test_the_header_patterns_are_the_servers():
    assert header_pattern("XNonce").pattern == api._NONCE.pattern
    # the timestamp's pattern is "%d" of 1 to 19 digits: the server compares the text with it
    for text in ("0", "7", "1767225600", "9" * 19):
        assert header_pattern("XTimestamp").fullmatch(text) and "%d" % int(text) == text
    for text in ("00", "07", "+7", "-7", " 7", "7 ", "1e3", "9" * 20, "\u0661"):
        assert not header_pattern("XTimestamp").fullmatch(text)
    assert header_pattern("XSignature").pattern == "^[0-9a-f]{64}$"


@pytest.mark.parametrize("header, value, code", [
    ("X-Nonce", "0123456789ABCDEF", "batch.signature"),  # upper-case
    ("X-Nonce", "0123456789abcde", "batch.signature"),  # 15 digits
    ("X-Nonce", "0123456789abcdef0", "batch.signature"),  # 17
    ("X-Nonce", "0123456789abcdeg", "batch.signature"),
    ("X-Timestamp", "0{now}", "batch.stale"),  # a leading zero: signed as {now} it would verify
    ("X-Timestamp", "+{now}", "batch.stale"),
    ("X-Timestamp", "{now}.0", "batch.stale"),
    ("X-Signature", "UPPER", "batch.signature"),  # the right signature in upper-case hex
])
def test_a_header_outside_its_pattern_is_refused_unsigned(db, signed_reader, header, value, code):
    r = signed_reader()
    now = int(time.time())
    headers = r.headers("GET", "/api/v1/sync/keys", nonce="0123456789abcdef", t=now)
    value = value.format(now=now)
    if value == "UPPER":
        value = headers["X-Signature"].upper()
    else:
        # signed over what the server would read the header as, so only the pattern can refuse it
        t = int(value.lstrip("0+").split(".")[0] or 0) if header == "X-Timestamp" else now
        nonce = value if header == "X-Nonce" else headers["X-Nonce"]
        headers["X-Signature"] = sign(r.key, "GET", "/api/v1/sync/keys", t, nonce, body_digest(b""))
    pattern = header_pattern(header.replace("-", ""))
    assert not pattern.fullmatch(value)
    headers[header] = value
    resp = r.client.get("/api/v1/sync/keys", headers=headers)
    answer = decode(resp.data)
    assert (resp.status_code, answer["refused"]["code"], answer["refused"]["field"]) == \
        (http_status(code), code, header)
    assert "X-Signature" not in resp.headers and answer["ack"] == answer["keys"] == 0


def test_headers_inside_their_patterns_are_taken(db, signed_reader):
    r = signed_reader()
    nonces = iter(["0123456789abcdef", "f" * 16, "0" * 16, "9" * 16, "a" * 16, "0a1b2c3d4e5f6789"])
    for t in (int(time.time()), int(time.time()) - TIMESTAMP_WINDOW + 5):
        for n in (next(nonces), next(nonces), next(nonces)):
            headers = r.headers("GET", "/api/v1/sync/keys", t=t, nonce=n)
            for name in ("XTimestamp", "XNonce", "XSignature"):
                assert header_pattern(name).fullmatch(headers[name[0] + "-" + name[1:]])
            assert r.client.get("/api/v1/sync/keys", headers=headers).status_code == 200


def test_content_type_is_not_looked_at(db, signed_reader):
    r = signed_reader()
    body = encode({"reader": "R1", "records": [], "status": {},
                   "totals": {"count": 0, "discount": 0, "gross": 0}})
    for content_type in ("application/json", "text/plain", None):
        h = r.headers("POST", BATCH, body)
        if content_type is None:
            del h["Content-Type"]
        else:
            h["Content-Type"] = content_type
        resp = r.post(body, headers=h)
        assert resp.status_code == 200 and decode(resp.data)["refused"] is None, content_type


def test_the_documented_example_batch_is_accepted_as_it_stands():
    body = encode(example_batch())
    fresh, status, quarantined = batchcheck.check_batch(body, "R1", 0, GENESIS, lambda seq: None)
    assert [(seq, rec["kind"], "ref" in rec) for seq, rec, _ in fresh] == \
        [(1, "sale", False), (2, "return", True), (3, "void", False)]
    assert quarantined == {} and status == example_batch()["status"]


def test_the_record_schemas_have_the_keys_and_ranges_recordcheck_checks():
    s = schemas()
    record = {"SaleRecord": False, "CancelledQuoteRecord": False, "VoidedSaleRecord": True, "ReturnRecord": True}
    assert [x["$ref"].rsplit("/", 1)[1] for x in s["Record"]["oneOf"]] == list(record)
    for name, reversal in record.items():
        r = s[name]
        keys = set(recordcheck._COMMON) | (set(recordcheck._REVERSAL) if reversal else set())
        assert set(r["properties"]) == keys == set(r["required"]), name
        assert r["additionalProperties"] is False
        p = r["properties"]
        assert p["kind"]["const"] == {"SaleRecord": "sale", "ReturnRecord": "return"}.get(name, "void")
        assert p["receipt"]["minLength"] == p["quote"]["minLength"] == (0 if reversal else 1), name
        assert p["receipt"]["maxLength"] == p["quote"]["maxLength"] == recordcheck.MAX_TEXT
        assert p["reader"]["maxLength"] == batchcheck.MAX_TEXT
        assert (p["tier"]["minimum"], p["tier"]["maximum"]) == (0, 255)
        assert (p["t"]["minimum"], p["t"]["maximum"]) == (0, 2 ** 40)
        assert p["lines"]["maxItems"] == engine._MAX_LINES and p["lines"]["minItems"] == 1
        money = (p["gross"].get("minimum", 0), p["gross"].get("maximum", 0))
        assert -recordcheck.MAX_MONEY <= money[0] <= money[1] <= recordcheck.MAX_MONEY
    line = s["Line"]["properties"]
    assert (line["sku"]["minLength"], line["cat"]["minLength"]) == (1, 0)
    assert line["sku"]["maxLength"] == line["cat"]["maxLength"] == engine._MAX_TEXT
    assert (line["qty"]["maximum"], line["price"]["maximum"]) == (engine._MAX_QTY, engine._MAX_PRICE)
    for name in ("DiscountLine", "ReversedDiscountLine"):
        d = s[name]
        assert set(d["properties"]) == set(recordcheck._DISC_KEYS) == set(d["required"])
        assert d["properties"]["rule"]["maxLength"] == MAX_RULE


def test_the_status_schema_has_the_keys_and_ranges_check_status_checks():
    p = schemas()["Status"]["properties"]
    assert schemas()["Status"]["additionalProperties"] is False and "required" not in schemas()["Status"]
    ints = {name: (lo, hi) for name, lo, hi in batchcheck._STATUS_INTS}
    texts = dict(batchcheck._STATUS_TEXTS)
    assert set(p) == set(ints) | set(texts) | {"journal"}
    for name, (lo, hi) in ints.items():
        assert (p[name]["minimum"], p[name]["maximum"]) == (lo, hi), name
    for name, hi in texts.items():
        assert (p[name]["minLength"], p[name]["maxLength"]) == (0, hi), name
    assert p["journal"]["enum"] == list(batchcheck.JOURNAL_LEVELS)


TEXT_SAMPLES = ["Caffè d'orzo", "", "a\u0000b", "tab\there", "del\u007f", "c1\u0085", "\u061cx", "\u200e",
                "\u202egnp.exe", "\u2066x\u2069", "€ 1,00", "日本"]


def test_the_text_pattern_is_the_text_rule():
    pattern = re.compile(schemas()["Line"]["properties"]["sku"]["pattern"])
    for sample in TEXT_SAMPLES:
        assert (pattern.fullmatch(sample) is not None) == (text_fault(sample) is None), repr(sample)
