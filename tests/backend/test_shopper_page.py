"""The shopper's page once signed in: what it shows, the download, the consents (channel
web, the notice version shown). Fixtures: shopper_support.py."""
import json

import pytest

from loyalty.backend.customers import notices
from shopper_support import CARDS, MARIA_MAIL, NOW, clock, csrf, shoppers, sign_in, smtp  # noqa: F401


def consents_of(db, customer):
    return [tuple(r) for r in db.execute("SELECT purpose, given, t, channel, operator, notice_version FROM consents "
                                         "WHERE customer_id = ? ORDER BY id", [customer])]


def trail_of(db):
    return [tuple(r) for r in db.execute("SELECT t, actor, action, detail FROM trail WHERE actor = 'self' ORDER BY id")]


def consent(client, purpose, choice, notice="1", token=None):
    return client.post("/me/consent", data={"csrf_token": token or csrf(client, "/me/"), "purpose": purpose,
                                            "choice": choice, "notice": notice})


def test_the_page_shows_what_the_export_holds_and_logs_no_view(client, smtp, shoppers, db):
    sign_in(client, smtp)
    page = client.get("/me/").get_data(as_text=True)
    for title in ("Cliente", "Carte", "Consensi", "Informative", "Scontrini", "Registro delle operazioni",
                  "Accessi ai dati"):
        assert 'data-section="%s"' % title in page
    assert "Informativa v1: i tuoi dati" not in page.split("data-holdings")[0]  # English page: the English text
    assert "Notice v1: your data" in page and 'data-notice-version="1"' in page
    # nothing pre-ticked: no checkbox at all; each purpose its own form, offering to give
    assert 'type="checkbox"' not in page
    for purpose in ("profiling", "marketing"):
        assert 'data-purpose="%s" data-given="0"' % purpose in page
    assert db.execute("SELECT count(*) FROM views").fetchone()[0] == 0
    assert trail_of(db) == []


def test_giving_and_withdrawing_is_recorded_with_channel_web_and_the_notice_shown(client, smtp, shoppers, db, clock):
    sign_in(client, smtp)
    maria = shoppers["maria"]
    desk = [("scheme", 1, NOW - 50, "desk", "anna", 1), ("profiling", 0, NOW - 50, "desk", "anna", 1),
            ("marketing", 0, NOW - 50, "desk", "anna", 1)]
    assert consents_of(db, maria) == desk
    clock.t = NOW + 5
    answer = consent(client, "marketing", "give")
    assert answer.status_code == 302 and answer.headers["Location"] == "/me/"
    assert 'data-purpose="marketing" data-given="1"' in client.get("/me/").get_data(as_text=True)
    clock.t = NOW + 9
    consent(client, "marketing", "withdraw")
    consent(client, "profiling", "give")
    assert consents_of(db, maria) == desk + [("marketing", 1, NOW + 5, "web", "self", 1),
                                             ("marketing", 0, NOW + 9, "web", "self", 1),
                                             ("profiling", 1, NOW + 9, "web", "self", 1)]
    assert trail_of(db) == [(NOW + 5, "self", "consent.marketing.given", "channel=web notice=1"),
                            (NOW + 9, "self", "consent.marketing.withdrawn", "channel=web notice=1"),
                            (NOW + 9, "self", "consent.profiling.given", "channel=web notice=1")]


def test_a_notice_version_no_longer_current_is_refused(client, smtp, shoppers, db):
    sign_in(client, smtp)
    token = csrf(client, "/me/")  # the page shown with version 1
    assert notices.publish(db, {"it": "Informativa v2", "en": "Notice v2"}, "dpo", NOW) == 2
    answer = consent(client, "marketing", "give", notice="1", token=token)
    assert answer.status_code == 409
    text = answer.get_data(as_text=True)
    assert "The privacy notice changed while you were reading it" in text and 'data-error-field="notice"' in text
    assert "Notice v2" in text  # the new one, to read before choosing again
    assert len(consents_of(db, shoppers["maria"])) == 3
    assert consent(client, "marketing", "give", notice="2").status_code == 302
    assert consents_of(db, shoppers["maria"])[-1][-1] == 2


def test_under_fourteen_the_page_sends_to_the_desk(client, smtp, shoppers, db):
    sign_in(client, smtp, CARDS["gioia"])
    page = client.get("/me/").get_data(as_text=True)
    assert "data-consent-desk" in page and "ask at the desk" in page and 'data-form="consent"' not in page
    answer = consent(client, "profiling", "give")
    assert answer.status_code == 400 and 'data-error-field="profiling"' in answer.get_data(as_text=True)
    assert len(consents_of(db, shoppers["gioia"])) == 3


def test_the_download_is_the_export_and_is_in_the_trail(client, smtp, shoppers, db, clock):
    sign_in(client, smtp)
    clock.t = NOW + 30
    answer = client.post("/me/download", data={"csrf_token": csrf(client, "/me/"), "format": "json"})
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    pseudonym = db.execute("SELECT pseudonym FROM customers WHERE id = ?", [shoppers["maria"]]).fetchone()[0]
    assert answer.headers["Content-Disposition"] == 'attachment; filename="%s.json"' % pseudonym
    data = json.loads(answer.get_data(as_text=True))
    (me,) = data["Cliente"]
    assert (me["Nome"], me["Contatto"], me["Negozio"], me["Almeno 14 anni"]) == ("Maria Rossi", MARIA_MAIL, "S1", 1)
    assert [c["Carta"] for c in data["Carte"]] == [CARDS["maria"]]
    assert [(c["Finalità"], c["Dato"], c["Canale"]) for c in data["Consensi"]] == [
        ("scheme", 1, "desk"), ("profiling", 0, "desk"), ("marketing", 0, "desk")]
    # NOW + 30 = 1780000030 is 2026-05-28T20:27:10Z; the file lists its own download
    assert data["Registro delle operazioni"][-1] == {"Data": "2026-05-28T20:27:10Z", "Chi": "self",
                                                     "Operazione": "access", "Motivo": None, "Dettaglio": "web json"}
    assert data["Accessi ai dati"] == []  # the shopper is not staff
    csv_answer = client.post("/me/download", data={"csrf_token": csrf(client, "/me/"), "format": "csv"})
    raw = csv_answer.get_data()
    assert csv_answer.mimetype == "text/csv" and raw.startswith(b"\xef\xbb\xbf")  # utf-8-sig, as customer-export
    assert raw.decode("utf-8-sig").startswith("Cliente\r\nCodice,Pseudonimo,Nome,Contatto,")
    assert "Maria Rossi,%s,S1" % MARIA_MAIL in raw.decode("utf-8-sig")
    assert [r[3] for r in trail_of(db)] == ["web json", "web csv"]
    assert db.execute("SELECT count(*) FROM views").fetchone()[0] == 0


def test_without_the_forms_token_nothing_is_stored(client, smtp, shoppers, db):
    sign_in(client, smtp)
    assert consent(client, "marketing", "give", token="forged").status_code == 400
    assert client.post("/me/download", data={"format": "json"}).status_code == 400
    assert len(consents_of(db, shoppers["maria"])) == 3 and trail_of(db) == []


def test_bad_input_names_the_field_and_stores_nothing(client, smtp, shoppers, db):
    sign_in(client, smtp)
    for purpose, choice, notice, field in (("scheme", "withdraw", "1", "purpose"), ("", "give", "1", "purpose"),
                                           ("marketing", "maybe", "1", "choice"), ("marketing", "", "1", "choice"),
                                           ("marketing", "give", "x", "notice"), ("marketing", "give", "99", "notice"),
                                           ("marketing", "give", "", "notice")):
        answer = consent(client, purpose, choice, notice)
        assert answer.status_code == 400, (purpose, choice, notice)
        text = answer.get_data(as_text=True)
        assert 'data-error-field="%s"' % field in text and "%s:" % field in text
    for fmt in ("pdf", ""):
        answer = client.post("/me/download", data={"csrf_token": csrf(client, "/me/"), "format": fmt})
        assert answer.status_code == 400 and 'data-error-field="format"' in answer.get_data(as_text=True)
    assert len(consents_of(db, shoppers["maria"])) == 3 and trail_of(db) == []


@pytest.mark.parametrize("method, path, status", [("GET", "/me/nope", 404), ("GET", "/me/signout", 405)])
def test_a_shoppers_error_page_stays_in_the_shoppers_frame(client, method, path, status):
    r = client.open(path, method=method)
    page = r.get_data(as_text=True)
    assert r.status_code == status
    assert 'data-shopper-page="error"' in page and 'href="/me/"' in page
    assert "/stores" not in page and "/customers" not in page  # no way into the staff's pages
