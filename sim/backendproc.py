"""The backend as a separate process on a real WSGI server, for tests, the demo and the bench.

    with Backend(db_path, instance) as b:      # python -m loyalty.backend.serve on a free port
        b.url                                    # http://127.0.0.1:PORT
        b.kill()                                 # SIGKILL, as a crash or a pulled plug
        b.start()                                # again, on the same port and database
    dash = Dashboard(b.url); dash.login("manager", "password"); dash.json("/stores.json")
    dash.post("/customers/7/contacts", {...}, form_page="/customers/7")   # a form, with its CSRF token

The server runs in a session (process group) of its own with its auditor and any extra
server processes (backend/serve.py), so kill() takes them all down at once, as a power
cut would, and Ctrl-C in a terminal reaches only the caller (the demo stops it cleanly).
The database must exist and be migrated (backend.db.migrate) before start().
"""
import http.cookiejar
import json
import os
import select
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class Backend:
    def __init__(self, database, instance, port=0, threads=8, env=None, log=None, processes=1, auditor=True):
        self.database = str(database)
        self.instance = str(instance)
        self.port = port
        self.threads = threads
        self.processes = processes
        self.auditor = auditor
        self.env = env or {}
        self.log = log
        self.proc = None
        self.url = None

    def start(self, timeout=30):
        env = dict(os.environ)
        for name, value in self.env.items():  # None takes a variable out (LOYALTY_LANG, ...)
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        env["LOYALTY_INSTANCE"] = self.instance
        cmd = [sys.executable, "-m", "loyalty.backend.serve", "--port", str(self.port),
               "--threads", str(self.threads), "--processes", str(self.processes), "--db", self.database]
        if not self.auditor:
            cmd.append("--no-auditor")
        err = open(self.log, "ab") if self.log else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen(cmd, env=env, cwd=str(ROOT), stdout=subprocess.PIPE,
                                         stderr=err, start_new_session=True)
        finally:
            if self.log:
                err.close()
        end = time.time() + timeout
        line = b""
        while time.time() < end:
            # a server stuck before its first line must not hang the caller past `timeout`
            ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, end - time.time()))
            if not ready:
                break
            line = self.proc.stdout.readline()
            if b" http://" in line:  # "serving on URL", in whichever language the server speaks
                self.url = line.split()[-1].decode()
                self.port = int(self.url.rsplit(":", 1)[1])  # a restart keeps the port
                return self
            if not line and self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError("the backend did not start: %r (see %s)" % (line, self.log))

    def kill(self):
        """SIGKILL to the server and everything it started: no clean shutdown, no flush;
        what SQLite committed must survive. Returns once none of them runs any more."""
        self._kill_group()
        self.proc.wait()
        self._wait_group_gone()
        self.proc.stdout.close()

    def stop(self):
        """SIGTERM: the server stops its auditor and its other processes, then ends."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                pass
        if self.proc.poll() is None or group_members(self.proc.pid):
            self._kill_group()  # whatever is left of the group (nothing, after a clean stop)
        self.proc.wait()
        self._wait_group_gone()
        self.proc.stdout.close()
        self.proc = None

    def _kill_group(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the session leader's pid is the group's id
        except (ProcessLookupError, PermissionError):
            pass

    def _wait_group_gone(self, timeout=10):
        """Wait until no live process is left in the server's group (a killed server process
        still holding the listening socket would keep a restart off its port)."""
        end = time.time() + timeout
        while time.time() < end and group_members(self.proc.pid):
            time.sleep(0.02)  # the pause between two looks, not a wait: the loop waits on the group

    def pids(self):
        """The live processes of the server's group (the server, its auditor, its workers)."""
        return group_members(self.proc.pid) if self.proc is not None else []

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def group_members(pgid):
    """Pids of the live (not zombie) processes in process group `pgid` (Linux /proc)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()  # after "pid (comm) ": state ppid pgrp ...
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            found.append(int(name))
    return found


class Dashboard:
    """A manager's HTTP session with the dashboard: log in, read the JSON twins, send a form."""

    def __init__(self, url):
        self.url = url
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def login(self, username, password):
        self.post("/login", {"username": username, "password": password}, form_page="/login")
        return self

    def post(self, path, form, form_page):
        """Send `form` to `path` as a browser would: with the CSRF token of the page the
        form is on (`form_page`). Returns the answer's text (after any redirect)."""
        import re

        with self.opener.open(self.url + form_page, timeout=10) as r:
            page = r.read().decode()
        m = re.search(r'name="csrf_token"\s+value="([^"]+)"', page) or \
            re.search(r'value="([^"]+)"\s+name="csrf_token"', page)
        form = dict(form)
        if m:
            form["csrf_token"] = m.group(1)
        data = urllib.parse.urlencode(form).encode()
        with self.opener.open(self.url + path, data=data, timeout=10) as r:
            return r.read().decode()

    def json(self, path):
        with self.opener.open(self.url + path, timeout=10) as r:
            return json.loads(r.read())
