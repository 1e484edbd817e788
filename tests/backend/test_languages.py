"""The dashboard in Italian first, English by choice, and every text it shows translated.

- The language: Italian by default; before login the browser's Accept-Language or the
  choice made on the login page; after login the manager's own setting, changed from
  any page and kept.
- The pseudo-locale (tests/support/pseudolocale.py): every route of app.url_map but the
  readers' sync API, as nobody, as head office and as a store's manager, the JSON twins
  and the error pages, rendered with a catalogue that brackets every translated text:
  no word may be left outside a bracket but user data and codes.
- The catalogues: every text the code marks is in each, none is stale, the Italian
  translates each one with the same placeholders.
"""
import re
from datetime import datetime, timezone

import pytest
from babel import Locale
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from dashrows import PASSWORD, add_manager, add_reader, add_store, csrf_from, fix_clock, login
from loyalty import i18n
from loyalty.backend import auth
from loyalty.backend.app import create_app
from loyalty.protocol import errors
from loyalty.testing import pseudolocale, runtimes

NOW = int(datetime(2025, 3, 1, 23, 30, tzinfo=timezone.utc).timestamp())


@pytest.fixture
def italian_by_default(app, monkeypatch):
    """The backend started with nothing said about languages, on a server whose own locale
    is American English (the database is conftest's app's)."""
    for name in i18n.VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    return create_app({"DATABASE": app.config["DATABASE"], "SECRET_KEY": "test", "TESTING": True})


def heading(client, path):
    page = client.get(path, headers={"Accept-Language": "en-US,en;q=0.9"}).get_data(as_text=True)
    return re.search(r"<h1>(.*?)</h1>", page, re.S).group(1).strip()


def test_the_process_speaks_italian_unless_told_otherwise():
    assert i18n.process_language({}) == "it"
    assert i18n.process_language({"LANG": "C.UTF-8"}) == "it"
    assert i18n.process_language({"LANG": "en_GB.UTF-8"}) == "en"
    assert i18n.process_language({"LANG": "en_GB.UTF-8", "LOYALTY_LANG": "it"}) == "it"
    assert i18n.process_language({"LANGUAGE": "fr:en", "LANG": "it_IT.UTF-8"}) == "en"


def test_before_login_the_browser_chooses_then_the_login_page(italian_by_default, db):
    client = italian_by_default.test_client()
    assert client.get("/login").get_data(as_text=True).count("<h1>Accedi</h1>") == 1
    assert heading(client, "/login") == "Log in"  # Accept-Language: en
    token = csrf_from(client.get("/login").get_data(as_text=True))
    r = client.post("/language", data={"lang": "it", "csrf_token": token, "next": "/login"},
                    headers={"Accept-Language": "en"})
    assert r.status_code == 302
    assert heading(client, "/login") == "Accedi"  # the choice beats the browser


def test_after_login_the_managers_setting_rules_and_is_kept(italian_by_default, db, monkeypatch):
    fix_clock(monkeypatch, NOW)
    add_store(db, "S1", "Milano Centro")
    add_manager(db)
    client = italian_by_default.test_client()
    login(client)
    english_browser = {"Accept-Language": "en"}
    page = client.get("/stores", headers=english_browser).get_data(as_text=True)
    assert "<h1>Negozi</h1>" in page and 'lang="it"' in page  # the manager's (unset): the backend's
    r = client.post("/language", data={"lang": "en", "csrf_token": csrf_from(page), "next": "/stores"})
    assert r.status_code == 302 and r.headers["Location"] == "/stores"
    assert "<h1>Stores</h1>" in client.get("/stores").get_data(as_text=True)
    assert db.execute("SELECT lang FROM managers WHERE username = 'giulia'").fetchone() == ("en",)
    again = italian_by_default.test_client()  # a new session, another browser
    login(again)
    assert "<h1>Stores</h1>" in again.get("/stores").get_data(as_text=True)
    assert again.get("/stores.json").get_json()["legend"][0]["word"] == "in sync"


def test_an_unknown_language_or_an_expired_form_changes_nothing(italian_by_default, db):
    add_manager(db)
    client = italian_by_default.test_client()
    login(client)
    token = csrf_from(client.get("/stores").get_data(as_text=True))
    r = client.post("/language", data={"lang": "fr", "csrf_token": token})
    assert r.status_code == 400 and "lang: una tra it, en" in pseudolocale.visible_text(r.get_data(as_text=True))
    assert client.post("/language", data={"lang": "en", "csrf_token": "stale"}).status_code == 400
    assert db.execute("SELECT lang FROM managers").fetchone() == (None,)


def test_a_manager_created_with_a_language_reads_in_it(italian_by_default, db):
    auth.create_manager(db, "john", PASSWORD, lang="en")
    client = italian_by_default.test_client()
    login(client, "john")
    assert "<h1>Stores</h1>" in client.get("/stores").get_data(as_text=True)
    with pytest.raises(auth.ManagerError, match="lang"):
        auth.create_manager(db, "jean", PASSWORD, lang="fr")


def test_the_error_tables_texts_are_the_protocols_own(italian_by_default, db, monkeypatch):
    fix_clock(monkeypatch, NOW)
    add_store(db, "S1")
    add_reader(db, "R1", "S1", last_contact=NOW - 10, last_batch=NOW - 60, last_refusal_at=NOW - 10,
               last_refusal_code="batch.gap")
    add_manager(db)
    client = italian_by_default.test_client()
    login(client)
    reason = client.get("/readers/R1.json").get_json()["reader"]["reason"]
    assert errors.text("batch.gap", "it") in reason and errors.text("batch.gap", "en") not in reason


# -- the pseudo-locale -----------------------------------------------------------------------

@pytest.fixture
def pseudo(app, db, tmp_path, monkeypatch):
    """The app speaking the pseudo-locale, with a shop whose every word is known."""
    monkeypatch.setattr(i18n, "LOCALE_DIR", pseudolocale.build(tmp_path / "pseudo"))
    monkeypatch.setattr(i18n, "_loaded", {})
    # the shared error table (shared/protocol/errortexts.py) is translated by itself, not by
    # the catalogue: its texts are bracketed too, so that one shown without it stands out
    table = errors.text
    monkeypatch.setattr(errors, "text", lambda code, lang="it": pseudolocale.OPEN + table(code, lang) + pseudolocale.CLOSE)
    app.config["LANGUAGE"] = "it"
    fix_clock(monkeypatch, NOW)
    add_store(db, "S1", "Milano Centro", "Europe/Rome")
    add_store(db, "S2", "Roma Termini", "Europe/Rome")
    db["day_totals"].insert({"store_id": "S1", "day": "2025-03-02", "receipts": 12, "gross": 123456,
                             "discount": 6543})
    add_reader(db, "R1", "S1", last_contact=NOW - 120, last_batch=NOW - 120, acked_seq=41, pending=7,
               oldest_t=NOW - 1200, journal="nearly_full", used=900_000, capacity=1_000_000,
               free_flash=65536, firmware="1.4.2", rules_version=3, directory_version=5, clock_offset=-4,
               clock_drift=12, last_error="sync.network", keys_version=1)
    add_reader(db, "R2", "S1", last_contact=NOW - 30, last_batch=NOW - 30, pending=0, journal="ok")
    add_reader(db, "R3", "S2", last_contact=NOW - 30, last_batch=NOW - 90, last_refusal_at=NOW - 30,
               last_refusal_code="batch.gap")
    add_reader(db, "R4", "S2")
    db["batches"].insert({"reader_id": "R1", "t": NOW - 120, "outcome": "accepted", "http_status": 200,
                          "first_seq": 40, "last_seq": 41, "count": 2, "fresh": 2, "gross": 1000,
                          "discount": 50, "ack": 41, "bytes": 900})
    db["batches"].insert({"reader_id": "R1", "t": NOW - 100, "outcome": "refused", "http_status": 409,
                          "code": "batch.gap", "field": "records[0].seq", "bytes": 800, "detail": STORED_DETAIL})
    db["receipts"].insert({"reader_id": "R1", "store_id": "S1", "seq": 40, "t": NOW - 800, "receipt": "A-1",
                           "kind": "sale", "day": "2025-03-02", "gross": 2000, "discount": 300, "card": "1234",
                           "audit": "mismatch", "audit_detail": STORED_AUDIT})
    db["refusals"].insert({"reader_id": "R1", "t": NOW - 100, "endpoint": "POST /api/v1/sync/batch",
                           "http_status": 409, "code": "batch.gap", "field": "records[0].seq",
                           "verified": 1, "remote": "10.0.0.7"})
    db["reader_samples"].insert_all([{"reader_id": "R1", "t": NOW - 3600 * h, "pending": h} for h in range(5)])
    db.execute("UPDATE meta SET value = '4' WHERE key = 'rules_version'")
    add_manager(db, "sede")
    add_manager(db, "negozio", store_id="S1")
    return app


# What the protocol and the audit stored with a refusal or a mismatch: technical English
# kept as it was written, shown beside the code's translated text (not translated: a known
# gap, said in the closing note). Exempt by name, so that nothing else is.
STORED_DETAIL = "does not match seq 50"
STORED_AUDIT = "granted 300, engine says 200"


def allowed_words(db):
    """What may show untranslated: the shop's own data, codes, CLDR's words for dates and
    languages, and the product's names."""
    words = set()
    for table, columns in (("stores", ("id", "name", "tz")), ("readers", ("id", "name", "firmware")),
                           ("receipts", ("receipt", "card")),
                           ("managers", ("username",)), ("refusals", ("endpoint", "code", "field", "remote")),
                           ("batches", ("code", "field"))):
        for row in db.execute("SELECT %s FROM %s" % (", ".join(columns), table)).fetchall():
            for value in row:
                for word in re.findall(r"[\w'./-]+", str(value or "")):
                    words.update((word, word.strip("/")))
    words.update(code for code, _, _ in errors.codes())
    it = Locale.parse("it")
    words.update(it.months["format"]["abbreviated"].values())
    words.update(i18n.language_name(lang) for lang in i18n.LANGUAGES)
    words.update(("CET", "CEST", "UTC", "GMT", "HTTP", "Europe/Rome", "seq", "xx") + i18n.LANGUAGES)
    words.update((STORED_DETAIL + " " + STORED_AUDIT).replace(",", "").split())
    return words


def human_texts(value, key=""):
    """The strings of a JSON twin meant for people: the *_text fields, reasons, words, rules,
    titles and details (codes, ids and numbers are for programs)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from human_texts(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from human_texts(v, key)
    elif isinstance(value, str) and (key.endswith("_text") or key.endswith("_ago") or
                                     key in ("reason", "word", "rule", "title", "detail", "label")):
        yield value


def routes(app):
    """Every route of the dashboard (not the readers' sync API, not static files)."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("syncapi.") or rule.endpoint == "static":
            continue
        found.append((rule.rule, sorted(rule.methods - {"HEAD", "OPTIONS"})))
    return sorted(found)


def visit(client, path, method="GET", data=None):
    r = client.open(path.replace("<reader_id>", "R1"), method=method, data=data)
    if 300 <= r.status_code < 400:
        # a browser follows it at once: its body (werkzeug's "Redirecting...") is never seen
        assert r.headers["Location"].startswith("/"), r.headers["Location"]
        return r.status_code, ""
    if r.is_json:
        return r.status_code, "\n".join(human_texts(r.get_json()))
    return r.status_code, pseudolocale.visible_text(r.get_data(as_text=True))


def test_the_pseudo_locale_finds_an_unwrapped_word():
    assert pseudolocale.leftovers("⟦Stores⟧ ⟦Updated ⟦1 min⟧ ago⟧ Milano", {"Milano"}) == []
    assert pseudolocale.leftovers("⟦Stores⟧ Refresh now 12:00 1.234,56 €", set()) == ["Refresh", "now"]
    # a value put into a translated text is outside its brackets: English there shows
    assert pseudolocale._mark("cannot audit: %(error)s") == "⟦cannot audit: ⟧%(error)s"
    assert pseudolocale.leftovers("⟦cannot audit: ⟧schema is 0", {"schema"}) == ["is"]
    assert pseudolocale.visible_text('<p title="Hi">A<script>var b;</script></p>').split() == ["Hi", "A"]


def test_every_route_as_every_role_in_the_pseudo_locale(pseudo, db):
    allowed = allowed_words(db)
    table = routes(pseudo)
    assert {rule for rule, _ in table} >= {"/", "/stores", "/stores.json", "/readers/<reader_id>",
                                           "/readers/<reader_id>.json", "/login", "/logout", "/language"}
    seen, problems = [], []
    for who in ("sede", "negozio", None):  # nobody last: its wrong logins block the address
        client = pseudo.test_client()
        if who:
            assert login(client, who).status_code == 302
        token = csrf_from(client.get("/login").get_data(as_text=True)) if not who else \
            csrf_from(client.get("/stores").get_data(as_text=True))
        visits = []
        for rule, methods in table:
            for method in methods:
                if method == "POST":
                    # an expired form (no token): the error page; the good POSTs are below
                    visits.append((rule, method, {"lang": "it"}))
                else:
                    visits.append((rule, method, None))
        # error pages: an unknown page, another store's reader, a wrong login, a wrong method
        visits += [("/no/such/page", "GET", None), ("/readers/R3", "GET", None), ("/readers/R3.json", "GET", None),
                   ("/login", "POST", {"username": "sede", "password": "wrong", "csrf_token": token}),
                   ("/stores", "POST", None), ("/language", "POST", {"lang": "xx", "csrf_token": token})]
        if who is None:  # enough wrong logins for the throttle's page (429)
            visits += [("/login", "POST", {"username": "sede", "password": "wrong", "csrf_token": token})] * 5
        for path, method, data in visits:
            status, text = visit(client, path, method, data)
            seen.append((who, path, method, status))
            left = pseudolocale.leftovers(text, allowed)
            if left:
                problems.append((who, method, path, status, sorted(set(left))))
    assert problems == [], "\n".join(map(repr, problems))
    statuses = {s for *_, s in seen}
    assert {200, 302, 400, 401, 404, 405, 429} <= statuses, statuses
    print("pseudo-locale: %d routes, %d requests (3 roles), statuses %s" % (len(table), len(seen), sorted(statuses)))


def test_a_visible_english_word_is_caught(pseudo, db):
    # the check itself: a page with one word that bypasses the catalogue fails it
    client = pseudo.test_client()
    login(client, "sede")
    page = pseudolocale.visible_text(client.get("/stores").get_data(as_text=True))
    assert pseudolocale.leftovers(page + " Refresh", allowed_words(db)) == ["Refresh"]


# -- the catalogues --------------------------------------------------------------------------

KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None, "N_plural": (1, 2), "lazy": None}


def marked_in_sources():
    """Every text the code marks for translation (i18n/babel.cfg's method map)."""
    with open(runtimes.ROOT / "i18n" / "babel.cfg") as f:
        method_map, options_map = parse_mapping_cfg(f)
    found = set()
    for _, _, message, _, _ in extract_from_dir(str(runtimes.ROOT), method_map, options_map, keywords=KEYWORDS):
        found.add(message if isinstance(message, str) else tuple(message))
    return found


def catalogue(lang):
    with open(i18n.LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po", "rb") as f:
        return read_po(f)


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
def test_the_catalogue_has_every_text_and_no_stale_one(lang):
    marked = marked_in_sources()
    assert len(marked) > 200
    held = {m.id if isinstance(m.id, str) else tuple(m.id) for m in catalogue(lang) if m.id}
    obsolete = list(catalogue(lang).obsolete)
    assert sorted(map(str, marked - held)) == [], "missing from %s: run make translations" % lang
    assert sorted(map(str, held - marked)) == [], "stale in %s: run make translations" % lang
    assert obsolete == []


def placeholders(text):
    return sorted(re.findall(r"%\(\w+\)[-+ #0-9.]*\w|\{[^{}]*\}", text))


def test_the_italian_translates_everything_with_the_same_placeholders():
    untranslated, wrong = [], []
    for m in catalogue("it"):
        if not m.id:
            continue
        ids = [m.id] if isinstance(m.id, str) else list(m.id)
        strings = [m.string] if isinstance(m.string, str) else list(m.string)
        if "fuzzy" in m.flags or not all(strings):
            untranslated.append(m.id)
            continue
        want = placeholders(ids[-1])
        for s in strings:
            if placeholders(s) != want and placeholders(s) != placeholders(ids[0]):
                wrong.append((m.id, s))
    assert untranslated == [] and wrong == []


def test_plural_texts_name_their_count_num():
    # i18n.ngettext (and Jinja's) give the count as %(num)s: a plural text naming it otherwise
    # fails with a KeyError when shown (click's and argparse's own, {x} and %s, are theirs)
    ours = [m.id for m in catalogue("en") if isinstance(m.id, tuple) and "{" not in m.id[1] and "%s" not in m.id[1]]
    assert len(ours) >= 8
    assert [i for i in ours if "%(num)" not in i[1]] == []
