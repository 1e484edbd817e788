"""`provision`: a reader's identity, key, backend and the store's Wi-Fi, into its config.json.

    provision("/dev/ttyUSB0", "R1.json", "Negozio", "wifi.txt", lang="it")   # -> "R1"

The provisioning file comes from head office (backend/headoffice/stores.py write_provisioning)
and holds the reader's key: it, and the Wi-Fi password's file, must be readable by their
owner only. Secrets are never printed. A board that was another reader keeps that
reader's journal unless --wipe-data says its last sync is done.
"""
import json
import re
import stat
import urllib.error
import urllib.request
from pathlib import Path

from loyalty.i18n import _, ngettext
from loyalty.tools.flash.errors import BackendUnreachable, ProvisioningRefused
from loyalty.tools.flash.progress import Progress
from loyalty.tools.flash.repl import Device

CONFIG = "config.json"
DATA_ROOT = "/data"  # where the firmware keeps its journal, rules and directory


def read_provisioning(path, backend=None):
    """The provisioning file (backend/headoffice/stores.py write_provisioning), checked; a dict."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ProvisioningRefused(_("no provisioning file at %(path)s", path=path),
                                  _("head office's add-reader command writes it: ask for the reader's file"))
    if st.st_mode & 0o077:
        raise ProvisioningRefused(_("%(path)s can be read by others (mode %(mode)o): it holds the reader's key",
                                    path=path, mode=stat.S_IMODE(st.st_mode)),
                                  _("chmod 600 %(path)s, and ask head office for a new key if others may have "
                                    "copied it", path=path))
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise ProvisioningRefused(_("%(path)s is not a provisioning file (not JSON: %(error)s)",
                                    path=path, error=e.__class__.__name__),
                                  _("use the file head office's add-reader command wrote, unchanged"))
    problems = []
    if not isinstance(data, dict):
        data, problems = {}, [_("not a JSON object")]
    if not (isinstance(data.get("reader"), str) and re.fullmatch(r"[A-Za-z0-9_.-]{1,32}", data["reader"])):
        problems.append(_("reader: a name of 1-32 letters, digits, . _ -"))
    if not (isinstance(data.get("key"), str) and re.fullmatch(r"[0-9a-f]{64}", data["key"])):
        problems.append(_("key: 64 hex digits"))
    if not (isinstance(data.get("backend"), str) and re.match(r"https?://[^/\s]+", data["backend"])):
        problems.append(_("backend: an http(s):// address"))
    if problems:
        raise ProvisioningRefused(_("%(path)s is not a valid provisioning file: %(problems)s",
                                    path=path, problems="; ".join(problems)),
                                  _("use the file head office's add-reader command wrote, unchanged"))
    if backend is not None and data["backend"].rstrip("/") != backend.rstrip("/"):
        raise ProvisioningRefused(_("%(path)s is for the backend %(theirs)s, not %(ours)s",
                                    path=path, theirs=data["backend"], ours=backend),
                                  _("use the provisioning file made by this backend's head office"))
    return data


def read_secret(path, what):
    """A secret's one line from the file at `path`, which only its owner may read; `what`
    names the secret in the messages, in the current language (_("Wi-Fi password"))."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ProvisioningRefused(_("no %(what)s file at %(path)s", what=what, path=path),
                                  _("write it (one line) and chmod 600 it"))
    if st.st_mode & 0o077:
        raise ProvisioningRefused(_("%(path)s can be read by others (mode %(mode)o)", path=path,
                                    mode=stat.S_IMODE(st.st_mode)),
                                  "chmod 600 %s" % path)  # a command: the same in every language
    try:
        return path.read_text().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as e:
        raise ProvisioningRefused(_("cannot read the %(what)s from %(path)s (%(error)s)",
                                    what=what, path=path, error=e.__class__.__name__),
                                  _("a text file of one line, readable by you only"))


def check_backend(url, timeout=5):
    """Is the backend at `url` alive? An unsigned GET of the rules is refused with 401 by it."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/api/v1/sync/rules", timeout=timeout) as r:
            code = r.status
    except urllib.error.HTTPError as e:
        code = e.code
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise BackendUnreachable(_("the backend %(url)s does not answer (%(error)s)",
                                   url=url, error=getattr(e, "reason", e)),
                                 _("check the laptop is on the store's network and the address is right; "
                                   "--skip-backend-check provisions anyway"))
    if code != 401:
        raise BackendUnreachable(_("%(url)s answered HTTP %(status)d where the backend answers 401: is it the "
                                   "backend?", url=url, status=code),
                                 _("check the address in the provisioning file"))
    return True


def provision(port, file, wifi_ssid, wifi_password_file, lang="it", backend=None, check=True, reboot=True, progress=None,
              wipe_data=False):
    """Write the reader's config.json on the device; returns the reader's name. Secrets are never printed.

    A board that was another reader keeps that reader's journal under /data: its receipts
    would be lost to the backend, and the new reader's chain would start on them. So that
    is refused unless `wipe_data` (after the old reader's last sync) erases /data first."""
    p = progress or Progress(quiet=True)
    p.stages(4)
    p.stage(_("reading %(file)s", file=file))
    data = read_provisioning(file, backend)
    # TRANSLATORS: the secret's name inside "no %(what)s file at ..." and "cannot read the %(what)s from ..."
    password = read_secret(wifi_password_file, _("Wi-Fi password"))
    if not wifi_ssid or len(wifi_ssid) > 32 or len(password) > 64:
        raise ProvisioningRefused(_("Wi-Fi: the SSID must be 1-32 characters, the password at most 64"),
                                  _("check --wifi-ssid and the password file"))
    if lang not in ("it", "en"):
        raise ProvisioningRefused(_("language %(lang)r: it or en", lang=lang), _("--lang it or --lang en"))
    p.stage(_("checking the backend %(url)s", url=data["backend"]))
    if check:
        check_backend(data["backend"])
    else:
        p.note(_("skipped"))
    p.stage(_("writing the reader's identity on %(port)s", port=port))
    with Device(port) as dev:
        try:
            old = json.loads(dev.eval("open(%r).read() if %r in __import__('os').listdir() else ''" % (CONFIG, CONFIG)) or "{}")
        except ValueError:
            old = {}
        root = old.get("root") if isinstance(old.get("root"), str) else DATA_ROOT
        held = dev.run("data_files", _ROOT=root.rstrip("/")) or 0
        if old.get("reader") not in (None, data["reader"]) and held:
            if not wipe_data:
                raise ProvisioningRefused(
                    ngettext("this board was reader %(reader)s and still holds its journal (%(num)d file under /data)",
                             "this board was reader %(reader)s and still holds its journal (%(num)d files under /data)",
                             held, reader=old["reader"]),
                    _("let %(reader)s sync (status shows its pending receipts), then provision again with --wipe-data",
                      reader=old["reader"]))
            dev.run("wipe", _ROOT=root.rstrip("/"))
        # the board's wiring (pins, buses) stays; identity, key and network are replaced
        cfg = {k: v for k, v in old.items() if k in ("pins", "nfc_bus", "till_uart", "watchdog_ms", "journal_capacity",
                                                     "contact_slot")}
        # root "/data": at "/", the journal's folder "/journal" would shadow journal.mpy on import
        cfg.update({"reader": data["reader"], "key": data["key"], "backend": data["backend"], "lang": lang,
                    "board": "esp32", "root": DATA_ROOT, "wifi": {"ssid": wifi_ssid, "password": password}})
        dev.write_file(CONFIG + ".new", json.dumps(cfg, sort_keys=True).encode())
        dev.run("switch", _RENAME=[CONFIG], _REMOVE=[])
        p.stage(_("rebooting as reader %(reader)s", reader=data["reader"]) if reboot
                else _("done: reader %(reader)s", reader=data["reader"]))
        if reboot:
            dev.reboot()
    p.done()
    return data["reader"]
