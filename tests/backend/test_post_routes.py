"""Every form refuses bad input: a 4xx answer whose message names the field, in the user's
language (Italian by default, English when chosen), and nothing stored.

The routes that take a POST (or PUT, PATCH, DELETE) are enumerated from app.url_map, so
a form added later fails test_every_post_route_has_bad_input_cases with its endpoint's
name until cases for it are written here. Each case posts a valid form with one field
made bad (missing, empty, too long, a wrong choice or type, a control or bidirectional
character where the text is free: loyalty.protocol.checks.text_fault's rule), then looks
at the message a person reads and at every row of every table (tests/support/dbsnapshot).

A message names the field as the house's errors do (headoffice.common.InvalidValue):
"field: what is wrong", the field as the form calls it. The one exception is the CSRF
token, which a person never typed: its refusal says the form expired.
"""
import html
import re

import pytest

from loyalty.backend import auth
from dashrows import PASSWORD, csrf_from, login
from shopper_support import CARDS, NOW, shoppers, smtp, clock, sign_in, wait_quiet  # noqa: F401 (fixtures)
from loyalty.testing.dbsnapshot import changes, snapshot

WRITING = {"POST", "PUT", "PATCH", "DELETE"}

# routes whose bad input is tested elsewhere, by endpoint, with where and why
COVERED_ELSEWHERE = {
    "syncapi.batch": "the readers' sync API answers codes, not forms: tests/test_hostile_batches.py (every "
                     "malformed batch, with dbsnapshot's refusal rule) and tests/test_schemathesis.py (the "
                     "OpenAPI schema's every field)",
}

BIDI = "\u202e"
EXPIRED = {"it": "Il modulo è scaduto", "en": "The form expired"}


class Case:
    """One bad form: `form` is the valid form with one field changed (None: left out);
    `field` the field the message must name ("csrf_token": the form expired); `status`
    the answer; `says` a fragment of the message in each language; `may_write` the
    tables the refusal is documented to write to, {table: rows added}."""

    def __init__(self, name, form, field, says, status=400, may_write=None):
        self.name, self.form, self.field, self.says, self.status = name, form, field, says, status
        self.may_write = may_write or {}


def bad(valid, field, value, says, name, **kw):
    form = dict(valid)
    if value is None:
        form.pop(field)
    else:
        form[field] = value
    return Case(name, form, field, says, **kw)


def no_token(valid, **kw):
    form = {k: v for k, v in valid.items() if k != "csrf_token"}
    return Case("no csrf_token", form, "csrf_token", EXPIRED, **kw)


def text_cases(valid, field, hi, says, required=True, **kw):
    """Missing, empty, one character too long, a control and a bidirectional character."""
    out = [bad(valid, field, "x" * (hi + 1), says, "%s too long" % field, **kw),
           bad(valid, field, "a\x00b", says, "%s with NUL" % field, **kw),
           bad(valid, field, "a\x1b[31mb", says, "%s with ESC" % field, **kw),
           bad(valid, field, "a" + BIDI + "b", says, "%s with a bidi override" % field, **kw)]
    if required:
        out += [bad(valid, field, None, says, "%s missing" % field, **kw),
                bad(valid, field, "", says, "%s empty" % field, **kw)]
    return out


def choice_cases(valid, field, says, **kw):
    return [bad(valid, field, None, says, "%s missing" % field, **kw),
            bad(valid, field, "", says, "%s empty" % field, **kw),
            bad(valid, field, "nonsense", says, "%s not a choice" % field, **kw),
            bad(valid, field, valid[field] + BIDI, says, "%s with a bidi override" % field, **kw),
            bad(valid, field, valid[field] * 100, says, "%s too long" % field, **kw)]


# -- the cases, by endpoint ---------------------------------------------------------------

LOGIN = {"username": "giulia", "password": PASSWORD, "csrf_token": "TOKEN"}
USERNAME_RULE = {"it": "username: da 1 a 64 caratteri", "en": "username: 1 to 64 characters"}
PASSWORD_RULE = {"it": "password: scrivi la tua password", "en": "password: type your password"}
LANGUAGE = {"lang": "en", "csrf_token": "TOKEN"}
LANG_RULE = {"it": "lang: una tra it, en", "en": "lang: one of it, en"}
CARD_FORM = {"card": CARDS["maria"], "csrf_token": "TOKEN"}
CARD_RULE = {"it": "card: ", "en": "card: "}
CODE_FORM = {"code": "123456", "csrf_token": "TOKEN"}
CODE_RULE = {"it": "code: il codice sono le 6 cifre", "en": "code: the code is the 6 digits"}
DOWNLOAD = {"format": "json", "csrf_token": "TOKEN"}
CHOICE_RULE = {"it": ": deve essere uno fra", "en": ": must be one of"}
CONSENT = {"purpose": "marketing", "choice": "give", "notice": "1", "csrf_token": "TOKEN"}
NOTICE_RULE = {"it": "notice: nessuna informativa", "en": "notice: no privacy notice"}
CONTACT = {"channel": "phone", "reason": "sconto mancante", "note": "Richiamare lunedì", "outcome": "risolto",
           "csrf_token": "TOKEN"}
SHORT_RULE = {"it": ": deve essere un testo da 1 a 100 caratteri", "en": ": must be text of 1 to 100 characters"}
NOTE_RULE = {"it": "note: deve essere testo semplice di al massimo", "en": "note: must be plain text of at most"}
# re-showing the customer's story with the error is a view of their data, logged as every load
# of the story is (docs/privacy.md, "Who looked"): the one row a refused contact writes
STORY_VIEW = {"views": 1}
JUDGE = {"judgement": "reader_fault", "note": "firmware 1.2", "csrf_token": "TOKEN"}

CASES = {
    "auth.login": [no_token(LOGIN)]
    + text_cases(LOGIN, "username", 64, USERNAME_RULE)
    + [bad(LOGIN, "username", "giu lia", USERNAME_RULE, "username with a space")]
    + [bad(LOGIN, "password", None, PASSWORD_RULE, "password missing"),
       bad(LOGIN, "password", "", PASSWORD_RULE, "password empty"),
       bad(LOGIN, "password", "x" * 1025, PASSWORD_RULE, "password too long")],
    "auth.logout": [no_token({"csrf_token": "TOKEN"})],
    "auth.language": [no_token(LANGUAGE)] + choice_cases(LANGUAGE, "lang", LANG_RULE),
    "shopper.signin": [no_token(CARD_FORM),
                       bad(CARD_FORM, "card", None, CARD_RULE, "card missing"),
                       bad(CARD_FORM, "card", "", CARD_RULE, "card empty"),
                       bad(CARD_FORM, "card", "   ", CARD_RULE, "card blank"),
                       bad(CARD_FORM, "card", "6" * 20, CARD_RULE, "card too long"),
                       bad(CARD_FORM, "card", "6001abcd", CARD_RULE, "card with letters"),
                       bad(CARD_FORM, "card", "6001\x00042", CARD_RULE, "card with NUL"),
                       bad(CARD_FORM, "card", "6001" + BIDI + "042", CARD_RULE, "card with a bidi override")],
    "shopper.code": [no_token(CODE_FORM)]
    + [bad(CODE_FORM, "code", v, CODE_RULE, "code " + name)
       for name, v in (("missing", None), ("empty", ""), ("short", "12345"), ("long", "1234567"),
                       ("letters", "12a456"), ("with NUL", "123\x00456"), ("with a bidi override", "123" + BIDI + "456"),
                       ("with Arabic digits", "١٢٣٤٥٦"))],
    "shopper.signout": [no_token({"csrf_token": "TOKEN"})],
    "shopper.download": [no_token(DOWNLOAD)] + choice_cases(DOWNLOAD, "format", CHOICE_RULE),
    "shopper.consent": [no_token(CONSENT)] + choice_cases(CONSENT, "purpose", CHOICE_RULE)
    + choice_cases(CONSENT, "choice", CHOICE_RULE)
    + [bad(CONSENT, "notice", v, NOTICE_RULE, "notice " + name)
       for name, v in (("missing", None), ("empty", ""), ("not a number", "uno"), ("unpublished", "2"),
                       ("zero", "0"), ("too large", "9" * 30), ("with a bidi override", "1" + BIDI))],
    "care.add_contact": [no_token(CONTACT)]
    + choice_cases(CONTACT, "channel", CHOICE_RULE, may_write=STORY_VIEW)
    + text_cases(CONTACT, "reason", 100, SHORT_RULE, may_write=STORY_VIEW)
    + text_cases(CONTACT, "outcome", 100, SHORT_RULE, may_write=STORY_VIEW)
    + text_cases(CONTACT, "note", 2000, NOTE_RULE, required=False, may_write=STORY_VIEW),
    "dashboard.judge_quarantined": [no_token(JUDGE)] + choice_cases(JUDGE, "judgement", CHOICE_RULE)
    + text_cases(JUDGE, "note", 500, NOTE_RULE, required=False),
}


def writing_endpoints(app):
    return {rule.endpoint for rule in app.url_map.iter_rules() if rule.methods & WRITING}


def without_cases(app):
    return writing_endpoints(app) - set(CASES) - set(COVERED_ELSEWHERE)


def test_every_post_route_has_bad_input_cases(app):
    """A route that takes a POST, PUT, PATCH or DELETE and has no case here fails, by name."""
    writing = writing_endpoints(app)
    missing = without_cases(app)
    assert not missing, "POST routes without a bad-input case: %s" % ", ".join(sorted(missing))
    gone = (set(CASES) | set(COVERED_ELSEWHERE)) - writing
    assert not gone, "cases for routes that no longer exist: %s" % ", ".join(sorted(gone))
    assert not set(CASES) & set(COVERED_ELSEWHERE)
    assert all(CASES.values())


@pytest.mark.parametrize("method", sorted(WRITING))
def test_a_new_form_without_cases_is_named(app, method):
    app.add_url_rule("/gift-cards/<int:n>", "giftcards.issue", lambda n: "", methods=[method])
    assert without_cases(app) == {"giftcards.issue"}


# -- setting each route up as a user who may post it ----------------------------------------

class Scene:
    """A client ready to post one route's form: the path, a CSRF token, the language."""

    def __init__(self, client, path, token_page):
        self.client, self.path, self.token_page = client, path, token_page


def _anonymous(client, lang, path, token_page):
    if lang == "en":
        client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    return Scene(client, path, token_page)


def _manager(db, client, lang, role, path, token_page, store_id=None):
    auth.create_manager(db, "giulia", PASSWORD, store_id=store_id, role=role, lang=lang)
    assert login(client).status_code == 302
    return Scene(client, path, token_page)


def _shopper(client, smtp, lang, path):
    if lang == "en":
        client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    sign_in(client, smtp)
    wait_quiet()
    return Scene(client, path, "/me/")


def _quarantined(db):
    db.execute("INSERT INTO stores(id, name, tz) VALUES('S1', 'Milano Centro', 'Europe/Rome')")
    db.execute("INSERT INTO readers(id, store_id, name, key_hex, created) VALUES('R1', 'S1', 'Till R1', ?, 0)",
               ["ab" * 32])
    db.execute("INSERT INTO quarantine(reader_id, seq, hash, t, acked_t, record, code, field, detail) "
               "VALUES('R1', 1, 'h1', ?, ?, '{}', 'batch.record', 'records[0].lines[0].qty', 'qty 0')",
               [NOW - 100, NOW - 90])


def _customer(db):
    db.execute("INSERT INTO stores(id, name, tz) VALUES('S1', 'Milano Centro', 'Europe/Rome')")
    db.execute("INSERT INTO customers(id, pseudonym, name, contact, store_id, status, created_t) "
               "VALUES(7, 'C-7', 'Mario Rossi', 'm@example.it', 'S1', 'active', 0)")


def scene(endpoint, lang, request):
    """The route's form, ready to post, for a user who may post it, reading `lang`."""
    db, client = request.getfixturevalue("db"), request.getfixturevalue("client")
    # the backend's language as it ships, Italian (tests/conftest.py makes the tests' English);
    # English is the user's choice: the manager's setting, or the browser's before a login
    client.application.config["LANGUAGE"] = "it"
    lang = None if lang == "it" else lang
    if endpoint == "auth.login":
        auth.create_manager(db, "giulia", PASSWORD)
        return _anonymous(client, lang, "/login", "/login")
    if endpoint in ("auth.logout", "auth.language"):
        return _manager(db, client, lang, "head_office", "/" + endpoint.split(".")[1], "/stores")
    if endpoint == "shopper.signin":
        request.getfixturevalue("shoppers")
        return _anonymous(client, lang, "/me/signin", "/me/signin")
    if endpoint == "shopper.code":
        request.getfixturevalue("shoppers")
        smtp = request.getfixturevalue("smtp")
        s = _anonymous(client, lang, "/me/code", "/me/code")
        token = csrf_from(client.get("/me/signin").get_data(as_text=True))
        assert client.post("/me/signin", data={"card": CARDS["maria"], "csrf_token": token}).status_code == 302
        smtp.wait(1)
        wait_quiet()
        return s
    if endpoint.startswith("shopper."):
        request.getfixturevalue("shoppers")
        return _shopper(client, request.getfixturevalue("smtp"), lang, "/me/" + endpoint.split(".")[1])
    if endpoint == "care.add_contact":
        _customer(db)
        return _manager(db, client, lang, "care", "/customers/7/contacts", "/customers/7")
    if endpoint == "dashboard.judge_quarantined":
        _quarantined(db)
        return _manager(db, client, lang, "store_manager", "/readers/R1/quarantine/1", "/readers/R1",
                        store_id="S1")
    raise AssertionError("no scene for %s" % endpoint)


# -- what the person reads ---------------------------------------------------------------------

_ALERT = re.compile(r'role="alert"[^>]*>(.*?)</p>', re.S)
_ERROR_PAGE = re.compile(r'<section class="error-page"[^>]*>\s*<h1>.*?</h1>\s*<p>(.*?)</p>', re.S)


def message(page):
    """The refusal's message as a person reads it: the form's alert, or the error page's text."""
    found = _ALERT.search(page) or _ERROR_PAGE.search(page)
    assert found, "no message on the page:\n" + page
    return html.unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip()


def _all_cases():
    for endpoint, cases in CASES.items():
        for case in cases:
            for lang in ("it", "en"):
                yield pytest.param(endpoint, case, lang, id="%s-%s-%s" % (endpoint, case.name, lang))


@pytest.mark.parametrize("endpoint, case, lang", list(_all_cases()))
def test_bad_input_is_refused_naming_the_field_and_stores_nothing(app, request, endpoint, case, lang):
    s = scene(endpoint, lang, request)
    token = csrf_from(s.client.get(s.token_page).get_data(as_text=True))
    form = {k: (token if k == "csrf_token" else v) for k, v in case.form.items()}
    before = snapshot(app.config["DATABASE"])

    r = s.client.post(s.path, data=form)
    wait_quiet()
    after = snapshot(app.config["DATABASE"])

    assert r.status_code == case.status, (r.status_code, r.get_data(as_text=True)[:2000])
    text = message(r.get_data(as_text=True))
    if case.field == "csrf_token":
        assert EXPIRED[lang] in text, text
    else:
        assert text.startswith(case.field + ":"), text
    assert case.says[lang] in text, text
    other = "en" if lang == "it" else "it"
    if case.says[other] != case.says[lang]:
        assert case.says[other] not in text, text
    diff = changes(before, after)
    wrote = {table: len(d["added"]) for table, d in diff.items()}
    assert wrote == case.may_write, diff
    assert all(not d["removed"] and not d["changed"] for d in diff.values()), diff
