"""The backend's answers as the reader checks them (protocol.syncmsg) before acting on them.

The reader deletes journal records because of an acknowledgement and replaces its rules
because of a rules answer, so a truncated, garbled or oversized answer must be a named
refusal (sync.response, sync.too_long), never a crash and never a half-read value.
"""
from check import eq, raises
from protocol.canonical import encode
from protocol.errors import SyncError, known
from protocol.syncmsg import MAX_ANSWER, parse_ack, parse_keys_answer, parse_rules_answer

T0 = 1790000000


def _ack(**changes):
    a = {"ack": 17, "directory": 3, "refused": None, "rules": 5, "time": T0}
    for k in changes:
        if changes[k] == "-":
            del a[k]
        else:
            a[k] = changes[k]
    return a


def _rules():
    return {"version": 4, "default_tier": 0, "tiers": [{"id": 0, "code": "base", "bp": 200}],
            "promotions": [], "limits": {"receipt_max_cents": 5000},
            "offline": {"receipt_max_cents": 5000, "card_day_max_cents": 20000, "stale_hours": 48}}


def _refused(code, field, fn, data, *args):
    e = raises(SyncError, fn, data, *args)
    eq((e.code, e.field), (code, field), "refusal of %r" % (data[:80],))
    assert known(e.code), e.code
    return e


def test_ack_good():
    got = parse_ack(encode(_ack()))
    eq(got, {"ack": 17, "directory": 3, "keys": 0, "refused": None, "rules": 5, "time": T0}, "acknowledgement")
    eq(parse_ack(encode(_ack(ack=0, directory=0, rules=0, time=0)))["ack"], 0, "a new reader")
    # an answer need not be canonical: spaces and key order are the server's business
    eq(parse_ack(b'{ "time": 5, "rules": 1, "refused": null, "directory": 2, "ack": 3 }'),
       {"ack": 3, "directory": 2, "keys": 0, "refused": None, "rules": 1, "time": 5}, "any JSON object")
    # keys the reader does not know are left out of what it acts on
    eq(sorted(parse_ack(encode(_ack(extra="x")))), ["ack", "directory", "keys", "refused", "rules", "time"],
       "known keys only")


def test_ack_with_refusal():
    why = {"code": "batch.gap", "field": "records[0].seq", "detail": "expected 18, got 19"}
    eq(parse_ack(encode(_ack(refused=why)))["refused"], why, "refusal")
    # field and detail are optional, and cut to what the status and the display can hold
    eq(parse_ack(encode(_ack(refused={"code": "batch.stale"})))["refused"],
       {"code": "batch.stale", "field": "", "detail": ""}, "bare refusal")
    long = parse_ack(encode(_ack(refused={"code": "batch.chain", "field": "f" * 100, "detail": "d" * 500})))
    eq((len(long["refused"]["field"]), len(long["refused"]["detail"])), (64, 120), "cut lengths")


def test_ack_truncated_and_garbled():
    good = encode(_ack())
    for n in (0, 1, len(good) // 2, len(good) - 1):
        _refused("sync.response", "", parse_ack, good[:n])
    for data in (b"HTTP/1.1 200 OK", b"\xff\xfe\xfd", b"{'ack': 17}", b"<html>502</html>",
                 good.replace(b":", b"=", 1), good + b"}"):
        _refused("sync.response", "", parse_ack, data)
    # JSON, but not an object
    for data in (b"[17]", b"17", b'"ok"', b"null"):
        _refused("sync.response", "", parse_ack, data)


def test_ack_deeply_nested():
    # within the size limit but deeper than the parser can hold: a refusal, not a crash
    _refused("sync.response", "", parse_ack, b"[" * 4000 + b"]" * 4000)


def test_ack_too_long():
    # checked before parsing: even garbage of that length is too long, not malformed
    _refused("sync.too_long", "", parse_ack, b"x" * (MAX_ANSWER + 1))
    eq(parse_ack(encode(_ack()) + b" " * 100, MAX_ANSWER)["ack"], 17, "padded, within the limit")
    small = encode(_ack())
    eq(parse_ack(small, len(small))["ack"], 17, "exactly at a limit")
    _refused("sync.too_long", "", parse_ack, small, len(small) - 1)
    # a good answer made too long by padding is refused all the same
    _refused("sync.too_long", "", parse_ack, small + b" ", len(small))


def test_ack_wrong_types_name_the_field():
    cases = [
        ("ack", _ack(ack="17")), ("ack", _ack(ack=True)), ("ack", _ack(ack=-1)),
        ("ack", _ack(ack=None)), ("ack", _ack(ack="-")), ("ack", _ack(ack=2 ** 53 + 1)),
        ("rules", _ack(rules=[5])), ("rules", _ack(rules="-")),
        ("directory", _ack(directory={"v": 3})), ("directory", _ack(directory=False)),
        ("time", _ack(time=2 ** 40 + 1)), ("time", _ack(time="now")),
    ]
    for field, answer in cases:
        _refused("sync.response", field, parse_ack, encode(answer))


def test_ack_bad_refusal():
    for refused in ({"code": "batch.unheard_of"}, {"code": ""}, {"code": 7}, {"field": "x"},
                    "batch.gap", ["batch.gap"], 0, True):
        _refused("sync.response", "refused.code", parse_ack, encode(_ack(refused=refused)))
    _refused("sync.response", "refused.field", parse_ack,
             encode(_ack(refused={"code": "batch.gap", "field": 3})))
    _refused("sync.response", "refused.detail", parse_ack,
             encode(_ack(refused={"code": "batch.gap", "detail": None})))


def test_rules_answer_good():
    answer = {"version": 4, "rules": _rules()}
    eq(parse_rules_answer(encode(answer)), answer, "rules answer")


def test_rules_answer_bad():
    good = encode({"version": 4, "rules": _rules()})
    for n in (0, 10, len(good) - 1):
        _refused("sync.response", "", parse_rules_answer, good[:n])
    _refused("sync.response", "", parse_rules_answer, b"[4]")
    _refused("sync.response", "", parse_rules_answer, b"\xc3\x28")
    _refused("sync.response", "version", parse_rules_answer, encode({"rules": _rules()}))
    _refused("sync.response", "version", parse_rules_answer, encode({"version": "4", "rules": _rules()}))
    _refused("sync.response", "version", parse_rules_answer, encode({"version": -1, "rules": _rules()}))
    _refused("sync.response", "rules", parse_rules_answer, encode({"version": 4}))
    _refused("sync.response", "rules", parse_rules_answer, encode({"version": 4, "rules": [_rules()]}))
    _refused("sync.response", "rules", parse_rules_answer, encode({"version": 4, "rules": None}))
    _refused("sync.too_long", "", parse_rules_answer, b" " * (MAX_ANSWER + 1))
    _refused("sync.too_long", "", parse_rules_answer, good, len(good) - 1)


def test_ack_announces_card_keys_or_not():
    eq(parse_ack(encode(_ack(keys=4)))["keys"], 4, "keys version")
    eq(parse_ack(encode(_ack()))["keys"], 0, "an older backend announces none")
    eq(raises(SyncError, parse_ack, encode(_ack(keys=-1))).field, "keys", "field")


def test_keys_answer_good():
    k1, k2 = "ab" * 32, "0f" * 32
    version, keys = parse_keys_answer(encode({"keys": [[1, k1], [2, k2]], "version": 7}))
    eq(version, 7, "version")
    eq(keys, [(1, b"\xab" * 32), (2, b"\x0f" * 32)], "keys as bytes")
    eq(parse_keys_answer(encode({"keys": [], "version": 0})), (0, []), "no epochs yet")


def test_keys_answer_bad_names_the_item():
    good = "ab" * 32
    for keys, field in (([[0, good]], "keys[0]"), ([[1, good], [256, good]], "keys[1]"),
                        ([[1, good[:-2]]], "keys[0]"), ([[1, "zz" * 32]], "keys[0]"),
                        ([[True, good]], "keys[0]"), ([[1]], "keys[0]"), ({"1": good}, "keys"),
                        ([1, good], "keys[0]")):
        e = raises(SyncError, parse_keys_answer, encode({"keys": keys, "version": 1}))
        eq((e.code, e.field), ("sync.response", field), repr(keys)[:40])
    eq(raises(SyncError, parse_keys_answer, encode({"keys": []})).field, "version", "no version")
