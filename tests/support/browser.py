"""Debian's Chromium driven by Playwright, for the browser tests.

    def test_x(browser):                   # the fixture (tests import it by name)
        page = browser.new_page(locale="it-IT")
"""
import pytest

CHROMIUM = "/usr/bin/chromium"
# the flags Chromium needs as root on a machine with no network beyond loopback
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()
