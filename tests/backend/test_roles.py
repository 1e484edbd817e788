"""Roles: every page and JSON twin a role may not see answers 404 for it, enumerated from
app.url_map (a route added later is covered without touching this file); the pages it
may see answer; create-manager's --role and its rules."""
import re

import pytest

from loyalty.backend import auth
from dashrows import PASSWORD, add_reader, add_store, login

# the blueprints of the managers' pages, and who may see them (what each says with only_for)
ALLOWED = {"dashboard": {"head_office", "store_manager"}, "care": {"care", "head_office"}}
# everything else is open to staff roles (login, logout, language, static, the readers'
# API, "/"; the shopper's page under /me/, which has a sign-in of its own: test_shopper.py)
OPEN = {"auth", "syncapi", "shopper", None}


@pytest.fixture
def logins(db):
    add_store(db, "S1")
    add_reader(db, "R1", "S1")
    db.execute("INSERT INTO customers(id, pseudonym, name, contact, store_id, status, created_t) "
               "VALUES(7, 'C-7', 'Mario Rossi', 'm@example.it', 'S1', 'active', 0)")
    auth.create_manager(db, "ho", PASSWORD, role="head_office")
    auth.create_manager(db, "sm", PASSWORD, store_id="S1", role="store_manager")
    auth.create_manager(db, "cc", PASSWORD, role="care")


def _path(rule):
    """A concrete path for a rule: its arguments filled with things that exist."""
    values = {"reader_id": "R1", "customer_id": "7", "seq": "1", "filename": "dash.css"}
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[m.group(1)], rule.rule)


def _routes(app):
    for rule in app.url_map.iter_rules():
        blueprint = rule.endpoint.rpartition(".")[0] or None
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield blueprint, method, rule


def test_every_blueprint_is_known(app):
    """A new blueprint must be listed here with its roles (or as open)."""
    blueprints = {b for b, _m, _r in _routes(app)}
    assert blueprints <= set(ALLOWED) | OPEN, blueprints - set(ALLOWED) - OPEN
    for name, roles in ALLOWED.items():
        assert set(app.blueprints[name].allowed_roles) == roles


@pytest.mark.parametrize("role", ["head_office", "store_manager", "care"])
def test_forbidden_pages_answer_404(app, client, logins, role):
    login(client, {"head_office": "ho", "store_manager": "sm", "care": "cc"}[role])
    forbidden = [(m, r) for b, m, r in _routes(app) if b in ALLOWED and role not in ALLOWED[b]]
    allowed = [(m, r) for b, m, r in _routes(app) if b in ALLOWED and role in ALLOWED[b] and m == "GET"]
    assert forbidden or role == "head_office"
    for method, rule in forbidden:
        r = client.open(_path(rule), method=method, data={})
        assert r.status_code == 404, (method, rule.rule, r.status_code)
        if rule.rule.endswith(".json"):
            assert r.get_json()["error"] == "not found"
    for method, rule in allowed:
        r = client.open(_path(rule), method=method, query_string={"q": "rossi"})
        assert r.status_code == 200, (method, rule.rule, r.status_code)


def test_head_office_sees_everything(app, client, logins):
    login(client, "ho")
    assert client.get("/customers/7.json").status_code == 200
    assert client.get("/readers/R1.json").status_code == 200


def test_the_first_page_follows_the_role(client, logins):
    login(client, "cc")
    assert client.get("/").headers["Location"] == "/customers"
    client.post("/logout", data={})  # no token: refused, still logged in
    client2 = client.application.test_client()
    r = login(client2, "sm")
    assert r.headers["Location"] == "/stores"


def test_not_logged_in_is_asked_to_log_in(client, logins):
    assert client.get("/customers/7").status_code == 302
    assert client.get("/customers/7.json").status_code == 401


def test_a_role_changed_takes_effect_at_once(db, client, logins):
    login(client, "ho")
    assert client.get("/customers/7.json").status_code == 200
    db.execute("UPDATE managers SET role = 'store_manager', store_id = 'S1' WHERE username = 'ho'")
    assert client.get("/customers/7.json").status_code == 404


@pytest.mark.parametrize("args, field", [
    ({"store_id": "S1", "role": "care"}, "store_id"), ({"role": "store_manager"}, "store_id"),
    ({"store_id": "S1", "role": "head_office"}, "store_id"), ({"role": "boss"}, "role")])
def test_create_manager_role_rules(db, logins, args, field):
    with pytest.raises(auth.ManagerError, match="^%s:" % field):
        auth.create_manager(db, "new", PASSWORD, **args)
    assert db.execute("SELECT count(*) FROM managers WHERE username = 'new'").fetchone() == (0,)


def test_create_manager_command_takes_a_role(runner, db, tmp_path):
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    r = runner.invoke(args=["create-manager", "anna", "--role", "care", "--password-file", str(pw)])
    assert r.exit_code == 0, r.output
    assert db.execute("SELECT role, store_id FROM managers WHERE username = 'anna'").fetchone() == ("care", None)
    r = runner.invoke(args=["create-manager", "bea", "--role", "store_manager", "--password-file", str(pw)])
    assert r.exit_code != 0 and "store_id" in r.output
    assert db.execute("SELECT count(*) FROM managers WHERE username = 'bea'").fetchone() == (0,)
