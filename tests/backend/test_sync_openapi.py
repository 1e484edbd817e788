"""docs/openapi.json describes exactly the sync API's routes, methods and refusal codes."""
import json
from pathlib import Path

from loyalty.protocol import errors
from loyalty.protocol.status import http_status

SPEC = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def spec():
    with open(SPEC) as f:
        return json.load(f)


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
    assert all(errors.known(c) for c in codes)
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            names = [p["$ref"].rsplit("/", 1)[1] for p in op["parameters"] if "$ref" in p]
            assert names == ["XReader", "XTimestamp", "XNonce", "XSignature"]
            for status, response in op["responses"].items():
                for code in codes:
                    if code in response["description"]:
                        assert http_status(code) == int(status), (path, code, status)
