"""tools/flash: deploy, provision and status for real against the virtual board
(sim/vboard.py) and a backend started here; flash's esptool calls with a scripted
esptool; the device scripts compile; every command's help and README section; bad input.
"""
import json
import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from loyalty.testing.chain import Chain
from loyalty.backend import headoffice
from loyalty.sim.simboard import CardSim, TillSim, wait_for
from loyalty.tools import flash
from loyalty.testing import runtimes
from loyalty.sim import vboard
from loyalty.tools.flash import deployment, esp32, repl, scripts

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = ("flash", "deploy", "provision", "status", "console")


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory):
    """A build of our own: others' tests may be compiling into build/mpy meanwhile."""
    return tmp_path_factory.mktemp("mpy")


@pytest.fixture
def board(tmp_path):
    till, cards = TillSim(), CardSim()
    overlay = {"board": "sim", "till": "127.0.0.1:%d" % till.port, "cards": "127.0.0.1:%d" % cards.port,
               "sync_interval": 1}
    vb = vboard.VirtualBoard(tmp_path / "flash", overlay=overlay, log=tmp_path / "vboard.log").start()
    vb.till = till
    yield vb
    vb.stop()
    till.close()
    cards.close()


def _secret_file(path, text, mode=0o600):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


# ---------------------------------------------------------------- the whole path, for real


def test_deploy_provision_status_and_the_reader_syncs(tmp_path, board, build_dir):
    (tmp_path / "chain").mkdir()
    with Chain(tmp_path / "chain", readers=["R1"]) as c:
        reader_file = tmp_path / "office" / "R1.json"
        headoffice.write_provisioning(str(reader_file), "R1", c.keys["R1"], c.backend.url, "S1")
        password = _secret_file(tmp_path / "wifi.txt", "wifi-password-for-tests\n")

        first = flash.deploy(board.url, build_dir=build_dir)
        assert "main.py" in first.copied and "reader.mpy" in first.copied and "protocol/engine.mpy" in first.copied
        assert first.manifest_written
        manifest = json.loads((board.folder / "deploy.json").read_text())
        assert manifest["files"]["main.py"] == __import__("hashlib").sha256(
            (ROOT / "firmware" / "main.py").read_bytes()).hexdigest()

        assert flash.provision(board.url, reader_file, "Negozio", password, lang="it") == "R1"
        cfg = json.loads((board.folder / "config.json").read_text())
        assert (cfg["reader"], cfg["key"], cfg["backend"], cfg["board"], cfg["root"]) == (
            "R1", c.keys["R1"].hex(), c.backend.url, "esp32", "/data")
        assert cfg["wifi"] == {"ssid": "Negozio", "password": "wifi-password-for-tests"}

        # the virtual board runs the deployed firmware, which syncs with the backend
        wait_for(board.firmware_running, timeout=20, what="the firmware to start")
        board.till.connection(timeout=30)
        wait_for(lambda: c.state_of("R1") == "in_sync", timeout=60, what="R1 in sync on the dashboard", every=0.5)
        wait_for(lambda: (board.folder / "data" / "rules.json.synced").exists(), timeout=30, what="the rules on flash")

        s = flash.status(board.url)
        assert s["reader"] == "R1" and s["firmware"] == flash.firmware_version() and s["build"] == first.build
        assert s["rules"] == c.versions()[0] and s["pending"] == 0 and s["last_sync"]
        assert s["free_flash"] > 0
        text = flash.format_status(s) + json.dumps(s)
        assert c.keys["R1"].hex() not in text and "wifi-password" not in text

        second = flash.deploy(board.url, build_dir=build_dir)
        assert second.copied == [] and not second.manifest_written and second.build == first.build
        wait_for(board.firmware_running, timeout=20, what="the firmware to start again")


def test_a_deploy_cut_off_half_way_is_completed_by_the_next(tmp_path, board, build_dir):
    files = flash.firmware_files(build_dir)
    writes = []
    real_write = flash.Device.write_file

    def pulled_cable(self, path, data, progress=None):
        if len(writes) == 10:
            board.disconnect()  # the cable comes out in the middle of the copy
        writes.append(path)
        return real_write(self, path, data, progress)

    flash.Device.write_file = pulled_cable
    try:
        with pytest.raises(flash.FlashError) as e:
            flash.deploy(board.url, build_dir=build_dir)
    finally:
        flash.Device.write_file = real_write
    assert "run the command again" in str(e.value)
    assert not (board.folder / "deploy.json").exists()
    assert not (board.folder / "reader.mpy").exists()  # nothing renamed into place yet
    assert any(p.name.endswith(".new") for p in board.folder.rglob("*"))

    done = flash.deploy(board.url, build_dir=build_dir)
    assert sorted(done.copied) == sorted(files)
    for path, data in files.items():
        assert (board.folder / path).read_bytes() == data, path
    assert not [p for p in board.folder.rglob("*.new")]
    assert json.loads((board.folder / "deploy.json").read_text())["build"] == done.build
    assert flash.deploy(board.url, build_dir=build_dir).copied == []


def test_packages_come_from_a_local_folder(tmp_path, board, build_dir):
    lib = tmp_path / "lib"
    (lib / "shopext").mkdir(parents=True)
    (lib / "shopext" / "__init__.py").write_text("GREETING = 'ciao'\n")
    r = flash.deploy(board.url, build_dir=build_dir, lib=lib, reboot=False)
    assert "lib/shopext/__init__.py" in r.copied
    with flash.Device(board.url) as dev:
        assert dev.eval("__import__('shopext').GREETING") == "ciao"  # importable from /lib, as on the ESP32
    again = flash.deploy(board.url, build_dir=build_dir, reboot=False)  # without --lib this time
    assert again.removed == [] and (board.folder / "lib" / "shopext" / "__init__.py").exists()


def test_the_virtual_board_interrupts_and_soft_resets(tmp_path, board):
    (board.folder / "main.py").write_text("import time\nprint('firmware up')\nwhile True:\n    time.sleep(0.1)\n")
    with flash.Device(board.url) as dev:  # Ctrl-C stops nothing yet; soft reset gives a fresh interpreter
        dev.exec("x = 41")
        assert dev.eval("x + 1") == 42
        assert dev.eval("__import__('os').listdir('/')") == ["main.py"]
        dev.reboot()
    wait_for(board.firmware_running, timeout=10, what="main.py after the soft reset")
    with flash.Device(board.url) as dev:  # connecting interrupts the firmware (Ctrl-C)
        assert not board.firmware_running()
        with pytest.raises(flash.FlashError):
            dev.exec("raise ValueError('bad')")
        assert dev.eval("1 + 1") == 2


# ---------------------------------------------------------------- bad input


@pytest.fixture
def reader_file(tmp_path):
    path = tmp_path / "R9.json"
    headoffice.write_provisioning(str(path), "R9", bytes(range(32)), "http://127.0.0.1:9", "S1")
    return path


def test_a_missing_provisioning_file_is_refused(tmp_path):
    with pytest.raises(flash.ProvisioningRefused, match="no provisioning file"):
        flash.read_provisioning(tmp_path / "nope.json")


@pytest.mark.parametrize("text,what", [
    ("{not json", "not JSON"),
    ("[1, 2]", "not a JSON object"),
    ('{"reader": "R1", "key": "abcd", "backend": "http://x"}', "key: 64 hex digits"),
    ('{"reader": "R 1", "key": "%s", "backend": "http://x"}' % ("ab" * 32), "reader:"),
    ('{"reader": "R1", "key": "%s", "backend": "ftp://x"}' % ("ab" * 32), "backend:"),
])
def test_a_malformed_provisioning_file_is_refused(tmp_path, text, what):
    path = _secret_file(tmp_path / "R1.json", text)
    with pytest.raises(flash.ProvisioningRefused, match=re.escape(what)):
        flash.read_provisioning(path)


def test_a_provisioning_file_for_another_backend_is_refused(reader_file):
    assert flash.read_provisioning(reader_file, backend="http://127.0.0.1:9/")["reader"] == "R9"
    with pytest.raises(flash.ProvisioningRefused, match="is for the backend http://127.0.0.1:9, not http://other:8000"):
        flash.read_provisioning(reader_file, backend="http://other:8000")


def test_a_provisioning_file_readable_by_others_is_refused(reader_file, tmp_path):
    os.chmod(reader_file, 0o644)
    with pytest.raises(flash.ProvisioningRefused, match="can be read by others"):
        flash.read_provisioning(reader_file)
    pw = _secret_file(tmp_path / "pw", "x", mode=0o640)
    with pytest.raises(flash.ProvisioningRefused, match="can be read by others"):
        flash.read_secret(pw, "Wi-Fi password")


def test_an_unreachable_backend_is_named_and_nothing_is_written(tmp_path, reader_file, capsys):
    pw = _secret_file(tmp_path / "pw", "segreta")
    code = flash.main(["provision", "--port", "socket://127.0.0.1:9", "--file", str(reader_file),
                       "--wifi-ssid", "Negozio", "--wifi-password-file", str(pw)])
    err = capsys.readouterr().err
    assert code == 1 and "the backend http://127.0.0.1:9 does not answer" in err and "--skip-backend-check" in err
    assert "segreta" not in err and bytes(range(32)).hex() not in err


def test_something_else_than_the_backend_is_not_taken_for_it(tmp_path):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def answer():
        conn, _ = srv.accept()
        conn.recv(4096)
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
        conn.close()

    threading.Thread(target=answer, daemon=True).start()
    try:
        with pytest.raises(flash.BackendUnreachable, match="answered HTTP 200 where the backend answers 401"):
            flash.check_backend("http://127.0.0.1:%d" % srv.getsockname()[1])
    finally:
        srv.close()


def test_a_device_that_is_not_there(tmp_path, capsys):
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()  # nothing listens there now
    assert flash.main(["status", "--port", "socket://127.0.0.1:%d" % port]) == 1
    assert "nothing answers at socket://127.0.0.1:%d" % port in capsys.readouterr().err
    assert flash.main(["deploy", "--port", str(tmp_path / "ttyUSB9")]) == 1
    err = capsys.readouterr().err
    assert "no such port: %s" % (tmp_path / "ttyUSB9") in err and "list_ports" in err


def test_a_port_without_permission(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root may open anything")
    tty = tmp_path / "ttyUSB0"
    tty.write_text("")
    os.chmod(tty, 0)
    with pytest.raises(flash.PortPermission, match="dialout"):
        repl.check_port(str(tty))


def test_a_device_not_running_micropython(monkeypatch):
    """Something on the line that never shows a raw REPL (a bootloader, another program)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(2)
    stop = threading.Event()

    def chatter():
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            conn.sendall(b"rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n")
            stop.wait(5)
            conn.close()

    threading.Thread(target=chatter, daemon=True).start()
    monkeypatch.setattr(repl, "REPL_TIMEOUT", 2)
    try:
        with pytest.raises(flash.NotMicroPython, match="does not answer as MicroPython") as e:
            flash.status("socket://127.0.0.1:%d" % srv.getsockname()[1])
        assert "flash --port" in e.value.hint
    finally:
        stop.set()
        srv.close()


# ---------------------------------------------------------------- flash: esptool


class ScriptedEsptool:
    """Answers esptool command lines with esptool's own messages (esptool 5.x wording)."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = []

    def __call__(self, cmd):
        self.calls.append(cmd)
        return self.answers.pop(0)


CONNECTED = (0, "esptool v5.0.0\nConnecting....\nConnected to ESP32 on /dev/ttyUSB0:\n"
                "Chip type:          ESP32-D0WD-V3 (revision v3.1)\nChip ID: 0x...\n")
CONNECTED_S3 = (0, "Connecting...\nConnected to ESP32-S3 on /dev/ttyUSB0:\nChip type:          ESP32-S3 (QFN56) (revision v0.2)\n")


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "ESP32_GENERIC-20241129-v1.24.1.bin"
    path.write_bytes(b"\xe9" + bytes(2047))  # 0xE9: the ESP32 application image's magic byte
    return path


def _esptool(*args):
    return [sys.executable, "-m", "esptool"] + list(args)


def test_flash_writes_the_image_at_the_chips_offset(image):
    run = ScriptedEsptool([CONNECTED, (0, "Erase completed"), (0, "Hash of data verified.")])
    assert flash.flash("/dev/ttyUSB0", firmware=image, erase=True, run=run) == "ESP32"
    assert run.calls == [
        _esptool("--chip", "auto", "--port", "/dev/ttyUSB0", "chip-id"),
        _esptool("--chip", "esp32", "--port", "/dev/ttyUSB0", "erase-flash"),
        _esptool("--chip", "esp32", "--port", "/dev/ttyUSB0", "--baud", "460800", "write-flash", "0x1000", str(image)),
    ]


def test_flash_finds_a_named_version_for_an_s3_at_offset_zero(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    s3 = images / "ESP32_GENERIC_S3-20241129-v1.24.1.bin"
    s3.write_bytes(b"\xe9" + bytes(100))
    (images / "ESP32_GENERIC-20241129-v1.24.1.bin").write_bytes(b"\xe9")
    run = ScriptedEsptool([CONNECTED_S3, (0, "")])
    assert flash.flash("/dev/ttyACM0", version="1.24.1", images=images, run=run) == "ESP32-S3"
    assert run.calls[1] == _esptool("--chip", "esp32s3", "--port", "/dev/ttyACM0", "--baud", "460800",
                                    "write-flash", "0x0", str(s3))
    with pytest.raises(flash.FlashError, match="no MicroPython 1.99 image for ESP32_GENERIC_S3") as e:
        flash.flash("/dev/ttyACM0", version="1.99", images=images, run=ScriptedEsptool([CONNECTED_S3]))
    assert "micropython.org/download/ESP32_GENERIC_S3/" in e.value.hint


@pytest.mark.parametrize("output,error,hint", [
    ("A fatal error occurred: Could not open /dev/ttyUSB0, the port is busy or doesn't exist.\n"
     "([Errno 2] could not open port /dev/ttyUSB0: [Errno 2] No such file or directory: '/dev/ttyUSB0')\n",
     flash.NoSuchPort, "list_ports"),
    ("A fatal error occurred: Could not open /dev/ttyUSB0, the port is busy or doesn't exist.\n"
     "([Errno 13] could not open port /dev/ttyUSB0: [Errno 13] Permission denied: '/dev/ttyUSB0')\n"
     "Hint: Try to add user into dialout or uucp group.\n", flash.PortPermission, "dialout"),
    ("Connecting......................................\n"
     "A fatal error occurred: Failed to connect to ESP32: No serial data received.\n",
     flash.NotInDownloadMode, "BOOT"),
    ("Connecting....\nA fatal error occurred: Failed to connect to ESP32: Wrong boot mode detected (0x13)! "
     "The chip needs to be in download mode.\n", flash.NotInDownloadMode, "BOOT"),
])
def test_esptools_failures_say_what_to_do(image, output, error, hint, capsys, monkeypatch):
    run = ScriptedEsptool([(2, output)])
    with pytest.raises(error) as e:
        flash.flash("/dev/ttyUSB0", firmware=image, run=run)
    assert hint in e.value.hint
    monkeypatch.setattr(esp32, "run_esptool", ScriptedEsptool([(2, output)]))
    assert flash.main(["flash", "--port", "/dev/ttyUSB0", "--firmware", str(image)]) == 1
    assert hint in capsys.readouterr().err


def test_flash_refuses_what_is_not_an_esp32_image(tmp_path):
    uf2 = tmp_path / "firmware.uf2"
    uf2.write_bytes(b"UF2\n" + bytes(100))
    run = ScriptedEsptool([])
    with pytest.raises(flash.FlashError, match="not an ESP32 firmware image"):
        flash.flash("/dev/ttyUSB0", firmware=uf2, run=run)
    assert run.calls == []  # refused before esptool touched the board


def test_flash_runs_the_real_esptool_against_a_missing_port(tmp_path, image):
    with pytest.raises(flash.NoSuchPort):
        flash.flash(str(tmp_path / "ttyUSB7"), firmware=image)


@pytest.mark.hardware
def test_flash_a_real_esp32(request, image):
    port = request.config.getoption("--serial-port")
    if not port:
        pytest.skip("no ESP32: give --serial-port /dev/ttyUSB0 to run")
    family = flash.detect_chip(port)
    assert family in flash.IMAGE_OFFSET


# ---------------------------------------------------------------- help and README


def test_every_command_has_help_and_a_readme_section(capsys):
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Putting a reader into service", 1)
    assert len(section) == 2, "README has no 'Putting a reader into service' section"
    section = section[1].split("\n## ", 1)[0]
    for command in COMMANDS:
        with pytest.raises(SystemExit) as e:
            flash.main([command, "--help"])
        assert e.value.code == 0
        out = capsys.readouterr().out
        assert "--port" in out and len(out.split("\n\n", 2)[1].strip()) > 30, command  # a description
        assert re.search(r"loyalty-flash %s\b" % command, section), "README does not describe %s" % command
    with pytest.raises(SystemExit):
        flash.main(["--help"])
    top = capsys.readouterr().out
    for command in COMMANDS:
        assert command in top


def test_a_board_that_was_another_reader_keeps_its_journal_unless_wiped(tmp_path, board):
    reader_file = tmp_path / "office" / "R1.json"
    headoffice.write_provisioning(str(reader_file), "R1", b"\x01" * 32, "http://127.0.0.1:9", "S1")
    password = _secret_file(tmp_path / "wifi.txt", "pw\n")
    (board.folder / "config.json").write_text(json.dumps({"reader": "R9", "root": "/data", "board": "esp32",
                                                          "key": "9" * 64}))
    journal = board.folder / "data" / "journal"
    journal.mkdir(parents=True)
    (journal / "00000001.seg").write_bytes(b"\xa5receipts R9 has not synced")
    with pytest.raises(flash.ProvisioningRefused) as e:
        flash.provision(board.url, reader_file, "Negozio", password, check=False, reboot=False)
    assert "R9" in str(e.value) and "--wipe-data" in e.value.hint
    assert (journal / "00000001.seg").exists()  # nothing lost
    assert json.loads((board.folder / "config.json").read_text())["reader"] == "R9"
    assert flash.provision(board.url, reader_file, "Negozio", password, check=False, reboot=False,
                           wipe_data=True) == "R1"
    assert not (journal / "00000001.seg").exists()
    assert json.loads((board.folder / "config.json").read_text())["reader"] == "R1"


def test_a_device_that_cannot_load_our_mpy_files_gets_none_of_them(tmp_path, board, build_dir, monkeypatch):
    # as if mpy-cross made .mpy files of another format than the board's MicroPython loads
    monkeypatch.setattr(deployment, "_mpy_version", lambda data: 5)
    with pytest.raises(flash.NotMicroPython) as e:
        flash.deploy(board.url, build_dir=build_dir)
    assert "version 6" in str(e.value) and "flash" in e.value.hint
    assert not [p for p in board.folder.rglob("*.mpy*")]  # nothing copied
    monkeypatch.undo()
    assert deployment._mpy_version((build_dir / "reader.mpy").read_bytes()) == 6  # the real header


def test_a_power_cut_among_the_renames_is_finished_at_boot(tmp_path, board, build_dir):
    flash.deploy(board.url, build_dir=build_dir, reboot=False)  # the board has our main.py
    for name in ("reader.mpy", "app.mpy"):
        (board.folder / name).write_bytes(b"an older build")
    real_exec = flash.Device.exec

    def cut_before_the_renames(self, code):
        if code.endswith(scripts.source("switch")) and "reader.mpy" in code:
            board.disconnect()  # the power goes just as the renames start
            raise flash.FlashError("lost the connection")
        return real_exec(self, code)

    flash.Device.exec = cut_before_the_renames
    try:
        with pytest.raises(flash.FlashError):
            flash.deploy(board.url, build_dir=build_dir, reboot=False)
    finally:
        flash.Device.exec = real_exec
    assert (board.folder / "reader.mpy").read_bytes() == b"an older build"  # old and new side by side
    assert sorted((board.folder / "deploy.pending").read_text().split()) == ["app.mpy", "reader.mpy"]
    with flash.Device(board.url) as dev:
        dev.reboot()  # the board boots: main.py puts the rest in place before importing anything
    wait_for(lambda: not (board.folder / "deploy.pending").exists(), timeout=20, what="main.py to finish")
    for name in ("reader.mpy", "app.mpy"):
        assert (board.folder / name).read_bytes() == (build_dir / name).read_bytes(), name
        assert not (board.folder / (name + ".new")).exists()


# ---------------------------------------------------------------- device scripts

# values of the kind each script gets from the host (device/NAME.py's `# takes:` line)
SCRIPT_VALUES = {"hashes": {"_PATHS": ["main.py", "protocol/engine.mpy"], "_MANIFEST": "deploy.json"},
                 "mkdirs": {"_DIRS": ["protocol", "protocol/x"]}, "switch": {"_RENAME": ["a.mpy"], "_REMOVE": []},
                 "data_files": {"_ROOT": "/data"}, "wipe": {"_ROOT": "/data"}}


def test_the_device_scripts_are_the_ones_the_tool_runs():
    assert scripts.names() == sorted(["data_files", "feed", "hashes", "mkdirs", "status", "switch", "watched", "wipe"])
    for name in scripts.names():
        assert scripts.takes(name) == sorted(SCRIPT_VALUES.get(name, {})), name


@pytest.mark.parametrize("name", scripts.names())
def test_every_device_script_compiles_with_mpy_cross(name, tmp_path):
    """A syntax error in code the device runs fails here, not on a reader in a store."""
    src = tmp_path / (name + ".py")
    src.write_text(scripts.script(name, **SCRIPT_VALUES.get(name, {})))  # as it is sent
    r = subprocess.run([runtimes.mpy_cross(), "-o", str(tmp_path / "out.mpy"), str(src)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_a_script_gets_exactly_the_values_it_takes():
    text = scripts.script("wipe", _ROOT="/data")
    assert text == "_ROOT = '/data'\n" + scripts.source("wipe")
    with pytest.raises(ValueError, match="takes _ROOT, not nothing"):
        scripts.script("wipe")
    with pytest.raises(ValueError, match="takes _ROOT, not _ROOT, _ROOTS"):
        scripts.script("wipe", _ROOT="/data", _ROOTS="/")
    with pytest.raises(ValueError, match="not a literal"):
        scripts.script("wipe", _ROOT=object())


def test_the_command_runs_as_installed_and_as_a_module(tmp_path):
    # from a folder that is not the checkout: the installed package, not the working directory
    for cmd in ([str(Path(sys.executable).parent / "loyalty-flash"), "status", "--help"],
                [sys.executable, "-m", "loyalty.tools.flash", "deploy", "--help"]):
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=str(tmp_path))
        assert r.returncode == 0 and "--port" in r.stdout and "usage: loyalty-flash" in r.stdout, r.stderr


# ---------------------------------------------------------------- status reads the journal's frames


def _journal_with_pending(root, appended, acked):
    """A journal the firmware's own Journal writes (CPython): `appended` receipts, `acked` of them acked."""
    from journal import Journal
    from loyalty.protocol.records import GENESIS, make_record

    root.parent.mkdir(parents=True, exist_ok=True)
    j = Journal(str(root), segment_size=400)  # several segments: status counts the newest one's frames
    for i in range(appended):
        j.append(make_record("sale", reader="R1", seq=0, prev=GENESIS, t=1700000000 + 60 * i, card="42%08d" % i,
                             tier=1, lines=[{"sku": "800120001", "qty": 1, "price": 99}], gross=99, discount=0,
                             disc=[], rules=3, quote="Q%d" % i))
    if acked:
        j.ack(acked)
    j.close()
    assert j.stats()["pending"] == appended - acked


def test_status_counts_the_pending_receipts_with_the_firmwares_frames(tmp_path, board, build_dir):
    flash.deploy(board.url, build_dir=build_dir, reboot=False)  # journalframe.mpy is on the board
    journal = board.folder / "data" / "journal"
    _journal_with_pending(journal, appended=9, acked=4)
    assert len(list(journal.glob("*.seg"))) > 1 and (journal / "meta").exists()
    assert flash.status(board.url, reboot=False)["pending"] == 5
    with open(sorted(journal.glob("*.seg"))[-1], "ab") as f:
        f.write(b"\xa5\x00\x40" + bytes(10))  # a torn frame after the last record: not a receipt
    assert flash.status(board.url, reboot=False)["pending"] == 5


def test_status_without_the_frame_module_says_pending_is_unknown(tmp_path, board):
    """A board whose firmware was deployed before journalframe existed."""
    _journal_with_pending(board.folder / "data" / "journal", appended=3, acked=0)
    s = flash.status(board.url, reboot=False)
    assert s["pending"] is None and "pending receipts: unknown" in flash.format_status(s)


def test_deploy_refuses_a_build_folder_that_holds_other_files(tmp_path):
    # the build removes what the manifest does not name: `--build ~` must not empty a home
    (tmp_path / "thesis.txt").write_text("mine")
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "flash"), "deploy", "--port", "socket://127.0.0.1:9",
                        "--build", str(tmp_path)], capture_output=True, text=True, cwd=str(ROOT))
    assert r.returncode == 1, r.stderr
    assert "not built by tools/mpybuild.py" in r.stderr and "--build names the build folder" in r.stderr
    assert "Traceback" not in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis.txt"]
