"""The device link: MicroPython's REPL on a reader, over a serial port or a socket:// URL.

    with Device("socket://127.0.0.1:7700") as dev:   # the virtual board (sim/vboard.py)
        dev.eval("1+1")                               # 2
        dev.exec(script("mkdirs", _DIRS=["protocol"]))
        dev.write_file("main.py.new", data)
        dev.reboot()                                  # leave the REPL: the firmware runs

Device speaks the raw REPL through mpremote's transport; console() hands the friendly
REPL to mpremote itself. Connecting interrupts a running firmware (Ctrl-C, as mpremote
does); leaving with an error reboots the reader into its firmware again.
"""
import ast
import contextlib
import errno
import io
import os
import socket
import subprocess
import sys

from loyalty.i18n import _
from loyalty.tools.flash.errors import DIALOUT, FIND_PORT, FlashError, NoSuchPort, NotMicroPython, PortBusy, PortPermission
from loyalty.tools.flash.scripts import script

CHUNK = 2048  # bytes per write through the raw REPL (a few KB of code to compile on the device)
REPL_TIMEOUT = 10  # seconds to wait for the raw REPL's banner


def check_port(port):
    """Say plainly why a port cannot be opened before mpremote says "failed to access"."""
    if port.startswith("socket://"):
        host, _colon, p = port[len("socket://"):].rpartition(":")
        try:
            socket.create_connection((host or "127.0.0.1", int(p)), timeout=3).close()
        except (OSError, ValueError) as e:
            raise NoSuchPort(_("nothing answers at %(port)s (%(error)s)", port=port, error=e),
                             _("start the virtual board (python -m loyalty.sim.vboard FOLDER --port %(number)s) or "
                               "check the address", number=p))
        return
    if "://" in port:
        return  # another pyserial URL: let it speak for itself
    if not os.path.exists(port):
        raise NoSuchPort(_("no such port: %(port)s", port=port), _(FIND_PORT))
    if not os.access(port, os.R_OK | os.W_OK):
        raise PortPermission(_("permission denied on %(port)s", port=port), _(DIALOUT))


class Device:
    """A MicroPython device on `port`, in its raw REPL (after a soft reset: a clean heap).

        with Device("socket://127.0.0.1:7700") as dev:
            dev.eval("1+1")
    """

    def __init__(self, port):
        self.port = port
        self.transport = None
        self.feed = False  # a reader's watchdog runs: fed before each step (device/feed.py)

    def __enter__(self):
        from mpremote.transport import TransportError
        from mpremote.transport_serial import SerialTransport

        check_port(self.port)
        try:
            self.transport = SerialTransport(self.port, baudrate=115200, timeout=REPL_TIMEOUT)
        except TransportError as e:
            raise PortBusy(_("cannot open %(port)s (%(error)s)", port=self.port, error=e),
                           _("close whatever else uses the port (a console, another flash command), then try again"))
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # mpremote prints what it got instead
                self.transport.enter_raw_repl(soft_reset=True, timeout_overall=REPL_TIMEOUT)
        except (TransportError, OSError) as e:
            self.close()
            raise NotMicroPython(_("the device on %(port)s does not answer as MicroPython does (%(error)s)",
                                   port=self.port, error=e),
                                 _("put MicroPython on it first: python tools/flash flash --port %(port)s --version ...",
                                   port=self.port))
        # a reader that ran the firmware on an ESP32 started its watchdog (8 s), which
        # nothing stops, not even a soft reset: from now on the tool feeds it
        self.feed = bool(self.transport.exec(script("watched")).strip() == b"1")
        return self

    def exec(self, code):
        from mpremote.transport import TransportError

        try:
            return self.transport.exec(script("feed") + code if self.feed else code)
        except TransportError as e:
            raise FlashError(_("the device on %(port)s failed: %(error)s",
                               port=self.port, error=str(e).strip().splitlines()[-1:] or e),
                             _("run the command again; if it keeps failing, look with `console`"))
        except OSError as e:
            raise FlashError(_("lost the connection to %(port)s (%(error)s)", port=self.port, error=e),
                             _("check the cable, then run the command again: it goes on where it stopped"))

    def eval(self, expr):
        return ast.literal_eval(self.exec("print(repr(%s))" % expr).decode().strip())

    def run(self, name, **values):
        """Run the device script `name` (device/NAME.py) with `values`; what it printed, as a value."""
        return ast.literal_eval(self.exec(script(name, **values)).decode().strip() or "None")

    def write_file(self, path, data, progress=None):
        from mpremote.transport import TransportError

        if self.feed:
            self.exec("")  # one file at a time is well inside the watchdog's 8 s
        try:
            self.transport.fs_writefile(path, data, chunk_size=CHUNK, progress_callback=progress)
        except TransportError as e:
            raise FlashError(_("writing %(path)s on %(port)s failed: %(error)s", path=path, port=self.port, error=e),
                             _("is the device's flash full? see `status`"))
        except OSError as e:
            if e.errno == errno.ENOSPC:  # mpremote hands the device's own error on as an OSError
                raise FlashError(_("the device's flash is full while writing %(path)s", path=path),
                                 _("see `status`; the half-written .new files go at the next deploy"))
            raise FlashError(_("lost the connection to %(port)s while writing %(path)s (%(error)s)",
                               port=self.port, path=path, error=e),
                             _("check the cable, then run the command again: it goes on where it stopped"))

    def reboot(self):
        """Leave the raw REPL and soft-reset from the friendly one: the board runs main.py."""
        t = self.transport
        t.exit_raw_repl()
        t.serial.write(b"\x04")
        t.read_until(1, b"soft reboot\r\n", timeout_overall=REPL_TIMEOUT)

    def close(self):
        if self.transport is not None:
            # pyserial's socket:// forgets its socket unclosed when the peer already shut it down
            sock = getattr(self.transport.serial, "_socket", None)
            try:
                self.transport.close()
            except OSError:  # a dropped line refuses the DTR/RTS dance before closing
                try:
                    self.transport.serial.close()
                except OSError:
                    pass
            if sock is not None:
                sock.close()
            self.transport = None

    def __exit__(self, kind, value, tb):
        if kind is not None and self.transport is not None:
            # whatever failed, the reader goes back to serving its till (the firmware had
            # stopped when the tool took the REPL): a failed command must not leave a
            # till without discounts until someone pulls the plug
            try:
                self.reboot()
            except Exception:  # noqa: BLE001 - the line may be what failed
                pass
        self.close()


def console(port):
    """The device's REPL (mpremote's), until Ctrl-] or Ctrl-X; mpremote's exit code."""
    check_port(port)
    return subprocess.call([sys.executable, "-m", "mpremote", "connect", port, "repl"])
