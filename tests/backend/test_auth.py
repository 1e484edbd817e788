"""Managers' accounts and login: validation, the login form, CSRF, store-restricted managers."""
from urllib.parse import parse_qs, urlsplit

import pytest

from loyalty.backend import auth
from dashrows import (PASSWORD, add_manager, add_reader, add_store, csrf_from,  # noqa: F401
                                dash_app, dash_client, dash_db, login)


def managers(db):
    return list(db.execute("SELECT username, store_id FROM managers ORDER BY username").fetchall())


# -- create_manager -----------------------------------------------------------------------

def test_create_manager_stores_a_hash_not_the_password(dash_db):
    add_store(dash_db, "S1")
    assert auth.create_manager(dash_db, "marco.b_2-x", PASSWORD, store_id="S1") == "marco.b_2-x"
    row = dash_db.execute("SELECT password_hash, store_id, created FROM managers").fetchone()
    assert PASSWORD not in row[0] and row[0].startswith(("scrypt:", "pbkdf2:"))
    assert row[1] == "S1" and row[2] > 0


@pytest.mark.parametrize("username", ["", "a" * 65, "has space", "crème", "a/b", None])
def test_bad_usernames_are_refused(dash_db, username):
    with pytest.raises(auth.ManagerError, match="^username"):
        auth.create_manager(dash_db, username, PASSWORD)
    assert managers(dash_db) == []


def test_a_64_character_username_is_fine(dash_db):
    auth.create_manager(dash_db, "a" * 64, PASSWORD)
    assert managers(dash_db) == [("a" * 64, None)]


@pytest.mark.parametrize("password", ["", "123456789", None])
def test_short_passwords_are_refused(dash_db, password):
    with pytest.raises(auth.ManagerError, match="^password: at least 10"):
        auth.create_manager(dash_db, "giulia", password)
    assert managers(dash_db) == []


def test_unknown_store_is_refused(dash_db):
    with pytest.raises(auth.ManagerError, match="^store_id"):
        auth.create_manager(dash_db, "giulia", PASSWORD, store_id="S404")
    assert managers(dash_db) == []


def test_duplicate_username_is_refused_and_the_first_kept(dash_db):
    add_store(dash_db, "S1")
    auth.create_manager(dash_db, "giulia", PASSWORD, store_id="S1")
    with pytest.raises(auth.ManagerError, match="already exists"):
        auth.create_manager(dash_db, "giulia", "another password")
    assert managers(dash_db) == [("giulia", "S1")]
    assert auth.check_login(dash_db, "giulia", PASSWORD) == {"username": "giulia", "store_id": "S1", "lang": None,
                                                          "role": "store_manager"}


# -- login required -------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/stores", "/readers/R1", "/stores?x=1&y=%2F"])
def test_pages_redirect_to_login_with_next(dash_client, path):
    r = dash_client.get(path)
    assert r.status_code == 302
    where = urlsplit(r.headers["Location"])
    assert where.path == "/login"
    assert parse_qs(where.query) == {"next": [path]}  # the page as asked for


@pytest.mark.parametrize("path", ["/stores.json", "/readers/R1.json"])
def test_json_twins_answer_401(dash_client, path):
    r = dash_client.get(path)
    assert r.status_code == 401
    assert r.get_json() == {"error": "login required", "detail": "Log in to see this page.", "login": "/login"}


# -- logging in -----------------------------------------------------------------------------

def test_login_then_pages_open_and_next_is_followed(dash_client, dash_db):
    add_manager(dash_db)
    r = login(dash_client, next_page="/stores.json")
    assert r.status_code == 302 and r.headers["Location"] == "/stores.json"
    assert dash_client.get("/stores.json").status_code == 200
    assert dash_client.get("/stores").status_code == 200


def test_login_without_next_goes_to_the_stores(dash_client, dash_db):
    add_manager(dash_db)
    assert login(dash_client).headers["Location"] == "/stores"


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example",
                                    "stores", "/login", "/\t/evil.example", "/\n/x", "/ /evil.example",
                                    "/%09/evil.example?x=1\r\n"])
def test_next_never_leaves_the_site(dash_client, dash_db, target):
    add_manager(dash_db)
    assert login(dash_client, next_page=target).headers["Location"] == "/stores"


def test_next_may_be_a_page_of_the_site(dash_client, dash_db):
    add_manager(dash_db)
    assert login(dash_client, next_page="/readers/R1?x=1").headers["Location"] == "/readers/R1?x=1"


def test_failed_logins_are_throttled(dash_client, dash_db):
    add_manager(dash_db)
    for _ in range(auth.Throttle.MAX_FAILURES):
        assert login(dash_client, password="guess guess guess").status_code == 401
    # now even the right password waits: a guesser cannot tell it was right
    r = login(dash_client)
    assert r.status_code == 429 and auth.TOO_MANY in r.get_data(as_text=True)
    assert dash_client.get("/stores.json").status_code == 401


def test_throttle_forgets_after_its_window():
    t = auth.Throttle()
    keys = ("user:giulia", "addr:10.0.0.1")
    for i in range(t.MAX_FAILURES):
        t.failed(keys, 100 + i)
    assert t.blocked(keys, 110)
    assert t.blocked(("addr:10.0.0.1",), 110)  # another username from the same address too
    assert not t.blocked(keys, 100 + t.WINDOW + t.MAX_FAILURES)
    t.failed(keys, 1000)
    t.succeeded(keys)
    assert not t.blocked(keys, 1001)


def test_session_cookie_is_httponly_and_samesite_lax(dash_client, dash_db):
    add_manager(dash_db)
    cookie = login(dash_client).headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_wrong_password_and_unknown_user_get_the_same_answer(dash_client, dash_db):
    add_manager(dash_db)
    wrong = login(dash_client, password="not the password")
    unknown = login(dash_client, username="nobody", password=PASSWORD)
    for r in (wrong, unknown):
        assert r.status_code == 401
        assert auth.LOGIN_FAILED in r.get_data(as_text=True)
    assert dash_client.get("/stores.json").status_code == 401


def test_an_unknown_user_costs_a_password_check(dash_db, monkeypatch):
    checked = []
    real = auth.check_password_hash

    def spy(hashed, password):
        checked.append(password)
        return real(hashed, password)

    monkeypatch.setattr(auth, "check_password_hash", spy)
    assert auth.check_login(dash_db, "nobody", "some password") is None
    assert checked == ["some password"]


def test_login_without_csrf_token_is_refused(dash_client, dash_db):
    add_manager(dash_db)
    dash_client.get("/login")
    r = dash_client.post("/login", data={"username": "giulia", "password": PASSWORD})
    assert r.status_code == 400
    assert dash_client.get("/stores.json").status_code == 401


def test_login_with_a_wrong_csrf_token_is_refused(dash_client, dash_db):
    add_manager(dash_db)
    token = csrf_from(dash_client.get("/login").get_data(as_text=True))
    r = dash_client.post("/login", data={"username": "giulia", "password": PASSWORD,
                                         "csrf_token": token[:-1] + ("A" if token[-1] != "A" else "B")})
    assert r.status_code == 400
    assert dash_client.get("/stores.json").status_code == 401


def test_logout_needs_the_token_and_ends_the_session(dash_client, dash_db):
    add_manager(dash_db)
    login(dash_client)
    page = dash_client.get("/stores").get_data(as_text=True)
    assert dash_client.post("/logout", data={}).status_code == 400
    assert dash_client.get("/stores.json").status_code == 200
    r = dash_client.post("/logout", data={"csrf_token": csrf_from(page)})
    assert r.status_code == 302 and r.headers["Location"] == "/login"
    assert dash_client.get("/stores.json").status_code == 401


def test_a_deleted_account_loses_access_at_once(dash_client, dash_db):
    add_manager(dash_db)
    login(dash_client)
    dash_db.execute("DELETE FROM managers WHERE username = 'giulia'")
    assert dash_client.get("/stores.json").status_code == 401


# -- a store's manager sees only that store ---------------------------------------------------

@pytest.fixture
def two_stores(dash_db):
    add_store(dash_db, "S1", "Milano")
    add_store(dash_db, "S2", "Roma")
    add_reader(dash_db, "R1", "S1")
    add_reader(dash_db, "R2", "S2")
    add_manager(dash_db, "anna", store_id="S1")
    add_manager(dash_db, "head")
    return dash_db


def test_store_manager_sees_only_their_store(dash_client, two_stores):
    login(dash_client, "anna")
    data = dash_client.get("/stores.json").get_json()
    assert [s["id"] for s in data["stores"]] == ["S1"]
    html = dash_client.get("/stores").get_data(as_text=True)
    assert 'data-reader="R1"' in html and 'data-reader="R2"' not in html


def test_another_stores_reader_is_as_unknown_as_a_missing_one(dash_client, two_stores):
    login(dash_client, "anna")
    assert dash_client.get("/readers/R1.json").status_code == 200
    other, missing = dash_client.get("/readers/R2.json"), dash_client.get("/readers/R404.json")
    assert other.status_code == missing.status_code == 404
    assert other.get_json()["error"] == "not found"
    r = dash_client.get("/readers/R2")
    assert r.status_code == 404 and 'data-error="404"' in r.get_data(as_text=True)
    assert "R2" in r.get_data(as_text=True) and "another store" not in r.get_data(as_text=True)


def test_head_office_sees_every_store(dash_client, two_stores):
    login(dash_client, "head")
    data = dash_client.get("/stores.json").get_json()
    assert [s["id"] for s in data["stores"]] == ["S1", "S2"]
    assert dash_client.get("/readers/R2.json").status_code == 200
