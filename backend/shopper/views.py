"""The shopper's own page: sign in with the card and a one-time code by e-mail, see what the
scheme holds on you, download it, give or withdraw profiling and marketing consent.

    GET  /me/              what the scheme holds (the access export's sections), the consents
    GET  /me/signin        the card form; POST: a code is made and sent (codes.issue, mail)
    GET  /me/code          the code form; POST: signed in for SHOPPER_SESSION_MINUTES
    POST /me/download      format=json|csv: the export as customer-export writes it (a trail row)
    POST /me/consent       purpose=profiling|marketing, choice=give|withdraw, notice=the version shown
    POST /me/signout

The sign-in answers the same whether or not the card exists, has a customer, has an
e-mail address or has had its codes for the hour, and the e-mail goes on a thread of its
own (shopper/mail.py). Its time is not the same: a real card's code is committed to the
database (a disk sync, milliseconds) before the answer, an unknown card's is not. The
limit per address slows anybody timing it to find enrolled cards; issuing the code on
the mail thread too would close the gap. A code is never logged, never in a URL,
kept only as a hash (shopper/codes.py). The shopper's session is its own key in the
cookie (`shopper`), apart from a manager's (`manager`): signing out ends only it.

The shopper is not staff: looking at their own data writes no `views` row; a download and
a consent change write a trail row with the actor "self" (consents.py writes its own).
Languages as before a manager's login (auth.choose_language): the Italiano / English
buttons (POST /language), else the browser's Accept-Language, else LANGUAGE.
"""
import functools
import time

from flask import (Blueprint, Response, current_app, flash, redirect, render_template, request, session,
                   url_for)

from loyalty import i18n
from loyalty.backend import errorpages
from loyalty.backend.auth import Throttle, csrf_ok
from loyalty.backend.customers import consents, fields, notices
from loyalty.backend.db import transaction
from loyalty.backend.headoffice.common import HeadOfficeError, InvalidValue
from loyalty.backend.privacy import access, subject, trail
from loyalty.backend.requestdb import get_db
from loyalty.backend.shopper import codes, mail
from loyalty.i18n import _

bp = Blueprint("shopper", __name__, url_prefix="/me")

ACTOR = "self"  # who the trail says acted: the customer, on this page
PURPOSES = ("profiling", "marketing")  # joining or leaving the scheme itself is done at the desk
CHOICES = ("give", "withdraw")
FORMATS = ("json", "csv")


def clock():
    """Now, in epoch seconds (tests replace this to move time)."""
    return int(time.time())


def _key():
    secret = current_app.config["SECRET_KEY"]
    return secret if isinstance(secret, bytes) else secret.encode()


class AddressLimit(Throttle):
    """Card forms sent and wrong codes typed per address: 20 in 5 minutes, then a pause.
    Each customer's codes have their own limits (codes.Limits); this stops one address
    from trying many cards."""

    MAX_FAILURES = 20


def _address_limit():
    return current_app.extensions.setdefault("loyalty.shopper_limit", AddressLimit())


# -- the shopper's session ------------------------------------------------------------------

def _signed_in():
    """The signed-in shopper's customer row (subject.find), or None (and the session ended)."""
    kept = session.get("shopper")
    if isinstance(kept, dict) and isinstance(kept.get("id"), int) and kept.get("until", 0) > clock():
        row = get_db().execute("SELECT status FROM customers WHERE id = ?", [kept["id"]]).fetchone()
        if row is not None and row[0] == "active":
            return subject.find(get_db(), kept["id"])
    session.pop("shopper", None)
    return None


def shopper_required(view):
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        customer = _signed_in()
        if customer is None:
            return redirect(url_for("shopper.signin"))
        return view(customer, *args, **kwargs)
    return wrapped


def _expired_form(template, **values):
    return render_template(template, error=_("The form expired: reload the page and try again."),
                           error_field="csrf_token", **values), 400


def _refused(template, error, status=400, **values):
    """The form again, with the message naming the field at fault."""
    return render_template(template, error=str(error), error_field=getattr(error, "field", None), **values), status


# -- signing in -------------------------------------------------------------------------------

@bp.route("/signin", methods=["GET", "POST"])
def signin():
    if request.method == "GET":
        return render_template("shopper/signin.html", error=None)
    if not csrf_ok():
        return _expired_form("shopper/signin.html")
    typed = request.form.get("card", "")
    try:
        number = codes.card(typed)
    except HeadOfficeError as e:
        return _refused("shopper/signin.html", e, card=typed[:40])
    keys, now = ("addr:%s" % request.remote_addr,), time.monotonic()
    if _address_limit().blocked(keys, now):
        return render_template("shopper/signin.html", error=_("Too many attempts: wait five minutes, then try "
                                                             "again."), error_field=None), 429
    _address_limit().failed(keys, now)
    cfg = current_app.config
    lim = codes.limits(cfg)
    issued = codes.issue(get_db(), number, _key(), clock(), lim)
    if issued.kind == "email":
        message = mail.code_message(cfg["MAIL_FROM"], issued.contact, issued.code, lim.minutes)
        mail.send_later(message, cfg["SMTP_HOST"], cfg["SMTP_PORT"], current_app.logger, issued.pseudonym)
    # the same answer for every kind: whether the card is known is not for this page to say
    session["shopper_card"] = number
    return redirect(url_for("shopper.code"))


@bp.route("/code", methods=["GET", "POST"])
def code():
    number = session.get("shopper_card")
    if not number:
        return redirect(url_for("shopper.signin"))
    lim = codes.limits(current_app.config)
    values = {"card_end": number[-4:], "limits": lim}
    if request.method == "GET":
        return render_template("shopper/code.html", error=None, **values)
    if not csrf_ok():
        return _expired_form("shopper/code.html", **values)
    try:
        typed = codes.code(request.form.get("code", ""))
    except HeadOfficeError as e:
        return _refused("shopper/code.html", e, **values)
    keys, now = ("addr:%s" % request.remote_addr,), time.monotonic()
    if _address_limit().blocked(keys, now):
        return render_template("shopper/code.html", error=_("Too many attempts: wait five minutes, then try "
                                                           "again."), error_field=None, **values), 429
    customer_id = codes.check(get_db(), number, typed, _key(), clock(), lim)
    if customer_id is None:
        _address_limit().failed(keys, now)
        return render_template("shopper/code.html", error=_("Wrong or expired code: check the e-mail's code, or ask "
                                                           "for a new one."), error_field="code", **values), 401
    session.pop("shopper_card", None)
    session["shopper"] = {"id": customer_id,
                          "until": clock() + 60 * current_app.config["SHOPPER_SESSION_MINUTES"]}
    return redirect(url_for("shopper.page"))


@bp.route("/signout", methods=["POST"])
def signout():
    if not csrf_ok():
        return errorpages.page(400, _("The form expired: reload the page and try again."))
    session.pop("shopper", None)
    session.pop("shopper_card", None)
    flash(_("You are signed out."))
    return redirect(url_for("shopper.signin"))


# -- the page -----------------------------------------------------------------------------------

def _notice(db):
    """(version, text in the shopper's language or else Italian) of the current privacy notice, or (None, None)."""
    version = notices.current(db)
    if version is None:
        return None, None
    texts = notices.texts(db, version)
    return version, texts.get(i18n.language()) or texts["it"]


def _page(customer, error=None, error_field=None, status=200):
    db = get_db()
    version, text = _notice(db)
    return render_template("shopper/page.html", customer=customer, data=access.holdings(db, customer),
                           sections=access.SECTIONS, in_force=consents.in_force(db, customer["id"]),
                           purposes=PURPOSES, notice_version=version, notice_text=text, error=error,
                           error_field=error_field), status


@bp.route("/")
@shopper_required
def page(customer):
    return _page(customer)


@bp.route("/download", methods=["POST"])
@shopper_required
def download(customer):
    if not csrf_ok():
        return _page(customer, _("The form expired: reload the page and try again."), "csrf_token", 400)
    fmt = request.form.get("format", "")
    if fmt not in FORMATS:
        return _page(customer, str(InvalidValue("format", _("must be one of %(choices)s", choices=", ".join(FORMATS)))),
                     "format", 400)
    db = get_db()
    with transaction(db):
        # the trail row first, so that the file lists its own download
        trail.note(db, ACTOR, "access", customer["pseudonym"], detail="web " + fmt, now=clock())
        data = access.holdings(db, customer)
    if fmt == "json":
        body, mimetype = access.to_json(data).encode(), "application/json"
    else:
        # utf-8-sig, as customer-export writes it: a spreadsheet then reads the accents right
        body, mimetype = access.to_csv(data).encode("utf-8-sig"), "text/csv"
    name = "%s.%s" % (customer["pseudonym"], fmt)
    return Response(body, mimetype=mimetype, headers={"Content-Disposition": 'attachment; filename="%s"' % name,
                                                      "Cache-Control": "no-store"})


@bp.route("/consent", methods=["POST"])
@shopper_required
def consent(customer):
    if not csrf_ok():
        return _page(customer, _("The form expired: reload the page and try again."), "csrf_token", 400)
    form = request.form
    db = get_db()
    try:
        purpose = form.get("purpose", "")
        if purpose not in PURPOSES:
            raise InvalidValue("purpose", _("must be one of %(choices)s", choices=", ".join(PURPOSES)))
        choice = form.get("choice", "")
        if choice not in CHOICES:
            raise InvalidValue("choice", _("must be one of %(choices)s", choices=", ".join(CHOICES)))
        shown = fields.notice(db, form.get("notice", ""))
        if shown != notices.current(db):
            return _page(customer, _("The privacy notice changed while you were reading it: read the new one "
                                     "below and choose again."), "notice", 409)
        if choice == "give":
            consents.give(db, customer["pseudonym"], purpose, "web", ACTOR, shown, clock())
        else:
            consents.withdraw(db, customer["pseudonym"], purpose, "web", ACTOR, shown, clock(),
                              return_window_days=current_app.config["RETURN_WINDOW_DAYS"])
    except HeadOfficeError as e:
        return _page(customer, str(e), e.field, 400)
    flash(_("Your choice is recorded."))
    return redirect(url_for("shopper.page"))
