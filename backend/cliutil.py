"""What the operator's commands share: their error, the app's database, head office's
errors turned into a message (backend/cli.py and backend/customers/commands.py use them).

    @click.command("add-store")
    @with_appcontext
    def add_store(store_id, name, tz):
        run(headoffice.add_store, db(), store_id, name, tz)   # HeadOfficeError -> Failed
"""
import click

from loyalty.backend import db as dbmod, headoffice
from loyalty.backend.requestdb import get_db
from loyalty.i18n import _


class Failed(click.ClickException):
    """Exit status 1 with `Error: <message>` on stderr."""


def db():
    """The app's database, with a schema this code knows (else: run init-db)."""
    conn = get_db()
    try:
        dbmod.require_schema(conn)
    except dbmod.SchemaError as e:
        raise Failed(str(e))
    return conn


def hint(e):
    """What to do about a head-office error, as one sentence."""
    if isinstance(e, headoffice.RulesRefused):
        return _("the rules readers would get are invalid (%(error)s): nothing was changed", error=e)
    return str(e)


def run(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except headoffice.HeadOfficeError as e:
        raise Failed(hint(e))
