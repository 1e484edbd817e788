"""The dashboard in a real browser: Debian's Chromium driven by Playwright, against the
backend on a real WSGI server, with a reader running the real firmware.

A store manager logs in, sees the reader turn "lagging" while its network is cut (the
page refreshes itself: nobody reloads it), and sees it turn "in sync" once it has synced.
Another logs in to a backend told nothing about languages, with Chromium's own English
Accept-Language: the stores page is in Italian; a click on English, and it is in English.
"""

from loyalty import i18n
from loyalty.testing.browser import browser  # noqa: F401 (the fixture)
from loyalty.testing.chain import MANAGER, Chain, wait_for


def test_manager_sees_a_lagging_reader_turn_in_sync(tmp_path, browser):
    config = {"LAGGING_AFTER": 4, "OFFLINE_AFTER": 600, "REFRESH_SECONDS": 1}
    with Chain(tmp_path, readers=["R1", "R2"], config=config) as chain:
        r1 = chain.reader("R1")
        chain.reader("R2")
        page = browser.new_page()
        page.goto(chain.backend.url + "/stores")
        assert "/login" in page.url  # not logged in: the login form first
        page.fill("#username", MANAGER[0])
        page.fill("#password", "wrong password")
        page.click("form[action='/login'] button[type=submit]")
        assert page.locator("[data-login-error]").is_visible()
        page.fill("#username", MANAGER[0])
        page.fill("#password", MANAGER[1])
        page.click("form[action='/login'] button[type=submit]")
        page.wait_for_url("**/stores")
        row = page.locator('tr[data-reader="R1"]')
        row.wait_for()
        wait_for(lambda: row.get_attribute("data-state") == "in_sync", timeout=20, what="R1 in sync at first")

        page.evaluate("window.notReloaded = true")  # gone if the page were loaded again
        chain.links["R1"].cut()
        for i in range(3):  # sales go on offline: they wait on the reader
            chain.shop(r1, "OFF-%d" % i)
        page.wait_for_selector('tr[data-reader="R1"][data-state="lagging"]', timeout=30000)
        assert "lagging" in row.inner_text().lower()  # in words, not only in colour
        assert page.locator('tr[data-reader="R2"][data-state="in_sync"]').count() == 1

        chain.links["R1"].restore()
        wait_for(lambda: chain.synced(r1), timeout=60, what="R1 to sync after the cut")
        page.wait_for_selector('tr[data-reader="R1"][data-state="in_sync"]', timeout=30000)
        assert "in sync" in row.inner_text().lower()
        assert page.evaluate("window.notReloaded === true")  # it updated itself in place
        stored = chain.db_rows("SELECT count(*) FROM receipts WHERE reader_id='R1' AND receipt LIKE 'OFF-%'")
        assert stored[0][0] == 3

        page.click('tr[data-reader="R1"] a')
        page.wait_for_url("**/readers/R1")
        head = page.locator("section.reader-head")
        assert head.get_attribute("data-state") == "in_sync", head.inner_text()
        assert page.locator('[data-chart]').count() == 1


def test_italian_first_english_by_choice(tmp_path, browser):
    # nothing about languages in the server's environment (the tests' LOYALTY_LANG=en goes)
    unset = dict.fromkeys(i18n.VARIABLES)
    with Chain(tmp_path, readers=[], backend_env=unset) as chain:
        page = browser.new_page(locale="en-US")  # what the browser asks for: English
        page.goto(chain.backend.url + "/stores")
        assert page.evaluate("navigator.language") == "en-US"
        page.fill("#username", MANAGER[0])
        page.fill("#password", MANAGER[1])
        page.click("form[action='/login'] button[type=submit]")
        page.wait_for_url("**/stores")
        assert page.locator("h1").inner_text() == "Negozi"
        assert page.locator("html").get_attribute("lang") == "it"
        store = page.locator("section.store").first
        assert "Oggi" in store.inner_text()
        assert store.locator("[data-today=gross]").inner_text() == "0,00\xa0€"  # no sales yet today

        page.click("button[data-language='en']")
        page.wait_for_url("**/stores")
        assert page.locator("h1").inner_text() == "Stores"
        assert page.locator("html").get_attribute("lang") == "en"
        assert "Today" in store.inner_text() and store.locator("[data-today=gross]").inner_text() == "€0.00"
        page.reload()  # the choice is the manager's: it stays
        assert page.locator("h1").inner_text() == "Stores"
