"""Managers' login for the dashboard: accounts, the login form, `login_required`, and the
language each manager reads the dashboard in.

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

Language (choose_language, Flask-Babel's locale selector): a logged-in manager's own
setting, else the backend's LANGUAGE (Italian unless configured); before login, the
choice made on the login page, else the browser's Accept-Language, else LANGUAGE.
POST /language changes it (the manager's setting, or the session's before login).
"""
import functools
import hmac
import re
import secrets
import time

from flask import (Blueprint, current_app, g, jsonify, redirect, render_template, request,
                   session, url_for)
from werkzeug.security import check_password_hash, generate_password_hash

from loyalty import i18n
from loyalty.backend import errorpages
from loyalty.backend.db import transaction
from loyalty.backend.requestdb import get_db
from loyalty.i18n import N_, _

bp = Blueprint("auth", __name__)

USERNAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
MIN_PASSWORD = 10
LOGIN_FAILED = N_("Unknown username or wrong password.")
TOO_MANY = N_("Too many failed logins: wait five minutes, then try again.")


class ManagerError(Exception):
    """A manager account could not be created; the message names the field and the rule."""


def create_manager(db, username, password, store_id=None, now=None, lang=None):
    """Add a manager account; returns the username. Raises ManagerError on bad input."""
    if not isinstance(username, str) or not USERNAME.fullmatch(username):
        raise ManagerError(_("username: 1 to 64 characters of A-Z a-z 0-9 . _ -"))
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise ManagerError(_("password: at least %(n)d characters", n=MIN_PASSWORD))
    if lang is not None and lang not in i18n.LANGUAGES:
        raise ManagerError(_("lang: one of %(languages)s", languages=", ".join(i18n.LANGUAGES)))
    row = {"username": username, "password_hash": generate_password_hash(password),
           "store_id": store_id, "created": int(time.time() if now is None else now), "lang": lang}
    with transaction(db):
        if store_id is not None and db.execute("SELECT 1 FROM stores WHERE id = ?",
                                               [store_id]).fetchone() is None:
            raise ManagerError(_("store_id: no store %(store)r", store=store_id))
        if db.execute("SELECT 1 FROM managers WHERE username = ?", [username]).fetchone():
            raise ManagerError(_("username: %(username)r already exists", username=username))
        db.execute("INSERT INTO managers(username, password_hash, store_id, created, lang) "
                   "VALUES (:username, :password_hash, :store_id, :created, :lang)", row)
    return username


def set_language(db, username, lang):
    """A manager's language for the dashboard: one of i18n.LANGUAGES, or None for the backend's."""
    if lang is not None and lang not in i18n.LANGUAGES:
        raise ManagerError(_("lang: one of %(languages)s", languages=", ".join(i18n.LANGUAGES)))
    with transaction(db):
        db.execute("UPDATE managers SET lang = ? WHERE username = ?", [lang, username])


@functools.lru_cache(maxsize=1)
def _dummy_hash():
    # same method and cost as real hashes, so an unknown user costs a real check
    return generate_password_hash(secrets.token_hex(16))


def check_login(db, username, password):
    """The manager's row (a dict) if username and password match, else None."""
    row = db.execute("SELECT username, password_hash, store_id, lang FROM managers WHERE username = ?",
                     [username or ""]).fetchone()
    if row is None:
        check_password_hash(_dummy_hash(), password or "")
        return None
    if not check_password_hash(row[1], password or ""):
        return None
    return {"username": row[0], "store_id": row[2], "lang": row[3]}


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
    row = get_db().execute("SELECT username, store_id, lang FROM managers WHERE username = ?",
                           [username]).fetchone()
    return {"username": row[0], "store_id": row[1], "lang": row[2]} if row else None


def choose_language():
    """The request's language (Flask-Babel's locale selector): see the module's text."""
    manager = g.get("manager")
    if manager is None and session.get("manager"):
        manager = _current_manager()
    if manager is not None:
        return manager["lang"] or current_app.config["LANGUAGE"]
    return (i18n.supported(session.get("lang")) or request.accept_languages.best_match(i18n.LANGUAGES)
            or current_app.config["LANGUAGE"])


def login_required(view):
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        manager = _current_manager()
        if manager is None:
            session.pop("manager", None)
            if _wants_json():
                return jsonify({"error": "login required", "detail": _("Log in to see this page."),
                                "login": url_for("auth.login")}), 401
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
                               error=_("The form expired: please log in again.")), 400
    username = request.form.get("username", "")[:64]
    keys = ("user:" + username.lower(), "addr:%s" % request.remote_addr)
    now = time.monotonic()
    if _throttle().blocked(keys, now):
        current_app.logger.warning("login refused for %r from %s: too many failures", username,
                                   request.remote_addr)
        return render_template("auth/login.html", next=next_page, error=_(TOO_MANY), username=username), 429
    manager = check_login(get_db(), username, request.form.get("password", ""))
    if manager is None:
        _throttle().failed(keys, now)
        current_app.logger.info("failed login for %r from %s", username, request.remote_addr)
        return render_template("auth/login.html", next=next_page, error=_(LOGIN_FAILED),
                               username=username), 401
    _throttle().succeeded(keys[:1])
    chosen = session.get("lang")
    session.clear()  # a fresh session (and CSRF token) after login: no session fixation
    session["manager"] = manager["username"]
    if chosen and not manager["lang"]:  # a language chosen on the login page becomes the manager's
        set_language(get_db(), manager["username"], chosen)
    return redirect(_safe_next(next_page))


@bp.route("/logout", methods=["POST"])
def logout():
    if not csrf_ok():
        return errorpages.page(400, _("The form expired: reload the page and try again."))
    session.clear()
    return redirect(url_for("auth.login"))


@bp.route("/language", methods=["POST"])
def language():
    """Read the dashboard in another language: the manager's setting (kept), or before login
    the session's; then back to the page it was asked from."""
    lang = request.form.get("lang", "")
    if not csrf_ok():
        return errorpages.page(400, _("The form expired: reload the page and try again."))
    if lang not in i18n.LANGUAGES:
        return errorpages.page(400, _("Unknown language %(lang)r: choose one of %(languages)s.",
                                      lang=lang[:16], languages=", ".join(i18n.LANGUAGES)))
    manager = _current_manager()
    if manager is not None:
        set_language(get_db(), manager["username"], lang)
    else:
        session["lang"] = lang
    return redirect(_safe_next(request.form.get("next", "")))
