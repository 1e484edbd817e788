"""Every way a flash command can fail: a FlashError that says what happened and what to do.

    raise NoSuchPort("no such port: /dev/ttyUSB9", FIND_PORT)

cli.main() prints `what` and `hint` and exits non-zero; scripts catch FlashError.
"""

FIND_PORT = ("list the ports with `python -m serial.tools.list_ports` (or ls /dev/ttyUSB* /dev/ttyACM*) "
             "and check the cable")
DOWNLOAD_MODE = ("hold the BOOT button, press and release EN (reset), release BOOT, then run the command "
                 "again (some boards need a lower --baud or a better USB cable)")
DIALOUT = "add yourself to the port's group (sudo usermod -aG dialout $USER), log out and in again"


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
