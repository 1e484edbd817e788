"""protocol.ndef against ndeflib (the `ndef` package), on generated messages, both ways.

Our encoding decoded by ndeflib gives the same records, and is byte for byte what
ndeflib encodes; ndeflib's encoding decoded by ours gives the same records; mutated
messages either decode to what ndeflib (strict) also reads, or raise NdefError, and
never any other exception. ndeflib's known types are switched off so that its records
stay plain (type, name, data) and nothing is reinterpreted.
"""
import ndef as ndeflib
from hypothesis import given, settings
from hypothesis import strategies as st

from loyalty.protocol import ndef
from loyalty.protocol.ndef import NdefError

_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_tok = st.text(_ALNUM + "-", min_size=1, max_size=12)
# types as ndeflib spells them, per TNF (ndeflib.record.Record._encode_type)
_types = {
    1: _tok,
    2: st.builds(lambda a, b: a + "/" + b, _tok, st.text(_ALNUM + "-+.", min_size=1, max_size=12)),
    3: st.builds(lambda h, p: "http://" + h + "/" + p, st.text(_ALNUM, min_size=1, max_size=10), _tok),
    4: st.builds(lambda d, t: d + ".org:" + t, st.text(_ALNUM, min_size=1, max_size=10), _tok),
}
_PREFIX = {0: "", 1: "urn:nfc:wkt:", 2: "", 3: "", 4: "urn:nfc:ext:", 5: "unknown"}


@st.composite
def records(draw):
    tnf = draw(st.sampled_from([0, 1, 2, 3, 4, 5]))
    if tnf == 0:
        return (0, b"", b"", b"")
    rtype = draw(_types[tnf]).encode() if tnf in _types else b""
    rid = draw(st.binary(max_size=20))
    payload = draw(st.one_of(st.binary(max_size=40), st.binary(min_size=250, max_size=600)))
    return (tnf, rtype, rid, payload)


messages = st.lists(records(), min_size=1, max_size=5)


def _as_ndeflib(rec):
    tnf, rtype, rid, payload = rec
    name = "unknown" if tnf == 5 else _PREFIX[tnf] + rtype.decode()
    return ndeflib.Record(name, bytes(rid).decode("latin-1"), bytes(payload))


def _ours(records):
    return [(t, bytes(ty), bytes(i), bytes(p)) for t, ty, i, p in records]


def _theirs(data):
    return [(r.type, r.name, bytes(r.data)) for r in ndeflib.message_decoder(data, known_types={})]


def _key(rec):
    r = _as_ndeflib(rec)
    return (r.type, r.name, bytes(r.data))


@settings(max_examples=300, deadline=None)
@given(messages)
def test_ours_read_by_ndeflib(recs):
    data = ndef.encode(recs)
    assert _theirs(data) == [_key(r) for r in recs]
    assert data == b"".join(ndeflib.message_encoder([_as_ndeflib(r) for r in recs]))


@settings(max_examples=300, deadline=None)
@given(messages)
def test_ndeflib_read_by_ours(recs):
    data = b"".join(ndeflib.message_encoder([_as_ndeflib(r) for r in recs]))
    assert _ours(ndef.decode(data)) == recs
    first = recs[0]
    if first[0] != 0:
        assert bytes(ndef.find(data, first[0], first[1])) == first[3]


_mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10 ** 6), st.integers(1, 255)),
    st.tuples(st.just("cut"), st.integers(0, 10 ** 6), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, 10 ** 6), st.integers(0, 255)),
    st.tuples(st.just("delete"), st.integers(0, 10 ** 6), st.just(0)),
)


@settings(max_examples=1000, deadline=None)
@given(messages, st.lists(_mutation, min_size=1, max_size=3))
def test_mutated_messages(recs, mutations):
    data = bytearray(ndef.encode(recs))
    for how, at, value in mutations:
        at = at % (len(data) + 1)
        if how == "flip" and at < len(data):
            data[at] ^= value
        elif how == "cut":
            del data[at:]
        elif how == "insert":
            data[at:at] = bytes([value])
        elif how == "delete" and at < len(data):
            del data[at]
    try:
        got = ndef.decode(bytes(data))
    except NdefError as e:
        assert e.code == "card.unreadable" and e.field == "ndef" and e.detail
        return
    # what we accept, ndeflib (strict) reads as the same records; it only fails where its
    # type strings cannot say a TYPE field (ASCII, and TNF 2 and 3 shaped like a media type
    # or an absolute URI), which says nothing about the message's structure
    try:
        theirs = _theirs(bytes(data))
    except (ValueError, UnicodeDecodeError) as e:
        assert not isinstance(e, ndeflib.DecodeError), e
        assert any(t in (1, 2, 3, 4) for t, _, _, _ in got)
        return
    assert theirs == [_raw_key(r) for r in _ours(got)]


def _raw_key(rec):
    tnf, rtype, rid, payload = rec
    return ("unknown" if tnf == 5 else _PREFIX[tnf] + rtype.decode()), rid.decode("latin-1"), payload
