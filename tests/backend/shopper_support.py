"""What the shopper's page tests share: a real SMTP server on loopback (aiosmtpd, through
loyalty.sim.mailbox) that collects what it is sent, customers enrolled at the desk, and a
browser-like walk through the sign-in.

    def test_x(smtp, shoppers, client): ...
      smtp.messages      the e-mails received (email.message.EmailMessage), in order
      smtp.wait(n)       waits until n have arrived (the page sends on a thread)
      shoppers           {"maria": customer id (e-mail, 14+), "luca": phone only, "gioia": under 14}
"""
import logging
import re
import threading
import time

import pytest

from loyalty.backend import headoffice
from loyalty.backend.customers import enrol, notices
from loyalty.backend.shopper import mail, views
from loyalty.sim.mailbox import Mailbox, free_port, code_in as the_code  # noqa: F401 (for the tests)

NOW = 1_780_000_000
CARDS = {"maria": "6001000000000042", "luca": "6001000000000059", "gioia": "6001000000000067"}
NOBODYS = "6001000000000075"   # in the directory, nobody's
UNKNOWN = "6001000000000083"   # not a card of the scheme
MARIA_MAIL = "maria.rossi@example.it"


@pytest.fixture
def smtp(app):
    with Mailbox() as inbox:
        app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=inbox.port, MAIL_FROM="carta@supermercato.example")
        yield inbox


class Clock:
    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t


@pytest.fixture
def clock(monkeypatch):
    c = Clock(NOW)
    monkeypatch.setattr(views, "clock", c)
    return c


@pytest.fixture
def shoppers(db, shop_rules, clock):
    headoffice.add_store(db, "S1", "Milano Centro")
    notices.publish(db, {"it": "Informativa v1: i tuoi dati", "en": "Notice v1: your data"}, "dpo", NOW - 100)
    headoffice.cards.set_card(db, NOBODYS, 0)
    made = {}
    for who, name, contact, age_ok in (("maria", "Maria Rossi", MARIA_MAIL, True),
                                       ("luca", "Luca Bianchi", "+39 02 1234 5678", True),
                                       ("gioia", "Gioia Verdi", "gioia@example.it", False)):
        made[who] = enrol.enrol(db, name, contact, "S1", CARDS[who], 0, age_ok, {"scheme"}, "desk", "anna", 1,
                                now=NOW - 50)
    return made


def csrf(client, path):
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def ask_code(client, card):
    return client.post("/me/signin", data={"csrf_token": csrf(client, "/me/signin"), "card": card})


def type_code(client, code):
    return client.post("/me/code", data={"csrf_token": csrf(client, "/me/code"), "code": code})


def sign_in(client, smtp, card=CARDS["maria"]):
    """Ask for a code, read it from the e-mail, type it; returns the code."""
    before = len(smtp.messages)
    assert ask_code(client, card).status_code == 302
    code = the_code(smtp.wait(before + 1))
    assert type_code(client, code).headers["Location"] == "/me/"
    return code


def quiet_logging(caplog):
    """Every logger at DEBUG into caplog, the mail server's at INFO: what it logs in
    operation (connections, sender, recipients, commands). At DEBUG aiosmtpd dumps every
    line of DATA, that is the message itself, code included, as any mail server's message
    store holds it: no sender can keep a code out of that."""
    caplog.set_level(logging.DEBUG)
    for name in ("loyalty.backend.app", "werkzeug", "smtplib"):
        caplog.set_level(logging.DEBUG, logger=name)
    caplog.set_level(logging.INFO, logger="mail.log")


def wait_quiet(timeout=10):
    """Until the page's mail threads have finished (AssertionError if they have not within
    `timeout`: a check of what was sent must not pass before anything could be)."""
    end = time.monotonic() + timeout
    while any(t.name == mail.THREAD for t in threading.enumerate()):
        assert time.monotonic() < end, "the shopper's mail threads did not finish"
        time.sleep(0.01)
