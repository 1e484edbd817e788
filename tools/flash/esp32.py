"""`flash`: MicroPython onto a reader's ESP32, with esptool (`python -m esptool ...`).

    flash("/dev/ttyUSB0", version="1.24.1", erase=True)   # -> "ESP32"

The chip family decides where the image goes (IMAGE_OFFSET) and which of
micropython.org's images fits it (BOARD_NAME). esptool's failures become FlashErrors
that say what to do (most often: put the board into download mode).
"""
import os
import re
import subprocess
import sys
from pathlib import Path

from loyalty.i18n import _
from loyalty.tools.flash.errors import (DIALOUT, DOWNLOAD_MODE, FIND_PORT, FlashError, NoSuchPort, NotInDownloadMode, PortBusy,
                          PortPermission)
from loyalty.tools.flash.progress import Progress

IMAGES = Path(os.environ.get("LOYALTY_MICROPYTHON_IMAGES", Path.home() / ".cache" / "loyalty" / "micropython"))
# where MicroPython's image goes: the ESP32 and S2 keep their second-stage bootloader at 0x1000
IMAGE_OFFSET = {"ESP32": 0x1000, "ESP32-S2": 0x1000, "ESP32-S3": 0x0, "ESP32-C3": 0x0, "ESP32-C6": 0x0}
BOARD_NAME = {"ESP32": "ESP32_GENERIC", "ESP32-S2": "ESP32_GENERIC_S2", "ESP32-S3": "ESP32_GENERIC_S3",
              "ESP32-C3": "ESP32_GENERIC_C3", "ESP32-C6": "ESP32_GENERIC_C6"}
WRITE_BAUD = 460800


def esptool_cmd(port, *args, chip="auto", baud=None):
    """esptool's command line for `args` on `port`, run by this Python."""
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
        return PortPermission(_("permission denied on %(port)s", port=port), _(DIALOUT))
    if "Errno 16" in output or "Resource busy" in output:
        return PortBusy(_("%(port)s is in use by another program", port=port),
                        _("close the console or other tool using it"))
    if "Could not open" in output or "No such file" in output:
        return NoSuchPort(_("no such port: %(port)s", port=port), _(FIND_PORT))
    if "Failed to connect" in output or "Wrong boot mode" in output or "No serial data received" in output:
        return NotInDownloadMode(_("the chip on %(port)s is not in download mode", port=port), _(DOWNLOAD_MODE))
    last = [x for x in output.strip().splitlines() if x.strip()][-1:] or [_("(no output)")]
    return FlashError(_("esptool failed on %(port)s: %(output)s", port=port, output=last[0].strip()),
                      _("run it again; the full output is above"))


def detect_chip(port, run=None):
    """The chip family on `port` ("ESP32", "ESP32-S3", ...), as esptool reports it."""
    run = run or run_esptool
    code, out = run(esptool_cmd(port, "chip-id"))
    if code != 0:
        raise esptool_failure(port, out)
    m = re.search(r"Connected to (ESP32\S*) on", out) or re.search(r"Chip is (ESP32\S*)", out)
    if not m:
        raise FlashError(_("esptool did not say which chip is on %(port)s", port=port),
                         _("run `python -m esptool --port %(port)s chip-id`", port=port))
    family = re.match(r"ESP32(-[SCHP]\d+)?", m.group(1)).group(0)
    if family not in IMAGE_OFFSET:
        raise FlashError(_("%(chip)s on %(port)s: not a chip this tool knows", chip=family, port=port),
                         _("readers are ESP32 boards"))
    return family


def find_image(family, version, images=IMAGES):
    """The MicroPython image for `family` at `version` in the images folder."""
    board = BOARD_NAME[family]
    found = sorted(Path(images).glob("%s-*v%s.bin" % (board, version))) + sorted(Path(images).glob("%s-v%s.bin" % (board, version)))
    if not found:
        raise FlashError(_("no MicroPython %(version)s image for %(board)s in %(folder)s",
                           version=version, board=board, folder=images),
                         _("download %(board)s-<date>-v%(version)s.bin from https://micropython.org/download/%(board)s/ "
                           "into that folder, or pass --firmware FILE", board=board, version=version))
    return found[-1]


def check_image(path):
    path = Path(path)
    if not path.is_file():
        raise FlashError(_("no such firmware image: %(path)s", path=path),
                         _("give the path of a MicroPython .bin for ESP32"))
    with open(path, "rb") as f:
        if f.read(1) != b"\xe9":  # every ESP32 application image starts with this magic byte
            raise FlashError(_("%(path)s is not an ESP32 firmware image", path=path),
                             _("use the .bin from micropython.org, not a .uf2, .hex or .elf"))
    return path


def flash(port, firmware=None, version=None, erase=False, baud=WRITE_BAUD, images=IMAGES, run=None, progress=None):
    """Write MicroPython onto the ESP32 on `port` (erasing it first with erase=True); the chip family.

    `run`: runs an esptool command line, returns (exit code, output); run_esptool by default."""
    run = run or run_esptool
    if (firmware is None) == (version is None):
        raise FlashError(_("give either a firmware image or a version"), _("--firmware FILE or --version 1.24.1"))
    p = progress or Progress(quiet=True)
    p.stages(3 + bool(erase))
    if firmware is not None:
        check_image(firmware)
    p.stage(_("detecting the chip on %(port)s", port=port))
    family = detect_chip(port, run)
    p.note(family)
    image = check_image(firmware) if firmware is not None else find_image(family, version, images)
    chip = family.lower().replace("-", "")
    if erase:
        p.stage(_("erasing the flash"))
        code, out = run(esptool_cmd(port, "erase-flash", chip=chip))
        if code != 0:
            raise esptool_failure(port, out)
    p.stage(_("writing %(image)s at %(offset)s", image=image.name, offset="0x%x" % IMAGE_OFFSET[family]))
    code, out = run(esptool_cmd(port, "write-flash", "0x%x" % IMAGE_OFFSET[family], str(image), chip=chip, baud=baud))
    if code != 0:
        raise esptool_failure(port, out)
    p.stage(_("done: MicroPython on the %(chip)s; next: deploy", chip=family))
    p.done()
    return family
