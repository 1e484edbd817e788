"""The managers' dashboard: the stores overview and the reader pages, each with a JSON twin.

    GET /                      -> redirect to the manager's first page (backend.auth.index)
    GET /stores, /stores.json  every store the manager may see: readers' states, today's totals
    GET /readers/R1, /readers/R1.json   one reader: sync state, batches, refusals, mismatches,
                               records in quarantine
    POST /readers/R1/quarantine/7   a person's judgement of record 7 in quarantine

Head office and store managers only (backend.auth.only_for: customer care gets 404). A
store's manager sees only that store: another store's reader is 404, as one that does
not exist. The data comes from backend.dashboard.overview (plain dicts, no Flask); the JSON
twin is that dict as it is, the HTML page renders it. Pages refresh themselves every
REFRESH_SECONDS: a small script swaps in the fresh page, a <noscript> meta refresh does
the same without JavaScript.
"""
import json
import time

from flask import Blueprint, abort, current_app, g, jsonify, redirect, render_template, request, url_for

from loyalty.i18n import _
from loyalty.backend.dashboard import overview, readerstate
from loyalty.backend.requestdb import get_db
from loyalty.backend.customers.fields import note_text
from loyalty.backend.auth import csrf_ok, login_required, may_see_store, only_for
from loyalty.backend.db import transaction
from loyalty.backend.headoffice.common import InvalidValue
from loyalty.backend.privacy import subject

NOTE_MAX = 500  # characters of a judgement's note

bp = only_for(Blueprint("dashboard", __name__, template_folder="templates"), "head_office", "store_manager")


def clock():
    """Now, in epoch seconds (tests replace this to look at a fixed moment)."""
    return int(time.time())


@bp.app_context_processor
def _template_globals():
    return {"state_colours": readerstate.COLOURS, "state_words": readerstate.words(),
            "size": overview.size, "judgements": overview.JUDGEMENTS}


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
    _log_views(data)
    return data


def _may_see_reader(reader_id):
    """404 for a reader this manager may not see, as for one that does not exist (without
    building its whole page)."""
    row = get_db().execute("SELECT store_id FROM readers WHERE id = ?", [reader_id]).fetchone()
    if row is None or not may_see_store(g.manager, row[0]):
        abort(404, description=_("No reader %(reader)s in your stores.", reader=reader_id))


def _log_views(data):
    """The page shows the card numbers of flagged receipts and of records in quarantine:
    a view of their customers' data, logged (docs/privacy.md, "Who looked")."""
    cards = [m.get("card") for m in data["mismatches"]]
    for q in data["quarantine"]:
        try:
            cards.append(json.loads(q["record"] or "{}").get("card"))
        except (ValueError, AttributeError):
            pass  # a record that is not an object names no card
    if not any(cards):
        return  # nobody's data on the page: no write (the page refreshes itself every few seconds)
    db = get_db()
    with transaction(db):
        subject.looked_at_cards(db, g.manager["username"], cards, "reader %s" % data["reader"]["id"], clock())


@bp.route("/readers/<reader_id>")
@login_required
def reader(reader_id):
    return render_template("dashboard/reader.html", page=_reader_data(reader_id),
                           refresh=current_app.config["REFRESH_SECONDS"])


@bp.route("/readers/<reader_id>.json")
@login_required
def reader_json(reader_id):
    return jsonify(_reader_data(reader_id))



@bp.post("/readers/<reader_id>/quarantine/<int:seq>")
@login_required
def judge_quarantined(reader_id, seq):
    """A person's judgement of a record in quarantine: which of overview.JUDGEMENTS, and a
    note. The record stays out of the figures either way; the judgement says it was seen."""
    _may_see_reader(reader_id)
    if not csrf_ok():
        abort(400, description=_("The form expired: please try again."))
    judgement = request.form.get("judgement", "")
    if judgement not in overview.JUDGEMENTS:
        abort(400, description=str(InvalidValue("judgement", _("must be one of %(choices)s",
                                                                choices=", ".join(overview.JUDGEMENTS)))))
    try:
        note = note_text(request.form.get("note"), NOTE_MAX, "note")
    except InvalidValue as e:
        abort(400, description=str(e))
    db = get_db()
    with transaction(db):
        cur = db.execute("UPDATE quarantine SET judged_t=?, judged_by=?, judgement=?, note=? "
                         "WHERE reader_id=? AND seq=? AND acked_t IS NOT NULL",
                         [clock(), g.manager["username"], judgement, note, reader_id, seq])
    if cur.rowcount != 1:
        abort(404, description=_("No record %(seq)d of reader %(reader)s in quarantine.", seq=seq, reader=reader_id))
    return redirect(url_for("dashboard.reader", reader_id=reader_id) + "#quarantine-h", code=303)
