"""What ships on the reader is what firmware/manifest.py names, and nothing else.

- tools/mpybuild.py evaluates MicroPython's manifest functions (module, package, include,
  require) as MicroPython's build does, and the device build holds exactly the files the
  manifests name: no simulator module, nothing left from an older build;
- every module under firmware/ and shared/protocol/ is named (a module forgotten there
  would be missing on the reader);
- the firmware runs a checkout from a folder holding only that build, with the simulated
  board's stand-ins (sim/board/) on a second path entry, and without that entry none of
  them can be imported.
"""
import subprocess

import pytest

from loyalty.tools import mpybuild
from loyalty.testing import runtimes, shop
from loyalty.sim.cardmodels import UidCard
from loyalty.protocol import loyaltycard
from loyalty.sim.simboard import HEAP, SimReader, wait_for
from loyalty.testing.syncserver import SyncServer

ROOT = runtimes.ROOT
SIM_MODULES = sorted(p.stem for p in (ROOT / "sim" / "board").glob("*.py") if p.name != "manifest.py")
LEGACY_UID = bytes.fromhex("04a2b3c4d5e6f7")  # a 7-byte UID (sampleshop.UID_CARDS)


def listing(folder):
    """The files of a build, less the mark that says the folder is a build (never copied)."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and p.name != mpybuild.MARK)


@pytest.fixture(scope="module")
def device(tmp_path_factory):
    """The device build, made from the manifests into a fresh folder."""
    out = tmp_path_factory.mktemp("device")
    mpybuild.build(out)
    return out


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    mpybuild.build_sim(out)
    return out


def test_the_device_build_is_what_the_manifests_name(device):
    named = sorted(mpybuild.output(rel).as_posix() for _, rel in mpybuild.sources())
    assert listing(device) == named
    assert "main.py" in named and "drivers/pn532.mpy" in named and "protocol/engine.mpy" in named
    for path in named:
        assert not path.rsplit("/", 1)[-1].startswith("sim"), path
        assert path == "main.py" or path.endswith(".mpy"), path  # the manifests themselves stay home


# shared modules only the servers use: the refusal-to-HTTP-status table (the reader reads
# the refusal's code in the answer, never a table of statuses)
HOST_ONLY = {ROOT / "shared" / "protocol" / "status.py"}


def test_every_firmware_and_protocol_module_is_named():
    named = {src for src, _ in mpybuild.sources()}
    for folder in (ROOT / "firmware", ROOT / "shared" / "protocol"):
        for src in folder.rglob("*.py"):
            assert src.name == "manifest.py" or src in named or src in HOST_ONLY, \
                "%s is not in the manifests: it would not ship" % src
    assert not HOST_ONLY & named, "a host-only module ships"


def test_a_file_left_from_an_older_build_is_removed(tmp_path):
    mpybuild.build(tmp_path)
    stale = tmp_path / "drivers" / "simuart.mpy"
    stale.write_bytes(b"M\x06")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "gone.mpy").write_bytes(b"M\x06")
    mpybuild.build(tmp_path)
    assert not stale.exists() and not (tmp_path / "old").exists()
    assert (tmp_path / "drivers" / "pn532.mpy").exists()


def test_a_folder_that_is_not_a_build_is_refused_and_left_alone(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "data.mpy").write_bytes(b"M\x06")
    with pytest.raises(mpybuild.BuildError, match="not built by tools/mpybuild.py"):
        mpybuild.build(tmp_path)
    assert listing(tmp_path) == ["keep/data.mpy", "notes.txt"]


def test_a_build_removes_only_what_it_could_have_built(tmp_path):
    mpybuild.build(tmp_path)
    (tmp_path / "README.txt").write_text("someone's")
    mpybuild.build(tmp_path)
    assert (tmp_path / "README.txt").exists()


def test_the_simulated_stand_ins_build_apart(sim):
    assert listing(sim) == sorted(name + ".mpy" for name in SIM_MODULES)
    assert {"simparts", "simuart", "simslot", "simcard"} <= set(SIM_MODULES)


def test_the_manifest_functions_mean_what_micropythons_build_makes_of_them(tmp_path):
    (tmp_path / "lib" / "pkg" / "sub").mkdir(parents=True)
    for name in ("pkg/__init__.py", "pkg/a.py", "pkg/sub/b.py", "top.py", "other.py"):
        (tmp_path / "lib" / name).write_text("X = 1\n")
    (tmp_path / "lib" / "manifest.py").write_text(
        'package("pkg")\nif options.extra:\n    module("other.py")\n')
    (tmp_path / "main" / "x").mkdir(parents=True)
    (tmp_path / "main" / "x" / "app.py").write_text("X = 1\n")
    (tmp_path / "main" / "manifest.py").write_text(
        'include("../lib", extra=True)\nmodule("app.py", base_path="x")\nmodule("top.py", base_path="../lib")\n'
        'require("aioble", version="0.5")\n')
    m = mpybuild.Manifest().execute(tmp_path / "main" / "manifest.py")
    assert [rel.as_posix() for _, rel in m.files] == [
        "pkg/__init__.py", "pkg/a.py", "pkg/sub/b.py", "other.py", "app.py", "top.py"]
    assert m.files[4][0] == (tmp_path / "main" / "x" / "app.py").resolve()
    assert [name for name, _ in m.required] == ["aioble"] and m.required[0][1]["version"] == "0.5"
    # without include()'s option, options.extra is None and other.py is not named
    plain = mpybuild.Manifest().execute(tmp_path / "lib")
    assert [rel.as_posix() for _, rel in plain.files] == ["pkg/__init__.py", "pkg/a.py", "pkg/sub/b.py"]


@pytest.mark.parametrize("text, says", [
    ('module("missing.py")', "does not exist"),
    ('module("pkg")', "takes a .py file"),
    ('freeze("$(MPY_DIR)/x")', "not supported"),
    ('module("x.py", base_path="$(MPY_DIR)")', "path variables"),
])
def test_a_manifest_naming_what_is_not_there_says_so(tmp_path, text, says):
    (tmp_path / "manifest.py").write_text(text + "\n")
    with pytest.raises(mpybuild.ManifestError, match=r"(?i)" + says.replace("(", r"\(")):
        mpybuild.Manifest().execute(tmp_path)


def micropython(path, code):
    """(exit status, output) of `code` with only `path` (and the port's frozen asyncio) to
    import from; MicroPython prints a traceback on stdout."""
    env = {"MICROPYPATH": ":".join([str(p) for p in path] + [".frozen"])}
    r = subprocess.run([runtimes.micropython(), "-X", "heapsize=" + HEAP, "-c", code], env=env,
                       capture_output=True, text=True, timeout=60, cwd=str(path[0]))
    return r.returncode, r.stdout + r.stderr


@pytest.mark.parametrize("name", SIM_MODULES)
def test_no_simulator_module_can_be_imported_from_the_device_build(device, sim, name):
    status, out = micropython([device], "import %s" % name)
    assert status != 0 and "ImportError: no module named '%s'" % name in out, out
    status, out = micropython([device, sim], "import %s\nprint('ok')" % name)  # the stand-in itself is fine
    assert status == 0 and out.strip() == "ok", out


def test_a_simulated_board_config_on_the_device_build_alone_fails_to_find_its_parts(device):
    status, out = micropython([device], 'import board\nboard.parts({"board": "sim"})')
    assert status != 0 and "ImportError: no module named 'simparts'" in out, out
    for cfg in ('{"board": "esp32"}', '{}'):  # a config without "board" is a reader's too
        status, out = micropython([device], 'import board\nprint(type(board.parts(%s)).__name__)' % cfg)
        assert status == 0 and out.strip() == "Esp32", (cfg, out)


def test_a_checkout_on_the_firmware_the_manifests_name(device, sim, tmp_path):
    """The firmware from the device build alone, the stand-ins on a second path entry: a
    legacy card read through the PN532 driver and the socket UART, discounted and synced."""
    card = loyaltycard.uid_card(LEGACY_UID)
    key = shop.key_hex()
    srv = SyncServer(readers={"R1": bytes.fromhex(key)}, rules=shop.rules(),
                     cards=shop.CARDS + [(card, 2, 0)]).start()
    try:
        with SimReader("R1", key, srv.url, tmp_path / "R1", sync_interval=1, nfc=True,
                       log=tmp_path / "R1.log", builds=(device, sim)) as r:
            wait_for(lambda: r.status()["directory"] == srv.directory_version, timeout=60, what="first sync")
            r.till.send(shop.basket("M-1"))
            r.till.expect("ready")
            r.nfc.tap(UidCard(LEGACY_UID))
            q = r.till.expect("quote", timeout=30)
            assert q["card"].endswith(card[-4:]) and q["tier"] == 2 and q["discount"] > 0, q
            r.till.send({"type": "commit", "quote": q["quote"], "paid": q["gross"] - q["discount"]})
            c = r.till.expect("committed")
            rec = wait_for(lambda: srv.stored("R1").get(c["seq"]), what="the receipt at the server")
            assert rec["card"] == card and rec["discount"] == q["discount"]
    finally:
        srv.stop()
    log = (tmp_path / "R1.log").read_text()
    assert "Traceback" not in log, log[-2000:]
