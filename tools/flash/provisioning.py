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
    """A secret's one line from the file at `path`, which only its owner may read."""
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
        held = dev.run("data_files", _ROOT=root.rstrip("/")) or 0
        if old.get("reader") not in (None, data["reader"]) and held:
            if not wipe_data:
                raise ProvisioningRefused(
                    "this board was reader %s and still holds its journal (%d files under /data)" % (old["reader"], held),
                    "let %s sync (status shows its pending receipts), then provision again with --wipe-data"
                    % old["reader"])
            dev.run("wipe", _ROOT=root.rstrip("/"))
        # the board's wiring (pins, buses) stays; identity, key and network are replaced
        cfg = {k: v for k, v in old.items() if k in ("pins", "nfc_bus", "till_uart", "watchdog_ms", "journal_capacity",
                                                     "contact_slot")}
        # root "/data": at "/", the journal's folder "/journal" would shadow journal.mpy on import
        cfg.update({"reader": data["reader"], "key": data["key"], "backend": data["backend"], "lang": lang,
                    "board": "esp32", "root": DATA_ROOT, "wifi": {"ssid": wifi_ssid, "password": password}})
        dev.write_file(CONFIG + ".new", json.dumps(cfg, sort_keys=True).encode())
        dev.run("switch", _RENAME=[CONFIG], _REMOVE=[])
        p.stage("rebooting as reader %s" % data["reader"] if reboot else "done: reader %s" % data["reader"])
        if reboot:
            dev.reboot()
    p.done()
    return data["reader"]
