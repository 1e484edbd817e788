"""`status`: what is on a reader, read from its files without changing them.

    s = status("socket://127.0.0.1:7700")   # {"reader": "R1", "firmware": "0.1.0", "pending": 0, ...}
    print(format_status(s))

device/status.py reads the files on the device and counts the journal's pending
receipts with the firmware's own frame module (journalframe), so status and journal
read one format. No secrets: the key and the Wi-Fi password never leave the device.
"""
import time

from loyalty.i18n import _
from loyalty.tools.flash.repl import Device

STATUS_FIELDS = ("reader", "firmware", "build", "rules", "free_flash", "pending", "last_sync", "last_error",
                 "backend", "wifi", "lang", "board", "deployed")


def status(port, reboot=True):
    """What is on the device, read from its files without changing them; a dict (no secrets).

    last_sync: the time rules.json.synced holds (the firmware writes it at most every five
    minutes); last_error: from status.json when the firmware keeps one, else None;
    pending: None when the deployed firmware has no journalframe module to count with."""
    with Device(port) as dev:
        s = dev.run("status")
        if reboot:
            dev.reboot()
    return {k: s.get(k) for k in STATUS_FIELDS}


def _when(t):
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t)) if t else _("never")


def format_status(s):
    """The status as the command prints it: one "name: value" line each, in the current language."""
    rows = [(_("reader"), s["reader"] or _("not provisioned")),
            (_("firmware"), _("%(version)s (build %(build)s, deployed %(when)s)",
                              version=s["firmware"], build=s["build"], when=_when(s["deployed"]))
             if s["firmware"] else _("not deployed")),
            (_("rules"), "v%s" % s["rules"]),
            (_("free flash"), "%d KB" % (s["free_flash"] // 1024) if s["free_flash"] is not None else _("unknown")),
            (_("pending receipts"), s["pending"] if s["pending"] is not None
             else _("unknown (deploy the firmware again)")),
            (_("last sync"), _when(s["last_sync"])),
            (_("last error"), s["last_error"] or (_("none") if s["last_error"] == "" else _("not kept on flash"))),
            (_("backend"), s["backend"] or "-"),
            (_("wifi"), s["wifi"] or "-")]
    width = max(len(k) for k, _v in rows) + 1  # the values in one column, whatever the language
    return "\n".join("%-*s %s" % (width, k + ":", v) for k, v in rows)
