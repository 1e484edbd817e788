"""Managers' login for the dashboard: accounts, the login form, and `login_required`.

A manager with a store_id sees only that store; store_id NULL is head office (every
store). Passwords are kept as werkzeug hashes; the CLI creates accounts:

    create_manager(db, "giulia.rossi", "a long passphrase", store_id="S1")

    @bp.route("/stores")
    @login_required
    def stores(): ...            # g.manager is the logged-in manager's row

Not logged in: an HTML page redirects to /login?next=<the page>; a JSON twin (a path
ending in .json) answers 401 with JSON. Every POST form carries a CSRF token kept in
the session. A failed login says the same for an unknown user and a wrong password,
and takes as long (an unknown user's password is checked against a dummy hash).
"""
import functools
import hmac
import re
import secrets
import time

from flask import (Blueprint, current_app, g, jsonify, redirect, render_template, request,
                   session, url_for)
from werkzeug.security import check_password_hash, generate_password_hash

from loyalty.backend.db import transaction
from loyalty.backend.requestdb import get_db

bp = Blueprint("auth", __name__)

USERNAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
MIN_PASSWORD = 10
LOGIN_FAILED = "Unknown username or wrong password."
TOO_MANY = "Too many failed logins: wait five minutes, then try again."


class ManagerError(Exception):
    """A manager account could not be created; the message names the field and the rule."""


def create_manager(db, username, password, store_id=None, now=None):
    """Add a manager account; returns the username. Raises ManagerError on bad input."""
    if not isinstance(username, str) or not USERNAME.fullmatch(username):
        raise ManagerError("username: 1 to 64 characters of A-Z a-z 0-9 . _ -")
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise ManagerError("password: at least %d characters" % MIN_PASSWORD)
    row = {"username": username, "password_hash": generate_password_hash(password),
           "store_id": store_id, "created": int(time.time() if now is None else now)}
    with transaction(db):
        if store_id is not None and db.execute("SELECT 1 FROM stores WHERE id = ?",
                                               [store_id]).fetchone() is None:
            raise ManagerError("store_id: no store %r" % store_id)
        if db.execute("SELECT 1 FROM managers WHERE username = ?", [username]).fetchone():
            raise ManagerError("username: %r already exists" % username)
        db.execute("INSERT INTO managers(username, password_hash, store_id, created) "
                   "VALUES (:username, :password_hash, :store_id, :created)", row)
    return username


@functools.lru_cache(maxsize=1)
def _dummy_hash():
    # same method and cost as real hashes, so an unknown user costs a real check
    return generate_password_hash(secrets.token_hex(16))


def check_login(db, username, password):
    """The manager's row (a dict) if username and password match, else None."""
    row = db.execute("SELECT username, password_hash, store_id FROM managers WHERE username = ?",
                     [username or ""]).fetchone()
    if row is None:
        check_password_hash(_dummy_hash(), password or "")
        return None
    if not check_password_hash(row[1], password or ""):
        return None
    return {"username": row[0], "store_id": row[2]}


def may_see_store(manager, store_id):
    """Head office sees every store; a store's manager only their own."""
    return manager["store_id"] is None or manager["store_id"] == store_id


# -- CSRF -------------------------------------------------------------------------------

def csrf_token():
    """The session's CSRF token (made on first use); every POST form carries it."""
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(24)
    return token


def csrf_ok():
    sent = request.form.get("csrf_token", "")
    kept = session.get("csrf", "")
    return bool(kept) and hmac.compare_digest(sent.encode(), kept.encode())


@bp.app_context_processor
def _template_globals():
    return {"csrf_token": csrf_token, "manager": g.get("manager")}


# -- the decorator ------------------------------------------------------------------------

def _wants_json():
    return request.path.endswith(".json")


def _current_manager():
    username = session.get("manager")
    if not username:
        return None
    # read again at every request: a deleted account or a changed store takes effect at once
    row = get_db().execute("SELECT username, store_id FROM managers WHERE username = ?",
                           [username]).fetchone()
    return {"username": row[0], "store_id": row[1]} if row else None


def login_required(view):
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        manager = _current_manager()
        if manager is None:
            session.pop("manager", None)
            if _wants_json():
                return jsonify({"error": "login required", "login": url_for("auth.login")}), 401
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        g.manager = manager
        return view(*args, **kwargs)
    return wrapped


# -- the views ----------------------------------------------------------------------------

# a path on this site, and nothing a browser could read otherwise: browsers drop tabs and
# newlines from URLs, so "/\t/evil.example" would become "//evil.example"
_LOCAL_PATH = re.compile(r"/(?!/)[A-Za-z0-9/._~%-]*(\?[A-Za-z0-9._~%&=+/-]*)?")


def _safe_next(target):
    """Only a path on this site: never '//host', 'http://…' or anything with spaces or
    control characters (an open redirect); else the stores overview."""
    if not target or not _LOCAL_PATH.fullmatch(target) or target.startswith("/login"):
        return url_for("dashboard.stores")
    return target


class Throttle:
    """Failed logins per username and per address: after MAX_FAILURES within WINDOW
    seconds, further attempts are refused until the window has passed, so a password
    cannot be guessed at the speed of the server (and each guess costs a hash)."""

    MAX_FAILURES = 5
    WINDOW = 300

    def __init__(self):
        self.failures = {}  # key -> [times]

    def _recent(self, key, now):
        times = [t for t in self.failures.get(key, ()) if now - t < self.WINDOW]
        if times:
            self.failures[key] = times
        else:
            self.failures.pop(key, None)
        return times

    def blocked(self, keys, now):
        return any(len(self._recent(k, now)) >= self.MAX_FAILURES for k in keys)

    def failed(self, keys, now):
        if len(self.failures) > 10000:  # bounded: forget what is old
            for k in list(self.failures):
                self._recent(k, now)
        for k in keys:
            self.failures.setdefault(k, []).append(now)

    def succeeded(self, keys):
        for k in keys:
            self.failures.pop(k, None)


def _throttle():
    return current_app.extensions.setdefault("loyalty.login_throttle", Throttle())


@bp.route("/login", methods=["GET", "POST"])
def login():
    next_page = request.values.get("next", "")
    if request.method == "GET":
        return render_template("auth/login.html", next=next_page, error=None)
    if not csrf_ok():
        return render_template("auth/login.html", next=next_page,
                               error="The form expired: please log in again."), 400
    username = request.form.get("username", "")[:64]
    keys = ("user:" + username.lower(), "addr:%s" % request.remote_addr)
    now = time.monotonic()
    if _throttle().blocked(keys, now):
        current_app.logger.warning("login refused for %r from %s: too many failures", username,
                                   request.remote_addr)
        return render_template("auth/login.html", next=next_page, error=TOO_MANY, username=username), 429
    manager = check_login(get_db(), username, request.form.get("password", ""))
    if manager is None:
        _throttle().failed(keys, now)
        current_app.logger.info("failed login for %r from %s", username, request.remote_addr)
        return render_template("auth/login.html", next=next_page, error=LOGIN_FAILED,
                               username=username), 401
    _throttle().succeeded(keys[:1])
    session.clear()  # a fresh session (and CSRF token) after login: no session fixation
    session["manager"] = manager["username"]
    return redirect(_safe_next(next_page))


@bp.route("/logout", methods=["POST"])
def logout():
    if not csrf_ok():
        return render_template("error.html", status=400, title="Bad request",
                               message="The form expired: reload the page and try again."), 400
    session.clear()
    return redirect(url_for("auth.login"))
