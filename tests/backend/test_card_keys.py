"""Card key epochs: head office starts them, readers get them wrapped in their own key."""
import hashlib
import hmac

import pytest

from loyalty.backend import headoffice
from loyalty.protocol.canonical import decode
from loyalty.protocol.records import body_digest, sign_answer

KEYS = "/api/v1/sync/keys?since=0"


def unwrap(reader_key, epoch, wrapped):
    # docs/cards.md, written out here with the standard library, not protocol.loyaltycard
    pad = hmac.new(reader_key, b"sconto-epoch" + bytes([epoch]), hashlib.sha256).digest()
    return bytes(a ^ b for a, b in zip(wrapped, pad))


def test_epochs_count_up_with_fresh_keys(db):
    assert headoffice.current_epoch(db) is None
    assert headoffice.new_card_epoch(db) == 1
    assert headoffice.new_card_epoch(db) == 2
    k1, k2 = headoffice.issuer_key(db, 1), headoffice.issuer_key(db, 2)
    assert len(k1) == len(k2) == 32 and k1 != k2
    assert headoffice.current_epoch(db) == 2
    with pytest.raises(headoffice.NotFound):
        headoffice.issuer_key(db, 3)


def test_a_card_key_is_diversified_from_the_current_epoch(db):
    with pytest.raises(headoffice.NotFound):
        headoffice.issue_card_key(db, "6001000000000042")
    headoffice.new_card_epoch(db)
    epoch, key = headoffice.issue_card_key(db, "6001000000000042")
    want = hmac.new(headoffice.issuer_key(db, 1), b"sconto-card6001000000000042", hashlib.sha256).digest()
    assert (epoch, key) == (1, want)
    with pytest.raises(headoffice.InvalidValue):
        headoffice.issue_card_key(db, "60A1")


def test_a_reader_gets_every_epoch_wrapped_in_its_own_key(db, signed_reader, make_reader):
    r = signed_reader()
    other_key = make_reader("R2")
    headoffice.new_card_epoch(db)
    headoffice.new_card_epoch(db)
    h = r.headers("GET", KEYS)
    resp = r.client.get(KEYS, headers=h)
    assert resp.status_code == 200
    assert resp.headers["X-Signature"] == sign_answer(r.key, h["X-Nonce"], 200, body_digest(resp.data))
    answer = decode(resp.data)
    assert answer["version"] == 2 and [e for e, _ in answer["keys"]] == [1, 2]
    for epoch, wrapped in answer["keys"]:
        wrapped = bytes.fromhex(wrapped)
        assert wrapped != headoffice.issuer_key(db, epoch)  # not in clear on the wire
        assert unwrap(r.key, epoch, wrapped) == headoffice.issuer_key(db, epoch)
        assert unwrap(other_key, epoch, wrapped) != headoffice.issuer_key(db, epoch)


def test_the_batch_answer_announces_the_keys_version(db, signed_reader, shop_rules):
    r = signed_reader()
    resp, _ = r.send([], {"pending": 0})
    assert decode(resp.data)["keys"] == 0
    headoffice.new_card_epoch(db)
    resp, _ = r.send([], {"pending": 0})
    assert decode(resp.data)["keys"] == 1


def test_an_unsigned_keys_request_gets_nothing(db, signed_reader):
    r = signed_reader()
    headoffice.new_card_epoch(db)
    h = r.headers("GET", KEYS, key=bytes(32))
    resp = r.client.get(KEYS, headers=h)
    answer = decode(resp.data)
    assert resp.status_code == 401 and answer["keys"] == 0 and answer["refused"]["code"] == "batch.signature"
    assert "X-Signature" not in resp.headers


def test_the_cli_never_prints_the_key(db, runner):
    result = runner.invoke(args=["new-card-epoch"])
    assert result.exit_code == 0, result.output
    assert "epoch 1" in result.output
    assert headoffice.issuer_key(db, 1).hex() not in result.output


def test_head_office_can_ask_for_ntag_signatures(db, runner, shop_rules):
    from loyalty.protocol import engine

    assert "cards" not in headoffice.current_rules(db)[1]
    result = runner.invoke(args=["set-limits", "--ntag-signature"])
    assert result.exit_code == 0, result.output
    version, rules = headoffice.current_rules(db)
    assert version == shop_rules + 1 and rules["cards"] == {"ntag_signature": True}
    engine.check_rules(rules)
    runner.invoke(args=["set-limits", "--no-ntag-signature"])
    assert "cards" not in headoffice.current_rules(db)[1]


def test_a_retired_epoch_is_taken_from_the_readers(db, signed_reader, runner):
    r = signed_reader()
    headoffice.new_card_epoch(db)
    headoffice.new_card_epoch(db)
    result = runner.invoke(args=["retire-card-epoch", "1"])
    assert result.exit_code == 0, result.output
    answer = decode(r.get(KEYS).data)
    assert answer["version"] == 3 and [e for e, _ in answer["keys"]] == [2]
    assert headoffice.current_epoch(db) == 2
    assert runner.invoke(args=["retire-card-epoch", "1"]).exit_code == 1  # already retired
    assert runner.invoke(args=["retire-card-epoch", "9"]).exit_code == 1  # no such epoch
    headoffice.retire_card_epoch(db, 2)
    assert headoffice.current_epoch(db) is None  # nothing to issue in until a new epoch
    assert decode(r.get(KEYS).data)["keys"] == []
