"""backend/fastjson gives exactly what protocol.canonical gives: the same bytes, the same
values, the same refusals, on generated values and bodies."""
import json
import re

from hypothesis import given, settings, strategies as st

from loyalty.backend.sync import fastjson
from loyalty.protocol import canonical
from loyalty.protocol.errors import EncodingError

# text with what the encoders treat differently: control characters (\b and \f above all),
# quotes, backslashes, non-ASCII, non-BMP characters, and lone surrogates
chars = st.one_of(st.characters(max_codepoint=0x1F), st.sampled_from('"\\/\b\f\n\r\t\x7fè€'),
                  st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF),
                  st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), st.characters())
texts = st.text(chars, max_size=12)
scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2 ** 70), max_value=2 ** 70), texts)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(texts, inner, max_size=5)), max_leaves=20)


def outcome(fn, arg):
    try:
        return ("value", fn(arg))
    except EncodingError as e:
        return ("refused", e.code, e.field, e.detail)
    except UnicodeError as e:
        return ("unicode", type(e).__name__)


@settings(max_examples=400, deadline=None)
@given(values)
def test_encode_is_the_canonical_encoding(value):
    assert outcome(fastjson.encode, value) == outcome(canonical.encode, value)


@settings(max_examples=400, deadline=None)
@given(values)
def test_decode_of_canonical_bytes(value):
    try:
        data = canonical.encode(value)
    except UnicodeError:
        return  # a lone surrogate has no UTF-8 bytes
    assert fastjson.decode(data) == value == canonical.decode(data, strict=True)


def _variants(data):
    """Bytes close to canonical ones: what a sloppy or hostile client sends."""
    text = data.decode()
    yield data + b" "
    yield b" " + data
    yield data.replace(b":", b": ", 1)
    yield data.replace(b",", b", ", 1)
    yield data[:-1]
    yield data.replace(b"\\u00", b"\\u00".upper(), 1)
    yield data.replace(b"\\u0008", b"\\b").replace(b"\\u000c", b"\\f")
    yield data.replace(b"\\n", b"\\u000a")
    yield json.dumps(json.loads(text), ensure_ascii=True, sort_keys=True, separators=(",", ":")).encode()
    yield json.dumps(json.loads(text)).encode()
    yield data.replace(b"1", b"1.0", 1)
    yield data.replace(b"1", b"1e0", 1)
    yield data.replace(b"null", b"NaN", 1)
    yield data.replace(b"/", b"\\/", 1)
    yield b"\xef\xbb\xbf" + data


@settings(max_examples=300, deadline=None)
@given(values)
def test_decode_refuses_what_canonical_refuses(value):
    try:
        data = canonical.encode(value)
    except UnicodeError:
        return
    for variant in _variants(data):
        assert outcome(fastjson.decode, variant) == outcome(lambda d: canonical.decode(d, strict=True), variant)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40))
def test_decode_of_any_bytes(data):
    assert outcome(fastjson.decode, data) == outcome(lambda d: canonical.decode(d, strict=True), data)


def test_the_escapes_json_writes_differently():
    value = {"a": "\b\f\x01"}
    assert fastjson.encode(value) == canonical.encode(value) == b'{"a":"\\u0008\\u000c\\u0001"}'
    assert fastjson.decode(b'{"a":"\\u0008"}') == {"a": "\b"}
    for bad in (b'{"a":"\\b"}', b'{"a":"\\f"}', b'{"a":1.5}', b'{"a":1,"a":2}', b'{"b":1,"a":2}'):
        try:
            fastjson.decode(bad)
        except EncodingError as e:
            assert e.code == "enc.canonical" or e.code == "enc.type", bad
        else:
            raise AssertionError("accepted %r" % bad)


def test_record_codec_keeps_each_records_bytes():
    codec = fastjson.RecordCodec()
    batch = codec.decode(b'{"records":[{"seq":1,"x":"\\u0008"},{"seq":2}]}')
    assert codec.value is batch
    first = batch["records"][0]
    data = codec.encode(first)
    assert data == canonical.encode(first) and codec.bytes_of(first) is data
    other = {"seq": 3}
    assert codec.bytes_of(other) == b'{"seq":3}'


batches = st.fixed_dictionaries({"reader": texts, "records": st.lists(values, max_size=4)},
                                optional={"status": values, "totals": values, "zzz": values})


def decoded_as_pure(batch):
    """The batch's canonical bytes, checked to decode through RecordCodec to the batch with
    each record's own bytes; None when the batch cannot be encoded (a lone surrogate)."""
    try:
        data = canonical.encode(batch)
    except UnicodeError:
        return None
    codec = fastjson.RecordCodec()
    assert codec.decode(data) == batch
    for rec in codec.value["records"]:
        assert codec.bytes_of(rec) == canonical.encode(rec)
        assert codec.text_of(rec) == canonical.encode(rec).decode()
    return data


@settings(max_examples=300, deadline=None)
@given(batches)
def test_record_codec_reads_batches_as_the_pure_decoder(batch):
    data = decoded_as_pure(batch)
    if data is None:
        return
    for variant in list(_variants(data)) + [data.replace(b'"records":[', b'"records": [', 1),
                                            data.replace(b"],", b"] ,", 1), data[:-1] + b',"a":1}']:
        assert outcome(fastjson.RecordCodec().decode, variant) == \
            outcome(lambda d: canonical.decode(d, strict=True), variant)


# -- the firmware's records: proven canonical by regular expressions, not encoded again ------

ints = st.integers(min_value=-(2 ** 70), max_value=2 ** 70)
lines = st.lists(st.fixed_dictionaries({"cat": texts, "price": ints, "qty": ints, "sku": texts}), max_size=3)
discs = st.lists(st.fixed_dictionaries({"cents": ints, "line": ints, "rule": texts}), max_size=3)
firmware_records = st.fixed_dictionaries(
    {"card": texts, "disc": discs, "discount": ints, "gross": ints, "kind": texts, "lines": lines,
     "prev": texts, "quote": texts, "reader": texts, "receipt": texts, "rules": ints, "seq": ints,
     "t": ints, "tier": ints, "v": ints},
    optional={"ref": ints, "returned": st.lists(ints, max_size=3), "returning": st.lists(ints, max_size=3)})
firmware_batches = st.fixed_dictionaries({"reader": texts, "records": st.lists(firmware_records, max_size=3),
                                          "status": values, "totals": values})


def _record_variants(data):
    """Bytes one slip away from canonical inside a record: key order, numbers, escapes."""
    yield data.replace(b'"disc":', b'"disc" :', 1)
    yield data.replace(b'{"card":', b'{ "card":', 1)
    yield data.replace(b'"gross":', b'"grosz":', 1)
    yield data.replace(b'"discount":', b'"zdiscount":', 1)
    yield re.sub(rb'"t":-?[0-9]+', b'"t":-0', data, count=1)
    yield re.sub(rb'"seq":(-?)([0-9]+)', rb'"seq":\g<1>0\g<2>', data, count=1)
    yield re.sub(rb'"cents":-?[0-9]+', b'"cents":1e2', data, count=1)
    yield data.replace(b'"kind":"', b'"kind":"\\u0041', 1)
    yield data.replace(b'"kind":"', b'"kind":"\\/', 1)
    yield data.replace(b'"kind":"', b'"kind":"\\u00e8', 1)
    yield data.replace(b'"kind":"', b'"kind":"\\u001F', 1)
    yield data.replace(b'"kind":"', b'"kind":"\\ud800', 1)
    yield data.replace(b'"kind":"', b'"kind":"\\u0009', 1)
    yield data.replace(b'"kind":"', b'"kind":"\t', 1)
    yield data.replace(b'"card":', b'"card":"x","card":', 1)
    yield data.replace(b'"lines":[{"cat"', b'"lines":[{"price":1,"cat"', 1)
    yield data.replace(b',"rules":', b',"ref":1,"rules":', 1)
    yield data.replace(b'"tier":', b'"tier":1.5,"u":', 1)


@settings(max_examples=300, deadline=None)
@given(firmware_batches)
def test_firmware_records_take_the_fast_path_and_agree(batch):
    data = decoded_as_pure(batch)
    if data is None:
        return
    if not any(x in data for x in (b"\\b", b"\\f", b"\\u0008", b"\\u000c")):
        # (the C encoder that checks status and totals writes U+0008 and U+000C otherwise)
        assert fastjson._split_firmware_batch(data.decode()) is not None
    for variant in list(_record_variants(data)) + list(_variants(data)):
        want = outcome(lambda d: canonical.decode(d, strict=True), variant)
        codec = fastjson.RecordCodec()
        assert outcome(codec.decode, variant) == want, variant
        if want[0] == "value":
            for rec in codec.value["records"]:
                assert codec.bytes_of(rec) == canonical.encode(rec)


def test_a_real_batch_takes_the_fast_path(signed_reader, db, shop_rules):
    from loyalty.backend import headoffice
    from loyalty.protocol.records import batch_body

    r = signed_reader()
    rules = headoffice.rules_at(db, shop_rules)
    sale = r.sale(rules)
    s = canonical.decode(sale)
    void = r.record("void", lines=s["lines"], rules=1)
    back = r.record("return", card=s["card"], tier=s["tier"], lines=s["lines"], gross=-s["lines"][0]["price"],
                    discount=0, disc=[], rules=s["rules"], ref=1, returned=[0] * len(s["lines"]),
                    returning=[1] + [0] * (len(s["lines"]) - 1))
    body = batch_body("R1", [sale, void, back], {"pending": 3})
    value, spans = fastjson._split_firmware_batch(body.decode())
    assert value == canonical.decode(body, strict=True)
    assert [body.decode()[i:j].encode() for i, j in spans] == [sale, void, back]
