"""What every test shares: the hardware option and head office's database for the card desks.

Tests import the host packages as installed (`loyalty.protocol`, `loyalty.backend`,
`loyalty.sim`, `loyalty.testing`, `loyalty.tools`: pyproject.toml); pytest.ini puts
firmware/ and shared/ on the path for the few tests that run a firmware module under
CPython, where it imports `protocol` and `drivers` as it does on the reader.
"""
import os

import pytest

# The tests read what the code says in English: LOYALTY_LANG for this process and every
# program it starts (servers, tools, MicroPython runs ignore it). The Italian default, the
# catalogues and the pseudo-locale have tests of their own (tests/test_commands_languages.py,
# tests/backend/test_languages.py), which choose the language they look at.
os.environ["LOYALTY_LANG"] = "en"

# tests/mpy holds modules that run on MicroPython through test_runtimes.py, not pytest's own
collect_ignore = ["mpy"]


def pytest_addoption(parser):
    parser.addoption("--serial-port", default=None, help="an ESP32 on this serial port: runs the tests marked hardware")


def pytest_configure(config):
    config.addinivalue_line("markers", "hardware: needs an ESP32 on --serial-port (skipped without it)")


# -- head office's database for the card desks and PC tills (tests/test_*_host.py) ------------

@pytest.fixture
def db(tmp_path):
    """A backend database with the sample shop's tiers (base, silver, gold) and rules."""
    from loyalty.sim import sampleshop
    from loyalty.backend.db import connect, migrate

    d = connect(tmp_path / "loyalty.db")
    migrate(d)
    sampleshop.seed_rules(d)
    yield d
    d.conn.close()


@pytest.fixture
def epoch(db):
    """Head office's first card key epoch."""
    from loyalty.backend import headoffice

    return headoffice.new_card_epoch(db)


@pytest.fixture
def issuer(db, epoch):
    """That epoch's issuer key."""
    from loyalty.backend import headoffice

    return headoffice.issuer_key(db, epoch)
