"""Put a reader into service: MicroPython, the firmware, its identity, the store's Wi-Fi.

A thin command line over functions that scripts call too (as esptool and mpremote are):

    loyalty-flash flash     --port /dev/ttyUSB0 [--erase] (--firmware FILE | --version 1.24.1)
    loyalty-flash deploy    --port /dev/ttyUSB0            # or socket://127.0.0.1:7700
    loyalty-flash provision --port /dev/ttyUSB0 --file R1.json \\
                            --wifi-ssid Negozio --wifi-password-file wifi.txt [--lang it]
    loyalty-flash status    --port /dev/ttyUSB0
    loyalty-flash console   --port /dev/ttyUSB0

    from loyalty.tools import flash
    flash.deploy("socket://127.0.0.1:7700")    # -> DeployReport(copied, unchanged, removed, ...)
    flash.status("socket://127.0.0.1:7700")    # -> {"reader": "R1", "firmware": "0.1.0", ...}

The modules, one job each:
    cli.py           the command line: arguments, progress, errors into messages and exit codes
    errors.py        FlashError and its kinds: what happened and what to do
    progress.py      stages on stderr, a bar on a terminal
    repl.py          the device link: the raw REPL (Device) and the console
    scripts.py       the device scripts of device/, with the values the host gives them
    esp32.py         flash: MicroPython onto the ESP32 with esptool (a subprocess)
    deployment.py    deploy: the firmware, copying only what changed
    provisioning.py  provision: identity, key, backend, Wi-Fi
    readerstatus.py  status: what is on the device
    device/*.py      MicroPython code run on the device through the raw REPL

`flash` drives esptool (`python -m esptool ...`); the other commands talk to
MicroPython's raw REPL with mpremote's transport, on a serial port or on the virtual
board (sim/vboard.py, `socket://` URLs). Every failure is a FlashError that says what
happened and what to do; main() prints it and exits non-zero.

On the device (paths from its root "/"):
    main.py, *.mpy, drivers/, protocol/   the firmware (tools/mpybuild.py's build)
    lib/                                  micropython-lib packages (none needed today:
                                          asyncio is built into MicroPython)
    deploy.json                           what deploy wrote: firmware version, build id,
                                          every file's sha256; written last
    config.json                           identity, key, backend, Wi-Fi (provision)

Connecting to a running reader interrupts its firmware (Ctrl-C, as mpremote does); every
command that connects ends with a soft reset, which starts the firmware again.
"""
from loyalty.tools.flash.cli import main
from loyalty.tools.flash.deployment import DeployReport, deploy, firmware_files, firmware_version
from loyalty.tools.flash.errors import (BackendUnreachable, FlashError, NoSuchPort, NotInDownloadMode, NotMicroPython,
                          PortBusy, PortPermission, ProvisioningRefused)
from loyalty.tools.flash.esp32 import IMAGE_OFFSET, detect_chip, flash
from loyalty.tools.flash.progress import Progress
from loyalty.tools.flash.provisioning import check_backend, provision, read_provisioning, read_secret
from loyalty.tools.flash.readerstatus import STATUS_FIELDS, format_status, status
from loyalty.tools.flash.repl import Device, console

__all__ = ["BackendUnreachable", "DeployReport", "Device", "FlashError", "IMAGE_OFFSET", "NoSuchPort",
           "NotInDownloadMode", "NotMicroPython", "PortBusy", "PortPermission", "Progress", "ProvisioningRefused",
           "STATUS_FIELDS", "check_backend", "console", "deploy", "detect_chip", "firmware_files",
           "firmware_version", "flash", "format_status", "main", "provision", "read_provisioning", "read_secret",
           "status"]
