"""Put a reader into service: MicroPython, the firmware, its identity, the store's Wi-Fi.

A thin command line over functions that scripts call too (as esptool and mpremote are):

    python tools/flash.py flash     --port /dev/ttyUSB0 [--erase] (--firmware FILE | --version 1.24.1)
    python tools/flash.py deploy    --port /dev/ttyUSB0            # or socket://127.0.0.1:7700
    python tools/flash.py provision --port /dev/ttyUSB0 --file R1.json \\
                                    --wifi-ssid Negozio --wifi-password-file wifi.txt [--lang it]
    python tools/flash.py status    --port /dev/ttyUSB0
    python tools/flash.py console   --port /dev/ttyUSB0

    import flash
    flash.deploy("socket://127.0.0.1:7700")    # -> DeployReport(copied, unchanged, removed, ...)
    flash.status("socket://127.0.0.1:7700")    # -> {"reader": "R1", "firmware": "0.1.0", ...}

`flash` drives esptool (a subprocess: `python -m esptool ...`); the other commands talk
to MicroPython's raw REPL with mpremote's transport, on a serial port or on the virtual
board (tools/vboard.py, `socket://` URLs). Every failure is a FlashError that says what
happened and what to do; main() prints it and exits non-zero.

On the device (paths from its root "/"):
    main.py, *.mpy, drivers/, protocol/   the firmware (tools/mpybuild.py's build)
    lib/                                  micropython-lib packages (none needed today:
                                          asyncio is built into MicroPython)
    deploy.json                           what deploy wrote: firmware version, build id,
                                          every file's sha256; written last
    config.json                           identity, key, backend, Wi-Fi (provision)
A deploy writes each changed file as NAME.new and renames them all once every copy is
there, then the manifest: a deploy cut off half-way leaves the old firmware whole (or
the new one whole, bar the manifest), and the next deploy copies what is still missing.

Connecting to a running reader interrupts its firmware (Ctrl-C, as mpremote does); every
command that connects ends with a soft reset, which starts the firmware again.
"""
import argparse
import ast
import contextlib
import errno
import hashlib
import io
import json
import os
import re
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
ROOT = TOOLS.parent
if str(TOOLS) not in sys.path:
    sys.path.insert(0, str(TOOLS))

import mpybuild  # noqa: E402

MANIFEST = "deploy.json"
CONFIG = "config.json"
DATA_ROOT = "/data"  # where the firmware keeps its journal, rules and directory
# micropython-lib packages the firmware needs beyond what MicroPython has built in: none
# today (asyncio is built in). A name here is installed with mip when the device is
# online, or copied from --lib FOLDER.
PACKAGES = ()
CHUNK = 2048  # bytes per write through the raw REPL (a few KB of code to compile on the device)
REPL_TIMEOUT = 10  # seconds to wait for the raw REPL's banner
IMAGES = Path(os.environ.get("LOYALTY_MICROPYTHON_IMAGES", Path.home() / ".cache" / "loyalty" / "micropython"))
# where MicroPython's image goes: the ESP32 and S2 keep their second-stage bootloader at 0x1000
IMAGE_OFFSET = {"ESP32": 0x1000, "ESP32-S2": 0x1000, "ESP32-S3": 0x0, "ESP32-C3": 0x0, "ESP32-C6": 0x0}
BOARD_NAME = {"ESP32": "ESP32_GENERIC", "ESP32-S2": "ESP32_GENERIC_S2", "ESP32-S3": "ESP32_GENERIC_S3",
              "ESP32-C3": "ESP32_GENERIC_C3", "ESP32-C6": "ESP32_GENERIC_C6"}
WRITE_BAUD = 460800


# ---------------------------------------------------------------- errors


class FlashError(Exception):
    """What happened (`what`) and what to do about it (`hint`)."""

    def __init__(self, what, hint=""):
        super().__init__(what)
        self.what, self.hint = what, hint

    def __str__(self):
        return self.what + ("\n  " + self.hint if self.hint else "")


class NoSuchPort(FlashError):
    pass


class PortPermission(FlashError):
    pass


class PortBusy(FlashError):
    pass


class NotInDownloadMode(FlashError):
    pass


class NotMicroPython(FlashError):
    pass


class ProvisioningRefused(FlashError):
    pass


class BackendUnreachable(FlashError):
    pass


_FIND_PORT = "list the ports with `python -m serial.tools.list_ports` (or ls /dev/ttyUSB* /dev/ttyACM*) and check the cable"
_DOWNLOAD_MODE = ("hold the BOOT button, press and release EN (reset), release BOOT, then run the command "
                  "again (some boards need a lower --baud or a better USB cable)")


# ---------------------------------------------------------------- progress


class Progress:
    """Stages ("[2/5] copying files") on stderr; a bar within a stage only on a terminal."""

    def __init__(self, stream=None, quiet=False):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.n = self.total = 0
        self._bar = False

    def stages(self, total):
        self.n, self.total = 0, total

    def stage(self, text):
        self._end_bar()
        self.n += 1
        if not self.quiet:
            self.stream.write("[%d/%d] %s\n" % (self.n, max(self.total, self.n), text))
            self.stream.flush()

    def bar(self, done, total, label=""):
        if self.quiet or not self.tty or total <= 0:
            return
        width = 30
        full = width * done // total
        self.stream.write("\r      [%s%s] %3d%% %-30s" % ("#" * full, "." * (width - full), 100 * done // total, label[:30]))
        self.stream.flush()
        self._bar = True

    def note(self, text):
        self._end_bar()
        if not self.quiet:
            self.stream.write("      %s\n" % text)
            self.stream.flush()

    def _end_bar(self):
        if self._bar:
            self.stream.write("\n")
            self._bar = False

    def done(self):
        self._end_bar()


# ---------------------------------------------------------------- the device's REPL


def _check_port(port):
    """Say plainly why a port cannot be opened before mpremote says "failed to access"."""
    if port.startswith("socket://"):
        host, _, p = port[len("socket://"):].rpartition(":")
        try:
            socket.create_connection((host or "127.0.0.1", int(p)), timeout=3).close()
        except (OSError, ValueError) as e:
            raise NoSuchPort("nothing answers at %s (%s)" % (port, e),
                             "start the virtual board (python tools/vboard.py FOLDER --port %s) or check the address" % p)
        return
    if "://" in port:
        return  # another pyserial URL: let it speak for itself
    if not os.path.exists(port):
        raise NoSuchPort("no such port: %s" % port, _FIND_PORT)
    if not os.access(port, os.R_OK | os.W_OK):
        raise PortPermission("permission denied on %s" % port,
                             "add yourself to the port's group (sudo usermod -aG dialout $USER), log out and in again")


# On an ESP32 reader: does a config say the firmware ran there with its watchdog?
_WATCHED = """\
try:
    import json
    print(1 if json.load(open("/config.json")).get("board", "esp32") != "sim" else 0)
except Exception:
    print(0)
"""
# Fed before each step while the firmware is stopped: WDT() gives the running watchdog
_FEED = """\
try:
    from machine import WDT
    WDT(timeout=8000).feed()
except Exception:
    pass
"""


class Device:
    """A MicroPython device on `port`, in its raw REPL (after a soft reset: a clean heap).

        with Device("socket://127.0.0.1:7700") as dev:
            dev.eval("1+1")
    """

    def __init__(self, port):
        self.port = port
        self.transport = None
        self.feed = False  # a reader's watchdog runs: fed before each step (see _FEED)

    def __enter__(self):
        from mpremote.transport import TransportError
        from mpremote.transport_serial import SerialTransport

        _check_port(self.port)
        try:
            self.transport = SerialTransport(self.port, baudrate=115200, timeout=REPL_TIMEOUT)
        except TransportError as e:
            raise PortBusy("cannot open %s (%s)" % (self.port, e),
                           "close whatever else uses the port (a console, another flash.py), then try again")
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # mpremote prints what it got instead
                self.transport.enter_raw_repl(soft_reset=True, timeout_overall=REPL_TIMEOUT)
        except (TransportError, OSError) as e:
            self.close()
            raise NotMicroPython("the device on %s does not answer as MicroPython does (%s)" % (self.port, e),
                                 "put MicroPython on it first: python tools/flash.py flash --port %s --version ..."
                                 % self.port)
        # a reader that ran the firmware on an ESP32 started its watchdog (8 s), which
        # nothing stops, not even a soft reset: from now on the tool feeds it
        self.feed = bool(self.transport.exec(_WATCHED).strip() == b"1")
        return self

    def exec(self, code):
        from mpremote.transport import TransportError

        try:
            return self.transport.exec(_FEED + code if self.feed else code)
        except TransportError as e:
            raise FlashError("the device on %s failed: %s" % (self.port, str(e).strip().splitlines()[-1:] or e),
                             "run the command again; if it keeps failing, look with `console`")
        except OSError as e:
            raise FlashError("lost the connection to %s (%s)" % (self.port, e),
                             "check the cable, then run the command again: it goes on where it stopped")

    def eval(self, expr):
        return ast.literal_eval(self.exec("print(repr(%s))" % expr).decode().strip())

    def write_file(self, path, data, progress=None):
        from mpremote.transport import TransportError

        if self.feed:
            self.exec("")  # one file at a time is well inside the watchdog's 8 s
        try:
            self.transport.fs_writefile(path, data, chunk_size=CHUNK, progress_callback=progress)
        except TransportError as e:
            raise FlashError("writing %s on %s failed: %s" % (path, self.port, e), "is the device's flash full? see `status`")
        except OSError as e:
            if e.errno == errno.ENOSPC:  # mpremote hands the device's own error on as an OSError
                raise FlashError("the device's flash is full while writing %s" % path,
                                 "see `status`; the half-written .new files go at the next deploy")
            raise FlashError("lost the connection to %s while writing %s (%s)" % (self.port, path, e),
                             "check the cable, then run the command again: it goes on where it stopped")

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


# ---------------------------------------------------------------- flash (esptool)


def esptool_cmd(port, *args, chip="auto", baud=None):
    cmd = [sys.executable, "-m", "esptool", "--chip", chip, "--port", port]
    if baud:
        cmd += ["--baud", str(baud)]
    return cmd + list(args)


def run_esptool(cmd, echo=None):
    """Run esptool; (exit code, its output). Its own progress is shown on a terminal."""
    echo = sys.stderr.isatty() if echo is None else echo
    lines = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:
            lines.append(line)
            if echo:
                sys.stderr.write(line)
    return proc.returncode, "".join(lines)


def esptool_failure(port, output):
    """The FlashError for esptool's failure `output`."""
    if "Permission denied" in output or "Errno 13" in output:
        return PortPermission("permission denied on %s" % port,
                              "add yourself to the port's group (sudo usermod -aG dialout $USER), log out and in again")
    if "Errno 16" in output or "Resource busy" in output:
        return PortBusy("%s is in use by another program" % port, "close the console or other tool using it")
    if "Could not open" in output or "No such file" in output:
        return NoSuchPort("no such port: %s" % port, _FIND_PORT)
    if "Failed to connect" in output or "Wrong boot mode" in output or "No serial data received" in output:
        return NotInDownloadMode("the chip on %s is not in download mode" % port, _DOWNLOAD_MODE)
    last = [x for x in output.strip().splitlines() if x.strip()][-1:] or ["(no output)"]
    return FlashError("esptool failed on %s: %s" % (port, last[0].strip()), "run it again; the full output is above")


def detect_chip(port, run=None):
    """The chip family on `port` ("ESP32", "ESP32-S3", ...), as esptool reports it."""
    run = run or run_esptool
    code, out = run(esptool_cmd(port, "chip-id"))
    if code != 0:
        raise esptool_failure(port, out)
    m = re.search(r"Connected to (ESP32\S*) on", out) or re.search(r"Chip is (ESP32\S*)", out)
    if not m:
        raise FlashError("esptool did not say which chip is on %s" % port, "run `python -m esptool --port %s chip-id`" % port)
    family = re.match(r"ESP32(-[SCHP]\d+)?", m.group(1)).group(0)
    if family not in IMAGE_OFFSET:
        raise FlashError("%s on %s: not a chip this tool knows" % (family, port), "readers are ESP32 boards")
    return family


def find_image(family, version, images=IMAGES):
    """The MicroPython image for `family` at `version` in the images folder."""
    board = BOARD_NAME[family]
    found = sorted(Path(images).glob("%s-*v%s.bin" % (board, version))) + sorted(Path(images).glob("%s-v%s.bin" % (board, version)))
    if not found:
        raise FlashError("no MicroPython %s image for %s in %s" % (version, board, images),
                         "download %s-<date>-v%s.bin from https://micropython.org/download/%s/ into that folder, "
                         "or pass --firmware FILE" % (board, version, board))
    return found[-1]


def check_image(path):
    path = Path(path)
    if not path.is_file():
        raise FlashError("no such firmware image: %s" % path, "give the path of a MicroPython .bin for ESP32")
    with open(path, "rb") as f:
        if f.read(1) != b"\xe9":  # every ESP32 application image starts with this magic byte
            raise FlashError("%s is not an ESP32 firmware image" % path, "use the .bin from micropython.org, not a .uf2, .hex or .elf")
    return path


def flash(port, firmware=None, version=None, erase=False, baud=WRITE_BAUD, images=IMAGES, run=None, progress=None):
    """Write MicroPython onto the ESP32 on `port` (erasing it first with erase=True); the chip family.

    `run`: runs an esptool command line, returns (exit code, output); run_esptool by default."""
    run = run or run_esptool
    if (firmware is None) == (version is None):
        raise FlashError("give either a firmware image or a version", "--firmware FILE or --version 1.24.1")
    p = progress or Progress(quiet=True)
    p.stages(3 + bool(erase))
    if firmware is not None:
        check_image(firmware)
    p.stage("detecting the chip on %s" % port)
    family = detect_chip(port, run)
    p.note(family)
    image = check_image(firmware) if firmware is not None else find_image(family, version, images)
    chip = family.lower().replace("-", "")
    if erase:
        p.stage("erasing the flash")
        code, out = run(esptool_cmd(port, "erase-flash", chip=chip))
        if code != 0:
            raise esptool_failure(port, out)
    p.stage("writing %s at 0x%x" % (image.name, IMAGE_OFFSET[family]))
    code, out = run(esptool_cmd(port, "write-flash", "0x%x" % IMAGE_OFFSET[family], str(image), chip=chip, baud=baud))
    if code != 0:
        raise esptool_failure(port, out)
    p.stage("done: MicroPython on the %s; next: deploy" % family)
    p.done()
    return family


# ---------------------------------------------------------------- deploy


class DeployReport:
    def __init__(self):
        self.copied, self.unchanged, self.removed, self.packages = [], [], [], []
        self.manifest_written = False
        self.build = ""

    def __repr__(self):
        return "DeployReport(copied=%d, unchanged=%d, removed=%d)" % (len(self.copied), len(self.unchanged), len(self.removed))


def firmware_version():
    m = re.search(r'^FIRMWARE = "([^"]+)"', (ROOT / "firmware" / "syncclient.py").read_text(), re.M)
    return m.group(1) if m else "unknown"


def firmware_files(build_dir=mpybuild.DEFAULT_OUT):
    """{path on the device: bytes}: compiles what changed (mpybuild) and reads the build."""
    build_dir = Path(build_dir)
    mpybuild.build(build_dir)
    files = {}
    for _, rel in mpybuild.sources():
        out = rel if (rel.name == "main.py" and len(rel.parts) == 1) else rel.with_suffix(".mpy")
        files[out.as_posix()] = (build_dir / out).read_bytes()
    return files


def lib_files(folder):
    """{lib/...: bytes} from a local folder of micropython-lib packages (.py or .mpy)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FlashError("no such folder: %s" % folder, "--lib names a folder laid out as the device's /lib")
    return {"lib/" + p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix in (".py", ".mpy")}


_HASHES = """\
import os, hashlib, binascii
def _h(p):
    try:
        f = open(p, "rb")
    except OSError:
        return None
    h = hashlib.sha256()
    b = bytearray(512)
    m = memoryview(b)
    while True:
        n = f.readinto(b)
        if not n:
            break
        h.update(m[:n])
    f.close()
    return binascii.hexlify(h.digest()).decode()
_r = {}
for _p in %r:
    _r[_p] = _h(_p)
    try:
        os.remove(_p + ".new")
    except OSError:
        pass
try:
    _f = open(%r)
    _m = _f.read()
    _f.close()
except OSError:
    _m = None
print(repr((_r, _m)))
"""

_SWITCH = """\
import os
for _p in %r:
    try:
        os.rename(_p + ".new", _p)
    except OSError:
        os.remove(_p)
        os.rename(_p + ".new", _p)
for _p in %r:
    try:
        os.remove(_p)
    except OSError:
        pass
"""


def _dirs_of(paths):
    dirs = set()
    for p in paths:
        parts = p.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    return sorted(dirs, key=lambda d: d.count("/"))


PENDING = "deploy.pending"  # the renames of a deploy in progress (firmware/main.py)


def _mpy_version(data):
    """The .mpy format version of a compiled module (its header: 'M', version, flags...)."""
    return data[1] if len(data) > 1 and data[:1] == b"M" else None


def _check_mpy_version(dev, files):
    """Refuse a device whose MicroPython cannot load our .mpy files, before copying any: it
    would boot into 'incompatible .mpy file' and serve its till without a reader."""
    ours = {_mpy_version(d) for path, d in files.items() if path.endswith(".mpy")} - {None}
    theirs = dev.eval("getattr(__import__('sys').implementation, '_mpy', 0) & 0xFF")
    if ours and theirs and theirs not in ours:
        raise NotMicroPython("the device's MicroPython loads .mpy version %d; this build is version %s"
                             % (theirs, "/".join(str(v) for v in sorted(ours))),
                             "flash a MicroPython that matches mpy-cross (1.24 or newer): "
                             "python tools/flash.py flash --port %s --version 1.24.1" % dev.port)


def deploy(port, build_dir=mpybuild.DEFAULT_OUT, lib=None, packages=PACKAGES, reboot=True, progress=None):
    """Compile the firmware, copy what changed to the device on `port`, reboot it. A DeployReport."""
    p = progress or Progress(quiet=True)
    p.stages(6)
    report = DeployReport()
    p.stage("compiling firmware/ and shared/protocol/ with mpy-cross")
    try:
        files = firmware_files(build_dir)
    except RuntimeError as e:
        raise FlashError(str(e), "fix the module: every firmware file must compile with mpy-cross")
    if lib is not None:
        files.update(lib_files(lib))
    want = {path: hashlib.sha256(data).hexdigest() for path, data in files.items()}
    build = hashlib.sha256("".join("%s %s\n" % kv for kv in sorted(want.items())).encode()).hexdigest()[:12]
    report.build = build
    p.stage("connecting to %s" % port)
    with Device(port) as dev:
        _check_mpy_version(dev, files)
        p.stage("comparing %d files with the device" % len(files))
        have, old_manifest = ast.literal_eval(dev.exec(_HASHES % (sorted(files), MANIFEST)).decode().strip())
        changed = sorted(path for path in files if have.get(path) != want[path])
        report.unchanged = sorted(set(files) - set(changed))
        try:
            old = json.loads(old_manifest) if old_manifest else {}
        except ValueError:
            old = {}
        stale = sorted(set(old.get("files", {})) - set(files)) if isinstance(old.get("files"), dict) else []
        # packages a deploy with --lib put in /lib stay when the next deploy comes without it
        stale = [s for s in stale if not s.startswith("lib/")]
        p.stage("copying %d changed files" % len(changed) if changed else "copying: up to date")
        if changed:
            for d in _dirs_of(changed):
                dev.exec("import os\ntry:\n os.mkdir(%r)\nexcept OSError:\n pass" % d)
            total = sum(len(files[path]) for path in changed)
            done = 0
            for path in changed:
                base = done
                dev.write_file(path + ".new", files[path],
                               progress=lambda n, size, path=path, base=base: p.bar(base + n, total, path))
                done += len(files[path])
                report.copied.append(path)
                p.bar(done, total, path)
        p.stage("packages")
        report.packages = _install_packages(dev, packages, p)
        if changed or stale or old.get("build") != build:
            # the renames, listed first: main.py completes them at boot after a power cut
            # (a board reset in their middle would otherwise run old and new modules together)
            dev.write_file(PENDING, "\n".join(changed).encode())
            dev.exec(_SWITCH % (changed, [s for s in stale if s.endswith((".mpy", ".py"))]))
            dev.exec("import os\nos.remove(%r)" % PENDING)
            report.removed = stale
            manifest = json.dumps({"firmware": firmware_version(), "build": build, "files": want,
                                   "packages": list(packages), "deployed": int(time.time())}, sort_keys=True)
            dev.write_file(MANIFEST + ".new", manifest.encode())
            dev.exec(_SWITCH % ([MANIFEST], []))
            report.manifest_written = True
            p.note("firmware %s, build %s" % (firmware_version(), build))
        else:
            p.note("up to date (build %s)" % build)
        p.stage("rebooting into the firmware" if reboot else "done")
        if reboot:
            dev.reboot()
    p.done()
    return report


def _install_packages(dev, packages, p):
    """mip.install each package when the device is online; else say how to copy them."""
    if not packages:
        p.note("none needed (asyncio is built into MicroPython)")
        return []
    online = dev.eval("__import__('network').WLAN(0).isconnected() if 'network' in __import__('sys').modules "
                      "or __import__('sys').platform == 'esp32' else False")
    if not online:
        raise FlashError("the device is offline: cannot install %s with mip" % ", ".join(packages),
                         "provision it with the store's Wi-Fi first, or copy the packages from a folder with --lib")
    for name in packages:
        p.note("mip install %s" % name)
        dev.exec("import mip\nmip.install(%r)" % name)
    return list(packages)


# ---------------------------------------------------------------- provision


def read_provisioning(path, backend=None):
    """The provisioning file (backend/headoffice.py write_provisioning), checked; a dict."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ProvisioningRefused("no provisioning file at %s" % path,
                                  "head office's add-reader command writes it: ask for the reader's file")
    if st.st_mode & 0o077:
        raise ProvisioningRefused("%s can be read by others (mode %o): it holds the reader's key" % (path, stat.S_IMODE(st.st_mode)),
                                  "chmod 600 %s, and ask head office for a new key if others may have copied it" % path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise ProvisioningRefused("%s is not a provisioning file (not JSON: %s)" % (path, e.__class__.__name__),
                                  "use the file head office's add-reader command wrote, unchanged")
    problems = []
    if not isinstance(data, dict):
        data, problems = {}, ["not a JSON object"]
    if not (isinstance(data.get("reader"), str) and re.fullmatch(r"[A-Za-z0-9_.-]{1,32}", data["reader"])):
        problems.append("reader: a name of 1-32 letters, digits, . _ -")
    if not (isinstance(data.get("key"), str) and re.fullmatch(r"[0-9a-f]{64}", data["key"])):
        problems.append("key: 64 hex digits")
    if not (isinstance(data.get("backend"), str) and re.match(r"https?://[^/\s]+", data["backend"])):
        problems.append("backend: an http(s):// address")
    if problems:
        raise ProvisioningRefused("%s is not a valid provisioning file: %s" % (path, "; ".join(problems)),
                                  "use the file head office's add-reader command wrote, unchanged")
    if backend is not None and data["backend"].rstrip("/") != backend.rstrip("/"):
        raise ProvisioningRefused("%s is for the backend %s, not %s" % (path, data["backend"], backend),
                                  "use the provisioning file made by this backend's head office")
    return data


def read_secret(path, what):
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ProvisioningRefused("no %s file at %s" % (what, path), "write it (one line) and chmod 600 it")
    if st.st_mode & 0o077:
        raise ProvisioningRefused("%s can be read by others (mode %o)" % (path, stat.S_IMODE(st.st_mode)),
                                  "chmod 600 %s" % path)
    try:
        return path.read_text().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as e:
        raise ProvisioningRefused("cannot read the %s from %s (%s)" % (what, path, e.__class__.__name__),
                                  "a text file of one line, readable by you only")


def check_backend(url, timeout=5):
    """Is the backend at `url` alive? An unsigned GET of the rules is refused with 401 by it."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/api/v1/sync/rules", timeout=timeout) as r:
            code = r.status
    except urllib.error.HTTPError as e:
        code = e.code
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise BackendUnreachable("the backend %s does not answer (%s)" % (url, getattr(e, "reason", e)),
                                 "check the laptop is on the store's network and the address is right; "
                                 "--skip-backend-check provisions anyway")
    if code != 401:
        raise BackendUnreachable("%s answered HTTP %d where the backend answers 401: is it the backend?" % (url, code),
                                 "check the address in the provisioning file")
    return True


def provision(port, file, wifi_ssid, wifi_password_file, lang="it", backend=None, check=True, reboot=True, progress=None,
              wipe_data=False):
    """Write the reader's config.json on the device; returns the reader's name. Secrets are never printed.

    A board that was another reader keeps that reader's journal under /data: its receipts
    would be lost to the backend, and the new reader's chain would start on them. So that
    is refused unless `wipe_data` (after the old reader's last sync) erases /data first."""
    p = progress or Progress(quiet=True)
    p.stages(4)
    p.stage("reading %s" % file)
    data = read_provisioning(file, backend)
    password = read_secret(wifi_password_file, "Wi-Fi password")
    if not wifi_ssid or len(wifi_ssid) > 32 or len(password) > 64:
        raise ProvisioningRefused("Wi-Fi: the SSID must be 1-32 characters, the password at most 64",
                                  "check --wifi-ssid and the password file")
    if lang not in ("it", "en"):
        raise ProvisioningRefused("language %r: it or en" % lang, "--lang it or --lang en")
    p.stage("checking the backend %s" % data["backend"])
    if check:
        check_backend(data["backend"])
    else:
        p.note("skipped")
    p.stage("writing the reader's identity on %s" % port)
    with Device(port) as dev:
        try:
            old = json.loads(dev.eval("open(%r).read() if %r in __import__('os').listdir() else ''" % (CONFIG, CONFIG)) or "{}")
        except ValueError:
            old = {}
        root = old.get("root") if isinstance(old.get("root"), str) else DATA_ROOT
        held = int(dev.exec(_JOURNAL_FILES % root.rstrip("/")).decode().strip() or 0)
        if old.get("reader") not in (None, data["reader"]) and held:
            if not wipe_data:
                raise ProvisioningRefused(
                    "this board was reader %s and still holds its journal (%d files under /data)" % (old["reader"], held),
                    "let %s sync (status shows its pending receipts), then provision again with --wipe-data"
                    % old["reader"])
            dev.exec(_WIPE % root.rstrip("/"))
        # the board's wiring (pins, buses) stays; identity, key and network are replaced
        cfg = {k: v for k, v in old.items() if k in ("pins", "nfc_bus", "till_uart", "watchdog_ms", "journal_capacity",
                                                     "contact_slot")}
        # root "/data": at "/", the journal's folder "/journal" would shadow journal.mpy on import
        cfg.update({"reader": data["reader"], "key": data["key"], "backend": data["backend"], "lang": lang,
                    "board": "esp32", "root": DATA_ROOT, "wifi": {"ssid": wifi_ssid, "password": password}})
        dev.write_file(CONFIG + ".new", json.dumps(cfg, sort_keys=True).encode())
        dev.exec(_SWITCH % ([CONFIG], []))
        p.stage("rebooting as reader %s" % data["reader"] if reboot else "done: reader %s" % data["reader"])
        if reboot:
            dev.reboot()
    p.done()
    return data["reader"]


# how many files a reader's data root holds (its journal, rules, directory, keys)
_JOURNAL_FILES = """\
import os
def _n(p):
    try:
        names = os.listdir(p)
    except OSError:
        return 0
    c = 0
    for m in names:
        c += _n(p + "/" + m) if os.stat(p + "/" + m)[0] & 0x4000 else 1
    return c
print(repr(_n(%r)))
"""
# erases a reader's data root, after its last sync (provision --wipe-data)
_WIPE = """\
import os
def _rm(p):
    for m in os.listdir(p):
        q = p + "/" + m
        if os.stat(q)[0] & 0x4000:
            _rm(q)
            os.rmdir(q)
        else:
            os.remove(q)
try:
    _rm(%r)
except OSError:
    pass
"""


# ---------------------------------------------------------------- status

# Read-only: opens files for reading, never writes, never imports the firmware (its
# constructors recover and may write). Journal: frames are 0xA5, length (2), CRC (4),
# payload; "meta" holds the acknowledged seq; segments are named by their first seq.
_STATUS = """\
import os, json
def _read(p):
    try:
        f = open(p)
        t = f.read()
        f.close()
        return t
    except OSError:
        return None
def _frames(p):
    n = 0
    f = open(p, "rb")
    while True:
        h = f.read(7)
        if len(h) < 7 or h[0] != 0xA5:
            break
        f.seek((h[1] << 8 | h[2]), 1)
        n += 1
    f.close()
    return n
_s = {}
_m = _read("deploy.json")
if _m:
    _m = json.loads(_m)
    _s["firmware"], _s["build"], _s["deployed"] = _m.get("firmware"), _m.get("build"), _m.get("deployed")
_c = _read("config.json")
_root = "/data"
if _c:
    _c = json.loads(_c)
    for _k in ("reader", "backend", "lang", "board"):
        _s[_k] = _c.get(_k)
    _s["wifi"] = (_c.get("wifi") or {}).get("ssid")
    _root = _c.get("root", "/data")
_root = _root.rstrip("/") + "/"
_r = _read(_root + "rules.json")
try:
    _s["rules"] = json.loads(_r)["version"] if _r else 0
except (ValueError, KeyError, TypeError):
    _s["rules"] = "damaged"
_t = _read(_root + "rules.json.synced")
_s["last_sync"] = int(_t) if _t and _t.isdigit() else None
try:
    _v = os.statvfs(_root)
    _s["free_flash"] = _v[0] * _v[3]
except OSError:
    _s["free_flash"] = None
_j = _root + "journal"
try:
    _names = os.listdir(_j)
except OSError:
    _names = []
_acked = 0
if "meta" in _names:
    _f = open(_j + "/meta", "rb")
    _h = _f.read(7)
    _acked = json.loads(_f.read(_h[1] << 8 | _h[2])).get("acked", 0)
    _f.close()
_segs = sorted(int(n[:-4]) for n in _names if n.endswith(".seg"))
_next = _segs[-1] + _frames(_j + "/%08d.seg" % _segs[-1]) if _segs else _acked + 1
_s["pending"] = max(0, _next - 1 - _acked)
_e = _read(_root + "status.json")
_s["last_error"] = json.loads(_e).get("last_error") if _e else None
print(repr(_s))
"""

STATUS_FIELDS = ("reader", "firmware", "build", "rules", "free_flash", "pending", "last_sync", "last_error",
                 "backend", "wifi", "lang", "board", "deployed")


def status(port, reboot=True):
    """What is on the device, read from its files without changing them; a dict (no secrets).

    last_sync: the time rules.json.synced holds (the firmware writes it at most every five
    minutes); last_error: from status.json when the firmware keeps one, else None."""
    with Device(port) as dev:
        s = ast.literal_eval(dev.exec(_STATUS).decode().strip())
        if reboot:
            dev.reboot()
    return {k: s.get(k) for k in STATUS_FIELDS}


def _when(t):
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t)) if t else "never"


def format_status(s):
    rows = [("reader", s["reader"] or "not provisioned"),
            ("firmware", "%s (build %s, deployed %s)" % (s["firmware"], s["build"], _when(s["deployed"]))
             if s["firmware"] else "not deployed"),
            ("rules", "v%s" % s["rules"]),
            ("free flash", "%d KB" % (s["free_flash"] // 1024) if s["free_flash"] is not None else "unknown"),
            ("pending receipts", s["pending"]),
            ("last sync", _when(s["last_sync"])),
            ("last error", s["last_error"] or ("none" if s["last_error"] == "" else "not kept on flash")),
            ("backend", s["backend"] or "-"),
            ("wifi", s["wifi"] or "-")]
    return "\n".join("%-17s %s" % (k + ":", v) for k, v in rows)


# ---------------------------------------------------------------- console


def console(port):
    """The device's REPL (mpremote's), until Ctrl-] or Ctrl-X; mpremote's exit code."""
    _check_port(port)
    return subprocess.call([sys.executable, "-m", "mpremote", "connect", port, "repl"])


# ---------------------------------------------------------------- command line


def _parser():
    ap = argparse.ArgumentParser(prog="flash.py", description="Put a loyalty reader into service: MicroPython, "
                                 "the firmware, its identity and the store's Wi-Fi.")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def port(p):
        p.add_argument("--port", required=True, help="serial port (/dev/ttyUSB0, COM3) or socket://HOST:PORT (virtual board)")

    f = sub.add_parser("flash", help="write MicroPython onto the ESP32 with esptool",
                       description="Detect the chip and write a MicroPython ESP32 image with esptool. "
                                   "The board must be in download mode (most do it by themselves).")
    port(f)
    f.add_argument("--erase", action="store_true", help="erase the whole flash first (the reader's journal too!)")
    g = f.add_mutually_exclusive_group(required=True)
    g.add_argument("--firmware", help="a MicroPython .bin image")
    g.add_argument("--version", help="a MicroPython version (e.g. 1.24.1) found in --images")
    f.add_argument("--images", default=str(IMAGES), help="folder of downloaded images (default %(default)s)")
    f.add_argument("--baud", type=int, default=WRITE_BAUD, help="baud rate for writing (default %(default)s)")

    d = sub.add_parser("deploy", help="compile the firmware and copy what changed to the device",
                       description="Compile firmware/ and shared/protocol/ with mpy-cross, copy the files whose hash "
                                   "differs from the device's, write the manifest, reboot into the firmware.")
    port(d)
    d.add_argument("--build", default=str(mpybuild.DEFAULT_OUT), help="build folder (default %(default)s)")
    d.add_argument("--lib", help="copy micropython-lib packages from this folder to /lib (for devices offline)")
    d.add_argument("--no-reboot", action="store_true", help="stay in the REPL instead of starting the firmware")

    pr = sub.add_parser("provision", help="write the reader's identity, key, backend and Wi-Fi",
                        description="Write config.json on the device from head office's provisioning file. "
                                    "Secrets are never printed and status never shows them.")
    port(pr)
    pr.add_argument("--file", required=True, help="the provisioning file (reader.json, mode 600) from add-reader")
    pr.add_argument("--wifi-ssid", required=True, help="the store's Wi-Fi network")
    pr.add_argument("--wifi-password-file", required=True, help="a file (mode 600) holding the Wi-Fi password")
    pr.add_argument("--lang", default="it", choices=("it", "en"), help="the display's language (default it)")
    pr.add_argument("--backend", help="refuse a provisioning file for another backend than this one")
    pr.add_argument("--skip-backend-check", action="store_true", help="do not check that the backend answers")
    pr.add_argument("--wipe-data", action="store_true",
                    help="erase the journal of the reader this board was before (only after its last sync)")
    pr.add_argument("--no-reboot", action="store_true", help="stay in the REPL instead of starting the firmware")

    s = sub.add_parser("status", help="show what is on the device",
                       description="Firmware and rules versions, free flash, pending receipts, last sync, last error; "
                                   "read from the device's files without changing them.")
    port(s)
    s.add_argument("--json", action="store_true", help="print JSON")

    c = sub.add_parser("console", help="the device's REPL (mpremote); Ctrl-] leaves",
                       description="Open the device's MicroPython REPL through mpremote. Ctrl-C stops the firmware; "
                                   "Ctrl-D restarts it; Ctrl-] leaves.")
    port(c)
    return ap


def main(argv=None):
    args = _parser().parse_args(argv)
    progress = Progress()
    try:
        if args.command == "flash":
            flash(args.port, args.firmware, args.version, args.erase, args.baud, args.images, progress=progress)
        elif args.command == "deploy":
            r = deploy(args.port, args.build, args.lib, reboot=not args.no_reboot, progress=progress)
            print("deployed: %d copied, %d unchanged, %d removed" % (len(r.copied), len(r.unchanged), len(r.removed)))
        elif args.command == "provision":
            name = provision(args.port, args.file, args.wifi_ssid, args.wifi_password_file, args.lang,
                             args.backend, check=not args.skip_backend_check, reboot=not args.no_reboot, progress=progress,
                             wipe_data=args.wipe_data)
            print("provisioned as reader %s" % name)
        elif args.command == "status":
            s = status(args.port)
            print(json.dumps(s, sort_keys=True) if args.json else format_status(s))
        elif args.command == "console":
            return console(args.port)
    except FlashError as e:
        progress.done()
        sys.stderr.write("error: %s\n" % e)
        return 1
    except KeyboardInterrupt:
        progress.done()
        sys.stderr.write("interrupted: run the command again to finish\n")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
