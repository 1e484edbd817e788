"""The backend on a real WSGI server (waitress: pure Python, multi-threaded).

    python -m backend.serve --port 8000 [--host 127.0.0.1] [--threads 8] [--db PATH]

Prints one line `serving on http://HOST:PORT` once the socket is bound (with --port 0
the system picks a free port: tests read it from that line). SIGTERM and Ctrl-C stop it;
SQLite's WAL keeps every committed batch even when the process is killed outright.
"""
import argparse
import os
import signal
import sys

import waitress

from backend import db as dbmod
from backend.app import create_app


def build_server(host="127.0.0.1", port=8000, threads=8, database=None, config=None):
    cfg = dict(config or {})
    if database:
        cfg["DATABASE"] = os.path.abspath(database)
    app = create_app(cfg)
    db = dbmod.connect(app.config["DATABASE"])
    try:
        dbmod.require_schema(db)
    finally:
        db.conn.close()
    # waitress's defaults fit: a request body is buffered before the app sees it, so a
    # slow reader's upload does not hold a thread; the app caps what it will read
    # a body is refused past MAX_BATCH_BYTES by the app; waitress stops buffering one at
    # twice that (its default would take 1 GB into memory or a temporary file first)
    return waitress.create_server(app, host=host, port=port, threads=threads, ident="loyalty",
                                  max_request_body_size=2 * app.config["MAX_BATCH_BYTES"])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--db", help="SQLite file (default: the instance folder's loyalty.db)")
    args = ap.parse_args(argv)
    try:
        server = build_server(args.host, args.port, args.threads, args.db)
    except dbmod.SchemaError as e:
        raise SystemExit("cannot start: %s" % e)
    except OSError as e:
        raise SystemExit("cannot listen on %s:%d: %s" % (args.host, args.port, e.strerror or e))

    def stop(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print("serving on http://%s:%s" % (args.host, server.effective_port), flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
