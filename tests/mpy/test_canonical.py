"""Canonical encoding: same bytes on both runtimes, named errors for what it refuses."""
from check import raises
from protocol.canonical import decode, encode
from protocol.errors import EncodingError


def test_sorted_keys_no_spaces():
    assert encode({"b": 1, "a": [True, False, None], "c": {"z": -3, "y": "x"}}) == \
        b'{"a":[true,false,null],"b":1,"c":{"y":"x","z":-3}}'


def test_text_escapes_and_utf8():
    assert encode('a"b\\c\nd\x01è€') == b'"a\\"b\\\\c\\nd\\u0001\xc3\xa8\xe2\x82\xac"'


def test_round_trip_is_strict_canonical():
    value = {"seq": 12, "lines": [{"sku": "800123", "qty": 2}], "note": "caffè"}
    data = encode(value)
    assert decode(data, strict=True) == value


def test_refuses_floats_and_odd_keys():
    e = raises(EncodingError, encode, {"price": 1.5})
    assert e.code == "enc.type" and e.field == "price"
    assert raises(EncodingError, encode, {1: 2}).code == "enc.type"


def test_non_canonical_and_malformed_input():
    assert raises(EncodingError, decode, b'{"b": 1, "a": 2}', True).code == "enc.canonical"
    assert raises(EncodingError, decode, b'{"a":', True).code == "enc.json"
    assert decode(b'{"b": 1}') == {"b": 1}
