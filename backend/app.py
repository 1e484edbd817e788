"""The Flask app factory: `flask --app loyalty.backend.app run`, or a WSGI server (backend/serve.py).

Defaults first, then the instance folder's `config.py`, then `test_config`; the database,
the session secret and the erasure key live in the instance folder, never in the repository.

    app = create_app({"DATABASE": "/tmp/x.db"})

Blueprints: `syncapi` (the readers' sync API, /api/v1/sync/...), `auth` (managers'
login and their language), `dashboard` (stores overview and reader pages, each with a
JSON twin: head office and store managers), `care` (customer search and the customer's
story, with JSON twins: customer care and head office),
`shopper` (the shopper's own page under /me/: backend/shopper/).

Languages (loyalty.i18n): Flask-Babel picks each request's (auth.choose_language) and the
catalogue is loyalty.i18n's, for templates and domain code alike; the sync API answers
readers with codes and does not need one.
"""
import os
import secrets
from pathlib import Path

from flask import Flask, g, request
from flask_babel import Babel, get_locale

from loyalty import i18n
from loyalty.backend import auth, cli, errorpages, requestdb
from loyalty.backend.care import views as care
from loyalty.backend.dashboard import views as dashboard
from loyalty.backend.shopper import views as shopper
from loyalty.backend.sync import api as syncapi
from loyalty.backend.config import DEFAULTS


def instance_secret(instance, name):
    """A secret of the instance (hex text of 32 random bytes): made once, kept in the
    instance folder under `name`, readable by us only. The session secret is one; the
    erasure key (tombstones and sealed directory removals: backend/privacy/) another,
    which must never be in the database it protects."""
    path = Path(instance) / name
    if not path.exists():
        # written whole under another name, then linked in place: two processes starting
        # on a new instance at once end up with the same secret, never an empty one
        tmp = Path(instance) / ("%s.%d" % (name, os.getpid()))
        fd = os.open(str(tmp), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # the other process was first: its secret stands
        finally:
            tmp.unlink()
    return path.read_text().strip()


def _languages(app):
    app.config["BABEL_DEFAULT_LOCALE"] = app.config["LANGUAGE"]
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(i18n.LOCALE_DIR)
    Babel(app, locale_selector=auth.choose_language)
    # one catalogue and one language for templates and domain code: Jinja's _() is
    # loyalty.i18n's, which speaks the language set below for the request
    app.jinja_env.install_gettext_callables(i18n.template_gettext, i18n.template_ngettext, newstyle=True)

    @app.before_request
    def _speak():
        # readers get codes, not sentences; a stylesheet needs no language (nor its query)
        if not request.path.startswith(("/api/", "/static/")):
            g.language_token = i18n.use(str(get_locale()))

    @app.teardown_request
    def _done(exc):
        token = g.pop("language_token", None)
        if token is not None:
            i18n.reset(token)

    @app.context_processor
    def _language():
        return {"lang": i18n.language(), "languages": i18n.LANGUAGES, "language_name": i18n.language_name}


def create_app(test_config=None):
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(DEFAULTS)
    instance = os.environ.get("LOYALTY_INSTANCE")
    if instance:
        app.instance_path = os.path.abspath(instance)
    # the database (readers' keys) and the session secret: ours only
    os.makedirs(app.instance_path, mode=0o700, exist_ok=True)
    # the instance's config.py (read by path: Config's root was fixed before the
    # instance folder moved to LOYALTY_INSTANCE)
    app.config.from_pyfile(os.path.join(app.instance_path, "config.py"), silent=True)
    if test_config:
        app.config.from_mapping(test_config)
    if not app.config["DATABASE"]:
        app.config["DATABASE"] = os.environ.get("LOYALTY_DB") or os.path.join(app.instance_path, "loyalty.db")
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = instance_secret(app.instance_path, "secret_key")
    if not app.config.get("ERASURE_KEY"):
        # bytes: what HMAC takes (backend/privacy/tombstones.py, removals.py)
        app.config["ERASURE_KEY"] = bytes.fromhex(instance_secret(app.instance_path, "erasure_key"))
    if not app.config.get("EXPORTS_FOLDER"):
        # customers' exports (customer-export's default): erasure deletes them from here
        app.config["EXPORTS_FOLDER"] = os.path.join(app.instance_path, "exports")
    if i18n.supported(app.config["LANGUAGE"]) is None:
        # Italian unless LOYALTY_LANG says otherwise: a server's LANG (often en_US) says what
        # its operators read in a shell, not what the managers of the stores read
        app.config["LANGUAGE"] = i18n.supported(os.environ.get("LOYALTY_LANG")) or i18n.DEFAULT
    _languages(app)

    app.register_blueprint(syncapi.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(shopper.bp)
    app.register_blueprint(care.bp)
    errorpages.init_app(app)
    cli.register(app)
    requestdb.init_app(app)
    return app

