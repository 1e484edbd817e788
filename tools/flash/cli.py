"""The command line: `loyalty-flash COMMAND --port PORT ...` (see README.md).

    main(["status", "--port", "socket://127.0.0.1:7700"])   # 0, or 1 after printing the error

A thin layer over the library's functions: it parses the arguments, shows progress in
stages, and is the one place that turns a FlashError into "error: what / what to do"
and an exit code. It speaks the process's language (Italian unless LOYALTY_LANG or the
locale says English: loyalty.i18n.for_commands), argparse's own texts too; --json output
is the same in every language.
"""
import argparse
import json
import sys

from loyalty.i18n import _, for_commands
from loyalty.tools import mpybuild

from loyalty.tools.flash.deployment import deploy
from loyalty.tools.flash.errors import FlashError
from loyalty.tools.flash.esp32 import IMAGES, WRITE_BAUD, flash
from loyalty.tools.flash.progress import Progress
from loyalty.tools.flash.provisioning import provision
from loyalty.tools.flash.readerstatus import format_status, status
from loyalty.tools.flash.repl import console

PROG = "loyalty-flash"


def _parser():
    ap = argparse.ArgumentParser(prog=PROG, description=_("Put a loyalty reader into service: MicroPython, "
                                                          "the firmware, its identity and the store's Wi-Fi."))
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def port(p):
        p.add_argument("--port", required=True,
                       help=_("serial port (/dev/ttyUSB0, COM3) or socket://HOST:PORT (virtual board)"))

    f = sub.add_parser("flash", help=_("write MicroPython onto the ESP32 with esptool"),
                       description=_("Detect the chip and write a MicroPython ESP32 image with esptool. "
                                     "The board must be in download mode (most do it by themselves)."))
    port(f)
    f.add_argument("--erase", action="store_true", help=_("erase the whole flash first (the reader's journal too!)"))
    g = f.add_mutually_exclusive_group(required=True)
    g.add_argument("--firmware", help=_("a MicroPython .bin image"))
    g.add_argument("--version", help=_("a MicroPython version (e.g. 1.24.1) found in --images"))
    # %(default)s: argparse's own place, filled when the help is shown
    f.add_argument("--images", default=str(IMAGES), help=_("folder of downloaded images (default %(default)s)"))
    f.add_argument("--baud", type=int, default=WRITE_BAUD, help=_("baud rate for writing (default %(default)s)"))

    d = sub.add_parser("deploy", help=_("compile the firmware and copy what changed to the device"),
                       description=_("Compile firmware/ and shared/protocol/ with mpy-cross, copy the files whose "
                                     "hash differs from the device's, write the manifest, reboot into the firmware."))
    port(d)
    d.add_argument("--build", default=str(mpybuild.DEFAULT_OUT), help=_("build folder (default %(default)s)"))
    d.add_argument("--lib", help=_("copy micropython-lib packages from this folder to /lib (for devices offline)"))
    d.add_argument("--no-reboot", action="store_true", help=_("stay in the REPL instead of starting the firmware"))

    pr = sub.add_parser("provision", help=_("write the reader's identity, key, backend and Wi-Fi"),
                        description=_("Write config.json on the device from head office's provisioning file. "
                                      "Secrets are never printed and status never shows them."))
    port(pr)
    pr.add_argument("--file", required=True,
                    help=_("the provisioning file (reader.json, mode 600) from add-reader"))
    pr.add_argument("--wifi-ssid", required=True, help=_("the store's Wi-Fi network"))
    pr.add_argument("--wifi-password-file", required=True, help=_("a file (mode 600) holding the Wi-Fi password"))
    pr.add_argument("--lang", default="it", choices=("it", "en"), help=_("the display's language (default it)"))
    pr.add_argument("--backend", help=_("refuse a provisioning file for another backend than this one"))
    pr.add_argument("--skip-backend-check", action="store_true", help=_("do not check that the backend answers"))
    pr.add_argument("--wipe-data", action="store_true",
                    help=_("erase the journal of the reader this board was before (only after its last sync)"))
    pr.add_argument("--no-reboot", action="store_true", help=_("stay in the REPL instead of starting the firmware"))

    s = sub.add_parser("status", help=_("show what is on the device"),
                       description=_("Firmware and rules versions, free flash, pending receipts, last sync, last "
                                     "error; read from the device's files without changing them."))
    port(s)
    s.add_argument("--json", action="store_true", help=_("print JSON"))

    c = sub.add_parser("console", help=_("the device's REPL (mpremote); Ctrl-] leaves"),
                       description=_("Open the device's MicroPython REPL through mpremote. Ctrl-C stops the "
                                     "firmware; Ctrl-D restarts it; Ctrl-] leaves."))
    port(c)
    return ap


def main(argv=None):
    """Run one command; the exit code (0, 1 after a FlashError, 130 when interrupted)."""
    for_commands()
    args = _parser().parse_args(argv)
    progress = Progress()
    try:
        if args.command == "flash":
            flash(args.port, args.firmware, args.version, args.erase, args.baud, args.images, progress=progress)
        elif args.command == "deploy":
            r = deploy(args.port, args.build, args.lib, reboot=not args.no_reboot, progress=progress)
            print(_("deployed: %(copied)d copied, %(unchanged)d unchanged, %(removed)d removed",
                    copied=len(r.copied), unchanged=len(r.unchanged), removed=len(r.removed)))
        elif args.command == "provision":
            name = provision(args.port, args.file, args.wifi_ssid, args.wifi_password_file, args.lang,
                             args.backend, check=not args.skip_backend_check, reboot=not args.no_reboot, progress=progress,
                             wipe_data=args.wipe_data)
            print(_("provisioned as reader %(reader)s", reader=name))
        elif args.command == "status":
            s = status(args.port)
            # --json: the field names and values as they are, for scripts (no language)
            print(json.dumps(s, sort_keys=True) if args.json else format_status(s))
        elif args.command == "console":
            return console(args.port)
    except FlashError as e:
        progress.done()
        sys.stderr.write(_("error: %(error)s", error=e) + "\n")
        return 1
    except KeyboardInterrupt:
        progress.done()
        sys.stderr.write(_("interrupted: run the command again to finish") + "\n")
        return 130
    return 0
