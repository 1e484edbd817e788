import sys
from pathlib import Path

# tests import their helpers from tests/support/ (`runtimes`, `chain`, ...); host code imports
# `protocol`, firmware modules, the simulators of sim/ and the operator's programs of tools/.
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "support"))
import runtimes  # noqa: E402

for p in runtimes.PATHS + runtimes.HOST_PATHS:
    if p not in sys.path:
        sys.path.insert(0, p)

# tests/mpy holds modules that run on MicroPython through test_runtimes.py, not pytest's own
collect_ignore = ["mpy"]


def pytest_addoption(parser):
    parser.addoption("--serial-port", default=None, help="an ESP32 on this serial port: runs the tests marked hardware")


def pytest_configure(config):
    config.addinivalue_line("markers", "hardware: needs an ESP32 on --serial-port (skipped without it)")


# -- head office's database for the card desks and PC tills (tests/test_*_host.py) ------------
import pytest  # noqa: E402


@pytest.fixture
def db(tmp_path):
    """A backend database with the sample shop's tiers (base, silver, gold) and rules."""
    import sampleshop
    from backend.db import connect, migrate

    d = connect(tmp_path / "loyalty.db")
    migrate(d)
    sampleshop.seed_rules(d)
    yield d
    d.conn.close()


@pytest.fixture
def epoch(db):
    """Head office's first card key epoch."""
    from backend import headoffice

    return headoffice.new_card_epoch(db)


@pytest.fixture
def issuer(db, epoch):
    """That epoch's issuer key."""
    from backend import headoffice

    return headoffice.issuer_key(db, epoch)
