"""The request's database connection, the Flask way (flaskr's db.py): `get_db` opens it
on first use in a request or command, `close_db` closes it at teardown, `init_app` wires
that into an app.

Views and commands call `get_db()`; domain code (backend/db.py and the modules over it)
takes the connection as an argument and never loads Flask. The schema and its
migrations are backend/db.py's.

    init_app(app)           # in the factory
    db = get_db()           # in a view: a sqlite_utils.Database on app.config["DATABASE"]
"""
from flask import current_app, g

from loyalty.backend import db as dbmod


def get_db():
    """The request's database connection (opened on first use, closed at teardown)."""
    if "db" not in g:
        g.db = dbmod.connect(current_app.config["DATABASE"])
    return g.db


def close_db(_exc=None):
    db = g.pop("db", None)
    if db is not None:
        db.conn.close()


def init_app(app):
    """Close the request's connection when the app context ends."""
    app.teardown_appcontext(close_db)
