"""The smart-card and phone desk's last step (tools/pcschost.register), below the PC/SC
layer: the card read back goes into the directory and, given a customer, is theirs, in
one transaction. (Nothing here talks to pcscd.)"""
import pytest

from loyalty.backend import headoffice
from loyalty.backend.customers import enrol, notices
from loyalty.tools import pcschost

CARD = "6001000000000043"
NOW = 1_780_000_000


@pytest.fixture
def customer(db):
    headoffice.add_store(db, "S1", "Milano Centro")
    notice = notices.publish(db, {"it": "Informativa"}, "dpo", NOW)
    return enrol.enrol(db, "Maria Rossi", "+39 02 1234 5678", "S1", "6001000000000017", 0, True, {"scheme"},
                       "desk", "anna", notice, now=NOW)


def test_register_links_the_card_to_the_customer(db, customer):
    version = pcschost.register(db, CARD, 2, customer="6001000000000017", operator="anna")
    assert tuple(db.execute("SELECT tier, status, customer_id, version FROM cards WHERE card=?", [CARD]).fetchone()) \
        == (2, 0, customer, version)


def test_register_without_a_customer_is_nobodys_card(db, customer):
    pcschost.register(db, CARD, 1)
    assert tuple(db.execute("SELECT tier, customer_id FROM cards WHERE card=?", [CARD]).fetchone()) == (1, None)


def test_register_for_a_closed_customer_stores_nothing(db, customer):
    enrol.close_customer(db, str(customer), "anna", "moved away", NOW + 1)
    with pytest.raises(pcschost.PersonaliseError, match="closed"):
        pcschost.register(db, CARD, 1, customer=str(customer))
    assert db.execute("SELECT count(*) FROM cards WHERE card=?", [CARD]).fetchone()[0] == 0
