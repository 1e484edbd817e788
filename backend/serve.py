"""The backend on a real WSGI server (waitress: pure Python, multi-threaded), with its auditor.

    python -m loyalty.backend.serve --port 8000 [--host 127.0.0.1] [--threads 8] [--processes 1]
                            [--db PATH] [--auditors N | --no-auditor]

Prints one line `serving on http://HOST:PORT` once the socket is bound (with --port 0
the system picks a free port: tests read it from that line). SIGTERM and Ctrl-C stop it;
SQLite's WAL keeps every committed batch even when the process is killed outright.

The daily job (backend/privacy/daily.py), a thread of the first process, folds the receipt
lines that are due and removes what is past its period at RETENTION_AT (local time).

Beside the server runs the auditor (backend/auditor.py), processes of their own: ingestion
stores receipts awaiting audit and acknowledges at once, and the auditors recompute their
discounts. They take only CPU time nothing else wants (Linux SCHED_IDLE) and let a burst
of batches pass first (up to 5 s), so an acknowledgement never waits for an audit.
--auditors N (default: one per core, at most MAX_AUDITORS) share the work by batch: during
a burst only auditor 0 audits (an auditor's CPU time slows ingestion, idle priority or
not: on the 2-core machine about 16,000 receipts/s without one, 12,000 with one), and once
the burst ends all N catch up on the backlog on every core. Each is started again if it
ends; they end with the server: stopped on SIGTERM, told by the kernel when the server
dies even by SIGKILL (Linux), and in any case they notice within half a second.

--processes N forks N-1 more server processes once the socket is bound; they all accept
on it, so N cores parse and check batches while SQLite serialises the writes. For
throughput give each process one thread (`--processes 2 --threads 1` on two cores, as
bench/backend_bench.py runs it): the threads of one process take turns for Python's
interpreter lock, and one that holds SQLite's write lock then waits for it between rows.
"""
import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import waitress
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer
from waitress.task import ErrorTask
from waitress.utilities import RequestEntityTooLarge

from loyalty import i18n
from loyalty.backend import db as dbmod
from loyalty.i18n import _
from loyalty.backend.app import create_app
from loyalty.backend.auditor import die_with_parent
from loyalty.backend.privacy.daily import DailyJob, at_time
from loyalty.protocol.canonical import encode
from loyalty.protocol.errors import ProtocolError
from loyalty.protocol.status import http_status



def make_app(database=None, config=None):
    """The app, its database checked (SchemaError when init-db is needed)."""
    cfg = {"KEEP_DB_CONNECTIONS": True}  # server threads live as long as the server
    cfg.update(config or {})
    if database:
        cfg["DATABASE"] = os.path.abspath(database)
    app = create_app(cfg)
    db = dbmod.connect(app.config["DATABASE"])
    try:
        dbmod.require_schema(db)
    finally:
        db.conn.close()
    return app


def listen(host, port, backlog=1024):
    """The bound, listening socket every server process accepts on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


class _BodyTooLarge(ErrorTask):
    """waitress's answer to a request it would not take whole. A sync request whose body
    is over waitress's own limit (max_request_body_size, twice MAX_BATCH_BYTES) gets the
    answer docs/openapi.json documents for any body over MAX_BATCH_BYTES, as the app would
    write it to a request it has not verified (ingest.record_refusal): 413, batch.too_large,
    canonical JSON, unsigned, ack and versions 0. The app never sees such a request, so
    nothing is written down (a flood of huge bodies costs no database writes), and the
    connection is closed after the answer: the rest of the body may still be on its way.
    Other errors and other paths keep waitress's own page."""

    def execute(self):
        if not (isinstance(self.request.error, RequestEntityTooLarge)
                and self.request.path.startswith("/api/v1/sync/")):
            return super().execute()
        refused = ProtocolError("batch.too_large", "body", "over %d bytes: not read"
                                % self.channel.server.adj.max_request_body_size)
        body = encode({"ack": 0, "directory": 0, "keys": 0, "refused": refused.as_dict(), "rules": 0,
                       "time": int(time.time())})
        self.status = "%d %s" % (http_status(refused.code), RequestEntityTooLarge.reason)
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class _Channel(HTTPChannel):
    error_task_class = _BodyTooLarge


def build_server(host="127.0.0.1", port=8000, threads=8, database=None, config=None, sock=None, app=None):
    """A waitress server for the app, on `sock` if given (else it binds host:port)."""
    app = app or make_app(database, config)
    # waitress's defaults fit: a request body is buffered before the app sees it, so a
    # slow reader's upload does not hold a thread. A body is refused past MAX_BATCH_BYTES
    # by the app; waitress stops buffering one at twice that (its default would take 1 GB
    # into memory or a temporary file first) and answers it as the app would (_BodyTooLarge).
    # recv_bytes: a 200-receipt batch (~180 KB) in a few reads, not twenty-odd of 8 KB.
    kw = dict(threads=threads, ident="loyalty", max_request_body_size=2 * app.config["MAX_BATCH_BYTES"],
              recv_bytes=65536)
    if sock is not None:
        server = waitress.create_server(app, sockets=[sock], **kw)
    else:
        server = waitress.create_server(app, host=host, port=port, **kw)
    # one listening server per socket (a host name may give several: then they are in its map)
    for listener in [server] + list(getattr(server, "map", {}).values()):
        if isinstance(listener, BaseWSGIServer):
            listener.channel_class = _Channel
    return server


MAX_AUDITORS = 4  # beyond a few, auditors mostly wait for each other at SQLite's one writer


def default_auditors():
    """One auditor process per core, up to MAX_AUDITORS."""
    return max(1, min(os.cpu_count() or 1, MAX_AUDITORS))


def start_auditor(database, parent=None, part=None):
    """`python -m loyalty.backend.auditor --idle` for `database`, ending when `parent` (a pid)
    does; part (k, n): auditor k of n."""
    cmd = [sys.executable, "-m", "loyalty.backend.auditor", "--db", str(database), "--idle"]
    if parent is not None:
        cmd += ["--parent", str(parent)]
    if part is not None:
        cmd += ["--part", "%d/%d" % part]
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)


class _Auditors:
    """The auditor processes (auditor k of n), each started again if it ever ends while the
    server runs: the n share the work, so every one of them must run."""

    def __init__(self, database, n):
        self.database = database
        self.parts = [(k, n) if n > 1 else None for k in range(n)]
        self.procs = [start_auditor(database, os.getpid(), part) for part in self.parts]
        self.stopping = threading.Event()
        self.watch = threading.Thread(target=self._watch, daemon=True)
        self.watch.start()

    def _watch(self):
        while not self.stopping.wait(2):
            for i, proc in enumerate(self.procs):
                if proc.poll() is not None and not self.stopping.is_set():
                    print(_("auditor ended (status %(status)s): starting it again", status=proc.returncode),
                          file=sys.stderr, flush=True)
                    self.procs[i] = start_auditor(self.database, os.getpid(), self.parts[i])

    def stop(self):
        self.stopping.set()
        self.watch.join()
        for proc in self.procs:
            _end(proc.pid, lambda: proc.poll() is not None)
            proc.wait()


def _end(pid, ended, timeout=10):
    """SIGTERM `pid`, then SIGKILL if it has not ended within `timeout` seconds."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    end = time.time() + timeout
    while not ended() and time.time() < end:
        time.sleep(0.02)
    if not ended():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _worker(app, sock, threads, parent):
    """A forked server process: serves on the shared socket until SIGTERM or its parent's end."""
    status = 0
    try:
        if die_with_parent(parent):
            server = build_server(threads=threads, sock=sock, app=app)
            try:
                server.run()
            except KeyboardInterrupt:
                pass
            finally:
                server.close()
    except BaseException:
        status = 1
    finally:
        os._exit(status)


def _fork_workers(n, app, sock, threads):
    parent = os.getpid()
    pids = []
    for _worker_number in range(n):
        pid = os.fork()
        if pid == 0:
            _worker(app, sock, threads, parent)  # never returns
        pids.append(pid)
    return pids


def _stop_workers(pids):
    done = set()

    def reaped(pid):
        if pid in done:
            return True
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                done.add(pid)
        except ChildProcessError:
            done.add(pid)
        return pid in done

    for pid in pids:
        _end(pid, lambda: reaped(pid))
    for pid in pids:
        if pid not in done:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass


def main(argv=None):
    i18n.for_commands()
    ap = argparse.ArgumentParser(prog="loyalty-backend", description=_("The backend on waitress, a multi-threaded "
                                                                       "WSGI server, with its auditor."))
    ap.add_argument("--host", default="127.0.0.1", help=_("the address to listen on"))
    ap.add_argument("--port", type=int, default=8000, help=_("the port (0: any free one)"))
    ap.add_argument("--threads", type=int, default=8, help=_("request threads per server process"))
    ap.add_argument("--processes", type=int, default=1, help=_("server processes sharing the socket"))
    ap.add_argument("--db", help=_("SQLite file (default: the instance folder's loyalty.db)"))
    ap.add_argument("--auditors", type=int, default=default_auditors(),
                    help=_("auditor processes, sharing the work (default: one per core, at most %(max)d)",
                           max=MAX_AUDITORS))
    ap.add_argument("--no-auditor", dest="auditors", action="store_const", const=0,
                    help=_("do not start the auditor (receipts wait for `flask audit` or another auditor)"))
    args = ap.parse_args(argv)
    try:
        app = make_app(args.db)
        at_time(app.config["RETENTION_AT"])  # a wrong hour stops the start, not a night's job
        sock = listen(args.host, args.port)
    except (dbmod.SchemaError, ValueError) as e:
        raise SystemExit(_("cannot start: %(error)s", error=e))
    except OSError as e:
        raise SystemExit(_("cannot listen on %(host)s:%(port)d: %(error)s", host=args.host, port=args.port,
                           error=e.strerror or e))

    def stop(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    workers, auditor, server, daily = [], None, None, None
    try:
        # fork before any thread starts (the auditor's watch, waitress's own)
        workers = _fork_workers(max(0, args.processes - 1), app, sock, args.threads)
        if args.auditors > 0:
            auditor = _Auditors(app.config["DATABASE"], args.auditors)
        # the fold of due receipt lines and retention, every day at RETENTION_AT
        daily = DailyJob(app.config["DATABASE"], app.config)
        # a connection held open for the server's life: otherwise each request's connection
        # is the last one when it closes, and SQLite then checkpoints the whole WAL into the
        # database file (and fsyncs) inside that request
        keeper = dbmod.connect(app.config["DATABASE"])
        try:
            server = build_server(threads=args.threads, sock=sock, app=app)
            # the URL is what programs starting the server read (sim/backendproc.py)
            print(_("serving on %(url)s", url="http://%s:%s" % (args.host, sock.getsockname()[1])), flush=True)
            server.run()
        finally:
            keeper.conn.close()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the shutdown short
        if server is not None:
            server.close()
        _stop_workers(workers)
        if auditor is not None:
            auditor.stop()
        if daily is not None:
            daily.stop()
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
