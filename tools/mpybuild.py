"""Compile the reader's code with mpy-cross, laid out as on the device's filesystem, from
what the manifests name (firmware/manifest.py, which includes shared/protocol/manifest.py).

    module("app.py")                 firmware/app.py            -> build/mpy/app.mpy
    package("drivers", files=...)    firmware/drivers/pn532.py  -> build/mpy/drivers/pn532.mpy
    package("protocol", base_path="..")
                                     shared/protocol/engine.py  -> build/mpy/protocol/engine.mpy
    module("main.py")                firmware/main.py           -> build/mpy/main.py (run as source)

The manifests are MicroPython's own format, so MicroPython's build can freeze the same
files into an image; `Manifest` below evaluates the functions they use (module,
package, include, require, metadata) with their documented meanings. `require()` of a
micropython-lib package is recorded, not compiled: such packages go to the device's /lib
(tools/flash deploy --lib). The build holds what the manifest names and nothing else:
files left from an older build are removed.

The device runs precompiled .mpy files: compiling a module on the device needs several
times its size in heap. The simulated board and the MicroPython tests use this build so
they run what the device runs; the simulated board's stand-ins for the ESP32's parts
(sim/board/manifest.py) are built apart, into build/mpysim. Only files newer than their
output are compiled again.

    python -m loyalty.tools.mpybuild [OUT]

Its messages, the errors' too, are in the process's language (loyalty.i18n).
"""
import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from loyalty.i18n import _, for_commands, ngettext

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "build" / "mpy"
MANIFEST = ROOT / "firmware" / "manifest.py"
SIM_OUT = ROOT / "build" / "mpysim"
SIM_MANIFEST = ROOT / "sim" / "board" / "manifest.py"


class ManifestError(Exception):
    """A manifest that names a missing file, or uses what this evaluator does not know."""


class BuildError(Exception):
    """A build that cannot be made."""


class CompileError(BuildError):
    """mpy-cross refused a file."""


class NotABuildFolder(BuildError):
    """The output folder holds things that are not a build of ours."""


# In a folder this tool has built into: only there are files the manifest no longer names
# removed. `--build ~` must not empty someone's home folder.
MARK = ".mpybuild"


class _Options:
    """`options` in a manifest: the keyword arguments of the include() that read it (None
    for any other name), as in MicroPython's manifestfile.py."""

    def __init__(self, values):
        self.__dict__.update(values)

    def __getattr__(self, name):
        return None


class Manifest:
    """The files a manifest names: `files`, (source, path on the device) in the order
    named; `required`, the micropython-lib packages it requires, as (name, options);
    `metadata`, each manifest's metadata() by its path.

        m = Manifest().execute(MANIFEST)
        m.files[0]     # (Path(".../shared/protocol/__init__.py"), Path("protocol/__init__.py"))
    """

    def __init__(self):
        self.files = []
        self.required = []
        self.metadata = {}
        self._targets = {}

    def execute(self, path, **options):
        path = Path(path)
        if path.is_dir():
            path = path / "manifest.py"
        if not path.is_file():
            raise ManifestError(_("no manifest at %(path)s", path=path))
        here = path.parent

        def where(base_path, name):
            if "$(" in str(base_path) + str(name):
                raise ManifestError(_("%(manifest)s: path variables such as $(MPY_DIR) are MicroPython's build's, "
                                      "not ours: %(path)s", manifest=path, path=base_path))
            return (here / base_path / name).resolve()

        def module(module_path, base_path=".", opt=None):
            """A single .py file, frozen as the module of its name (module_path as given)."""
            if not module_path.endswith(".py"):
                raise ManifestError(_("%(manifest)s: module() takes a .py file: %(path)r", manifest=path,
                                      path=module_path))
            self._add(where(base_path, module_path), Path(module_path), path)

        def package(package_path, files=None, base_path=".", opt=None):
            """A package folder: its .py files, all of them (recursively) or only `files`."""
            folder = where(base_path, package_path)
            if files is None:
                names = sorted(p.relative_to(folder) for p in folder.rglob("*.py"))
                if not names:
                    raise ManifestError(_("%(manifest)s: package %(package)r has no .py files in %(folder)s",
                                          manifest=path, package=package_path, folder=folder))
            else:
                names = [Path(f) for f in files]
            for name in names:
                self._add(folder / name, Path(package_path) / name, path)

        def include(manifest_path, is_require=False, script=None, **kwargs):
            """Another manifest (a file, or a folder holding manifest.py), its paths relative to it."""
            for one in manifest_path if isinstance(manifest_path, (list, tuple)) else [manifest_path]:
                self.execute(where(".", one), **kwargs)

        def require(name, version=None, unix_ffi=False, pypi=None, **kwargs):
            """A micropython-lib package: recorded for the deploy's /lib, never compiled here."""
            self.required.append((name, dict(kwargs, version=version, unix_ffi=unix_ffi, pypi=pypi)))

        def metadata(description=None, version=None, license=None, author=None):
            self.metadata[str(path)] = {"description": description, "version": version,
                                        "license": license, "author": author}

        def unsupported(name):
            def refuse(*args, **kwargs):
                raise ManifestError(_("%(manifest)s: %(function)s() is not supported by tools/mpybuild.py; use "
                                      "module() or package()", manifest=path, function=name))
            return refuse

        scope = {"module": module, "package": package, "include": include, "require": require,
                 "metadata": metadata, "options": _Options(options), "__file__": str(path)}
        for name in ("freeze", "freeze_as_str", "freeze_as_mpy", "freeze_mpy", "add_library"):
            scope[name] = unsupported(name)
        exec(compile(path.read_text(), str(path), "exec"), scope)
        return self

    def _add(self, src, target, manifest):
        if not src.is_file():
            raise ManifestError(_("%(manifest)s names %(path)s, which does not exist", manifest=manifest, path=src))
        if target in self._targets:
            if self._targets[target] != src:
                raise ManifestError(_("%(manifest)s: %(target)s comes from both %(first)s and %(second)s",
                                      manifest=manifest, target=target, first=self._targets[target], second=src))
            return
        self._targets[target] = src
        self.files.append((src, target))


def mpy_cross():
    here = Path(sys.executable).parent / "mpy-cross"
    return str(here) if here.exists() else "mpy-cross"


def sources(manifest=MANIFEST):
    """(source path, path on the device) for every file the manifest names: by default,
    every file the reader needs."""
    return iter(Manifest().execute(manifest).files)


def output(rel):
    """The path in the build of a file with path `rel` on the device: main.py stays source."""
    rel = Path(rel)
    return rel if (rel.name == "main.py" and len(rel.parts) == 1) else rel.with_suffix(".mpy")


def build(out=DEFAULT_OUT, files=None):
    """Compile what changed; returns the list of device paths written.

    `files`: (source, path in out) pairs; by default the files firmware/manifest.py names,
    and then whatever else is in `out` is removed."""
    if files is None:
        return build_manifest(MANIFEST, out)
    return _compile(Path(out), files)


def build_sim(out=SIM_OUT):
    """The simulated board's stand-ins (sim/board/manifest.py), for a second path entry."""
    return build_manifest(SIM_MANIFEST, out)


def build_manifest(manifest, out):
    """Compile what `manifest` names into `out`, and remove what it does not name."""
    out = Path(out)
    _claim(out)
    files = list(sources(manifest))
    written = _compile(out, files)
    keep = {out / output(rel) for _src, rel in files}
    for path in sorted(out.rglob("*"), reverse=True):  # files before their folders
        if path.is_file() and path not in keep and path.suffix in (".mpy", ".py"):
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    return written


def _claim(out):
    """Mark `out` as a build folder of ours; refuse one that holds anything else."""
    mark = out / MARK
    if mark.exists():
        return
    ours = out.resolve() in (DEFAULT_OUT.resolve(), SIM_OUT.resolve())  # from before the mark
    if out.exists() and any(out.iterdir()) and not ours:
        raise NotABuildFolder(_("%(folder)s is not empty and was not built by tools/mpybuild.py (it has no "
                                "%(mark)s): a build removes the files its manifest does not name, so it needs a new "
                                "or empty folder", folder=out, mark=MARK))
    out.mkdir(parents=True, exist_ok=True)
    mark.write_text("built by tools/mpybuild.py: .mpy and .py files the manifest does not name are removed\n")


def _compile(out, files):
    written = []
    for src, rel in files:
        dest = out / output(rel)
        if dest.exists() and dest.stat().st_mtime >= src.stat().st_mtime:
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.suffix == ".py":
            shutil.copyfile(src, dest)
            written.append(str(rel))
            continue
        r = subprocess.run([mpy_cross(), "-o", str(dest), "-s", str(rel), str(src)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise CompileError(_("mpy-cross failed on %(path)s: %(error)s", path=src, error=r.stderr.strip()))
        written.append(str(rel))
    return written


# host-side simulator modules the MicroPython tests import too
MPY_TEST_HELPERS = ("cardmodels.py",)


def build_tests(out):
    """The MicroPython test modules too: compiling them on the target would need more heap
    than the code they test, and the heap they leave is what the tests measure.

    The runner, mprun.py, is copied as source beside them and run from there: MicroPython
    puts the script's folder first on its path, so a runner started from tests/mpy would
    import the test modules' sources and compile them in the test's heap."""
    folder = ROOT / "tests" / "mpy"
    files = [(src, src.relative_to(folder)) for src in sorted(folder.glob("*.py")) if src.name != "mprun.py"]
    # the card models (sim/) that the card tests import on MicroPython: compiled from
    # source there, they took 20 KB of test_contactreader's heap for a moment
    files += [(ROOT / "sim" / name, Path(name)) for name in MPY_TEST_HELPERS]
    written = build(out, files)
    src, dest = folder / "mprun.py", Path(out) / "mprun.py"
    if not dest.exists() or dest.stat().st_mtime < src.stat().st_mtime:
        shutil.copyfile(src, dest)
        written.append("mprun.py")
    return written


def main(argv=None):
    """`python -m loyalty.tools.mpybuild [OUT]`: build the firmware; 0, or 1 after saying why not."""
    for_commands()
    ap = argparse.ArgumentParser(prog="python -m loyalty.tools.mpybuild",
                                 description=_("Compile the reader's code with mpy-cross, laid out as on the "
                                               "device's filesystem, from what the manifests name."))
    ap.add_argument("out", nargs="?", metavar="OUT", default=str(DEFAULT_OUT),
                    help=_("the build folder (default %(default)s)"))
    args = ap.parse_args(argv)
    try:
        done = build(Path(args.out))
        required = Manifest().execute(MANIFEST).required
    except (BuildError, ManifestError) as e:
        print(_("error: %(error)s", error=e), file=sys.stderr)
        return 1
    print(ngettext("compiled %(num)d file", "compiled %(num)d files", len(done)) if done else _("up to date"))
    for name, _options in required:
        print(_("requires %(package)s from micropython-lib (tools/flash deploy --lib)", package=name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
