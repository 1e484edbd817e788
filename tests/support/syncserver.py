"""A minimal reference server for the reader's sync protocol (docs/protocol.md).

The other end of the firmware's sync client in the firmware's own fault tests, which
make it misbehave on purpose (forged, spoiled or hanging answers: tests/test_sync_faults.py);
the real backend is the Flask app in backend/, which the end-to-end tests and `make demo`
use. In a few hundred lines, in memory: it checks signatures, timestamps
and replays, checks every batch with protocol.batchcheck, stores each record once by
(reader, seq) in memory, and serves rules and directory pages. Real HTTP on loopback.
Every answer to a known reader, refusals included, is signed with that reader's key
over the request's nonce (X-Signature, protocol.records.sign_answer); an unknown
reader's refusal cannot be, and goes unsigned.

    srv = SyncServer(readers={"R1": key}, rules=rules, clock_skew=0)
    srv.start()            # a thread; srv.url is http://127.0.0.1:<port>
    srv.stored("R1")       # {seq: record}
"""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from loyalty.protocol import delta
from loyalty.protocol.batchcheck import check_batch
from loyalty.protocol.canonical import encode
from loyalty.protocol.checks import digits
from loyalty.protocol.errors import ProtocolError
from loyalty.protocol.hmac256 import equal
from loyalty.protocol.records import GENESIS, body_digest, record_hash, sign, sign_answer
from loyalty.protocol.status import MAX_BODY, TIMESTAMP_WINDOW as WINDOW, http_status

HANG = 15  # seconds a hanging request is held (longer than the reader's timeout)


class SyncServer:
    def __init__(self, readers, rules=None, cards=(), port=0, store=None, clock_skew=0):
        self.keys = dict(readers)
        self.clock_skew = clock_skew  # seconds this server's clock is ahead (a test of readers' clocks)
        self.store = store  # a JSON-lines file of stored records, kept across runs (the demo)
        self.rules = rules
        self.records = {r: {} for r in self.keys}  # reader -> seq -> (record, hash)
        self.status = {}
        self.refusals = []  # (reader, code, field, detail)
        self.seen = set()  # (reader, nonce) already used: a replayed request is refused
        self.cards = {}  # card -> (tier, status, version)
        self.directory_version = 0
        self.offline = set()  # readers whose requests are dropped (a cut network)
        self.hang = set()  # readers whose requests get no answer for HANG seconds
        self.held = {}  # reader -> how many of its requests were held so (tests wait on it)
        self.lock = threading.Lock()
        if cards:
            self.set_cards(cards)
        if store:
            self._load()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]

    # -- what tests and the demo use ----------------------------------------------
    def start(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def stored(self, reader):
        with self.lock:
            return {s: r for s, (r, _) in self.records[reader].items()}

    def set_cards(self, entries):
        """entries: (card, tier, status). Every change gets the next version number, so a
        page can end after any change and readers resume from the version they have."""
        with self.lock:
            for card, tier, status in entries:
                self.directory_version += 1
                self.cards[card] = (tier, status, self.directory_version)

    def set_rules(self, rules):
        with self.lock:
            self.rules = rules

    def _load(self):
        try:
            with open(self.store, "rb") as f:
                for line in f:
                    rec = json.loads(line)
                    if rec["reader"] in self.records:
                        self.records[rec["reader"]][rec["seq"]] = (rec, record_hash(encode(rec)))
        except FileNotFoundError:
            pass

    def _save(self, fresh):
        if self.store:
            with open(self.store, "ab") as f:
                for _, rec, _ in fresh:
                    f.write(encode(rec) + b"\n")

    # -- the protocol ----------------------------------------------------------------
    def now(self):
        return int(time.time()) + self.clock_skew

    def answer_signature(self, reader, nonce, status, data):
        """X-Signature of an answer to `reader`'s request with `nonce`; None for an unknown reader."""
        key = self.keys.get(reader)
        return None if key is None else sign_answer(key, nonce, status, body_digest(data))

    def contiguous(self, reader):
        recs = self.records[reader]
        seq = 0
        while seq + 1 in recs:
            seq += 1
        return seq, (recs[seq][1] if seq else GENESIS)

    def authenticate(self, method, path, headers, body, verified):
        """The reader of a well signed request; `verified` (a list) gets True once its
        signature checked out: only then is the answer signed, so an unsigned request
        cannot make the server sign what an attacker wants the reader to believe."""
        reader = headers.get("X-Reader", "")
        if reader not in self.keys:
            raise ProtocolError("batch.reader", "X-Reader", "unknown reader %r" % reader)
        t = digits(headers.get("X-Timestamp", ""))
        if t is None:  # as the backend: ASCII digits only, never int()'s " 7" or "-5"
            raise ProtocolError("batch.stale", "X-Timestamp", "must be an integer")
        nonce = headers.get("X-Nonce", "")
        want = sign(self.keys[reader], method, path, t, nonce, body_digest(body))
        got = headers.get("X-Signature", "")
        if not equal(want.encode(), got.encode()):
            raise ProtocolError("batch.signature", "X-Signature", "does not verify")
        verified.append(True)
        # checked after the signature: the stale refusal carries the server's time, which
        # the reader adopts, so it goes only to a request the reader really signed
        if abs(t - self.now()) > WINDOW:
            raise ProtocolError("batch.stale", "X-Timestamp", "more than %d s from server time" % WINDOW)
        if (reader, nonce) in self.seen:
            raise ProtocolError("batch.replay", "X-Nonce", "request already seen")
        self.seen.add((reader, nonce))
        return reader

    def answer(self, reader, refused=None):
        ack = self.contiguous(reader)[0] if reader in self.records else 0
        return {"ack": ack, "refused": refused, "rules": self.rules["version"] if self.rules else 0,
                "directory": self.directory_version, "time": self.now()}

    def batch(self, reader, body):
        with self.lock:
            seq, h = self.contiguous(reader)
            recs = self.records[reader]
            fresh, status, _ = check_batch(
                body, reader, seq, h, lambda s: recs[s][1] if s in recs else None,
                sale=lambda ref: len(recs[ref][0]["lines"]) if ref in recs and recs[ref][0]["kind"] == "sale" else None)
            for s, rec, rh in fresh:
                recs[s] = (rec, rh)
            self._save(fresh)
            self.status[reader] = status
            return self.answer(reader)

    def directory_page(self, since, limit, after=0):
        """The changes after version `since`, oldest first, at most `limit`; sorted by card.

        since 0: a full load instead, the whole directory sorted by card after `after`."""
        with self.lock:
            if since == 0:
                cards = sorted((int(c), c, t, s) for c, (t, s, v) in self.cards.items() if s != 2)
                cards = [x for x in cards if x[0] > after]
                return delta.make_page(0, self.directory_version, [[c, t, s] for _, c, t, s in cards[:limit]],
                                       len(cards) > limit)
            changed = sorted((v, c, t, s) for c, (t, s, v) in self.cards.items() if v > since)
            page = changed[:limit]
            to = page[-1][0] if page else since
            entries = sorted(([c, t, s] for _, c, t, s in page), key=lambda e: int(e[0]))
            return delta.make_page(since, to, entries, len(changed) > limit)


def _handler(server):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _send(self, code, obj, signed=False):
            data = obj if isinstance(obj, bytes) else encode(obj)
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            signature = signed and server.answer_signature(self.headers.get("X-Reader", ""),
                                                           self.headers.get("X-Nonce", ""), code, data)
            if signature:
                self.send_header("X-Signature", signature)
            self.end_headers()
            self.wfile.write(data)

        def _body(self):
            n = int(self.headers.get("Content-Length") or 0)
            if n > MAX_BODY:
                raise ProtocolError("batch.too_large", "body", "%d bytes, limit %d" % (n, MAX_BODY))
            return self.rfile.read(n)

        def _guarded(self, method, work):
            reader = self.headers.get("X-Reader", "")
            if reader in server.offline:
                self.close_connection = True
                return  # no answer: the reader sees a dead network
            if reader in server.hang:
                with server.lock:
                    server.held[reader] = server.held.get(reader, 0) + 1
                time.sleep(HANG)  # the fault itself: a backend that takes the request and never answers
                self.close_connection = True
                return
            verified = []
            try:
                body = self._body() if method == "POST" else b""
                reader = server.authenticate(method, self.path, self.headers, body, verified)
                self._send(200, work(reader, body), signed=True)
            except ProtocolError as e:
                with server.lock:
                    server.refusals.append((reader, e.code, e.field, e.detail))
                    ans = server.answer(reader, e.as_dict()) if reader in server.keys else \
                        {"ack": 0, "refused": e.as_dict(), "rules": 0, "directory": 0, "time": server.now()}
                self._send(http_status(e.code), ans, signed=bool(verified))

        def do_POST(self):
            if urlsplit(self.path).path != "/api/v1/sync/batch":
                return self._send(404, {"error": "not found"})
            self._guarded("POST", server.batch)

        def do_GET(self):
            url = urlsplit(self.path)
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/api/v1/sync/rules":
                self._guarded("GET", lambda r, b: {"version": server.rules["version"], "rules": server.rules})
            elif url.path == "/api/v1/sync/directory":
                self._guarded("GET", lambda r, b: server.directory_page(
                    int(q.get("since", 0)), int(q.get("limit", 500)), int(q.get("after", 0))))
            else:
                self._send(404, {"error": "not found"})

    return Handler


if __name__ == "__main__":
    print(json.dumps({"usage": "imported by tests and demo/demo.py"}))
