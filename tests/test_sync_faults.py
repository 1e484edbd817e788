"""The reader against a broken or hostile backend, end to end.

The real firmware (sim/simboard.SimReader: the MicroPython unix port, default heap)
syncs over real HTTP on loopback with the reference sync server, whose answers we spoil
on purpose: one fault for one reader and one kind of request (the batch, the rules, the
directory pages) at a time. For each fault the shop sells a few receipts first, then,
once the reader has read the spoiled answer and hung up, the test checks that:

  * the reader still answers the till, and no task died ("restarting" is not in its log);
  * its status names the fault with the expected error code (`sync_error`);
  * nothing was deleted on a bad answer: every receipt sold is still pending, and the
    reader's flash is byte for byte what it was (batch faults), or its rules / card
    directory are the ones it had (rules and directory faults);
  * every record the reader has released is stored at the server.

Then the server is honest again and the reader must catch up by itself: pending 0, the
server's rules and directory versions, and at the server exactly the receipts sold, each
under the seq the till was told.

A spoiled answer is signed like an honest one (X-Signature over the request's nonce,
the status and the bytes sent: a backend with a bug, not an impostor), so the reader's
checks behind the signature are what is tested; the forgeries (no signature, another
key, another request's nonce, a signature of other bytes or another status, an old
answer replayed) must all stop at the signature: sync.signature, nothing released or
loaded.

Catching up takes the reader's backoff (a random 0-4 s after one failure), so a few
readers take turns: while one recovers from its fault the next reader gets the next
fault. `ShopFloor.take()` hands out a reader only after it caught up from its previous
fault, and checks that catch-up (naming that fault if it went wrong); the last test
checks every reader's.
"""
import json
import socket
import time
from collections import namedtuple
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from loyalty.testing import shop
from loyalty.protocol.canonical import encode
from loyalty.protocol.records import body_digest, sign_answer
from loyalty.testing.chain import idle
from loyalty.sim.simboard import SimReader, wait_for
from loyalty.testing.syncserver import SyncServer

READERS = 5
SYNC_INTERVAL = 0.5  # seconds between a reader's sync rounds: each fault waits for one
SALES = 2  # receipts sold while each fault is in place
ANSWER_LIMIT = 16384  # protocol.syncmsg.MAX_ANSWER: a batch acknowledgement, rules
PAGE_LIMIT = 4096  # firmware/syncclient.PAGE_BYTES: one directory page






# -- the server ------------------------------------------------------------------------

class FaultyServer(SyncServer):
    """The reference server; a reader's requests of one kind can be given a fault instead.

    A fault gets the handler, the honest answer (status code and bytes: the server did
    its work, so a spoiled batch answer is an acknowledgement lost on the way, and the
    retry must store nothing twice) and the context the test gave, and writes what it
    likes on the socket. The server then closes its side and waits until the reader hangs
    up: the reader closes the connection only after it has read the whole answer, so from
    then on what the reader did with the answer is visible in its status.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.faults = {}  # (reader, kind) -> (fault, ctx); kind: batch, rules, directory
        self.hits = []  # (reader, kind, last seq in the batch or 0): faults the reader read
        self.posts = {}  # reader -> batches received (to see how often a reader comes)
        self.answers = {}  # (reader, kind) -> (status, body, signature) of the last honest answer
        self.httpd.RequestHandlerClass = _spoiling(self, self.httpd.RequestHandlerClass)

    def spoil(self, reader, kind, fault, ctx):
        with self.lock:
            self.faults[(reader, kind)] = (fault, ctx)

    def mend(self, reader):
        with self.lock:
            for key in [k for k in self.faults if k[0] == reader]:
                del self.faults[key]

    def hit_after(self, n, reader, kind, last_seq=0):
        """Has `reader` read a spoiled `kind` answer (to a batch holding `last_seq`) since hit n?"""
        with self.lock:
            return any(h[0] == reader and h[1] == kind and h[2] >= last_seq for h in self.hits[n:])

    def hit_count(self):
        with self.lock:
            return len(self.hits)


def _spoiling(server, Base):
    class Handler(Base):
        fault = None
        body = b""

        def _pick(self):
            kind = urlsplit(self.path).path.rsplit("/", 1)[-1]  # batch, rules, directory
            self.kind = kind
            self.reader_id = self.headers.get("X-Reader", "")
            with server.lock:
                self.fault = server.faults.get((self.reader_id, kind))
                if kind == "batch":
                    server.posts[self.reader_id] = server.posts.get(self.reader_id, 0) + 1

        def do_POST(self):
            self._pick()
            super().do_POST()

        def do_GET(self):
            self._pick()
            super().do_GET()

        def _body(self):
            self.body = super()._body()
            return self.body

        def batch_last(self):
            """The last seq in the batch this answers (0: none, or not a batch)."""
            try:
                records = json.loads(self.body)["records"]
            except ValueError:
                return 0
            return records[-1]["seq"] if records else 0

        def signature(self, status, data, nonce=None):
            """The server's X-Signature of `data` sent with `status` in answer to this request
            (or to the request with `nonce`)."""
            return server.answer_signature(self.headers.get("X-Reader", ""),
                                           nonce or self.headers.get("X-Nonce", ""), status, data)

        def _send(self, code, obj, signed=False):
            data = obj if isinstance(obj, bytes) else encode(obj)
            if self.fault is None:
                with server.lock:  # kept for a replay later
                    server.answers[(self.headers.get("X-Reader", ""), self.kind)] = (
                        code, data, self.signature(code, data))
                return super()._send(code, obj, signed)
            fault, ctx = self.fault
            spoiled = True
            try:
                spoiled = fault(self, code, data, ctx) is not False
                self.connection.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # the reader hung up before the whole fault was written: its right
            self.close_connection = True
            self.wait_hang_up()
            if spoiled:
                with server.lock:
                    server.hits.append((self.reader_id, self.kind, self.batch_last()))

        def wait_hang_up(self, timeout=15):
            self.connection.settimeout(timeout)
            try:
                while self.connection.recv(4096):
                    pass
            except OSError:
                pass

    return Handler


# -- ways to answer --------------------------------------------------------------------

def send(h, body, status=b"HTTP/1.1 200 OK", length=True, pieces=1, sig=True, honest=b""):
    """An HTTP answer written by hand; length: True (the right Content-Length), None (no
    Content-Length: the body ends when the server closes) or the header's bytes; sig:
    True (the server's signature of this status and body for this request), None (no
    X-Signature) or sig(handler, status, body, honest body) giving its text."""
    head = status + b"\r\nContent-Type: application/json\r\nConnection: close\r\n"
    code = int(status.split()[1])
    signature = h.signature(code, body) if sig is True else None if sig is None else sig(h, code, body, honest)
    if signature is not None:
        head += b"X-Signature: " + signature.encode() + b"\r\n"
    if length is True:
        head += b"Content-Length: %d\r\n" % len(body)
    elif length is not None:
        head += b"Content-Length: " + length + b"\r\n"
    h.wfile.write(head + b"\r\n")
    step = -(-len(body) // pieces) or 1
    for i in range(0, len(body), step):
        if i:
            time.sleep(0.03)  # the answer's shape, not a wait: separate TCP segments, read on to the end
        h.wfile.write(body[i:i + step])


def raw(data):
    return lambda h, code, honest, ctx: h.wfile.write(data)


def body(make, status=b"HTTP/1.1 200 OK", length=True, pieces=1, sig=True):
    """Answer with make(honest answer bytes, ctx, handler) as the body."""
    return lambda h, code, honest, ctx: send(h, make(honest, ctx, h), status, length, pieces, sig, honest)


def honest(b, c, h):
    return b


# -- forged signatures: what somebody without the reader's key can send ---------------

OTHER_KEY = bytes(range(32))


def key_of_another(h, status, data, honest):
    return sign_answer(OTHER_KEY, h.headers["X-Nonce"], status, body_digest(data))


def for_another_nonce(h, status, data, honest):
    """The server's own signature of these bytes, made for another request."""
    other = "%016x" % (int(h.headers["X-Nonce"], 16) ^ 1)
    return h.signature(status, data, other)


def of_the_honest_body(h, status, data, honest):
    """A genuine signature, of the answer the server gave: the body sent is another."""
    return h.signature(status, honest)


def for_status(other):
    """A genuine signature of these bytes, but for another HTTP status than the one sent."""
    return lambda h, status, data, honest: h.signature(other, data)


def garbage_signature(h, status, data, honest):
    return "z" * 64


def replayed(h, code, honest, ctx):
    """The last honest answer of this kind to this reader, byte for byte with its signature."""
    with ctx["server"].lock:
        status, data, signature = ctx["server"].answers[(h.reader_id, h.kind)]
    send(h, data, b"HTTP/1.1 %d Old" % status, sig=lambda *a: signature)


def edit(change):
    """The honest JSON answer with `change(obj, ctx, handler)` applied, canonical again."""
    def make(honest, ctx, h):
        obj = json.loads(honest)
        change(obj, ctx, h)
        return encode(obj)
    return make


def edit_loose(change):
    """As edit, but written by json.dumps: for values canonical JSON cannot hold (floats)."""
    def make(honest, ctx, h):
        obj = json.loads(honest)
        change(obj, ctx, h)
        return json.dumps(obj).encode()
    return make


def setting(key, value):
    def change(obj, ctx, h):
        obj[key] = value(ctx, h) if callable(value) else value
    return change


def dropping(key):
    return lambda obj, ctx, h: obj.pop(key)


def no_answer(h, code, honest, ctx):
    h.wait_hang_up()  # read the request, say nothing, until the reader gives up


def padded(n):
    """Valid JSON of n bytes: only its size is wrong."""
    return b'{"pad":"' + b"x" * (n - 10) + b'"}'


def acking(ack):
    return setting("ack", ack)


def refusing(code, field):
    """A refusal that stores nothing new: the ack stays where the reader is."""
    def change(obj, ctx, h):
        obj["ack"] = ctx["acked"]
        obj["refused"] = {"code": code, "field": field, "detail": "refused by the test"}
    return change


def entries(change):
    """The honest directory page with its entries changed."""
    def c(obj, ctx, h):
        obj["entries"] = change(obj["entries"])
    return c


def entry_field(i, value):
    def change(es):
        es[0][i] = value
        return es
    return entries(change)


def second_page_garbled(h, code, honest, ctx):
    """The first page from the reader's version is honest and says more follow; the next is junk."""
    since = int(parse_qs(urlsplit(h.path).query)["since"][0])
    if since == ctx["directory"]:
        send(h, ctx["server"].directory_page(since, 1))
        return False  # an honest answer: not a hit
    send(h, honest[:len(honest) // 2])


def forged_tier(o, c, h):
    o["rules"]["tiers"][-1]["bp"] = 10000  # everything free for the top tier


def rules_of_version(v):
    def change(obj, ctx, h):
        obj["version"] = obj["rules"]["version"] = v(ctx)
    return change


# name (the test id); kind of request spoiled; the error code the reader must show; the
# answer; directory versions the reader may legitimately gain on the way (good pages)
Fault = namedtuple("Fault", "name kind code answer advance", defaults=(0,))


GARBAGE = b"\x8f\x00\xff\xfe<<garbage>>\x07\r\n"

FAULTS = [
    # the acknowledgement of a batch
    Fault("truncated", "batch", "sync.response", body(lambda b, c, h: b[:len(b) // 2])),
    Fault("garbage", "batch", "sync.response", body(lambda b, c, h: GARBAGE)),
    Fault("not_an_object", "batch", "sync.response", body(lambda b, c, h: b"[17,3,5]")),
    Fault("over_limit", "batch", "sync.too_long", body(lambda b, c, h: padded(ANSWER_LIMIT + 1))),
    Fault("over_limit_no_length", "batch", "sync.too_long",
          body(lambda b, c, h: padded(ANSWER_LIMIT + 600), length=None, pieces=5)),
    Fault("length_over_limit", "batch", "sync.too_long", body(lambda b, c, h: b, length=b"20000")),
    Fault("ack_missing", "batch", "sync.response", body(edit(dropping("ack")))),
    Fault("ack_text", "batch", "sync.response", body(edit(acking(lambda c, h: str(c["acked"]))))),
    Fault("ack_bool", "batch", "sync.response", body(edit(acking(True)))),
    Fault("ack_fraction", "batch", "sync.response", body(edit_loose(acking(lambda c, h: c["acked"] + 0.5)))),
    Fault("ack_beyond_last_record", "batch", "sync.response",
          body(edit(acking(lambda c, h: (h.batch_last() or c["acked"]) + 1)))),
    Fault("ack_far_beyond", "batch", "sync.response", body(edit(acking(2 ** 53)))),
    Fault("ack_backwards", "batch", "sync.response", body(edit(acking(lambda c, h: c["acked"] - 1)))),
    Fault("ack_rules_version_text", "batch", "sync.response", body(edit(setting("rules", "3")))),
    Fault("ack_time_missing", "batch", "sync.response", body(edit(dropping("time")))),
    Fault("refusal_unknown_code", "batch", "sync.response",
          body(edit(setting("refused", {"code": "batch.lunch_break", "field": "", "detail": ""})))),
    Fault("refusal_field_not_text", "batch", "sync.response",
          body(edit(setting("refused", {"code": "batch.gap", "field": 7, "detail": ""})))),
    # forged acknowledgements: valid JSON acknowledging every record the batch carried
    Fault("forged_ack_unsigned", "batch", "sync.signature",
          body(edit(acking(lambda c, h: h.batch_last() or c["acked"])), sig=None)),
    Fault("forged_ack_other_key", "batch", "sync.signature",
          body(edit(acking(lambda c, h: h.batch_last() or c["acked"])), sig=key_of_another)),
    Fault("forged_ack_signature_not_hex", "batch", "sync.signature",
          body(edit(acking(lambda c, h: h.batch_last() or c["acked"])), sig=garbage_signature)),
    # the server's signature of its answer on a body that moves the reader's clock
    Fault("ack_time_moved_under_honest_signature", "batch", "sync.signature",
          body(edit(setting("time", lambda c, h: int(time.time()) + 7200)), sig=of_the_honest_body)),
    # the server's signature of the same bytes for another request: a replayed answer
    Fault("ack_signed_for_another_request", "batch", "sync.signature", body(honest, sig=for_another_nonce)),
    Fault("old_ack_replayed", "batch", "sync.signature", replayed),
    # a refusal (status 400) passed off as an acceptance, and the other way round
    Fault("ack_signed_for_other_status", "batch", "sync.signature",
          body(honest, status=b"HTTP/1.1 400 Bad Request", sig=for_status(200))),
    Fault("refusal_signed_as_200", "batch", "sync.signature",
          body(edit(refusing("batch.totals", "totals")), status=b"HTTP/1.1 400 Bad Request", sig=for_status(200))),
    # a refusal with a known code is no garbage: it is kept and shown, records stay
    Fault("refusal_known_code", "batch", "batch.signature",
          body(edit(refusing("batch.signature", "X-Signature")), status=b"HTTP/1.1 400 Bad Request")),
    Fault("http_500", "batch", "sync.status",
          body(lambda b, c, h: b'{"error":"boom"}', status=b"HTTP/1.1 500 Internal Server Error")),
    # the body acknowledges every record, but a 5xx answer is not to be believed
    Fault("http_503_with_ack", "batch", "sync.status",
          body(lambda b, c, h: b, status=b"HTTP/1.1 503 Service Unavailable")),
    Fault("status_line_not_http", "batch", "sync.http", raw(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")),
    Fault("status_code_not_number", "batch", "sync.http", raw(b"HTTP/1.1 OK\r\nContent-Length: 0\r\n\r\n")),
    Fault("hang_up_at_once", "batch", "sync.http", raw(b"")),
    Fault("headers_cut", "batch", "sync.http", raw(b"HTTP/1.1 200 OK\r\nContent-Type: appli")),
    Fault("headers_without_end", "batch", "sync.http",
          raw(b"HTTP/1.1 200 OK\r\n" + b"X-Filler: aaaaaaaaaaaaaaaaaaaa\r\n" * 400)),
    Fault("header_line_without_end", "batch", "sync.http", raw(b"HTTP/1.1 200 OK\r\nX-Filler: " + b"a" * 300000)),
    Fault("status_line_without_end", "batch", "sync.http", raw(b"HTTP/1.1 200 " + b"a" * 300000)),
    Fault("length_not_number", "batch", "sync.http", body(lambda b, c, h: b, length=b"lots")),
    # the Content-Length promises 100 bytes more than come before the server hangs up
    Fault("closed_mid_body", "batch", "sync.http",
          lambda h, code, honest, ctx: send(h, honest, length=b"%d" % (len(honest) + 100))),
    # the reader gives up after its 10 s timeout
    Fault("no_answer", "batch", "sync.network", no_answer),
    # rules (the server has newer ones than the reader)
    Fault("rules_fail_check", "rules", "rules.format", body(edit(lambda o, c, h: o["rules"].update(tiers=[])))),
    Fault("rules_unknown_key", "rules", "rules.format", body(edit(lambda o, c, h: o["rules"].update(beer=1)))),
    Fault("rules_default_tier_missing", "rules", "rules.format",
          body(edit(lambda o, c, h: o["rules"].update(default_tier=9)))),
    Fault("rules_truncated", "rules", "sync.response", body(lambda b, c, h: b[:-20])),
    Fault("rules_missing", "rules", "sync.response", body(edit(dropping("rules")))),
    Fault("rules_over_limit", "rules", "sync.too_long", body(lambda b, c, h: padded(ANSWER_LIMIT + 1))),
    Fault("rules_http_500", "rules", "sync.status",
          body(lambda b, c, h: b, status=b"HTTP/1.1 500 Internal Server Error")),
    # forged rules (the top tier's rate 100 %) without the server's signature
    Fault("rules_forged_unsigned", "rules", "sync.signature", body(edit(forged_tier), sig=None)),
    Fault("rules_forged_other_key", "rules", "sync.signature", body(edit(forged_tier), sig=key_of_another)),
    Fault("rules_forged_under_honest_signature", "rules", "sync.signature",
          body(edit(forged_tier), sig=of_the_honest_body)),
    Fault("rules_signed_for_another_request", "rules", "sync.signature", body(honest, sig=for_another_nonce)),
    # valid rules, but older than the reader's: a backend restored from an old backup
    Fault("rules_older_than_reader", "rules", "sync.response",
          body(edit(rules_of_version(lambda c: c["rules"] - 1)))),
    # the rules inside say another version than the answer (and ack) say
    Fault("rules_version_disagrees", "rules", "sync.response",
          body(edit(lambda o, c, h: o["rules"].update(version=o["version"] + 100)))),
    # directory pages (the server has two new cards)
    Fault("page_truncated", "directory", "delta.format", body(lambda b, c, h: b[:-9])),
    Fault("page_garbage", "directory", "delta.format", body(lambda b, c, h: GARBAGE)),
    Fault("page_not_canonical", "directory", "delta.format",
          body(lambda b, c, h: json.dumps(json.loads(b)).encode())),
    Fault("page_unsorted", "directory", "delta.order", body(edit(entries(lambda es: es[::-1])))),
    Fault("page_card_twice", "directory", "delta.order", body(edit(entries(lambda es: [es[0], es[0]])))),
    Fault("page_wrong_from", "directory", "delta.version", body(edit(setting("from", lambda c, h: c["directory"] + 1)))),
    Fault("page_to_before_from", "directory", "delta.version",
          body(edit(setting("to", lambda c, h: c["directory"] - 1)))),
    Fault("page_entries_without_progress", "directory", "delta.version",
          body(edit(setting("to", lambda c, h: c["directory"])))),
    Fault("page_tier_text", "directory", "delta.format", body(edit(entry_field(1, "2")))),
    Fault("page_tier_256", "directory", "delta.format", body(edit(entry_field(1, 256)))),
    Fault("page_card_number_not_text", "directory", "delta.format", body(edit(entry_field(0, 6001000000000042)))),
    Fault("page_card_20_digits", "directory", "delta.format", body(edit(entry_field(0, "6" * 20)))),
    Fault("page_more_text", "directory", "delta.format", body(edit(setting("more", "no")))),
    Fault("page_over_limit", "directory", "sync.too_long", body(lambda b, c, h: padded(PAGE_LIMIT + 1))),
    Fault("page_over_limit_no_length", "directory", "sync.too_long",
          body(lambda b, c, h: padded(PAGE_LIMIT + 600), length=None, pieces=5)),
    # pages that are not the server's: its signature is over the body as received
    Fault("page_unsigned", "directory", "sync.signature", body(honest, sig=None)),
    Fault("page_other_key", "directory", "sync.signature", body(honest, sig=key_of_another)),
    Fault("page_tier_raised_under_honest_signature", "directory", "sync.signature",
          body(edit(entry_field(1, 255)), sig=of_the_honest_body)),
    Fault("page_signed_for_another_request", "directory", "sync.signature", body(honest, sig=for_another_nonce)),
    Fault("page_without_length_bad_signature", "directory", "sync.signature",
          body(honest, length=None, pieces=3, sig=key_of_another)),
    Fault("page_http_500", "directory", "sync.status",
          body(lambda b, c, h: b, status=b"HTTP/1.1 500 Internal Server Error")),
    Fault("page_not_found", "directory", "sync.status", body(lambda b, c, h: b"{}", status=b"HTTP/1.1 404 Not Found")),
    # the first page is good and kept (version +1); the next one is junk
    Fault("second_page_garbled", "directory", "delta.format", second_page_garbled, advance=1),
]


# -- the readers ---------------------------------------------------------------------

def snapshot(folder):
    """Every file of a reader's flash: name -> bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


class ShopFloor:
    """A few readers taking turns at faults; each one is handed out again only once it caught up."""

    def __init__(self, server, folder):
        self.server = server
        self.readers = []
        self.sold = {}  # reader -> {seq: receipt}
        self.last_fault = {}  # reader -> the fault it is recovering from
        self.turn = 0
        self.new_cards = 0
        self.taken = set()  # readers handed out and not released yet
        for i in range(READERS):
            name = "R%d" % (i + 1)
            r = SimReader(name, server.key_hex, server.url, folder / name, sync_interval=SYNC_INTERVAL,
                          log=folder / (name + ".log"))
            self.readers.append(r)
            self.sold[name] = {}
            self.last_fault[name] = "(first sync)"
        for r in self.readers:
            r.start()

    def stop(self):
        for r in self.readers:
            r.stop()

    def sell(self, r, n):
        for _ in range(n):
            receipt = "%s-%04d" % (r.reader, len(self.sold[r.reader]) + 1)
            r.till.send(shop.basket(receipt))
            r.till.expect("ready")
            r.cards.tap(shop.GOLD if len(self.sold[r.reader]) % 2 else shop.SILVER)
            q = r.till.expect("quote")
            r.till.send({"type": "commit", "quote": q["quote"], "paid": q["gross"] - q["discount"]})
            c = r.till.expect("committed")
            assert c["seq"] > 0 and c["seq"] not in self.sold[r.reader]
            self.sold[r.reader][c["seq"]] = receipt

    def caught_up(self, r):
        s = r.status()
        return (s["pending"] == 0 and s["sync_error"] == "" and s["refused"] is None
                and s["rules"] == self.server.rules["version"]
                and s["directory"] == self.server.directory_version)

    def check_stored(self, r):
        """Exactly the receipts sold are at the server, each once, under the seq the till got."""
        stored = {seq: rec["receipt"] for seq, rec in self.server.stored(r.reader).items()}
        assert stored == self.sold[r.reader], "%s after fault %s" % (r.reader, self.last_fault[r.reader])

    def take(self, timeout=60):
        def next_caught_up():
            for i in range(READERS):
                r = self.readers[(self.turn + i) % READERS]
                if self.caught_up(r):
                    self.turn = (self.turn + i + 1) % READERS
                    return r
            return None

        try:
            r = wait_for(next_caught_up, timeout, "a reader to catch up")
        except AssertionError:
            raise AssertionError("no reader caught up: " + ", ".join(
                "%s after %s: %r" % (r.reader, self.last_fault[r.reader], r.status()) for r in self.readers))
        self.check_stored(r)
        self.taken.add(r)
        return r

    def release(self, r, fault_name):
        self.server.mend(r.reader)
        self.last_fault[r.reader] = fault_name
        self.taken.discard(r)

    def card_changes(self):
        """Two new cards at the server: the directory moves on by two versions."""
        self.new_cards += 2
        n = self.new_cards
        self.server.set_cards([("60010000001%05d" % n, 1, 0), ("60010000001%05d" % (n - 1), 2, 0)])


@pytest.fixture(scope="module")
def floor(tmp_path_factory):
    key = shop.key_hex()
    folder = tmp_path_factory.mktemp("faults")
    server = FaultyServer(readers={"R%d" % (i + 1): bytes.fromhex(key) for i in range(READERS)},
                          rules=shop.rules(), cards=shop.CARDS).start()
    server.key_hex = key
    floor = ShopFloor(server, folder)
    try:
        # one receipt each, synced: every reader has acknowledged records (ack_backwards needs one)
        for r in floor.readers:
            floor.sell(r, 1)
        for r in floor.readers:
            wait_for(lambda: floor.caught_up(r), timeout=60, what="first sync of " + r.reader)
        yield floor
    finally:
        floor.stop()
        server.stop()


@pytest.fixture(autouse=True)
def floor_left_clean(request):
    """After each test on the shop floor: the fault of a test that failed before releasing
    its reader is mended (so the reader catches up and is handed out again), and every
    till is idle, no quote waiting: a test that failed half-way leaves nothing for the
    next. A reader that does not answer fails this fixture, not the next test."""
    floor = request.getfixturevalue("floor") if "floor" in request.fixturenames else None
    yield
    if floor is not None:
        for r in list(floor.taken):
            floor.release(r, "the fault of a test that failed")
        for r in floor.readers:
            idle(r)


def settle(r, code, timeout=30):
    """The reader's status once it shows `code` (or after `timeout`: then it shows something else)."""
    def shows():
        s = r.status()
        return s["sync_error"] == code and s

    try:
        return wait_for(shows, timeout, "%s to show %s" % (r.reader, code))
    except AssertionError:
        return r.status()


def log_since(r, offset):
    with open(r.log, "rb") as f:
        f.seek(offset)
        return f.read().decode("utf-8", "replace")


def log_size(r):
    return Path(r.log).stat().st_size


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_bad_answer_gets_named_error_and_leaves_journal_alone(floor, fault):
    server = floor.server
    r = floor.take()
    before = r.status()
    log_at = log_size(r)
    flash = Path(r.cfg["root"])
    ctx = {"acked": before["next_seq"] - 1, "rules": before["rules"], "directory": before["directory"],
           "server": server}
    rules_before = json.loads((flash / "rules.json").read_bytes())
    cards_before = snapshot(flash / "cards")
    hits = server.hit_count()
    server.spoil(r.reader, fault.kind, fault.answer, ctx)
    if fault.kind == "rules":
        server.set_rules(shop.rules(version=server.rules["version"] + 1))
    elif fault.kind == "directory":
        floor.card_changes()
    floor.sell(r, SALES)
    after_sales = r.status()
    files = snapshot(flash)
    # a batch fault must have spoiled the answer to a batch holding receipts just sold
    first = before["next_seq"] if fault.kind == "batch" else 0
    wait_for(lambda: server.hit_after(hits, r.reader, fault.kind, first), timeout=30,
             what="%s to read the spoiled answer" % r.reader)

    s = settle(r, fault.code)  # the reader still answers the till
    assert s["sync_error"] == fault.code, s
    assert r.alive() and "restarting" not in log_since(r, log_at), log_since(r, log_at)
    assert s["next_seq"] == after_sales["next_seq"]
    # the error is kept on flash for tools/flash status (and is all that was written)
    def kept():
        f = flash / "status.json"
        return f.exists() and json.loads(f.read_bytes())["last_error"] == fault.code

    wait_for(kept, what="the error in status.json")
    if fault.kind == "batch":
        assert s["pending"] == SALES, s  # nothing released on a bad answer
        files.pop("status.json", None)
        now = snapshot(flash)
        now.pop("status.json")
        assert now == files  # nor anything else written
        if fault.code.startswith("batch."):
            assert s["refused"]["code"] == fault.code
    else:
        stored = server.stored(r.reader)
        released = s["next_seq"] - 1 - s["pending"]
        assert all(seq in stored for seq in range(1, released + 1)), (released, sorted(stored))
        assert s["rules"] == ctx["rules"]
        assert json.loads((flash / "rules.json").read_bytes()) == rules_before
        assert s["directory"] == ctx["directory"] + fault.advance
        if not fault.advance:
            assert snapshot(flash / "cards") == cards_before
    floor.release(r, fault.name)


def test_an_ack_covering_a_sale_made_while_its_batch_was_on_the_way_releases_nothing(floor):
    """The race `ack_beyond_last_record` once met by chance, forced: the reader posts a
    batch holding the first sale; while it waits for the answer the till sells again; the
    answer acknowledges that new sale too, one past the batch's last record. The reader
    must not delete a receipt it never sent (it did, when it checked the ack against its
    journal instead of against the batch)."""
    server = floor.server
    r = floor.take()
    hits = server.hit_count()
    raced = []

    def answer(h, code, honest, ctx):
        last = h.batch_last()
        if last == 0:
            send(h, honest)  # a report without records
            return False
        if not raced:
            floor.sell(r, 1)  # the till's next sale, journaled while the reader waits for us
            raced.append(last + 1)
        # one past the batch's last record, every time until the test ends: the reader's
        # error stays in view whatever its backoff (after the race, that is beyond its journal)
        obj = json.loads(honest)
        obj["ack"] = last + 1
        send(h, encode(obj))

    server.spoil(r.reader, "batch", answer, {})
    floor.sell(r, 1)
    wait_for(lambda: server.hit_after(hits, r.reader, "batch", 1), timeout=30,
             what="%s to read the spoiled answer" % r.reader)
    s = settle(r, "sync.response")
    assert s["sync_error"] == "sync.response", s
    assert raced and raced[0] == s["next_seq"] - 1, (raced, s)  # the sale made meanwhile is the newest
    assert s["pending"] >= 1 and s["next_seq"] - 1 - s["pending"] < raced[0], s  # never released
    floor.release(r, "an ack covering a sale made while its batch was on the way")


def test_answer_without_length_is_read_to_its_end(floor):
    """Not a fault: an answer whose end is the server closing, in several TCP segments."""
    server = floor.server
    r = floor.take()
    ctx = {"directory": r.status()["directory"]}
    hits = server.hit_count()
    server.spoil(r.reader, "batch", body(lambda b, c, h: b, length=None, pieces=3), ctx)
    server.spoil(r.reader, "directory", body(lambda b, c, h: b, length=None, pieces=3), ctx)
    floor.card_changes()
    floor.sell(r, SALES)
    wait_for(lambda: server.hit_after(hits, r.reader, "directory"), what="a page without length")
    wait_for(lambda: floor.caught_up(r), what="%s to take answers without length" % r.reader)
    floor.check_stored(r)
    floor.release(r, "answers without length")


def test_ack_that_does_not_move_is_no_reason_to_hammer(floor):
    """A server that keeps answering 200 without storing anything: the reader keeps its
    records and comes back at its sync interval, not in a tight loop."""
    server = floor.server
    r = floor.take()
    ctx = {"acked": r.status()["next_seq"] - 1}
    server.spoil(r.reader, "batch", body(edit(acking(lambda c, h: c["acked"]))), ctx)
    floor.sell(r, SALES)
    with server.lock:
        before = server.posts.get(r.reader, 0)
    # a window, not a wait: a reader in a tight loop fills it with batches, one at its
    # sync interval does not (a slow machine only makes it send fewer)
    time.sleep(2)
    with server.lock:
        posts = server.posts.get(r.reader, 0) - before
    s = r.status()
    assert s["pending"] == SALES and s["sync_error"] == "", s
    assert posts <= 2 / SYNC_INTERVAL + 2, "%d batches in 2 s" % posts
    # and it does come back (within the window, unless the machine held it up)
    wait_for(lambda: server.posts.get(r.reader, 0) > before, what="%s to come back with its batch" % r.reader)
    floor.release(r, "ack that does not move")


# a verified answer that refuses the batch, or acknowledges less than the reader knows is
# stored (a backend restored from a backup): nothing released, the code shown, but newer
# rules and cards still come down
BATCH_PROBLEMS = [
    ("refused", body(edit(refusing("batch.totals", "totals")), status=b"HTTP/1.1 400 Bad Request"),
     "batch.totals"),
    ("ack_backwards", body(edit(acking(lambda c, h: c["acked"] - 1))), "sync.response"),
]


@pytest.mark.parametrize("answer,code", [p[1:] for p in BATCH_PROBLEMS], ids=[p[0] for p in BATCH_PROBLEMS])
def test_batch_problem_does_not_stop_rules_and_directory(floor, answer, code):
    server = floor.server
    r = floor.take()
    before = r.status()
    ctx = {"acked": before["next_seq"] - 1}
    hits = server.hit_count()
    server.spoil(r.reader, "batch", answer, ctx)  # before the new versions are announced
    server.set_rules(shop.rules(version=server.rules["version"] + 1))
    floor.card_changes()
    floor.sell(r, SALES)
    wait_for(lambda: server.hit_after(hits, r.reader, "batch", before["next_seq"]),
             what="%s to read the batch answer" % r.reader)

    def downloaded():
        s = r.status()
        return s["rules"] == server.rules["version"] and s["directory"] == server.directory_version and s
    s = wait_for(downloaded, timeout=30, what="rules and cards after %s" % code)
    s = settle(r, code)
    assert s["sync_error"] == code, s
    assert s["pending"] == SALES, s  # released nothing
    assert (s["refused"] or {}).get("code") == (code if code.startswith("batch.") else None), s
    assert r.alive() and "restarting" not in r.log.read_text()
    floor.release(r, "batch problem " + code)


def test_unknown_reader_gets_an_unsigned_refusal(floor, tmp_path):
    """The server has no key for R9: its refusal cannot be signed, so the reader cannot tell
    it from a forgery and releases nothing, whatever the answer says."""
    server = floor.server
    r = SimReader("R9", server.key_hex, server.url, tmp_path / "R9", sync_interval=SYNC_INTERVAL,
                  log=tmp_path / "R9.log")
    try:
        r.start()
        floor.sold["R9"] = {}
        floor.sell(r, 1)
        s = settle(r, "sync.signature")
        assert s["sync_error"] == "sync.signature" and s["pending"] == 1, s
        assert s["rules"] == 0 and s["directory"] == 0 and s["refused"] is None, s
        with server.lock:
            assert ("R9", "batch.reader") in [x[:2] for x in server.refusals]
    finally:
        r.stop()


@pytest.mark.parametrize("skew", [7200, 120], ids=["2h_ahead", "2min_ahead"])
def test_reader_takes_the_time_of_the_backend(tmp_path, skew):
    """A reader's clock is not set by anyone (an ESP32 boots at 2000-01-01): the backend's
    signed answers set it. 2 hours off, its first batch is refused as stale (the refusal
    signed and carrying the server's time) and it tries again soon with the server's time;
    2 minutes off, the server takes it and the reader still corrects its clock."""
    key = shop.key_hex()
    server = SyncServer(readers={"R1": bytes.fromhex(key)}, rules=shop.rules(), cards=shop.CARDS,
                        clock_skew=skew).start()
    r = SimReader("R1", key, server.url, tmp_path / "R1", sync_interval=SYNC_INTERVAL, log=tmp_path / "R1.log")
    try:
        r.start()
        started = time.time()
        # the stale refusal's round already brings rules and cards (signed with the new time);
        # the next batch goes through
        def synced():
            s = r.status()
            return s["rules"] == server.rules["version"] and s["sync_error"] == "" and s
        s = wait_for(synced, timeout=20, what="first sync")
        took = time.time() - started
        assert abs(s["time"] - (time.time() + skew)) <= 3, (s["time"], time.time())
        assert s["directory"] == server.directory_version and s["sync_error"] == "", s
        # a receipt sold now carries the server's time and goes up at once
        r.till.send(shop.basket("T1-0001"))
        r.till.expect("ready")
        r.cards.tap(shop.GOLD)
        q = r.till.expect("quote")
        r.till.send({"type": "commit", "quote": q["quote"], "paid": q["gross"] - q["discount"]})
        seq = r.till.expect("committed")["seq"]
        rec = wait_for(lambda: server.stored("R1").get(seq), what="the receipt at the server")
        assert abs(rec["t"] - (time.time() + skew)) <= 3, rec["t"]
        wait_for(lambda: "R1" in server.status, what="the reader's status at the server")
        assert abs(server.status["R1"]["clock_drift"] - skew) <= 3, server.status["R1"]
        with server.lock:
            refused = [x[1] for x in server.refusals if x[0] == "R1"]
        if skew > 300:
            assert refused == ["batch.stale"], refused  # once: from then on the clock is right
            assert took < 8, "%.1f s to sync after a stale refusal" % took
        else:
            assert refused == [], refused
    finally:
        r.stop()
        server.stop()


def test_every_reader_catches_up_after_its_last_fault(floor):
    for r in floor.readers:
        wait_for(lambda: floor.caught_up(r), timeout=30,
                 what="%s to catch up after %s" % (r.reader, floor.last_fault[r.reader]))
        floor.check_stored(r)
        assert r.alive() and "restarting" not in r.log.read_text()

