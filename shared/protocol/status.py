"""The HTTP status of each refusal of the sync protocol (docs/protocol.md, docs/openapi.json),
and the limits a server holds readers to.

One source for both ends that answer readers: the backend (backend/sync/ingest.py) and the
reference server the firmware's fault tests talk to (tests/support/syncserver.py). The
reader does not need it (it reads the refusal's code), so it does not ship.

    >>> http_status("batch.signature"), http_status("batch.too_large")
    (401, 413)
    >>> http_status("batch.gap"), http_status("batch.totals")
    (409, 400)
"""

# a request body over this is refused before it is read (docs/protocol.md)
MAX_BODY = 256 * 1024
# seconds a request's X-Timestamp may differ from the server's clock
TIMESTAMP_WINDOW = 300

# who sent it is not known or not proved: the reader's key or id is wrong
UNAUTHORIZED = 401
# the body is over the limit, refused before it is read
TOO_LARGE = 413
# the batch does not follow what we stored: the reader must send from the ack on
CONFLICT = 409
# every other refusal: the request itself breaks a rule
BAD_REQUEST = 400

STATUS = {
    "batch.reader": UNAUTHORIZED,
    "batch.signature": UNAUTHORIZED,
    "batch.too_large": TOO_LARGE,
    "batch.gap": CONFLICT,
    "batch.chain": CONFLICT,
}


def http_status(code):
    """The HTTP status that answers a refusal with error code `code`."""
    return STATUS.get(code, BAD_REQUEST)
