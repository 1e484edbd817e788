"""The virtual board: a reader without hardware, for tools/flash's tests and for trying it.

The MicroPython unix port behind a TCP socket that mpremote (and tools/flash) reach
with a `socket://127.0.0.1:PORT` URL, its flash a folder. It behaves as a board on its
USB serial line does where the unix port does not:
- the friendly REPL (`>>> `, lines echoed and run) and the raw REPL: Ctrl-A enters it,
  code ends with Ctrl-D and answers "OK", output, 0x04, error output, 0x04, ">";
  raw-paste mode (Ctrl-E A Ctrl-A, flow-controlled windows) as mpremote uses it;
  Ctrl-B back to the friendly REPL;
- Ctrl-C interrupts what runs (code in the REPL, or the firmware);
- Ctrl-D soft reset: a fresh interpreter, "soft reboot"; from the friendly REPL it then
  runs main.py from the folder, as a board does after a reset (from the raw REPL it does
  not: mpremote's soft reset there must not start the firmware).
- at power-on (start()) it runs main.py if there is one.

The unix port's own REPL is not used. Over a pty it does enter the raw REPL on Ctrl-A
and run code (checked with 1.29), but Ctrl-D there ends the process rather than soft-
resetting into main.py, and its files are the host's. So this host process speaks the
REPL protocol and runs the code in a MicroPython process started for each boot (the
REPL's interpreter, or main.py), which it kills on a soft reset.

The folder is "/": each MicroPython process unmounts the host's root and mounts the
folder at "/" (a small VFS over vfs.VfsPosix, see _MOUNT), so "/config.json", "/journal/..." and os.statvfs("/")
are the folder's, and imports come from "/" and "/lib" (then the port's frozen modules,
asyncio among them), as on the ESP32. The board's stand-ins for the ESP32's parts (the
pins, the sockets to the simulators: sim/board/, built into build/mpysim) are the board's
hardware, not its flash: for main.py only, they are mounted at "/sim", last on the path
(_PARTS); the REPL, and so a deploy or a listing of "/", never sees them.

Peripherals: the firmware on this board has no UART and no PN532. At each boot of main.py
the board writes "/.vboard/config.json": the device's /config.json with `overlay` on top
(e.g. {"board": "sim", "till": "127.0.0.1:7001", "cards": "127.0.0.1:7002"}, the
simulators' sockets), and points the firmware's READER_CONFIG at it; without an overlay,
the firmware reads /config.json itself.

    with VirtualBoard(tmp / "flash", overlay={...}) as vb:
        vb.url                        # socket://127.0.0.1:PORT
        vb.firmware_running()         # main.py runs now
        vb.disconnect()               # a cable pulled: the current connection drops
    python -m loyalty.sim.vboard FOLDER [--port 7700]   (starts a till and a card simulator)
"""
import argparse
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path


HEAP = "352k"  # the simulated board's heap (sim/simboard.py says why)
BANNER = b"MicroPython (virtual board) on unix\r\nType \"help()\" for more information.\r\n"
RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n>"
PASTE_WINDOW = 512

# Mounts the folder at "/" in a fresh interpreter: the first lines of every process.
# Not vfs.VfsPosix(folder) itself: its rename() loses the first path when it has a root
# (both paths share one buffer; MicroPython 1.29 preview), and the firmware renames files
# all the time. So a small VFS in Python maps "/x" to FOLDER/x on a root-less VfsPosix.
_MOUNT = """\
import vfs, os, sys
class _Folder:
    def __init__(self, root):
        self.root, self.v, self.cwd = root, vfs.VfsPosix(), "/"
    def _p(self, path):
        if not path.startswith("/"):
            path = self.cwd.rstrip("/") + "/" + path
        parts = []
        for x in path.split("/"):
            if x == "..":
                if parts:
                    parts.pop()
            elif x and x != ".":
                parts.append(x)
        return self.root + "/" + "/".join(parts)
    def mount(self, readonly, mkfs):
        pass
    def umount(self):
        pass
    def open(self, path, mode):
        return self.v.open(self._p(path), mode)
    def ilistdir(self, path):
        return self.v.ilistdir(self._p(path))
    def stat(self, path):
        return self.v.stat(self._p(path))
    def statvfs(self, path):
        return self.v.statvfs(self._p(path))
    def mkdir(self, path):
        return self.v.mkdir(self._p(path))
    def rmdir(self, path):
        return self.v.rmdir(self._p(path))
    def remove(self, path):
        return self.v.remove(self._p(path))
    def rename(self, a, b):
        return self.v.rename(self._p(a), self._p(b))
    def chdir(self, path):
        p = self._p(path)
        self.v.stat(p)
        self.cwd = "/" + p[len(self.root):].strip("/")
    def getcwd(self):
        return self.cwd
vfs.umount("/")
vfs.mount(_Folder(%r), "/")
os.chdir("/")
sys.path[:] = ["", "/", "/lib", ".frozen"]
"""

# The firmware's process only: the simulated board's parts at "/sim", after everything else.
_PARTS = """vfs.mount(_Folder(%r), "/sim")
sys.path.append("/sim")
"""

# The REPL's interpreter: reads "R<len>\\n" or "F<len>\\n" and that much code from stdin,
# runs it in one namespace (state carries from one command to the next, as mpremote's
# file copy needs), and answers output, 0x04, error output, 0x04: the raw REPL's framing.
_REPL = """\
del vfs, os, sys
import sys
_g = {"__name__": "__main__"}
_i, _o = sys.stdin.buffer, sys.stdout.buffer
while True:
    try:
        _h = _i.readline()
        if not _h:
            break
        _n = int(_h[1:])
        _s = b""
        while len(_s) < _n:
            _c = _i.read(_n - len(_s))
            if not _c:
                break
            _s += _c
        try:
            exec(compile(_s.decode(), "<stdin>", "exec" if _h[:1] == b"R" else "single"), _g)
            _o.write(b"\\x04")
        except BaseException as _e:
            _o.write(b"\\x04")
            sys.print_exception(_e, sys.stdout)
        _o.write(b"\\x04")
    except KeyboardInterrupt:
        _o.write(b"\\x04\\x04")
"""

_FIRMWARE = """\
try:
    f = open("/main.py")
except OSError:
    raise SystemExit(0)
_src = f.read()
f.close()
del f, vfs, os, sys
exec(_src, {"__name__": "__main__"})
"""


def micropython():
    here = Path(sys.executable).parent / "micropython"
    return str(here) if here.exists() else "micropython"


class VirtualBoard:
    def __init__(self, folder, heap=HEAP, overlay=None, log=None, host="127.0.0.1", port=0):
        self.folder = Path(folder).resolve()
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)  # the device's flash holds its key
        self.heap = heap
        self.overlay = overlay
        self.log = log
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind((host, port))
        self.srv.listen(1)
        self.port = self.srv.getsockname()[1]
        self.url = "socket://%s:%d" % (host, self.port)
        self.client = None
        self.proc = None
        self.mode = "repl"  # "repl" (friendly), "raw", "main" (the firmware runs)
        self.executing = False
        self.eots = 0  # 0x04 seen in the output of the code being run
        self.line = b""  # friendly REPL: the line being typed
        self.code = b""  # raw REPL: the code being sent
        self.esc = b""  # raw REPL: a raw-paste request being read
        self.paste = None  # raw-paste mode: bytes received so far
        self.boots = 0
        self.sim = None  # the stand-ins' build (build/mpysim), made at start()
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self._lock = threading.Lock()
        self._thread = None

    # -- life cycle

    def start(self):
        from loyalty.tools import mpybuild

        mpybuild.build_sim()
        self.sim = mpybuild.SIM_OUT
        self._boot(run_main=True)
        self._thread = threading.Thread(target=self._loop, name="vboard", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join(10)
        self._kill()
        for s in (self.client, self.srv):
            if s is not None:
                s.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def disconnect(self):
        """Drop the current connection, as a pulled cable does (the board keeps running)."""
        with self._lock:
            if self.client is not None:
                try:
                    self.client.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        os.write(self._wake_w, b"x")

    def firmware_running(self):
        return self.mode == "main" and self.proc is not None and self.proc.poll() is None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- processes

    def _spawn(self, body):
        env = dict(os.environ)
        env.pop("MICROPYPATH", None)
        env.pop("READER_CONFIG", None)
        if self.mode == "main" and self.overlay:
            env["READER_CONFIG"] = "/.vboard/config.json"
        code = _MOUNT % str(self.folder) + (_PARTS % str(self.sim) if body is _FIRMWARE else "") + "del _Folder\n" + body
        self.proc = subprocess.Popen([micropython(), "-X", "heapsize=" + self.heap, "-c", code],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     env=env, cwd=str(self.folder), start_new_session=True)

    def _kill(self):
        p, self.proc = self.proc, None
        if p is None:
            return
        if p.poll() is None:
            p.kill()
        p.wait()
        for f in (p.stdin, p.stdout):
            try:
                f.close()
            except OSError:
                pass
        self.executing = False

    def _interrupt(self, p):
        """Ctrl-C: KeyboardInterrupt in the running code (SIGINT on the unix port)."""
        try:
            p.send_signal(signal.SIGINT)
        except ProcessLookupError:
            pass

    def _write_overlay(self):
        try:
            cfg = json.loads((self.folder / "config.json").read_text())
        except (OSError, ValueError):
            return False
        cfg.update(self.overlay)
        d = self.folder / ".vboard"
        d.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(d / "config.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(cfg, f)
        return True

    def _boot(self, run_main):
        """A soft reset: a fresh interpreter; with run_main, main.py as the board runs it."""
        self._kill()
        self.boots += 1
        self.line = self.code = self.esc = b""
        self.paste = None
        if run_main and (self.folder / "main.py").exists():
            self.mode = "main"
            if self.overlay:
                self._write_overlay()
            self._spawn(_FIRMWARE)
            self._logline("boot %d: main.py" % self.boots)
            return
        if self.mode == "main":
            self.mode = "repl"
        self._spawn(_REPL)

    def _to_repl(self):
        """The firmware ended or was interrupted: the friendly REPL, as on a board."""
        self._kill()
        self.mode = "repl"
        self._spawn(_REPL)
        self._send(BANNER + b">>> ")

    def _run(self, kind, code):
        if self.proc is None or self.proc.poll() is not None:
            self._kill()
            self._spawn(_REPL)
        self.executing = True
        self.eots = 0
        try:
            self.proc.stdin.write(kind + str(len(code)).encode() + b"\n" + code)
            self.proc.stdin.flush()
        except OSError:
            self._kill()
            self._spawn(_REPL)
            self.executing = False
            self._send(b"\x04\x04" if kind == b"R" else b"\r\n")
            self._send(b">" if self.mode == "raw" else b">>> ")

    # -- the line

    def _send(self, data):
        if self.client is not None and data:
            try:
                self.client.sendall(data)
            except OSError:
                self._drop()

    def _drop(self):
        with self._lock:
            if self.client is not None:
                self.client.close()
                self.client = None

    def _logline(self, text):
        if self.log:
            with open(self.log, "a") as f:
                f.write("[vboard] %s\n" % text)

    def _loop(self):
        while not self._stop.is_set():
            rd = [self.srv, self._wake_r]
            if self.client is not None:
                rd.append(self.client)
            out = self.proc.stdout if self.proc is not None else None
            if out is not None:
                rd.append(out)
            try:
                ready, _, _ = select.select(rd, [], [], 0.5)
            except (OSError, ValueError):
                continue
            if self._wake_r in ready:
                os.read(self._wake_r, 64)
            if self.srv in ready:
                conn, _ = self.srv.accept()
                self._drop()  # one connection at a time: the newest wins, as with a serial port
                self.client = conn
            if out is not None and out in ready:
                self._output(os.read(out.fileno(), 65536))
            if self.client is not None and self.client in ready:
                try:
                    data = self.client.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    self._drop()
                    continue
                for i in range(len(data)):
                    self._input(data[i:i + 1])
            if self.mode == "main" and self.proc is not None and self.proc.poll() is not None \
                    and (out is None or out not in ready):
                self._logline("main.py ended (exit %s)" % self.proc.returncode)
                self._to_repl()

    def _output(self, data):
        if not data:
            if self.mode == "main":
                self._logline("main.py ended")
                self._to_repl()
            elif self.executing:  # the interpreter died under the code (sys.exit, a crash)
                self._kill()
                self._spawn(_REPL)
                self._send(b"\x04\x04>" if self.mode == "raw" else b"\r\n>>> ")
            else:
                self._kill()
                self._spawn(_REPL)
            return
        if self.log and self.mode == "main":
            with open(self.log, "ab") as f:
                f.write(data)
        if self.mode == "main" or not self.executing:
            self._send(data.replace(b"\n", b"\r\n"))
            return
        if self.mode == "raw":
            self.eots += data.count(b"\x04")
            self._send(data)
            if self.eots >= 2:
                self.executing = False
                self._send(b">")
            return
        self.eots += data.count(b"\x04")
        self._send(data.replace(b"\x04", b"").replace(b"\n", b"\r\n"))
        if self.eots >= 2:
            self.executing = False
            self._send(b">>> ")

    def _input(self, c):
        if self.mode == "main":
            if c == b"\x03":
                self._logline("Ctrl-C: main.py interrupted")
                p = self.proc
                self._interrupt(p)
                try:
                    p.wait(3)
                except subprocess.TimeoutExpired:
                    pass
                self._send(b"\r\nKeyboardInterrupt: \r\n")
                self._to_repl()
            elif c == b"\x04":
                self._send(b"MPY: soft reboot\r\n")
                self._boot(run_main=True)
            return
        if self.executing:
            if c == b"\x03":
                self._interrupt(self.proc)
            return  # the code's stdin is not used by anything we run
        if self.mode == "raw":
            self._raw(c)
        else:
            self._friendly(c)

    def _raw(self, c):
        if self.paste is not None:
            if c == b"\x04":
                code, self.paste = self.paste, None
                self._send(b"\x04")
                self._run(b"R", code)
                return
            self.paste += c
            if len(self.paste) % PASTE_WINDOW == 0:
                self._send(b"\x01")  # room for another window
            return
        if self.esc:
            self.esc += c
            if self.esc == b"\x05A\x01":
                self.esc = b""
                self.paste = b""
                self._send(b"R\x01" + struct.pack("<H", PASTE_WINDOW))
            elif not b"\x05A\x01".startswith(self.esc):
                self.esc = b""
            return
        if c == b"\x05" and not self.code:
            self.esc = c
        elif c == b"\x01":
            self.code = b""
            self._send(b"\r\n" + RAW_BANNER)
        elif c == b"\x02":
            self.code = b""
            self.mode = "repl"
            self._send(b"\r\n" + BANNER + b">>> ")
        elif c == b"\x03":
            self.code = b""
        elif c == b"\x04":
            if not self.code:
                self._send(b"MPY: soft reboot\r\n")
                self._boot(run_main=False)
                self._send(RAW_BANNER)
            else:
                code, self.code = self.code, b""
                self._send(b"OK")
                self._run(b"R", code)
        else:
            self.code += c

    def _friendly(self, c):
        if c == b"\x01":
            self.mode = "raw"
            self.line = self.code = b""
            self._send(b"\r\n" + RAW_BANNER)
        elif c == b"\x02":
            self.line = b""
            self._send(b"\r\n" + BANNER + b">>> ")
        elif c == b"\x03":
            self.line = b""
            self._send(b"\r\nKeyboardInterrupt\r\n>>> ")
        elif c == b"\x04":
            self._send(b"MPY: soft reboot\r\n")
            self._boot(run_main=True)
            if self.mode != "main":
                self._send(BANNER + b">>> ")
        elif c in (b"\r", b"\n"):
            line, self.line = self.line, b""
            self._send(b"\r\n")
            if line.strip():
                self._run(b"F", line)
            else:
                self._send(b">>> ")
        elif c in (b"\x08", b"\x7f"):
            if self.line:
                self.line = self.line[:-1]
                self._send(b"\x08 \x08")
        elif c >= b" ":
            self.line += c
            self._send(c)


def main(argv=None):
    ap = argparse.ArgumentParser(description="A virtual reader board: MicroPython's unix port behind "
                                             "socket://127.0.0.1:PORT, its flash a folder.")
    ap.add_argument("folder", help="the board's flash (created if missing)")
    ap.add_argument("--port", type=int, default=7700, help="TCP port (default 7700)")
    ap.add_argument("--heap", default=HEAP, help="MicroPython heap (default %s)" % HEAP)
    args = ap.parse_args(argv)
    from loyalty.sim.simboard import CardSim, TillSim

    till, cards = TillSim(), CardSim()
    overlay = {"board": "sim", "till": "127.0.0.1:%d" % till.port, "cards": "127.0.0.1:%d" % cards.port}
    vb = VirtualBoard(args.folder, heap=args.heap, overlay=overlay, port=args.port).start()
    print("virtual board at %s, flash in %s (Ctrl-C stops it)" % (vb.url, vb.folder), flush=True)
    try:
        while True:
            time.sleep(3600)  # the command line's idle loop until Ctrl-C, not a wait
    except KeyboardInterrupt:
        pass
    finally:
        vb.stop()
        till.close()
        cards.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
