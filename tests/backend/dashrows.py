"""Fixtures and row builders for the dashboard's tests (no tests here).

The dashboard's tests build their data by inserting rows into the schema's tables
directly, so they depend on backend/db.py only, not on the sync API's code:

    from dashrows import dash_app, dash_db, dash_client, add_store, add_reader, login
"""
import re

import pytest

from loyalty.backend import auth
from loyalty.backend.dashboard import views as dashboard

PASSWORD = "correct horse battery"


@pytest.fixture
def dash_app(app):
    """conftest.py's app: a migrated database of its own, nothing in it."""
    return app


@pytest.fixture
def dash_db(db):
    """conftest.py's db: a connection to that app's database."""
    return db


@pytest.fixture
def dash_client(client):
    return client


def fix_clock(monkeypatch, now):
    """The dashboard's views see `now` as the current time."""
    monkeypatch.setattr(dashboard, "clock", lambda: now)


def add_store(db, store_id, name=None, tz="Europe/Rome"):
    db["stores"].insert({"id": store_id, "name": name or "Store " + store_id, "tz": tz})


def add_reader(db, reader_id, store_id, **state):
    row = {"id": reader_id, "store_id": store_id, "name": "Till " + reader_id,
           "key_hex": "ab" * 32, "created": 0}
    row.update(state)
    db["readers"].insert(row)


def add_manager(db, username="giulia", store_id=None):
    auth.create_manager(db, username, PASSWORD, store_id=store_id)


def csrf_from(html):
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def login(client, username="giulia", password=PASSWORD, next_page=None):
    """Log in through the real form (with its CSRF token); returns the POST's response."""
    token = csrf_from(client.get("/login").get_data(as_text=True))
    form = {"username": username, "password": password, "csrf_token": token}
    if next_page is not None:
        form["next"] = next_page
    return client.post("/login", data=form)
