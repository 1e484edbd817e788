"""The sync client: journal records up in signed batches; rules, directory and card keys down.

Runs as its own asyncio task, so the till never waits for the network. Each round:
  1. POST a batch of the oldest pending records (possibly none: then it is only the
     reader's status), signed with the reader's key (docs/protocol.md, "Sync");
  2. on an acknowledgement, release journal records up to the acknowledged seq (after
     saving the day totals that were counted from them);
  3. fetch new rules, directory pages and card keys when the answer says newer versions exist,
     also after a refusal or an acknowledgement it could not use: a batch problem must
     not keep a reader on old rules and an old blocklist.
Every answer must carry the backend's signature over the request's nonce, its status
and its body (records.sign_answer), checked before anything in it is parsed: anybody on
the store network could otherwise acknowledge (so delete) every pending receipt or hand
out rules. A signed answer's `time` also sets the reader's clock when it is far off.
A refusal is kept (`last_refusal`) for the status and the dashboard. Failures back off
exponentially with full jitter, so a hundred readers coming back after an outage do
not hammer the backend at the same instant.

    client = SyncClient(cfg, journal, rules, cards, days, clock)
    asyncio.create_task(client.run())
"""
import asyncio
import gc
import os

import sys

from protocol import canonical, syncmsg
from protocol.compat import hexstr, sha256, unhexlify
from protocol.errors import ProtocolError, SyncError
from protocol.hmac256 import equal
from protocol.records import Totals, batch_parts, sign, sign_answer

import fsutil
import httpclient

FIRMWARE = "0.1.0"
BATCH_RECORDS = 200
BATCH_BYTES = 12000  # keeps a batch well inside the heap; the body is streamed anyway
PAGE = 100  # directory entries per page: at most 30 bytes each in canonical JSON
PAGE_BYTES = 4096
CLOCK_SLACK = 60  # seconds the reader's clock may differ from the backend's before it is set


class Backoff:
    """Full-jitter exponential backoff: a random delay in [0, min(cap, base * 2**n)]."""

    def __init__(self, base=2, cap=300):
        self.base, self.cap, self.failures = base, cap, 0

    def next(self):
        self.failures += 1
        ceiling = min(self.cap, self.base * (1 << min(self.failures, 16)))
        r = int.from_bytes(os.urandom(2), "big") / 65535
        return ceiling * r

    def reset(self):
        self.failures = 0


class SyncClient:
    def __init__(self, cfg, journal, rules, cards, days, clock, interval=30, flash_root="/", keys=None):
        self.reader = cfg["reader"]
        self.key = unhexlify(cfg["key"])
        self.host, self.port, self.prefix = httpclient.split_url(cfg["backend"])
        self.journal, self.rules, self.cards, self.days = journal, rules, cards, days
        self.keys = keys  # CardKeys, or None on a reader that verifies no cards
        self.clock = clock
        self.interval = interval
        self.flash_root = flash_root
        self.backoff = Backoff()
        self.last_error = ""
        self._kept_error = None  # the error status.json holds (None: not written since boot)
        self.last_refusal = None
        self.last_ok = 0
        self.rounds = 0
        # directory pages, one after another, go through these two buffers, taken once:
        # a fresh 4 KB block per page is not always there in a fragmented heap
        self._page = bytearray(PAGE_BYTES)
        self._entries = bytearray(10 * PAGE)
        self.released = False  # did the last acknowledgement release records?
        self.sent_last = 0  # seq of the last record the last batch carried (acked, if none)
        self.clock_drift = 0  # seconds the clock was last set forward (negative: back)
        self.clock_set = False  # did this round set the clock? then the retry comes soon

    def status(self):
        s = self.journal.stats()
        try:
            st = os.statvfs(self.flash_root)
            free = st[0] * st[3]
        except OSError:
            free = -1
        return {"pending": s["pending"], "oldest_t": s["oldest_t"] or 0, "journal": s["level"],
                "used": s["used"], "capacity": s["capacity"], "free_flash": free,
                "firmware": FIRMWARE, "rules": self.rules.version, "directory": self.cards.version,
                "keys": self.keys.version if self.keys is not None else 0,
                "clock": self.clock(), "clock_drift": self.clock_drift, "last_error": self.last_error,
                "refused": self.last_refusal["code"] if self.last_refusal else ""}

    def _headers(self, method, path, digest):
        t = self.clock()
        nonce = hexstr(os.urandom(8))
        return {"X-Reader": self.reader, "X-Timestamp": str(t), "X-Nonce": nonce,
                "X-Signature": sign(self.key, method, path, t, nonce, digest),
                "Content-Type": "application/json"}

    def _verify(self, headers, status, signature, body):
        """Raise sync.signature unless the backend signed this answer to this very request.

        `body` is the bytes as received (a directory page: a memoryview of the buffer,
        hashed without a copy). No signature (b"") never equals one."""
        want = sign_answer(self.key, headers["X-Nonce"], status, hexstr(sha256(body).digest()))
        if not equal(want.encode(), signature):
            raise SyncError("sync.signature", "X-Signature", "HTTP %d" % status)

    async def _get(self, path, max_answer, into=None):
        """The body of a signed GET (with `into`: its size, the body being in `into`)."""
        path = self.prefix + path
        headers = self._headers("GET", path, hexstr(sha256(b"").digest()))
        status, body, signature = await httpclient.request(self.host, self.port, "GET", path, headers,
                                                           max_answer=max_answer, into=into)
        if status != 200:
            raise SyncError("sync.status", path, "HTTP %d" % status)
        self._verify(headers, status, signature, body if into is None else memoryview(into)[:body])
        return body

    async def _page_of(self, delta, path, version):
        size = await self._get(path, PAGE_BYTES, self._page)
        return delta.parse_page(self._page, version, PAGE_BYTES, size, self._entries)

    async def post_batch(self):
        """Send the oldest pending records; returns the parsed acknowledgement."""
        pieces = []
        totals = Totals()
        first = self.journal.stats()["acked"] + 1
        last = first - 1
        for seq, data in self.journal.records(first, BATCH_RECORDS, BATCH_BYTES):
            last = seq
            totals.add(canonical.decode(data))
            if pieces:
                pieces.append(b",")
            pieces.append(data)
        head, tail = batch_parts(self.reader, self.status(), totals.as_dict())
        h = sha256(head)
        length = len(head) + len(tail)
        for p in pieces:
            h.update(p)
            length += len(p)
        h.update(tail)
        path = self.prefix + "/api/v1/sync/batch"
        headers = self._headers("POST", path, hexstr(h.digest()))
        # an ack may reach this far and no further: a sale journaled while the batch is on
        # its way was never sent, so an ack that covers it must not delete it
        self.sent_last = last
        status, body, signature = await httpclient.request(self.host, self.port, "POST", path, headers,
                                                           [head] + pieces + [tail], length)
        if status >= 500:
            raise SyncError("sync.status", "batch", "HTTP %d" % status)
        # a 4xx refusal still carries the acknowledgement and the reason as JSON, signed
        # like any answer: an unsigned one (an unknown reader's) proves nothing
        self._verify(headers, status, signature, body)
        return syncmsg.parse_ack(body)

    def _acknowledged(self, ack):
        """Release the records up to the acknowledged seq; True if that released any."""
        s = self.journal.stats()
        top = min(s["next_seq"] - 1, self.sent_last)  # the last record this batch carried
        if ack["ack"] < s["acked"] or ack["ack"] > top:
            # e.g. a backend restored from a backup (ack below what it acknowledged before):
            # nothing is released on it, the round goes on to rules and directory
            raise SyncError("sync.response", "ack", "%d is outside %d..%d" % (ack["ack"], s["acked"], top))
        if ack["ack"] > s["acked"]:
            self.days.save(ack["ack"])  # the records about to go are what the day totals counted
            self.journal.ack(ack["ack"])
            return True
        return False

    async def fetch_rules(self):
        body = await self._get("/api/v1/sync/rules?since=%d" % self.rules.version, syncmsg.MAX_ANSWER)
        answer = syncmsg.parse_rules_answer(body)
        # rules that say another version than their answer, or not newer than the reader's,
        # would leave it on old rules or never fetch again: keep the rules it has
        if answer["rules"].get("version") != answer["version"] or answer["version"] <= self.rules.version:
            raise SyncError("sync.response", "version", "rules v%r in an answer for v%d; the reader has v%d" % (
                answer["rules"].get("version"), answer["version"], self.rules.version))
        self.rules.replace(answer["rules"], self.clock())

    async def fetch_keys(self):
        body = await self._get("/api/v1/sync/keys?since=%d" % self.keys.version, syncmsg.MAX_ANSWER)
        version, keys = syncmsg.parse_keys_answer(body)
        if version <= self.keys.version:
            raise SyncError("sync.response", "version", "keys v%d, the reader has v%d" % (version, self.keys.version))
        self.keys.replace(version, keys)

    async def fetch_directory(self, want):
        # protocol.delta (12 KB of heap) is loaded for the fetch and dropped after it:
        # directory changes come a few times a day, receipts all day long. Collected
        # first, here: the collection the import would trigger when the heap runs short
        # runs deep in the import's C stack, where stale pointers to the rules or batch
        # answer just read keep them alive (measured: 640 bytes refused with 46 KB free)
        gc.collect()
        from protocol import delta

        try:
            if self.cards.version == 0:
                await self._full_load(delta)
            else:
                await self._fetch_pages(delta, want)
        finally:
            del delta
            sys.modules.pop("protocol.delta", None)
            import protocol

            if hasattr(protocol, "delta"):  # the package holds its submodules too
                delattr(protocol, "delta")

    async def _full_load(self, delta):
        """A reader with no directory takes the whole of it, sorted, in pages after a cursor."""
        after = 0
        try:
            while True:
                page = await self._page_of(delta, "/api/v1/sync/directory?since=0&after=%d&limit=%d" % (
                    after, PAGE), 0)
                self.cards.load_page(page)
                if not page["more"]:
                    return
                entries = page["entries"]
                if not len(entries):
                    raise SyncError("sync.response", "entries", "a page that says more must not be empty")
                after = int.from_bytes(bytes(entries[len(entries) - 10:len(entries) - 2]), "big")
        except BaseException:
            self.cards.cancel_load()
            raise

    async def _fetch_pages(self, delta, want):
        while self.cards.version < want:
            before = self.cards.version
            page = await self._page_of(delta, "/api/v1/sync/directory?since=%d&limit=%d" % (before, PAGE), before)
            self.cards.apply(page)
            if not page["more"] or self.cards.version == before:
                break

    async def once(self):
        """One sync round; raises SyncError (or a ProtocolError) when it could not finish.

        A verified answer that refuses the batch, or whose ack the reader cannot use, still
        brings newer rules and directory; the round then raises that batch problem (the
        refusal's own code), which a download error does not hide.
        """
        self.rounds += 1
        self.clock_set = self.released = False
        ack = await self.post_batch()
        refused = self.last_refusal = ack["refused"]
        # the answer is verified, so its time is the backend's own, for this request: far
        # from the reader's clock (an ESP32 boots at 2000-01-01), or a stale refusal, and
        # the reader's clock is the one that moves
        drift = ack["time"] - self.clock()
        if abs(drift) > CLOCK_SLACK or refused and refused["code"] == "batch.stale":
            self.clock.adjust(drift)  # board.now, the clock of receipts and status too
            self.clock_drift = drift
            self.clock_set = True  # the batch goes again soon, with the clock put right
        problem = refused and SyncError(refused["code"], refused["field"], refused["detail"])
        try:
            self.released = self._acknowledged(ack)
        except SyncError as e:
            problem = problem or e
        # the directory first: its parser (12 KB of code) is loaded while the heap is least
        # cut up; a rules fetch leaves the new rules scattered through it. Each download
        # is tried even when the other failed (a new reader without rules grants nothing);
        # the first problem is the error shown, and a failed download comes again next round
        if ack["directory"] > self.cards.version:
            try:
                await self.fetch_directory(ack["directory"])
            except ProtocolError as e:
                problem = problem or e
        if self.keys is not None and ack["keys"] > self.keys.version:
            try:
                await self.fetch_keys()
            except ProtocolError as e:
                problem = problem or e
        if ack["rules"] > self.rules.version:
            try:
                await self.fetch_rules()
            except ProtocolError as e:
                problem = problem or e
        if problem:
            raise problem
        self.rules.synced(self.clock())
        self.last_ok = self.clock()
        self.last_error = ""
        return ack

    def _keep_error(self):
        """The sync error on flash when it changes (status.json), for tools/flash status:
        a technician with a laptop sees why a reader does not sync, even while it is offline.
        Written only on a change, so a reader failing all day does not wear the flash."""
        if self.last_error == self._kept_error:
            return
        try:
            fsutil.write_atomic(self.flash_root.rstrip("/") + "/status.json",
                                b'{"last_error":"%s","t":%d}' % (self.last_error.encode(), self.clock()))
            self._kept_error = self.last_error
        except OSError:
            pass  # the flash itself is the trouble: the status of the next batch says so

    async def run(self):
        while True:
            self._keep_error()
            try:
                await self.once()
                self.backoff.reset()
                # straight on only while the backend takes records: a 200 that stores
                # nothing must not turn into a tight loop of batches
                more = self.journal.stats()["pending"] > 0
                await asyncio.sleep(0 if more and self.released else self.interval)
            except ProtocolError as e:
                self.last_error = e.code
                # the clock was just set from the backend's answer (a stale refusal): the
                # batch goes again soon, not after a backoff for a failure
                await asyncio.sleep(1 if self.clock_set else self.backoff.next())
            except OSError:  # httpclient turns network errors into SyncError: this is the flash
                self.last_error = "flash.io"
                await asyncio.sleep(self.backoff.next())
