"""The auditor: audits the receipts that ingestion stored awaiting audit (audit NULL).

Ingestion (backend/sync/ingest.py) stores a batch and acknowledges it at once; the auditor
recomputes the discounts afterwards, beside the web server (backend/serve.py starts it as
its own process, so it has a core of its own), with exactly the verdicts backend/audit.py
gives: the receipts are taken oldest first, and each batch's receipts are audited
together, in seq order, against what was stored before that batch (the stored sales and
their returns, the card's day usage from the stored receipts before it, the rules by
version, the tiers each card had: backend/cardstates.py, read once per chunk for all
its cards). A receipt's verdict depends only on receipts stored before it, which never
change, so an audit interrupted by a crash is done again after a restart with the same
verdicts, and two auditors at once write each verdict once (UPDATE ... WHERE audit IS NULL).

The server's auditors (--idle) run only on CPU time nothing else wants, and let a burst
of batches pass before they write (run's `patience`): their writes take SQLite's write lock
from ingestion. The server starts one per core (backend/serve.py), sharing the work by
batch (--part K/N): only auditor 0 audits alongside a burst, all of them catch up after
it. Which auditor audits a batch changes no verdict. The reader page shows how many
receipts still await audit.

    book = RulesBook()
    audit_pending(db, book)              # -> how many receipts it audited (up to 500)
    audit_pending(db, book, part=(1, 2)) # only the batches with an odd id
    run("instance/loyalty.db", stop=threading.Event(), interval=0.5)   # until stop is set

    python -m loyalty.backend.auditor --db instance/loyalty.db [--once] [--idle] [--parent PID]
                                      [--part K/N]
    flask --app loyalty.backend.app audit        # once, from a shell (backend/cli.py)
"""
import argparse
import contextlib
import json
import os
import signal
import sys
import threading

from loyalty.backend import db as dbmod
from loyalty.backend.audit import MISMATCH, OK, Auditor, RulesBook
from loyalty.backend.cardstates import CardStates
from loyalty import i18n
from loyalty.i18n import _, ngettext

CHUNK = 500  # receipts per transaction: a chunk's UPDATEs hold the write lock for a few ms
BIG_CHUNK = 4 * CHUNK  # when behind: fewer transactions and re-read batch starts, 20 ms of lock each


def pending_sql(limit, part=None):
    """The oldest receipts awaiting audit. rowid order is storing order, so each reader's
    receipts come in seq order (a reader's receipts are stored in seq order, never
    deleted), and idx_receipts_audit gives them without sorting the whole backlog.
    part (k, n): only those of the batches whose id is k modulo n (one auditor of n)."""
    if part is None:
        return ("SELECT rowid, reader_id, seq, batch_id, record FROM receipts WHERE audit IS NULL "
                "ORDER BY rowid LIMIT ?", [limit])
    k, n = part
    return ("SELECT rowid, reader_id, seq, batch_id, record FROM receipts WHERE audit IS NULL "
            "AND coalesce(batch_id, 0) % ? = ? ORDER BY rowid LIMIT ?", [n, k, limit])


def awaiting_sql(reader_id=None):
    """How many receipts (of one reader) await audit. `+reader_id` keeps SQLite on the
    audit index (the backlog is small) instead of scanning all of a reader's receipts."""
    if reader_id is None:
        return "SELECT count(*) FROM receipts WHERE audit IS NULL", []
    return "SELECT count(*) FROM receipts WHERE audit IS NULL AND +reader_id = ?", [reader_id]


def awaiting(db, reader_id=None):
    sql, params = awaiting_sql(reader_id)
    return db.execute(sql, params).fetchone()[0]


def _first_fresh(db, batch_id, seq):
    """The first seq the batch `batch_id` stored (its fresh records are the last `fresh`
    of its records); `seq` when the batch is unknown (receipts stored some other way)."""
    if batch_id is not None:
        row = db.execute("SELECT last_seq, fresh FROM batches WHERE id=?", [batch_id]).fetchone()
        if row is not None and row[0] is not None and row[1]:
            first = row[0] - row[1] + 1
            if 1 <= first <= seq:
                return first
    return seq


def _runs(rows):
    """Split rows (rowid, reader, seq, batch_id, record) into runs of one reader's batch,
    in (reader, seq) order."""
    rows = sorted(rows, key=lambda r: (r[1], r[2]))
    run = []
    for row in rows:
        if run and (row[1] != run[-1][1] or row[3] != run[-1][3] or row[2] != run[-1][2] + 1):
            yield run
            run = []
        run.append(row)
    if run:
        yield run


def _audit_run(db, book, run, states=None):
    """Verdicts [(verdict, detail, reader, seq)] for one run of a reader's batch, audited as
    ingestion audited the batch: an Auditor over what was stored before the batch, fed the
    batch's receipts from its first one (those already audited only rebuild its state).
    states: the chunk's CardStates (the cards' tier histories, shared by its runs)."""
    reader, first_pending, batch_id = run[0][1], run[0][2], run[0][3]
    first = _first_fresh(db, batch_id, first_pending)
    earlier = []
    if first < first_pending:
        earlier = [_load(r[0]) for r in db.execute(
            "SELECT record FROM receipts WHERE reader_id=? AND seq>=? AND seq<? ORDER BY seq",
            [reader, first, first_pending])]
    records = [_load(r[4]) for r in run]
    stored_t = None
    if first > 1:
        row = db.execute("SELECT t FROM receipts WHERE reader_id=? AND seq=?", [reader, first - 1]).fetchone()
        stored_t = row[0] if row else None
    cards = {rec.get("card") for rec in earlier + records
             if isinstance(rec, dict) and rec.get("kind") == "sale" and rec.get("discount")}
    auditor = Auditor(db, reader, book, first - 1, stored_t, cards, states)
    for rec in earlier:
        _check(auditor, rec)
    return [(_check(auditor, rec) if row[4] is not None else FOLDED_UNAUDITED) + (row[1], row[2])
            for row, rec in zip(run, records)]


# retention folds every receipt older than the profiling period, audited or not
# (backend/privacy/retention.py): one that comes to the audit only then has no lines
FOLDED_UNAUDITED = (MISMATCH, "not audited: its lines were folded before the audit (older than the profiling period)")


def _load(text):
    try:
        rec = json.loads(text)
    except (TypeError, ValueError):  # TypeError: NULL, a receipt whose lines were folded
        return None
    return rec if isinstance(rec, dict) and isinstance(rec.get("seq"), int) else None


def _check(auditor, rec):
    """Auditor.check, but a receipt nobody could have stored through the sync API (not a
    record) is flagged instead of stopping the audit of everything after it."""
    if rec is None:
        return MISMATCH, "the audit cannot read this receipt's record"
    return auditor.check(rec)


def audit_pending(db, book, limit=CHUNK, verdicts=None, part=None):
    """Audit up to `limit` receipts awaiting audit, oldest first; returns how many this call
    wrote (a receipt another auditor wrote meanwhile is not counted twice).

    The audit reads outside any write transaction (what it reads never changes); the
    verdicts are written in one transaction. `verdicts`: a dict to which the counts of
    'ok' and 'mismatch' written are added.
    """
    sql, params = pending_sql(limit, part)
    rows = db.execute(sql, params).fetchall()
    if not rows:
        return 0
    results = []
    states = CardStates(db)  # a card's tier history is read once a chunk, whatever its runs
    for run in _runs(rows):
        results.extend(_audit_run(db, book, run, states))
    written = {}
    with _full_priority():
        with dbmod.transaction(db):
            for verdict in (OK, MISMATCH):
                cur = db.conn.executemany(
                    "UPDATE receipts SET audit=?, audit_detail=? WHERE reader_id=? AND seq=? AND audit IS NULL",
                    [r for r in results if r[0] == verdict])
                written[verdict] = max(cur.rowcount, 0)
    if verdicts is not None:
        for verdict, n in written.items():
            verdicts[verdict] = verdicts.get(verdict, 0) + n
    return sum(written.values())


def audit_all(db, book=None, limit=CHUNK):
    """Audit until nothing awaits; returns {"ok": n, "mismatch": m}."""
    book = book or RulesBook()
    verdicts = {OK: 0, MISMATCH: 0}
    while audit_pending(db, book, limit, verdicts) or awaiting(db):
        pass
    return verdicts


def summary(verdicts):
    """'audited 3 receipts, 1 mismatch' for audit_all's counts."""
    n = verdicts[OK] + verdicts[MISMATCH]
    m = verdicts[MISMATCH]
    return _("%(audited)s, %(mismatches)s", audited=ngettext("audited %(num)d receipt", "audited %(num)d receipts", n),
             mismatches=ngettext("%(num)d mismatch", "%(num)d mismatches", m))


def last_batch_sql():
    return "SELECT max(id) FROM batches", []


def run(path, stop, interval=0.5, limit=CHUNK, log=None, patience=5.0, part=None, most=BIG_CHUNK):
    """Audit what awaits audit in the database at `path` until `stop` (a threading.Event)
    is set: chunk after chunk while there is a backlog, then a look every `interval` s.

    While batches keep arriving (a burst), it waits, up to `patience` seconds in a row:
    every audit chunk it writes takes SQLite's write lock from ingestion and makes the
    server processes read their pages again. Once a look finds no new batch it audits
    the backlog; under load that lasts longer than `patience` it audits alongside.
    A chunk is `limit` receipts; while chunks come back full (a backlog) each is twice
    the one before, up to `most`.

    part (k, n): this is auditor k of n, the work shared by batch (pending_sql). When a
    look finds no new batch each audits its own share, so n cores catch up on a backlog
    together; during a burst auditor 0 audits every share (after its patience, as a lone
    auditor does) and the others wait, so a burst meets one auditor, not n: every CPU
    second an auditor takes under load, even at idle priority, slows ingestion.

    An error (the database busy past its timeout, a full disk) is reported to `log` and
    the audit tried again after `interval`: the receipts stay awaiting audit."""
    helper = part is not None and part[0] != 0
    db = dbmod.connect(path)
    book = RulesBook()
    sql, params = last_batch_sql()
    try:
        seen = db.execute(sql, params).fetchone()[0]
        waited = 0.0
        size = limit
        while not stop.is_set():
            try:
                newest = db.execute(sql, params).fetchone()[0]
                burst, seen = newest != seen, newest
                if burst and (helper or waited < patience):
                    waited += interval
                    stop.wait(interval)
                    continue
                if not burst:
                    waited = 0.0
                n = audit_pending(db, book, size, part=None if burst else part)
            except Exception as e:  # noqa: BLE001 -- the receipts stay awaiting audit
                if log:
                    log("audit: %s: %s (trying again in %s s)" % (type(e).__name__, e, interval))
                n = 0
            if n < size:
                size = limit
                stop.wait(interval)
            else:
                size = min(2 * size, max(most, limit))
    finally:
        db.conn.close()


_IDLE = {"on": False, "boost": True}  # on SCHED_IDLE; may we leave it while we write?


def run_when_idle():
    """Let this process have only CPU time that nothing else wants: the server's requests
    come first (an acknowledgement must not wait for an audit), the audit catches up after."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        _IDLE["on"] = True
    except (AttributeError, OSError):
        try:
            os.nice(19)
        except OSError:
            pass


@contextlib.contextmanager
def _full_priority():
    """Normal scheduling while we hold SQLite's write lock: an auditor starved of CPU in
    the middle of its transaction would keep every ingesting request waiting for the lock.
    (Leaving SCHED_IDLE needs RLIMIT_NICE or CAP_SYS_NICE; without them we write as we are.)"""
    boosted = False
    if _IDLE["on"] and _IDLE["boost"]:
        try:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
            boosted = True
        except OSError:
            _IDLE["boost"] = False
    try:
        yield
    finally:
        if boosted:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


def die_with_parent(parent):
    """End this process when `parent` (a pid) dies, even by SIGKILL: Linux delivers
    SIGTERM on the parent's death (prctl PR_SET_PDEATHSIG); elsewhere run() notices it
    within its interval. Returns False when the parent is already gone."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    return os.getppid() == parent


class _Stop(threading.Event):
    """Set when the parent that started us is gone (SIGTERM and SIGINT interrupt run())."""

    def __init__(self, parent=None):
        super().__init__()
        self.parent = parent

    def is_set(self):
        if self.parent is not None and os.getppid() != self.parent:
            self.set()
        return super().is_set()


def _part(text):
    """'K/N' -> (K, N), auditor K of N."""
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        k = n = -1
    if not 0 <= k < n:
        raise argparse.ArgumentTypeError(_("%(part)s is not K/N with 0 <= K < N", part=text))
    return k, n


def main(argv=None):
    i18n.for_commands()
    ap = argparse.ArgumentParser(prog="python -m loyalty.backend.auditor",
                                 description=_("The auditor: recomputes the discount of every stored receipt."))
    ap.add_argument("--db", required=True, help=_("the backend's SQLite file"))
    ap.add_argument("--once", action="store_true", help=_("audit what awaits audit now, print the counts, exit"))
    ap.add_argument("--interval", type=float, default=0.5, help=_("seconds between looks when nothing awaits"))
    ap.add_argument("--parent", type=int, help=_("exit when this process (the server) is gone"))
    ap.add_argument("--idle", action="store_true",
                    help=_("run only on a core nothing else wants (Linux SCHED_IDLE; elsewhere nice 19)"))
    ap.add_argument("--patience", type=float, default=5.0,
                    help=_("seconds at most to let a burst of batches pass before auditing alongside it"))
    ap.add_argument("--part", type=_part, metavar="K/N",
                    help=_("auditor K of N (0 to N-1) sharing the work: all N must run"))
    args = ap.parse_args(argv)
    if args.idle:
        run_when_idle()
    db = dbmod.connect(args.db)
    try:
        dbmod.require_schema(db)
        if args.once:
            print(summary(audit_all(db)))
            return 0
    except dbmod.SchemaError as e:
        raise SystemExit(_("cannot audit: %(error)s", error=e))
    finally:
        db.conn.close()
    stop = _Stop(args.parent)

    def on_signal(*_):
        # an exception, not stop.set(): a handler that takes the Event's lock can deadlock
        # with the main thread holding it inside Event.wait
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if args.parent is not None and not die_with_parent(args.parent):
        return 0
    try:
        run(args.db, stop, args.interval, log=lambda s: print(s, file=sys.stderr, flush=True),
            patience=args.patience, part=args.part)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
