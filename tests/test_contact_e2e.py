"""Contact smart cards through the whole reader: the firmware on MicroPython, its ISO 7816-3
driver talking to the contact-card simulator (sim/iso7816sim.py) through the slot's line
and pins, card keys from the backend on waitress, and the receipt stored there once.

The same reader also has its NFC controller: a phone and a contact card at one till.
"""
import pytest

from loyalty.sim import sampleshop
from loyalty.backend import headoffice
from loyalty.sim.cardmodels import AppletCard, PhoneCard
from loyalty.testing.chain import Chain, basket, idle, void
from loyalty.sim.iso7816sim import ContactCard
from loyalty.sim.simboard import wait_for

GOLD = sampleshop.card_number(20)    # tier 2
SILVER = sampleshop.card_number(6)   # tier 1


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    with Chain(tmp_path_factory.mktemp("contact")) as c:
        c.reader("R1", nfc=True, contact=True)
        c.issuer = c.change(headoffice.issuer_key, 1)
        yield c


@pytest.fixture
def r1(chain):
    r = chain.readers["R1"]
    r.slot.remove()
    r.nfc.remove()
    yield r
    idle(r)  # a test that failed half-way leaves no card and no quote for the next one


def applet(chain, card, uid=b"\x04\x11\x22\x33\x44\x55\x66", issuer=None):
    return AppletCard(uid, card=card, epoch=1, issuer_key=issuer or chain.issuer)


def insert(r, card, pull_after=None):
    # a card taken out stays out until the reader has looked at the empty slot, as a hand
    # is slower than the reader's look at the presence pin (50 ms)
    unread = r.card_out()
    assert unread == [], "the till got answers nobody asked for: %r" % unread
    r.slot.insert(card, pull_after)


@pytest.mark.parametrize("make", [
    lambda a: ContactCard.t0(a),
    lambda a: ContactCard.t1(a),
    lambda a: ContactCard.t0(a, inverse=True),
    lambda a: ContactCard.t1(a, crc=True, slow=True),
    lambda a: ContactCard.t0(a, slow=True),
], ids=["T=0", "T=1", "inverse T=0", "slow T=1 with CRC", "slow T=0"])
def test_a_contact_card_gets_its_tiers_discount_once(chain, r1, make):
    basket(r1, "C-1")
    insert(r1, make(applet(chain, GOLD)))
    q = r1.till.expect("quote", timeout=30)
    assert q["card"].endswith(GOLD[-4:]) and q["tier"] == 2 and q["discount"] > 0, q
    r1.till.send({"type": "commit", "quote": q["quote"], "paid": q["gross"] - q["discount"]})
    c = r1.till.expect("committed")
    wait_for(lambda: chain.synced(r1), timeout=60, what="the receipt at the backend")
    assert chain.db_rows("SELECT card, discount FROM receipts WHERE reader_id='R1' AND seq=?",
                         [c["seq"]]) == [(GOLD, q["discount"])]


def test_a_card_pulled_out_mid_command_leaves_a_message_and_a_ready_slot(chain, r1):
    basket(r1, "C-PULL")
    insert(r1, ContactCard.t1(applet(chain, GOLD)), pull_after=12)  # out during the PPS, SELECT or AUTHENTICATE
    msg = r1.till.recv(30)
    assert msg["type"] == "error" and msg["code"] == "card.removed", msg
    insert(r1, ContactCard.t0(applet(chain, SILVER)))
    q = r1.till.expect("quote", timeout=30)
    assert q["tier"] == 1
    void(r1, q)


def test_a_forged_contact_card_is_named(chain, r1):
    basket(r1, "C-FORGED")
    insert(r1, ContactCard.t1(applet(chain, GOLD, issuer=bytes(32))))  # not head office's key
    msg = r1.till.recv(30)
    assert msg["type"] == "error" and msg["code"] == "card.forged", msg
    insert(r1, ContactCard.t1(applet(chain, GOLD)))
    q = r1.till.expect("quote", timeout=30)
    void(r1, q)


def test_phone_and_contact_card_at_one_till(chain, r1):
    basket(r1, "C-BOTH-1")
    r1.nfc.tap(PhoneCard(SILVER, 1, chain.issuer))
    q = r1.till.expect("quote", timeout=30)
    assert q["tier"] == 1
    void(r1, q)
    r1.nfc.remove()
    basket(r1, "C-BOTH-2")
    insert(r1, ContactCard.t0(applet(chain, GOLD)))
    q = r1.till.expect("quote", timeout=30)
    assert q["tier"] == 2
    void(r1, q)
    assert r1.alive() and r1.status()["state"] == "idle"
