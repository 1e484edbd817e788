"""`loyalty-admin`: the operator's commands (backend/cli.py) as a program of their own.

The same commands as `flask --app loyalty.backend.app COMMAND`, but every word of it in the
operator's language, its own --help included (flask's group help and options are Flask's
English), and without Flask's development commands (run, shell, routes):

    loyalty-admin --help
    loyalty-admin add-store S1 "Milano Centro" --tz Europe/Rome
"""
import click
from flask.cli import ScriptInfo

from loyalty import i18n
from loyalty.backend.app import create_app
from loyalty.backend.cli import COMMANDS
from loyalty.i18n import lazy


def main(argv=None):
    i18n.for_commands()  # first: click's own words ("Usage:", "Options") come in it too
    group = click.Group("loyalty-admin", commands=COMMANDS,
                        help=lazy("The backend's commands for operators and head office; each has --help. "
                                  "LOYALTY_INSTANCE names the instance folder (database, secret, config.py)."))
    return group.main(argv, obj=ScriptInfo(create_app=create_app), prog_name="loyalty-admin")
