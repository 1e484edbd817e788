"""The error pages, in the request's language (the staff's, or the shopper's under
/me/): an HTML page, or JSON for a JSON twin (a path ending in .json). The sync API's
paths keep werkzeug's own answers: readers read status codes, not pages.

A view that wants its own sentence gives it as the description: abort(404, description=...).
"""
from flask import jsonify, render_template, request
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from loyalty.i18n import N_, _

# what each status is called on the page, and what to do when no view said more
TITLES = {
    400: (N_("Bad request"), N_("The request could not be understood: reload the page and try again.")),
    401: (N_("Login required"), N_("Log in to see this page.")),
    403: (N_("Forbidden"), N_("Your account may not see this page.")),
    404: (N_("Not found"), N_("There is no such page.")),
    405: (N_("Method not allowed"), N_("This page cannot be used that way.")),
    413: (N_("Too large"), N_("What was sent is too large.")),
    415: (N_("Unsupported form"), N_("What was sent is not in a form this page takes.")),
    429: (N_("Too many requests"), N_("Too many requests: wait a few minutes, then try again.")),
    503: (N_("Unavailable"), N_("The server cannot answer now: try again in a few minutes.")),
    500: (N_("Internal error"), N_("Something went wrong on the server: try again; if it happens again, "
                                     "tell head office the time it happened.")),
}


def page(status, message=None, headers=()):
    """The error page for `status`, with `message` (already translated) or the status's own,
    and `headers` (werkzeug's: Allow on a 405, Retry-After)."""
    title, default = TITLES.get(status, TITLES[400] if status < 500 else TITLES[500])
    text = message or _(default)
    if request.path.endswith(".json"):
        # "error" is the status's name for programs ("not found"); title and detail for people
        return jsonify({"error": HTTP_STATUS_CODES.get(status, "error").lower(), "title": _(title),
                        "detail": text}), status, headers
    # the shopper's pages have their own frame: no link into the staff's pages
    template = "shopper/error.html" if request.blueprint == "shopper" or request.path.startswith("/me/") \
        else "error.html"
    return render_template(template, status=status, title=_(title), message=text), status, headers


def _handle(e):
    if request.path.startswith("/api/"):
        return e
    # a view's own description (abort(404, description=...)) is already in the language;
    # werkzeug's default descriptions are English, so they give way to ours
    own = e.description if e.description != type(e).description else None
    headers = [(k, v) for k, v in e.get_headers() if k.lower() not in ("content-type", "content-length")]
    return page(e.code, own, headers)


def init_app(app):
    app.register_error_handler(HTTPException, _handle)
