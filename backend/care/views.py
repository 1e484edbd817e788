"""Customer care's pages: the search and the customer's story, each with a JSON twin,
and the form that records a care contact.

    GET  /customers?q=rossi, /customers.json?q=...       search (backend/care/search.py)
    GET  /customers/7, /customers/7.json                  the story: customer, totals, 50 events
    GET  /customers/7?before=CURSOR (and .json)           the 50 events before CURSOR
    POST /customers/7/contacts                            a care contact (backend/care/contacts.py)

For customer care and head office (backend.auth.only_for; a store manager gets 404:
docs/privacy.md, section 5, says why). Every page that shows a customer's data writes
the views log (backend/privacy/subject.looked_at): the story once per load, a search
once for each customer it lists.
"""
import time

from flask import Blueprint, abort, g, jsonify, redirect, render_template, request, url_for

from loyalty.backend.auth import csrf_ok, only_for
from loyalty.backend.care import contacts, search as finder, story as stories
from loyalty.backend.dashboard import overview
from loyalty.backend.db import transaction
from loyalty.backend.headoffice.common import InvalidValue, NotFound
from loyalty.backend.privacy import subject
from loyalty.backend.requestdb import get_db
from loyalty.i18n import N_, _

# words the pages show from the data (statuses, purposes, channels): marked for translation
WORDS = (N_("active"), N_("closed"), N_("erased"), N_("scheme"), N_("profiling"), N_("marketing"),
         N_("phone"), N_("email"), N_("desk"), N_("web"))

bp = only_for(Blueprint("care", __name__, template_folder="templates"), "care", "head_office")


def clock():
    """Now, in epoch seconds (tests replace this to look at a fixed moment)."""
    return int(time.time())


@bp.app_template_global()
def care_time(t, tz=None):
    """An epoch second as people read it, in the customer's store's zone."""
    return overview.local_time(t, overview.zone(tz))


@bp.app_template_global()
def care_euro(cents):
    return overview.euro(cents)


def _bad(e, json_twin):
    """400 naming the field, in the page or as JSON."""
    if json_twin:
        return jsonify({"error": "bad request", "field": e.field, "detail": e.message}), 400
    abort(400, description=str(e))


# -- search -------------------------------------------------------------------------------

def _search(json_twin):
    q = request.args.get("q")
    if q is None and not json_twin:
        return render_template("care/search.html", page=None, q="", error=None)
    db = get_db()
    try:
        page = finder.find(db, q)
    except InvalidValue as e:
        if json_twin:
            return _bad(e, True)
        return render_template("care/search.html", page=None, q=q, error=str(e)), 400
    if page["results"]:
        with transaction(db):
            for c in page["results"]:
                subject.looked_at(db, g.manager["username"], c, "search", clock())
    if json_twin:
        return jsonify(page)
    return render_template("care/search.html", page=page, q=q, error=None)


@bp.route("/customers")
def search():
    return _search(False)


@bp.route("/customers.json")
def search_json():
    return _search(True)


# -- the story ----------------------------------------------------------------------------

def _story(customer_id, what):
    """The page's data, its view logged (in one transaction with the reading)."""
    db = get_db()
    before = request.args.get("before")
    with transaction(db):
        try:
            page = stories.story(db, customer_id, before=before)
        except NotFound:
            abort(404, description=_("No customer %(id)d.", id=customer_id))
        subject.looked_at(db, g.manager["username"], subject.find(db, customer_id),
                          what + (" (older events)" if before else ""), clock())
    return page


@bp.route("/customers/<int:customer_id>")
def customer(customer_id):
    try:
        page = _story(customer_id, "customer page")
    except InvalidValue as e:
        return _bad(e, False)
    return render_template("care/customer.html", page=page, error=None, form={},
                           channels=contacts.CHANNELS, note_max=contacts.NOTE_MAX)


@bp.route("/customers/<int:customer_id>.json")
def customer_json(customer_id):
    try:
        return jsonify(_story(customer_id, "customer page json"))
    except InvalidValue as e:
        return _bad(e, True)


@bp.post("/customers/<int:customer_id>/contacts")
def add_contact(customer_id):
    """A care contact; then the story, the new contact at the top. Bad input: the page
    again, the error naming the field, what was typed kept, nothing stored."""
    if not csrf_ok():
        abort(400, description=_("The form expired: please try again."))
    db = get_db()
    form = {k: request.form.get(k, "") for k in ("channel", "reason", "note", "outcome")}
    try:
        contacts.add(db, customer_id, g.manager["username"], form, clock())
    except NotFound:
        abort(404, description=_("No customer %(id)d.", id=customer_id))
    except InvalidValue as e:
        page = _story(customer_id, "customer page")
        return render_template("care/customer.html", page=page, error=e, form=form,
                               channels=contacts.CHANNELS, note_max=contacts.NOTE_MAX), 400
    return redirect(url_for("care.customer", customer_id=customer_id) + "#events", code=303)
