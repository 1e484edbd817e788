"""pcscd for the PC/SC tests: started here with a vpcd reader of our own, stopped after.

    with Pcscd(tmp_dir) as pcscd:         # refuses if another pcscd is running
        pcscd.port, pcscd.readers         # vpcd's first port; its two readers' names
        card = VirtualCard(applet, port=pcscd.port)   # sim/vpcdcard.py

pcscd 1.9 keeps its socket and pid file in /run/pcscd whatever its options, so only one
can run on a machine. A pcscd someone else started is never stopped or killed here: the
tests refuse to start and say so. Ours runs in the foreground (-f) with a reader.conf.d
of its own (-c) whose vpcd entry listens on free ports (DEVICENAME /dev/null:<port>:
server mode on that port; vpcd 0.8 opens two slots, on <port> and <port>+1). It is
ready when pyscard lists both vpcd readers; a card then connects to vpcd itself,
retrying until the port accepts (vpcdcard.VirtualCard.insert).
"""
import ctypes
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from smartcard import scard

PCSCD = "/usr/sbin/pcscd"
VPCD_DRIVER = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so"
RUN_DIR = Path("/run/pcscd")
NAME = "Sconto test vpcd"
SLOTS = 2  # vpcd 0.8 (vsmartcard 3.3) offers two slots per reader.conf entry


class PcscdError(Exception):
    """pcscd could not be started for the tests; the message says why."""


def _die_with_parent():
    # in the child before exec: a test run that is killed outright (no teardown) must not
    # leave its pcscd behind holding /run/pcscd (Linux prctl PR_SET_PDEATHSIG)
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def running_pcscd():
    """The pid of a pcscd that is running now (by its pid file or a live socket), or None.
    -1 when only its socket answers (a pcscd started by systemd's socket, say)."""
    try:
        # pcscd writes its pid with a newline and a NUL after it
        pid = int((RUN_DIR / "pcscd.pid").read_text().strip("\x00\n\t ") or 0)
    except (OSError, ValueError):
        pid = 0
    if pid and _alive(pid):
        return pid
    comm = RUN_DIR / "pcscd.comm"
    if comm.exists():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(str(comm))
            return -1
        except OSError:
            pass
        finally:
            s.close()
    return None


def _port_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("0.0.0.0", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port_pair():
    """A TCP port p with p+1 free too (vpcd's two slots)."""
    for _ in range(50):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("0.0.0.0", 0))
        port = s.getsockname()[1]
        s.close()
        if port < 65535 and all(_port_free(port + i) for i in range(SLOTS)):
            return port
    raise PcscdError("no two free TCP ports in a row for vpcd")


def listening(port):
    """Does anything accept TCP connections on `port` (loopback)? Used only after pcscd
    stopped: a probe on a live vpcd port would be taken for a card."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


class Pcscd:
    """One pcscd of ours with vpcd's readers on `port` (a free pair if None)."""

    def __init__(self, workdir, port=None):
        self.workdir = Path(workdir)
        self.port = port
        self.proc = None
        self.log = self.workdir / "pcscd.log"
        self.readers = []

    def start(self, timeout=30.0):
        other = running_pcscd()
        if other:
            raise PcscdError("a pcscd the tests did not start is running (%s): the tests need their own; "
                             "stop it yourself (it is not theirs to kill)"
                             % ("pid %d" % other if other > 0 else "its socket %s answers" % (RUN_DIR / "pcscd.comm")))
        if self.port is None:
            self.port = free_port_pair()
        conf = self.workdir / "reader.conf.d"
        conf.mkdir(parents=True, exist_ok=True)
        (conf / "vpcd").write_text('FRIENDLYNAME "%s"\nDEVICENAME   /dev/null:%d\nLIBPATH      %s\nCHANNELID    %d\n'
                                   % (NAME, self.port, VPCD_DRIVER, self.port))
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([PCSCD, "--foreground", "--info", "--config", str(conf)],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         preexec_fn=_die_with_parent)
        want = ["%s %02X %02X" % (NAME, 0, slot) for slot in range(SLOTS)]
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                code, self.proc = self.proc.returncode, None
                raise PcscdError("pcscd stopped at once (exit %s): %s" % (code, self.log_tail()))
            names = self._readers()
            if all(w in names for w in want):
                self.readers = want
                return self
            if time.monotonic() >= deadline:
                self.stop()
                raise PcscdError("pcscd did not list the vpcd readers within %g s: %s" % (timeout, self.log_tail()))
            time.sleep(0.05)  # the pause between two looks at the reader list, not a wait: the loop waits

    def _readers(self):
        code, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if code != scard.SCARD_S_SUCCESS:
            return []
        try:
            code, names = scard.SCardListReaders(ctx, [])
            return list(names) if code == scard.SCARD_S_SUCCESS else []
        finally:
            scard.SCardReleaseContext(ctx)

    def log_tail(self, n=15):
        try:
            return " | ".join(self.log.read_text(errors="replace").strip().splitlines()[-n:])
        except OSError:
            return "(no log)"

    def stop(self):
        """Stop our pcscd (SIGTERM, then SIGKILL after 5 s) and no other."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # pcscd cleans /run/pcscd on SIGTERM
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        # after a SIGKILL its files stay behind: remove them only if they name our pcscd
        pidfile = RUN_DIR / "pcscd.pid"
        try:
            ours = int(pidfile.read_text().strip("\x00\n\t ")) == proc.pid
        except (OSError, ValueError):
            ours = False
        if ours:
            for f in (pidfile, RUN_DIR / "pcscd.comm"):
                try:
                    f.unlink()
                except OSError:
                    pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
