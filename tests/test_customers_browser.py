"""Customer care and the shopper in a real browser: Debian's Chromium driven by Playwright,
against the backend on a real WSGI server (waitress) told nothing about languages, so it
speaks Italian; the customers enrolled at the desk (backend.customers.enrol).

A customer-care operator finds "Niccolò D'Angelo" by the last 4 digits of his card and
his name, reads his story in Italian, records a contact through the form and sees it at
the top. A shopper signs in on /me/ with her card and the code a real SMTP server on
loopback (aiosmtpd) received, and withdraws marketing consent: the consents table has it
with the channel "web" and the notice version the page showed.

(Issue 16's third flow, head office creating a promotion in the browser, waits for head
office's forms.)
"""
import time

from loyalty import i18n
from loyalty.backend import auth
from loyalty.backend.care import contacts
from loyalty.backend.customers import enrol, notices
from loyalty.sim import sampleshop
from loyalty.sim.mailbox import Mailbox, code_in
from loyalty.testing.browser import browser  # noqa: F401 (the fixture)
from loyalty.testing.chain import Chain

CARE = ("anna.care", "password-for-care")
NICCOLO = sampleshop.card_number(12)      # ...0012
ELSEWHERE_0012 = "6001000000010012"       # another card ending in 0012 (the desk issues it)
MARIA = sampleshop.card_number(42)
MARIA_MAIL = "maria.rossi@example.it"
ITALIAN = dict.fromkeys(i18n.VARIABLES)   # no LOYALTY_LANG for the server: its default, Italian


def setting_up(chain, now):
    """Two notice versions (the second in force), customers enrolled at the desk: two
    D'Angelos, and a Rossi whose card ends like Niccolò's. Returns {name: customer id}."""
    chain.change(auth.create_manager, CARE[0], CARE[1], role="care")
    chain.change(notices.publish, {"it": "Informativa v1", "en": "Notice v1"}, "dpo", now - 3600)
    made = {}
    for who, card, contact, consents in (
            ("Niccolò D'Angelo", NICCOLO, "niccolo@example.it", {"scheme", "profiling"}),
            ("Anna D'Angelo", sampleshop.card_number(14), "+39 02 1234 5678", {"scheme"}),
            ("Maria Rossi", MARIA, MARIA_MAIL, {"scheme", "marketing"}),
            ("Piero Rossi", ELSEWHERE_0012, "piero@example.it", {"scheme"})):
        made[who] = chain.change(enrol.enrol, who, contact, "S1", card, 0, True, consents, "desk", "desk.op", 1,
                                 now=now - 1800)
    chain.change(notices.publish, {"it": "Informativa v2: i tuoi dati", "en": "Notice v2"}, "dpo", now - 600)
    # an earlier call, so that "at the top" means after it, not alone
    chain.change(contacts.add, made["Niccolò D'Angelo"], "luca.care",
                 {"channel": "email", "reason": "Punti", "outcome": "Spiegato", "note": "prima chiamata"}, now - 300)
    return made


def test_care_finds_a_customer_and_records_a_contact(tmp_path, browser):
    with Chain(tmp_path, readers=[], backend_env=ITALIAN) as chain:
        made = setting_up(chain, int(time.time()))
        niccolo = made["Niccolò D'Angelo"]
        page = browser.new_page(locale="it-IT")
        page.goto(chain.backend.url + "/customers")
        assert "/login" in page.url
        page.fill("#username", CARE[0])
        page.fill("#password", CARE[1])
        page.click("form[action='/login'] button[type=submit]")
        page.wait_for_url("**/customers")
        assert page.locator("h1").inner_text() == "Cerca un cliente"

        # the name alone finds both D'Angelos; the last 4 digits alone would find Piero too
        page.fill("#q", "0012 d'angelo")
        page.click("form[data-form=search] button[type=submit]")
        page.wait_for_selector("table.customers")
        assert page.locator("table.customers").get_attribute("data-results") == "1"
        assert page.locator("tr[data-customer]").get_attribute("data-customer") == str(niccolo)
        page.fill("#q", "niccolò d'ANGELO")  # the accent and the apostrophe as typed
        page.click("form[data-form=search] button[type=submit]")
        page.wait_for_url("**q=niccol*")
        assert page.locator("tr[data-customer]").count() == 1
        page.click("tr[data-customer='%d'] a" % niccolo)
        page.wait_for_url("**/customers/%d" % niccolo)

        # the story, in Italian: the enrolment's consents, the earlier call
        assert page.locator("html").get_attribute("lang") == "it"
        assert page.locator("h1").inner_text() == "Niccolò D'Angelo"
        assert page.locator("#events-h").inner_text() == "Storia"
        first = page.locator("ol.events > li").first
        assert first.get_attribute("data-event") == "care"
        assert "Contatto con l'assistenza" in first.inner_text() and "prima chiamata" in first.inner_text()
        # the desk's answers at enrolment, each purpose given or refused, in Italian words
        said = " | ".join(page.locator("li[data-event=consent]").all_inner_texts())
        for words in ("Consenso programma fedeltà: dato · banco", "Consenso profilazione: dato · banco",
                      "Consenso marketing: revocato · banco"):
            assert words in said, said
        assert page.locator("[data-warning=special-category]").is_visible()

        note = "Ha chiesto perché lo sconto non c'era: carta già attiva, rifatta la spesa."
        form = page.locator("form[data-form=care-contact]")
        form.locator("select[name=channel]").select_option("phone")
        form.locator("input[name=reason]").fill("Sconto mancante")
        form.locator("input[name=outcome]").fill("Risolto")
        form.locator("textarea[name=note]").fill(note)
        form.locator("button[type=submit]").click()
        page.wait_for_selector("ol.events > li[data-event=care] >> text=Sconto mancante")
        top = page.locator("ol.events > li").first
        assert top.get_attribute("data-event") == "care"
        assert top.locator("[data-note]").inner_text() == note
        assert "telefono" in top.inner_text() and CARE[0] in top.inner_text()
        assert page.locator("li[data-event=care]").count() == 2  # the earlier call, below it

        stored = chain.db_rows("SELECT customer_id, channel, operator, reason, outcome, note FROM care_contacts "
                               "ORDER BY id")
        assert [tuple(r) for r in stored[1:]] == [(niccolo, "phone", CARE[0], "Sconto mancante", "Risolto", note)]


def test_shopper_signs_in_with_the_mailed_code_and_withdraws_marketing(tmp_path, browser):
    with Mailbox(tmp_path / "mail") as box:
        config = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": box.port, "MAIL_FROM": "carta@supermercato.example"}
        with Chain(tmp_path, readers=[], config=config, backend_env=ITALIAN) as chain:
            maria = setting_up(chain, int(time.time()))["Maria Rossi"]
            page = browser.new_page(locale="it-IT")
            page.goto(chain.backend.url + "/me/")
            page.wait_for_url("**/me/signin")
            page.fill("#card", "6001 0000 0000 0042")  # as printed on the card, in groups
            page.click("form[data-form=signin] button[type=submit]")
            page.wait_for_url("**/me/code")
            message = box.wait(1)
            assert message["To"] == MARIA_MAIL
            code = code_in(message)
            assert code not in (tmp_path / "backend.log").read_text()  # never in the server's log
            page.fill("#code", code)
            page.click("form[data-form=code] button[type=submit]")
            page.wait_for_url("**/me/")

            marketing = page.locator("form[data-form=consent][data-purpose=marketing]")
            assert marketing.get_attribute("data-given") == "1"
            assert page.locator("[data-notice-version]").get_attribute("data-notice-version") == "2"
            marketing.locator("button[name=choice][value=withdraw]").click()
            page.wait_for_selector("form[data-form=consent][data-purpose=marketing][data-given='0']")
            assert "Non hai dato questo consenso." in page.locator("form[data-purpose=marketing]").inner_text()
            assert "La tua scelta è registrata." in page.locator("body").inner_text()
            assert page.locator("form[data-purpose=profiling]").get_attribute("data-given") == "0"  # untouched

            rows = chain.db_rows("SELECT purpose, given, channel, operator, notice_version FROM consents "
                                 "WHERE customer_id = ? ORDER BY id", [maria])
            # the desk's answers at enrolment under notice 1, then the page's, under notice 2 as shown
            assert [tuple(r) for r in rows] == [
                ("scheme", 1, "desk", "desk.op", 1), ("profiling", 0, "desk", "desk.op", 1),
                ("marketing", 1, "desk", "desk.op", 1), ("marketing", 0, "web", "self", 2)]
            assert len(list((tmp_path / "mail").glob("*.eml"))) == 1
