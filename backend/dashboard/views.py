"""The managers' dashboard: the stores overview and the reader pages, each with a JSON twin.

    GET /                      -> redirect to /stores
    GET /stores, /stores.json  every store the manager may see: readers' states, today's totals
    GET /readers/R1, /readers/R1.json   one reader: sync state, batches, refusals, mismatches

Login required (backend.auth). A store's manager sees only that store: another store's
reader is 403. The data comes from backend.dashboard.overview (plain dicts, no Flask); the JSON
twin is that dict as it is, the HTML page renders it. Pages refresh themselves every
REFRESH_SECONDS: a small script swaps in the fresh page, a <noscript> meta refresh does
the same without JavaScript.
"""
import time

from flask import Blueprint, abort, current_app, g, jsonify, redirect, render_template, url_for

from loyalty.i18n import _
from loyalty.backend.dashboard import overview, readerstate
from loyalty.backend.requestdb import get_db
from loyalty.backend.auth import login_required, may_see_store

bp = Blueprint("dashboard", __name__, template_folder="templates")


def clock():
    """Now, in epoch seconds (tests replace this to look at a fixed moment)."""
    return int(time.time())


@bp.app_context_processor
def _template_globals():
    return {"state_colours": readerstate.COLOURS, "state_words": readerstate.words(),
            "size": overview.size}


@bp.route("/")
def index():
    return redirect(url_for("dashboard.stores"))


def _stores_data():
    return overview.stores_overview(get_db(), clock(), current_app.config,
                                    store_id=g.manager["store_id"])


@bp.route("/stores")
@login_required
def stores():
    return render_template("dashboard/stores.html", page=_stores_data(),
                           refresh=current_app.config["REFRESH_SECONDS"])


@bp.route("/stores.json")
@login_required
def stores_json():
    return jsonify(_stores_data())


def _reader_data(reader_id):
    data = overview.reader_detail(get_db(), reader_id, clock(), current_app.config)
    # another store's reader is as unknown as one that does not exist: a store manager
    # cannot probe which reader ids the other stores have
    if data is None or not may_see_store(g.manager, data["store"]["id"]):
        abort(404, description=_("No reader %(reader)s in your stores.", reader=reader_id))
    return data


@bp.route("/readers/<reader_id>")
@login_required
def reader(reader_id):
    return render_template("dashboard/reader.html", page=_reader_data(reader_id),
                           refresh=current_app.config["REFRESH_SECONDS"])


@bp.route("/readers/<reader_id>.json")
@login_required
def reader_json(reader_id):
    return jsonify(_reader_data(reader_id))

