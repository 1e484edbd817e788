"""Every way a flash command can fail: a FlashError that says what happened and what to do.

    raise NoSuchPort(_("no such port: %(port)s", port=port), _(FIND_PORT))

`what` and `hint` are in the current language (loyalty.i18n): built where the error is
raised, and the hints below are marked here (N_) and translated there. cli.main() prints
them and exits non-zero; scripts catch FlashError.
"""
from loyalty.i18n import N_

FIND_PORT = N_("list the ports with `python -m serial.tools.list_ports` (or ls /dev/ttyUSB* /dev/ttyACM*) "
                "and check the cable")
DOWNLOAD_MODE = N_("hold the BOOT button, press and release EN (reset), release BOOT, then run the command "
                   "again (some boards need a lower --baud or a better USB cable)")
DIALOUT = N_("add yourself to the port's group (sudo usermod -aG dialout $USER), log out and in again")


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
