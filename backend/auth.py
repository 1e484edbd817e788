"""Managers' login for the dashboard: accounts, the login form, `login_required`, the
roles, and the language each manager reads the dashboard in.

Roles (ROLES): head office (every page, every store), store manager (their store's
readers and figures: store_id says which), customer care (the customer pages). Each
blueprint says which roles see it; a page or JSON twin a role may not see answers 404,
as one that does not exist (nobody learns which pages there are). Passwords are kept as
werkzeug hashes; the CLI creates accounts:

    create_manager(db, "giulia.rossi", "a long passphrase", store_id="S1")   # store_manager
    create_manager(db, "anna.care", "a long passphrase", role="care")

    only_for(bp, "head_office", "store_manager")   # every view of bp: login, then role

    @bp.route("/stores")
    @login_required
    def stores(): ...            # g.manager: username, store_id, lang, role

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

from flask import (Blueprint, abort, current_app, g, jsonify, redirect, render_template, request,
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
PASSWORD_MAX = 1024  # a login's password: more is no password of ours, and would cost a long hash
ROLES = ("head_office", "store_manager", "care")
LOGIN_FAILED = N_("Unknown username or wrong password.")
TOO_MANY = N_("Too many failed logins: wait five minutes, then try again.")


class ManagerError(Exception):
    """A manager account could not be created; the message names the field and the rule."""


def create_manager(db, username, password, store_id=None, now=None, lang=None, role=None):
    """Add a manager account; returns the username. Raises ManagerError on bad input.
    `role` defaults to store_manager with a store, head_office without; a store manager
    needs a store, the other roles have none."""
    if role is None:
        role = "store_manager" if store_id is not None else "head_office"
    if role not in ROLES:
        raise ManagerError(_("role: one of %(roles)s", roles=", ".join(ROLES)))
    if (role == "store_manager") != (store_id is not None):
        raise ManagerError(_("store_id: a store manager needs a store (--store); head office and customer "
                             "care have none"))
    if not isinstance(username, str) or not USERNAME.fullmatch(username):
        raise ManagerError(_("username: 1 to 64 characters of A-Z a-z 0-9 . _ -"))
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise ManagerError(_("password: at least %(n)d characters", n=MIN_PASSWORD))
    if lang is not None and lang not in i18n.LANGUAGES:
        raise ManagerError(_("lang: one of %(languages)s", languages=", ".join(i18n.LANGUAGES)))
    row = {"username": username, "password_hash": generate_password_hash(password),
           "store_id": store_id, "created": int(time.time() if now is None else now), "lang": lang,
           "role": role}
    with transaction(db):
        if store_id is not None and db.execute("SELECT 1 FROM stores WHERE id = ?",
                                               [store_id]).fetchone() is None:
            raise ManagerError(_("store_id: no store %(store)r", store=store_id))
        if db.execute("SELECT 1 FROM managers WHERE username = ?", [username]).fetchone():
            raise ManagerError(_("username: %(username)r already exists", username=username))
        db.execute("INSERT INTO managers(username, password_hash, store_id, created, lang, role) "
                   "VALUES (:username, :password_hash, :store_id, :created, :lang, :role)", row)
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
    row = db.execute("SELECT username, password_hash, store_id, lang, role FROM managers WHERE username = ?",
                     [username or ""]).fetchone()
    if row is None:
        check_password_hash(_dummy_hash(), password or "")
        return None
    if not check_password_hash(row[1], password or ""):
        return None
    return {"username": row[0], "store_id": row[2], "lang": row[3], "role": row[4]}


def may_see_store(manager, store_id):
    """Head office sees every store; a store's manager only their own."""
    return manager["role"] == "head_office" or (manager["store_id"] is not None and manager["store_id"] == store_id)


def home(manager):
    """The endpoint a manager starts from: customer care's is the customer search."""
    return "care.search" if manager is not None and manager["role"] == "care" else "dashboard.stores"


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
    return {"csrf_token": csrf_token, "manager": g.get("manager"), "home": home}


# -- the decorator ------------------------------------------------------------------------

def _wants_json():
    return request.path.endswith(".json")


def _current_manager():
    username = session.get("manager")
    if not username:
        return None
    # read again at every request: a deleted account or a changed store takes effect at once
    row = get_db().execute("SELECT username, store_id, lang, role FROM managers WHERE username = ?",
                           [username]).fetchone()
    return {"username": row[0], "store_id": row[1], "lang": row[2], "role": row[3]} if row else None


def choose_language():
    """The request's language (Flask-Babel's locale selector): see the module's text."""
    manager = g.get("manager")
    if manager is None and session.get("manager"):
        manager = _current_manager()
    if manager is not None:
        return manager["lang"] or current_app.config["LANGUAGE"]
    return (i18n.supported(session.get("lang")) or request.accept_languages.best_match(i18n.LANGUAGES)
            or current_app.config["LANGUAGE"])


def _login_answer():
    """The answer to a request without a login: the login page, or 401 for a JSON twin."""
    session.pop("manager", None)
    if _wants_json():
        return jsonify({"error": "login required", "detail": _("Log in to see this page."),
                        "login": url_for("auth.login")}), 401
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def login_required(view):
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        manager = g.get("manager") or _current_manager()
        if manager is None:
            return _login_answer()
        g.manager = manager
        return view(*args, **kwargs)
    return wrapped


def only_for(bp, *roles):
    """Every view of blueprint `bp` needs a login, then one of `roles`: the others get
    404, pages and JSON twins alike, as for a page that does not exist. Said once per
    blueprint, so a route added later is covered too."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError("unknown roles %s" % sorted(unknown))
    bp.allowed_roles = tuple(roles)

    @bp.before_request
    def _only():
        manager = _current_manager()
        if manager is None:
            return _login_answer()
        g.manager = manager  # the 404 page's header and links are the manager's
        if manager["role"] not in roles:
            abort(404)
        return None
    return bp


# -- the views ----------------------------------------------------------------------------

# a path on this site, and nothing a browser could read otherwise: browsers drop tabs and
# newlines from URLs, so "/\t/evil.example" would become "//evil.example"
_LOCAL_PATH = re.compile(r"/(?!/)[A-Za-z0-9/._~%-]*(\?[A-Za-z0-9._~%&=+/-]*)?")


def _safe_next(target):
    """Only a path on this site: never '//host', 'http://…' or anything with spaces or
    control characters (an open redirect); else the stores overview."""
    if not target or not _LOCAL_PATH.fullmatch(target) or target.startswith("/login"):
        return url_for(home(g.get("manager") or _current_manager()))
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


@bp.route("/")
def index():
    """The manager's first page (the stores; customer care's: the customer search)."""
    return redirect(url_for(home(_current_manager())))


@bp.route("/login", methods=["GET", "POST"])
def login():
    next_page = request.values.get("next", "")
    if request.method == "GET":
        return render_template("auth/login.html", next=next_page, error=None)
    if not csrf_ok():
        return render_template("auth/login.html", next=next_page,
                               error=_("The form expired: please log in again.")), 400
    username = request.form.get("username", "")
    # a malformed username or password can match no account: said as such, naming the field,
    # before the throttle and the hash (the rules are public: create-manager's)
    if not USERNAME.fullmatch(username):
        return render_template("auth/login.html", next=next_page, username=username[:64], error_field="username",
                               error=_("username: 1 to 64 characters of A-Z a-z 0-9 . _ -")), 400
    if not 1 <= len(request.form.get("password", "")) <= PASSWORD_MAX:
        return render_template("auth/login.html", next=next_page, username=username, error_field="password",
                               error=_("password: type your password (at most %(n)d characters)",
                                       n=PASSWORD_MAX)), 400
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
        return errorpages.page(400, _("lang: one of %(languages)s", languages=", ".join(i18n.LANGUAGES)))
    manager = _current_manager()
    if manager is not None:
        set_language(get_db(), manager["username"], lang)
    else:
        session["lang"] = lang
    return redirect(_safe_next(request.form.get("next", "")))
