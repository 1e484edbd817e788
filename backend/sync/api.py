"""The readers' sync API (docs/protocol.md section 4; docs/openapi.json describes it).

    POST /api/v1/sync/batch                       a signed batch of journal records
    GET  /api/v1/sync/rules?since=V               the rules in force
    GET  /api/v1/sync/directory?since=V&limit=N[&after=C]   a directory page
    GET  /api/v1/sync/keys?since=V                the card key epochs, wrapped for the reader

Every request carries X-Reader, X-Timestamp, X-Nonce and X-Signature. They are checked
in this order, as tests/support/syncserver.py (the reference) does, though it does not look
at the form of X-Nonce nor at leading zeros in X-Timestamp: a body over MAX_BATCH_BYTES
(batch.too_large, 413, from Content-Length before anything is read), an unknown reader
(batch.reader, 401), an X-Timestamp that is not decimal digits without a leading zero
(batch.stale, 400), an X-Nonce that is not 16 lower-case hex digits (batch.signature, 401),
the signature (batch.signature, 401: lower-case hex, compared as sent), the timestamp
window (batch.stale, 400), a nonce seen before (batch.replay, 400); then the batch itself
(backend/sync/ingest.py: batch.record, batch.status and batch.totals 400, batch.gap and batch.chain 409).
Answers are canonical JSON, signed (X-Signature = records.sign_answer over the request's
nonce, the status and the body) only when the request's signature verified: an
unverified request must not make us sign what an attacker wants a reader to believe.
Every refusal is written down (refusals; batches for a refused batch). Content-Type is
not looked at: the signature covers the bytes, and they must be canonical JSON whatever
the header calls them.

    curl -X POST http://127.0.0.1:8000/api/v1/sync/batch -H 'X-Reader: R1' ...
"""
import hmac
import os
import re
import threading
import time

from flask import Blueprint, Response, current_app, request

from loyalty.backend import checks, db as dbmod, headoffice
from loyalty.backend.sync import fastjson, ingest
from loyalty.backend.requestdb import get_db
from loyalty.protocol.errors import ProtocolError
from loyalty.protocol.batchcheck import check_status
from loyalty.protocol.records import body_digest, sign, sign_answer
from loyalty.protocol.status import http_status

bp = Blueprint("syncapi", __name__, url_prefix="/api/v1/sync")

# X-Nonce as docs/protocol.md section 4 and docs/openapi.json write it: 16 lower-case hex
# digits, what the reader sends (8 random bytes)
_NONCE = re.compile(r"^[0-9a-f]{16}$")
MAX_PAGE = 1000  # directory entries per page at most, whatever a reader asks
DEFAULT_PAGE = 100


_held = threading.local()  # this server thread's connection, when the app keeps them


def _sync_db():
    """The connection a sync request works on. With KEEP_DB_CONNECTIONS (backend/serve.py
    sets it) each server thread keeps one open: opening a connection and setting it up
    costs as much as a small batch's own SQL. Otherwise the request's (get_db)."""
    cfg = current_app.config
    if not cfg.get("KEEP_DB_CONNECTIONS"):
        return get_db()
    key = (cfg["DATABASE"], os.getpid())
    held = getattr(_held, "db", None)
    if held is None or held[0] != key:
        if held is not None and held[0][1] == os.getpid():
            held[1].conn.close()
        held = _held.db = (key, dbmod.connect(cfg["DATABASE"]))
    if held[1].conn.in_transaction:
        held[1].conn.rollback()  # never expected: whatever failed half-way is not carried over
    return held[1]


def _target():
    """The request target as the reader sent and signed it (path and query string)."""
    env = request.environ
    raw = env.get("RAW_URI") or env.get("REQUEST_URI")
    if raw:
        return raw
    qs = env.get("QUERY_STRING", "")
    return request.script_root + request.path + ("?" + qs if qs else "")


def _body(limit):
    """The request body, at most `limit` bytes; batch.too_large without reading more."""
    length = request.content_length
    if length is not None and length > limit:
        raise ProtocolError("batch.too_large", "body", "%d bytes, limit %d" % (length, limit))
    data = request.stream.read(limit + 1)
    if len(data) > limit:
        raise ProtocolError("batch.too_large", "body", "over %d bytes" % limit)
    return data


def _send(status, data, key, nonce):
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["X-Signature"] = sign_answer(key, nonce, status, body_digest(data))
    return Response(data, status=status, headers=headers)


def _query_int(name, default, lo, hi):
    text = request.args.get(name)
    if text is None:
        return default
    return checks.integer_text(text, lo, hi, name, _bad_query)


def _bad_query(field, rule):
    return ProtocolError("delta.format", field, rule)


def _guarded(endpoint, work):
    """Authenticate the request, run `work(db, reader, body, nonce, now, offset)` ->
    (status, body bytes), and answer; a ProtocolError becomes a recorded, answered refusal."""
    now = int(time.time())
    cfg = current_app.config
    db = _sync_db()
    headers = request.headers
    reader_id = headers.get("X-Reader", "")
    nonce = headers.get("X-Nonce", "")
    reader = None
    verified = False
    offset = None
    body = b""
    try:
        reader = ingest.load_reader(db, reader_id) if reader_id else None
        if request.method == "POST":
            body = _body(cfg["MAX_BATCH_BYTES"])
        if reader is None:
            raise ProtocolError("batch.reader", "X-Reader", "unknown reader %r" % reader_id[:64])
        stamp = headers.get("X-Timestamp", "")
        t = checks.digits(stamp)
        # the signature covers the TIMESTAMP as "%d" writes it: any other spelling of the
        # same second ("0042") is refused, so the header's text is what was signed
        if t is None or "%d" % t != stamp:
            raise ProtocolError("batch.stale", "X-Timestamp", "must be an integer in decimal digits, no leading zero")
        if not _NONCE.fullmatch(nonce):
            raise ProtocolError("batch.signature", "X-Nonce", "must be 16 lower-case hex digits")
        want = sign(reader["key"], request.method, _target(), t, nonce, body_digest(body))
        if not hmac.compare_digest(want.encode(), headers.get("X-Signature", "").encode("utf-8", "replace")):
            raise ProtocolError("batch.signature", "X-Signature", "does not verify")
        verified = True
        offset = now - t
        window = cfg["TIMESTAMP_WINDOW"]
        # after the signature: the stale answer carries our time, which the reader adopts
        if abs(offset) > window:
            raise ProtocolError("batch.stale", "X-Timestamp", "more than %d s from server time" % window)
        if ingest.nonce_seen(db, reader["id"], nonce):
            raise ProtocolError("batch.replay", "X-Nonce", "request already seen")
        status, data = work(db, reader, body, nonce, now, offset)
        return _send(status, data, reader["key"], nonce)
    except ProtocolError as e:
        if db.conn.in_transaction:
            db.conn.rollback()
        contact = verified and e.code not in ("batch.stale", "batch.replay")
        ans = ingest.record_refusal(
            db, reader_id, reader is not None, endpoint, e, now, remote=request.remote_addr,
            nonce=nonce if verified else None, body_bytes=len(body) or request.content_length,
            contact=contact, clock_offset=offset, status=_status_of(body) if contact else None)
        return _send(http_status(e.code), fastjson.encode(ans),
                     reader["key"] if verified else None, nonce)


def _status_of(body):
    """The reader's status from a refused batch's body, if the body is canonical JSON and
    the status passes the schema: a refused batch still says how many receipts wait on
    the reader, and since when. Anything else changes nothing."""
    try:
        batch = fastjson.decode(body)
        return check_status(batch.get("status")) if isinstance(batch, dict) else None
    except (ProtocolError, RecursionError, MemoryError):
        return None


@bp.post("/batch")
def batch():
    """A batch of journal records with the reader's status: stored once, acknowledged."""
    def work(db, reader, body, nonce, now, offset):
        cfg = current_app.config
        outcome = ingest.accept_batch(db, reader, body, nonce, now, offset, cfg["SAMPLE_EVERY"],
                                      prune_before=now - 2 * cfg["TIMESTAMP_WINDOW"], erasure_key=cfg["ERASURE_KEY"])
        return 200, fastjson.encode(outcome["answer"])
    return _guarded("batch", work)


@bp.get("/rules")
def rules():
    """The whole rules object in force: {"rules": {...}, "version": n}."""
    def work(db, reader, body, nonce, now, offset):
        _query_int("since", 0, 0, 2 ** 53)
        ingest.touch_reader(db, reader["id"], nonce, now, offset)
        version, current = headoffice.current_rules(db)
        if current is None:
            return 404, fastjson.encode({"rules": None, "version": 0})
        return 200, fastjson.encode({"rules": current, "version": version})
    return _guarded("rules", work)


@bp.get("/directory")
def directory():
    """A page of the card directory: a full load (since=0) or the changes after `since`."""
    def work(db, reader, body, nonce, now, offset):
        since = _query_int("since", 0, 0, 2 ** 63 - 1)
        limit = min(_query_int("limit", DEFAULT_PAGE, 1, 10 ** 9), MAX_PAGE)
        after = _query_int("after", 0, 0, 10 ** 19 - 1)
        ingest.touch_reader(db, reader["id"], nonce, now, offset)
        return 200, headoffice.directory_page(db, since, limit, after, key=current_app.config["ERASURE_KEY"])
    return _guarded("directory", work)


@bp.get("/keys")
def keys():
    """Every card key epoch's issuer key, wrapped in the reader's own key (docs/cards.md)."""
    def work(db, reader, body, nonce, now, offset):
        _query_int("since", 0, 0, 2 ** 53)
        ingest.touch_reader(db, reader["id"], nonce, now, offset)
        version, wrapped = headoffice.card_keys_for(db, reader["key"])
        return 200, fastjson.encode({"keys": wrapped, "version": version})
    return _guarded("keys", work)
