"""The shopper's page (/me/): signing in with a one-time code from a real SMTP server on
loopback, what the page refuses and what it never tells, the session.

Consents and downloads: test_shopper_page.py. Fixtures: shopper_support.py."""
import logging
import re

from loyalty.backend.shopper import views
from shopper_support import (CARDS, MARIA_MAIL, NOBODYS, NOW, UNKNOWN, ask_code, clock, csrf, free_port, quiet_logging,  # noqa: F401
                             shoppers, sign_in, smtp, the_code, type_code, wait_quiet)


def codes_of(db, customer):
    return [tuple(r) for r in db.execute("SELECT t, expires_t, tries, used_t FROM shopper_codes WHERE customer_id = ? "
                                         "ORDER BY id", [customer])]


def test_a_shopper_signs_in_with_the_code_the_mail_server_received(client, smtp, shoppers, db):
    answer = ask_code(client, "6001 0000 0000 0042")  # as printed on the card, in groups
    assert answer.status_code == 302 and answer.headers["Location"] == "/me/code"
    message = smtp.wait(1)
    assert message["To"] == MARIA_MAIL and message["From"] == "carta@supermercato.example"
    assert message["Subject"] == "Your code for the loyalty card's page"  # the tests' LOYALTY_LANG
    code = the_code(message)
    assert codes_of(db, shoppers["maria"]) == [(NOW, NOW + 600, 0, None)]
    signed = type_code(client, code)
    assert signed.status_code == 302 and signed.headers["Location"] == "/me/"
    assert code not in signed.headers["Location"]
    page = client.get("/me/").get_data(as_text=True)
    assert "Maria Rossi" in page and MARIA_MAIL in page and CARDS["maria"] in page
    assert "Luca Bianchi" not in page
    assert codes_of(db, shoppers["maria"]) == [(NOW, NOW + 600, 0, NOW)]
    # used once: the same code does not sign in again
    client.post("/me/signout", data={"csrf_token": csrf(client, "/me/")})
    ask_code(client, CARDS["maria"])
    smtp.wait(2)
    assert type_code(client, code).status_code == 401


def test_the_code_is_kept_only_as_a_keyed_hash(client, smtp, shoppers, db, app):
    code = sign_in(client, smtp)
    (stored,) = db.execute("SELECT code_hash FROM shopper_codes").fetchone()
    import hashlib
    import hmac
    # HMAC-SHA256 under the app's secret ("test" in conftest), over "customer id:code"
    assert stored == hmac.new(b"test", ("%d:%s" % (shoppers["maria"], code)).encode(), hashlib.sha256).hexdigest()
    for table, in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
        for row in db.execute("SELECT * FROM %s" % table):
            assert not any(code in str(v) for v in row), table
    db.conn.close()
    for suffix in ("", "-wal"):
        try:
            with open(app.config["DATABASE"] + suffix, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            continue
        assert code.encode() not in raw and code.encode("utf-16-le") not in raw


def test_every_card_gets_the_same_answer(client, smtp, shoppers):
    # known with e-mail, phone only, under 14 with e-mail, nobody's card, not a card of ours
    pages = {}
    for card in (CARDS["maria"], CARDS["luca"], CARDS["gioia"], NOBODYS, UNKNOWN):
        answer = ask_code(client, card)
        assert (answer.status_code, answer.headers["Location"]) == (302, "/me/code")
        pages[card] = client.get("/me/code").get_data(as_text=True).replace("…" + card[-4:], "…CARD")
        pages[card] = re.sub(r'value="[^"]+"', "", pages[card])  # the CSRF token
    assert len(set(pages.values())) == 1
    assert "SMS" in pages[UNKNOWN]
    smtp.wait(2)
    wait_quiet()
    assert sorted(m["To"] for m in smtp.messages) == ["gioia@example.it", MARIA_MAIL]


def test_a_phone_only_customer_is_sent_to_the_desk(client, smtp, shoppers, db):
    ask_code(client, CARDS["luca"])
    page = client.get("/me/code").get_data(as_text=True)
    assert "SMS" in page and "ask at the desk" in page
    wait_quiet()
    assert smtp.messages == [] and codes_of(db, shoppers["luca"]) == []


def test_a_wrong_code_counts_and_five_wrong_ones_end_the_code(client, smtp, shoppers, db):
    ask_code(client, CARDS["maria"])
    code = the_code(smtp.wait(1))
    wrong = "%06d" % ((int(code) + 1) % 10 ** 6)
    for n in range(1, 6):
        answer = type_code(client, wrong)
        assert answer.status_code == 401 and "Wrong or expired code" in answer.get_data(as_text=True)
        assert codes_of(db, shoppers["maria"])[0][2] == n
    refused = type_code(client, code)
    assert refused.status_code == 401
    assert client.get("/me/").headers["Location"] == "/me/signin"
    assert codes_of(db, shoppers["maria"]) == [(NOW, NOW + 600, 5, None)]


def test_a_code_is_good_for_ten_minutes(client, smtp, shoppers, clock):
    ask_code(client, CARDS["maria"])
    code = the_code(smtp.wait(1))
    clock.t = NOW + 600  # expires_t: no longer good
    assert type_code(client, code).status_code == 401
    clock.t = NOW + 700
    ask_code(client, CARDS["maria"])
    fresh = the_code(smtp.wait(2))
    clock.t = NOW + 700 + 599
    assert type_code(client, fresh).status_code == 302


def test_a_new_code_voids_the_earlier_one(client, smtp, shoppers, clock):
    ask_code(client, CARDS["maria"])
    first = the_code(smtp.wait(1))
    clock.t = NOW + 10
    ask_code(client, CARDS["maria"])
    second = the_code(smtp.wait(2))
    if first != second:  # one in a million they are the same
        assert type_code(client, first).status_code == 401
    assert type_code(client, second).status_code == 302


def test_at_most_three_codes_an_hour(client, smtp, shoppers, db, clock):
    for n in range(4):
        clock.t = NOW + 60 * n
        answer = ask_code(client, CARDS["maria"])
        assert answer.headers["Location"] == "/me/code"  # the fourth answered like the others
    smtp.wait(3)
    wait_quiet()
    assert len(smtp.messages) == 3 and len(codes_of(db, shoppers["maria"])) == 3
    clock.t = NOW + 3601  # the first one is more than an hour old
    ask_code(client, CARDS["maria"])
    smtp.wait(4)


def test_the_code_never_reaches_a_log(client, smtp, shoppers, caplog, app, monkeypatch):
    quiet_logging(caplog)
    code = sign_in(client, smtp)
    wait_quiet()
    # the mail server's log was captured: it saw the message go to Maria
    assert any(r.name == "mail.log" and MARIA_MAIL in r.getMessage() for r in caplog.records)
    assert code not in caplog.text
    # a mail server that cannot be reached: the failure is logged, without the code
    caplog.clear()
    app.config["SMTP_PORT"] = free_port()  # nobody listens there
    issued = []
    real_issue = views.codes.issue
    monkeypatch.setattr(views.codes, "issue", lambda *a: issued.append(real_issue(*a)) or issued[-1])
    client.post("/me/signout", data={"csrf_token": csrf(client, "/me/")})
    ask_code(client, CARDS["gioia"])
    wait_quiet()
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "not sent" in warning.getMessage() and "ConnectionRefusedError" in warning.getMessage()
    assert issued[0].kind == "email" and issued[0].code not in caplog.text


def test_the_session_is_the_shoppers_own_and_lasts_thirty_minutes(client, smtp, shoppers, clock):
    with client.session_transaction() as s:
        s["manager"] = "giulia.rossi"  # a manager signed in in the same browser
    sign_in(client, smtp)
    clock.t = NOW + 1799
    assert client.get("/me/").status_code == 200
    clock.t = NOW + 1800
    assert client.get("/me/").headers["Location"] == "/me/signin"
    clock.t = NOW + 1900
    sign_in(client, smtp)
    answer = client.post("/me/signout", data={"csrf_token": csrf(client, "/me/")})
    assert answer.headers["Location"] == "/me/signin"
    assert client.get("/me/").headers["Location"] == "/me/signin"
    with client.session_transaction() as s:
        assert s["manager"] == "giulia.rossi" and "shopper" not in s


def test_a_closed_account_cannot_sign_in(client, smtp, shoppers, db):
    from loyalty.backend.customers import enrol
    sign_in(client, smtp)
    enrol.close_customer(db, str(shoppers["maria"]), "anna", "asked at the desk", NOW)
    assert client.get("/me/").headers["Location"] == "/me/signin"
    ask_code(client, CARDS["maria"])
    wait_quiet()
    assert len(smtp.messages) == 1


def test_without_the_forms_token_nothing_happens(client, smtp, shoppers, db):
    assert client.post("/me/signin", data={"card": CARDS["maria"]}).status_code == 400
    wait_quiet()
    assert smtp.messages == [] and codes_of(db, shoppers["maria"]) == []
    ask_code(client, CARDS["maria"])
    code = the_code(smtp.wait(1))
    assert client.post("/me/code", data={"code": code, "csrf_token": "forged"}).status_code == 400
    assert codes_of(db, shoppers["maria"])[0][3] is None
    assert type_code(client, code).status_code == 302
    assert client.post("/me/signout", data={}).status_code == 400
    assert client.get("/me/").status_code == 200


def test_bad_input_names_the_field_and_stores_nothing(client, smtp, shoppers, db):
    for card in ("", "abc", "1" * 25):
        answer = client.post("/me/signin", data={"csrf_token": csrf(client, "/me/signin"), "card": card})
        assert answer.status_code == 400
        assert 'data-error-field="card"' in answer.get_data(as_text=True)
    wait_quiet()
    assert db.execute("SELECT count(*) FROM shopper_codes").fetchone()[0] == 0 and smtp.messages == []
    ask_code(client, CARDS["maria"])
    smtp.wait(1)
    for code in ("", "12345", "1234567", "12a456", "١٢٣٤٥٦"):  # the last: Arabic-Indic digits
        answer = type_code(client, code)
        assert answer.status_code == 400, code
        assert 'data-error-field="code"' in answer.get_data(as_text=True)
        assert "code:" in answer.get_data(as_text=True)
    assert codes_of(db, shoppers["maria"])[0][2] == 0  # malformed input is not a try


def test_italian_first_english_by_choice_or_by_the_browser(app, client, smtp, shoppers):
    app.config["LANGUAGE"] = "it"  # a server's default unless LOYALTY_LANG says otherwise (the tests' is en)
    assert "Vedi cosa sa di te la carta fedeltà" in client.get("/me/signin").get_data(as_text=True)
    english = client.get("/me/signin", headers={"Accept-Language": "en-GB,en;q=0.8"}).get_data(as_text=True)
    assert "See what the scheme holds on you" in english
    ask_code(client, CARDS["maria"])
    assert "Il tuo codice" in smtp.wait(1)["Subject"]
    client.post("/language", data={"csrf_token": csrf(client, "/me/signin"), "lang": "en", "next": "/me/signin"})
    assert "See what the scheme holds on you" in client.get("/me/signin").get_data(as_text=True)
    ask_code(client, CARDS["maria"])
    assert smtp.wait(2)["Subject"] == "Your code for the loyalty card's page"


def test_the_page_needs_a_signed_in_shopper(client, shoppers):
    assert client.get("/me/").headers["Location"] == "/me/signin"
    assert client.get("/me/code").headers["Location"] == "/me/signin"
    for path in ("/me/download", "/me/consent"):
        assert client.post(path, data={"csrf_token": csrf(client, "/me/signin")}).headers["Location"] == "/me/signin"
