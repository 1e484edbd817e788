"""`deploy`: the firmware onto a reader, copying only what changed (as mpremote does).

    deploy("socket://127.0.0.1:7700")   # -> DeployReport(copied=..., unchanged=..., removed=...)

mpybuild compiles firmware/ and shared/protocol/; the device's files are compared by
sha256 (device/hashes.py) and only those that differ are copied, each as NAME.new. Once
every copy is there, deploy.pending lists them, device/switch.py renames them into place
and deploy.json is written last: a deploy cut off half-way leaves the old firmware whole
(or the new one whole, bar the manifest), the reader's main.py finishes renames a power
cut interrupted, and the next deploy copies what is still missing.
"""
import hashlib
import json
import re
import time
from pathlib import Path

from loyalty.i18n import _, ngettext
from loyalty.tools import mpybuild

from loyalty.tools.flash.errors import FlashError, NotMicroPython
from loyalty.tools.flash.progress import Progress
from loyalty.tools.flash.repl import Device

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = "deploy.json"
PENDING = "deploy.pending"  # the renames of a deploy in progress (firmware/main.py)
# micropython-lib packages the firmware needs beyond what MicroPython has built in: none
# today (asyncio is built in). A name here is installed with mip when the device is
# online, or copied from --lib FOLDER.
PACKAGES = ()


class DeployReport:
    """What a deploy did: files copied, unchanged and removed, packages, the build's id."""

    def __init__(self):
        self.copied, self.unchanged, self.removed, self.packages = [], [], [], []
        self.manifest_written = False
        self.build = ""

    def __repr__(self):
        return "DeployReport(copied=%d, unchanged=%d, removed=%d)" % (len(self.copied), len(self.unchanged), len(self.removed))


def firmware_version():
    """The firmware's version, as firmware/syncclient.py reports it to the backend."""
    m = re.search(r'^FIRMWARE = "([^"]+)"', (ROOT / "firmware" / "syncclient.py").read_text(), re.M)
    return m.group(1) if m else "unknown"


def firmware_files(build_dir=mpybuild.DEFAULT_OUT):
    """{path on the device: bytes}: compiles what changed (mpybuild) and reads the build."""
    build_dir = Path(build_dir)
    mpybuild.build(build_dir)
    files = {}
    for _src, rel in mpybuild.sources():
        out = rel if (rel.name == "main.py" and len(rel.parts) == 1) else rel.with_suffix(".mpy")
        files[out.as_posix()] = (build_dir / out).read_bytes()
    return files


def lib_files(folder):
    """{lib/...: bytes} from a local folder of micropython-lib packages (.py or .mpy)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FlashError(_("no such folder: %(folder)s", folder=folder),
                         _("--lib names a folder laid out as the device's /lib"))
    return {"lib/" + p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix in (".py", ".mpy")}


def _dirs_of(paths):
    dirs = set()
    for p in paths:
        parts = p.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    return sorted(dirs, key=lambda d: d.count("/"))


def _mpy_version(data):
    """The .mpy format version of a compiled module (its header: 'M', version, flags...)."""
    return data[1] if len(data) > 1 and data[:1] == b"M" else None


def _check_mpy_version(dev, files):
    """Refuse a device whose MicroPython cannot load our .mpy files, before copying any: it
    would boot into 'incompatible .mpy file' and serve its till without a reader."""
    ours = {_mpy_version(d) for path, d in files.items() if path.endswith(".mpy")} - {None}
    theirs = dev.eval("getattr(__import__('sys').implementation, '_mpy', 0) & 0xFF")
    if ours and theirs and theirs not in ours:
        raise NotMicroPython(_("the device's MicroPython loads .mpy version %(theirs)d; this build is version "
                               "%(ours)s", theirs=theirs, ours="/".join(str(v) for v in sorted(ours))),
                             _("flash a MicroPython that matches mpy-cross (1.24 or newer): "
                               "loyalty-flash flash --port %(port)s --version 1.24.1", port=dev.port))


def deploy(port, build_dir=mpybuild.DEFAULT_OUT, lib=None, packages=PACKAGES, reboot=True, progress=None):
    """Compile the firmware, copy what changed to the device on `port`, reboot it. A DeployReport."""
    p = progress or Progress(quiet=True)
    p.stages(6)
    report = DeployReport()
    p.stage(_("compiling firmware/ and shared/protocol/ with mpy-cross"))
    try:
        files = firmware_files(build_dir)
    except mpybuild.CompileError as e:
        raise FlashError(str(e), _("fix the module: every firmware file must compile with mpy-cross"))
    except mpybuild.NotABuildFolder as e:
        raise FlashError(str(e), _("--build names the build folder: a new one, or one a deploy built before"))
    if lib is not None:
        files.update(lib_files(lib))
    want = {path: hashlib.sha256(data).hexdigest() for path, data in files.items()}
    build = hashlib.sha256("".join("%s %s\n" % kv for kv in sorted(want.items())).encode()).hexdigest()[:12]
    report.build = build
    p.stage(_("connecting to %(port)s", port=port))
    with Device(port) as dev:
        _check_mpy_version(dev, files)
        p.stage(ngettext("comparing %(num)d file with the device", "comparing %(num)d files with the device", len(files)))
        have, old_manifest = dev.run("hashes", _PATHS=sorted(files), _MANIFEST=MANIFEST)
        changed = sorted(path for path in files if have.get(path) != want[path])
        report.unchanged = sorted(set(files) - set(changed))
        try:
            old = json.loads(old_manifest) if old_manifest else {}
        except ValueError:
            old = {}
        stale = sorted(set(old.get("files", {})) - set(files)) if isinstance(old.get("files"), dict) else []
        # packages a deploy with --lib put in /lib stay when the next deploy comes without it
        stale = [s for s in stale if not s.startswith("lib/")]
        p.stage(ngettext("copying %(num)d changed file", "copying %(num)d changed files", len(changed)) if changed
                else _("copying: up to date"))
        if changed:
            dev.run("mkdirs", _DIRS=_dirs_of(changed))
            total = sum(len(files[path]) for path in changed)
            done = 0
            for path in changed:
                base = done
                dev.write_file(path + ".new", files[path],
                               progress=lambda n, size, path=path, base=base: p.bar(base + n, total, path))
                done += len(files[path])
                report.copied.append(path)
                p.bar(done, total, path)
        p.stage(_("packages"))
        report.packages = _install_packages(dev, packages, p)
        if changed or stale or old.get("build") != build:
            # the renames, listed first: main.py completes them at boot after a power cut
            # (a board reset in their middle would otherwise run old and new modules together)
            dev.write_file(PENDING, "\n".join(changed).encode())
            dev.run("switch", _RENAME=changed, _REMOVE=[s for s in stale if s.endswith((".mpy", ".py"))])
            dev.exec("import os\nos.remove(%r)" % PENDING)
            report.removed = stale
            manifest = json.dumps({"firmware": firmware_version(), "build": build, "files": want,
                                   "packages": list(packages), "deployed": int(time.time())}, sort_keys=True)
            dev.write_file(MANIFEST + ".new", manifest.encode())
            dev.run("switch", _RENAME=[MANIFEST], _REMOVE=[])
            report.manifest_written = True
            p.note(_("firmware %(version)s, build %(build)s", version=firmware_version(), build=build))
        else:
            p.note(_("up to date (build %(build)s)", build=build))
        p.stage(_("rebooting into the firmware") if reboot else _("done"))
        if reboot:
            dev.reboot()
    p.done()
    return report


def _install_packages(dev, packages, p):
    """mip.install each package when the device is online; else say how to copy them."""
    if not packages:
        p.note(_("none needed (asyncio is built into MicroPython)"))
        return []
    online = dev.eval("__import__('network').WLAN(0).isconnected() if 'network' in __import__('sys').modules "
                      "or __import__('sys').platform == 'esp32' else False")
    if not online:
        raise FlashError(_("the device is offline: cannot install %(packages)s with mip", packages=", ".join(packages)),
                         _("provision it with the store's Wi-Fi first, or copy the packages from a folder with --lib"))
    for name in packages:
        p.note("mip install %s" % name)  # a command, the same in every language
        dev.exec("import mip\nmip.install(%r)" % name)
    return list(packages)
