"""The server's daily job: the fold of due receipt lines and retention
(backend/privacy/retention.run), once a day at RETENTION_AT, the server's local time,
outside opening hours (default 03:30).

It runs in a thread of the server's main process (backend/serve.py starts it after the
server processes are forked). A failure is written to stderr and the job tries again the
next day; it never stops the server. A server killed mid-run leaves whole chunks only,
and the next run finishes the job (retention.py).

    job = DailyJob("instance/loyalty.db", app.config)   # starts at once, waits for the hour
    job.stop()
"""
import datetime
import sys
import threading
import time
import traceback

from loyalty.backend import db as dbmod
from loyalty.backend.privacy import retention
from loyalty.i18n import _


def at_time(text):
    """(hour, minute) of "HH:MM"; ValueError naming RETENTION_AT otherwise."""
    try:
        hour, minute = (int(part) for part in str(text).split(":"))
    except ValueError:
        hour = minute = -1
    if not (0 <= hour < 24 and 0 <= minute < 60):
        raise ValueError(_("RETENTION_AT: give a local time as HH:MM, e.g. 03:30 (got %(value)r)", value=text))
    return hour, minute


def next_run(now_local, hour, minute):
    """The first local datetime at hour:minute strictly after `now_local` (aware)."""
    run = now_local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if run <= now_local:
        run = (run + datetime.timedelta(days=1)).replace(hour=hour, minute=minute)
    return run


def run_once(database, settings, now=None):
    """One fold and retention on `database`; -> retention.run's {kind: count}."""
    db = dbmod.connect(database)
    try:
        return retention.run(db, int(time.time()) if now is None else now, settings)
    finally:
        db.conn.close()


class DailyJob:
    """The thread that waits for RETENTION_AT and runs the job, every day until stop()."""

    def __init__(self, database, settings):
        self.database = database
        self.settings = settings
        self.hour, self.minute = at_time(settings.get("RETENTION_AT", "03:30"))
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="daily-retention", daemon=True)
        self.thread.start()

    def _loop(self):
        while True:
            now = datetime.datetime.now().astimezone()
            wait = (next_run(now, self.hour, self.minute) - now).total_seconds()
            if self.stopping.wait(wait):
                return
            try:
                removed = run_once(self.database, self.settings)
                print(_("daily retention: %(counts)s", counts=", ".join(
                    "%s %d" % (k, n) for k, n in removed.items())), file=sys.stderr, flush=True)
            except Exception:  # anything: logged, the server goes on, tomorrow tries again
                print(_("daily retention failed; it runs again tomorrow:"), file=sys.stderr, flush=True)
                traceback.print_exc(file=sys.stderr)

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=5)
