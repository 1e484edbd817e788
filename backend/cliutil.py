"""What the operator's commands share (backend/cli.py and the commands of other areas,
e.g. backend/privacy/commands.py): the failure that exits with status 1, the database
with a schema this code knows, and the call that turns a head-office error (it names the
field at fault) into that failure.

    version = run(headoffice.set_card, database(), card, status=status)
"""
import click

from loyalty.backend import db as dbmod, headoffice
from loyalty.backend.requestdb import get_db
from loyalty.i18n import _


class Failed(click.ClickException):
    """Exit status 1 with `Error: <message>` on stderr."""


def database():
    """The app's database, with a schema this code knows (else: run init-db)."""
    db = get_db()
    try:
        dbmod.require_schema(db)
    except dbmod.SchemaError as e:
        raise Failed(str(e))
    return db


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
