"""Cards through the whole reader: the firmware on MicroPython, its PN532 driver talking
PN532 frames to the simulator (sim/pn532sim.py), card keys fetched from the backend on
waitress, and the receipt stored there once.

Each card kind gets its tier's discount; forged, unknown and misbehaving cards get a named
error at the till; every fault the simulator injects ends in a message and a reader that
reads the next card.
"""
import pytest

from loyalty.sim import sampleshop
from loyalty.backend import headoffice
from loyalty.sim.cardmodels import AppletCard, NtagCard, PhoneCard, UidCard
from loyalty.testing.chain import Chain, basket, idle, void
from loyalty.protocol import loyaltycard
from loyalty.sim.simboard import wait_for

GOLD = sampleshop.card_number(10)    # tier 2
SILVER = sampleshop.card_number(3)   # tier 1
BASE = sampleshop.card_number(1)     # tier 0
BLOCKED = sampleshop.card_number(13)
NEW = sampleshop.card_number(950)    # issued after the reader's last sync: default tier


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    with Chain(tmp_path_factory.mktemp("nfc")) as c:
        c.reader("R1", nfc=True)
        c.issuer = c.change(headoffice.issuer_key, 1)
        yield c


@pytest.fixture
def r1(chain):
    r = chain.readers["R1"]
    r.nfc.remove()
    yield r
    idle(r)  # a test that failed half-way leaves no quote for the next one


class PhoneWithoutApp(PhoneCard):
    """A phone whose wallet has no loyalty app: SELECT finds nothing (6A82)."""

    def apdu(self, cmd):
        return b"\x6a\x82"


def uid(n):
    return bytes([0x04, 0x10, 0x20, 0x30, 0x40, 0x50, n])


def tap(r, card):
    # a card taken away stays away until the reader has seen the field empty, as a hand
    # stays away longer than the reader's poll pause (50 ms)
    r.tap_out()
    r.nfc.tap(card)


def quote_for(r, receipt, card):
    basket(r, receipt)
    tap(r, card)
    return r.till.expect("quote")


def expect_error(r, code, timeout=20):
    msg = r.till.recv(timeout)
    assert msg["type"] == "error" and msg["code"] == code, msg
    return msg


def test_each_card_kind_gets_its_tiers_discount_and_the_receipt_is_stored_once(chain, r1):
    cards = [
        (NtagCard.loyalty(GOLD, 1, chain.issuer, uid(1)), GOLD, 2),
        (PhoneCard(SILVER, 1, chain.issuer), SILVER, 1),
        (AppletCard(bytes.fromhex("04aa55aa55aa55"), card=BASE, epoch=1, issuer_key=chain.issuer), BASE, 0),
        (UidCard(sampleshop.UID_CARDS[0][0]), loyaltycard.uid_card(sampleshop.UID_CARDS[0][0]), 1),
        (NtagCard.loyalty(NEW, 1, chain.issuer, uid(2)), NEW, 0),
    ]
    committed = []
    for i, (model, number, tier) in enumerate(cards):
        q = quote_for(r1, "NFC-%d" % i, model)
        assert q["card"].endswith(number[-4:]) and q["tier"] == tier, (number, q)
        assert q["discount"] > 0
        r1.till.send({"type": "commit", "quote": q["quote"], "paid": q["gross"] - q["discount"]})
        committed.append((r1.till.expect("committed"), number, q["discount"]))
    wait_for(lambda: chain.synced(r1), timeout=60, what="the receipts at the backend")
    for c, number, discount in committed:
        rows = chain.db_rows("SELECT card, discount FROM receipts WHERE reader_id='R1' AND seq=?", [c["seq"]])
        assert rows == [(number, discount)]
    chain.wait_audited("R1")
    assert chain.db_rows("SELECT count(*) FROM receipts WHERE audit != 'ok'") == [(0,)]


def test_a_card_lying_on_the_reader_counts_once(chain, r1):
    model = NtagCard.loyalty(GOLD, 1, chain.issuer, uid(3))
    q = quote_for(r1, "ONCE-1", model)
    void(r1, q)
    basket(r1, "ONCE-2")  # the card stays: no second quote until it is tapped again
    looked = r1.nfc.polls_found
    # the reader has found the card lying there again and again since the basket opened:
    # a quote for it would have been sent before the next look
    wait_for(lambda: r1.nfc.polls_found >= looked + 3, what="the reader to look at the card lying there")
    with pytest.raises(OSError):
        r1.till.recv(timeout=1.5)
    tap(r1, model)
    q = r1.till.expect("quote")
    assert q["card"].endswith(GOLD[-4:])
    void(r1, q)


@pytest.mark.parametrize("name", ["forged_copy", "wrong_epoch", "phone_without_app", "unknown_uid",
                                  "blocked", "two_cards"])
def test_cards_that_get_nothing_are_named(chain, r1, name):
    good = NtagCard.loyalty(GOLD, 1, chain.issuer, uid(4))
    basket(r1, "BAD-" + name)
    if name == "forged_copy":
        # the record of one tag written onto another: its MAC names the first tag's UID
        copy = NtagCard(uid(5), memory=good.user_memory())
        tap(r1, copy)
        expect_error(r1, "card.forged")
    elif name == "wrong_epoch":
        tap(r1, NtagCard.loyalty(GOLD, 7, chain.issuer, uid(6)))
        expect_error(r1, "card.key")
    elif name == "phone_without_app":
        tap(r1, PhoneWithoutApp())
        expect_error(r1, "card.no_applet")
    elif name == "unknown_uid":
        tap(r1, UidCard(bytes.fromhex("1234abcd")))
        q = r1.till.expect("quote")
        assert q["discount"] == 0 and q["note"] == "card.not_registered"
        void(r1, q)
        return
    elif name == "blocked":
        tap(r1, NtagCard.loyalty(BLOCKED, 1, chain.issuer, uid(7)))
        q = r1.till.expect("quote")
        assert q["discount"] == 0 and q["note"] == "card.blocked"
        void(r1, q)
        return
    else:
        r1.nfc.tap_two(good, PhoneCard(SILVER, 1, chain.issuer))
        expect_error(r1, "card.two")
    # the basket still waits, and the next good tap gets its quote
    tap(r1, good)
    q = r1.till.expect("quote")
    assert q["tier"] == 2
    void(r1, q)


def test_a_card_pulled_away_mid_read(chain, r1):
    model = NtagCard.loyalty(GOLD, 1, chain.issuer, uid(8))
    basket(r1, "PULL-1")
    r1.nfc.tap(model, pull_after=1)  # GET_VERSION answers, the reads that follow do not
    expect_error(r1, "card.removed")
    tap(r1, NtagCard.loyalty(GOLD, 1, chain.issuer, uid(9)))
    void(r1, r1.till.expect("quote"))


@pytest.mark.parametrize("fault", ["garbage", "lost_ack", "stale", "nack", "timeout", "bad_checksum", "split"])
def test_every_fault_ends_in_a_message_or_a_quote_and_a_ready_reader(chain, r1, fault):
    basket(r1, "FAULT-" + fault)
    r1.nfc.inject(fault)
    tap(r1, PhoneCard(SILVER, 1, chain.issuer))
    msg = r1.till.recv(20)
    if msg["type"] == "error":
        # the controller's trouble or a failed read is named; the reader goes on
        assert msg["code"].split(".")[0] in ("nfc", "pn532", "card"), msg
        tap(r1, PhoneCard(SILVER, 1, chain.issuer))
        msg = r1.till.expect("quote")
    assert msg["type"] == "quote" and msg["tier"] == 1, msg
    void(r1, msg)
    assert r1.alive() and r1.status()["state"] == "idle"


def test_a_mifare_ultralight_is_a_uid_card(chain, r1):
    # a Type 2 tag older than the NTAG21x NAKs GET_VERSION with 4 bits, which the PN532
    # (checking CRCs) reports as status 02; the reader takes it as the NAK it is
    class Ultralight(UidCard):
        def answer(self, cmd):
            return b"\x00"

    uid7 = sampleshop.UID_CARDS[1][0]
    q = quote_for(r1, "UL-1", Ultralight(uid7, sak=0x00))
    assert q["tier"] == sampleshop.UID_CARDS[1][1] and q["note"] == "" and q["discount"] > 0
    void(r1, q)


def test_zz_a_retired_epoch_stops_its_cards(chain, r1):
    # runs last (the module's cards are of epoch 1): head office starts epoch 2 and
    # retires epoch 1, as after a reader went missing
    chain.change(headoffice.new_card_epoch)
    chain.change(headoffice.retire_card_epoch, 1)
    wait_for(lambda: chain.synced(r1), timeout=60, what="the reader to fetch the keys")
    issuer2 = chain.change(headoffice.issuer_key, 2)
    basket(r1, "EPOCH-1")
    tap(r1, NtagCard.loyalty(GOLD, 1, chain.issuer, uid(20)))
    expect_error(r1, "card.key")
    tap(r1, NtagCard.loyalty(GOLD, 2, issuer2, uid(21)))
    q = r1.till.expect("quote")
    assert q["tier"] == 2
    void(r1, q)
