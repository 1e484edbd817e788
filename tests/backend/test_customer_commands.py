"""The customer commands (backend/customers/commands.py) through app.test_cli_runner():
what they store, that no consent is ticked for the customer, the CSV import all or
nothing, and bad input refused naming the field, in Italian and in English."""
import pytest

from loyalty.backend import headoffice
from loyalty.backend.customers import consents
from loyalty.i18n import using

CARD, NEW = "6001000000000042", "6001000000000043"
HEADER_EN = "name,contact,store,card,tier,age_ok,profiling,marketing\n"
HEADER_IT = "nome,contatto,negozio,carta,livello,almeno_14,profilazione,marketing\n"


def run(runner, *args):
    return runner.invoke(args=[str(a) for a in args])


def ok(runner, *args):
    result = run(runner, *args)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def desk(runner, db, tmp_path):
    ok(runner, "add-store", "S1", "Milano Centro")
    ok(runner, "add-tier", "0", "base", "200")
    ok(runner, "add-tier", "2", "gold", "500")
    (tmp_path / "it.txt").write_text("Informativa sul trattamento dei dati\n")
    (tmp_path / "en.txt").write_text("Privacy notice\n")
    assert "1" in ok(runner, "publish-notice", "--it", tmp_path / "it.txt", "--en", tmp_path / "en.txt",
                     "--operator", "dpo")
    return tmp_path


ENROL = ["enrol", "--name", "Maria Rossi", "--contact", "maria@example.it", "--store", "S1", "--card", CARD,
         "--tier", "2", "--age-ok", "--operator", "anna", "--notice", "1"]


def counts(db):
    return tuple(db.execute("SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM cards), "
                            "(SELECT count(*) FROM consents), (SELECT count(*) FROM trail)").fetchone())


def test_enrol_without_profiling_or_marketing_stores_them_not_given(runner, db, desk):
    ok(runner, *ENROL)
    cid = db.execute("SELECT id FROM customers").fetchone()[0]
    assert consents.in_force(db, cid) == {"scheme": True, "profiling": False, "marketing": False}
    assert [tuple(r) for r in db.execute("SELECT purpose, given, channel, notice_version FROM consents ORDER BY id")] \
        == [("scheme", 1, "desk", 1), ("profiling", 0, "desk", 1), ("marketing", 0, "desk", 1)]


def test_enrol_needs_the_age_answered(runner, db, desk):
    result = run(runner, *[a for a in ENROL if a != "--age-ok"])
    assert result.exit_code == 2 and "--under-14" in result.output
    assert counts(db) == (0, 0, 0, 0)


def test_the_commands_of_a_customers_life(runner, db, desk):
    ok(runner, *ENROL, "--marketing")
    ok(runner, "consent", CARD, "give", "profiling", "--channel", "web", "--operator", "self", "--notice", "1")
    ok(runner, "consent", "1", "withdraw", "profiling", "--channel", "phone", "--operator", "care", "--notice", "1")
    ok(runner, "object-marketing", CARD, "--operator", "care", "--reason", "no more mail")
    assert consents.in_force(db, 1) == {"scheme": True, "profiling": False, "marketing": False}
    ok(runner, "replace-card", CARD, NEW, "--operator", "anna")
    assert [tuple(r) for r in db.execute("SELECT card, tier, status, customer_id FROM cards ORDER BY card")] == [
        (CARD, 2, headoffice.BLOCKED, 1), (NEW, 2, headoffice.ACTIVE, 1)]
    ok(runner, "block-card", NEW, "--operator", "anna", "--reason", "stolen")
    ok(runner, "unblock-card", NEW, "--operator", "anna")
    assert "household 1" in ok(runner, "add-household", "--name", "Rossi", "--customer", NEW, "--operator", "anna")
    ok(runner, "close-customer", NEW, "--operator", "anna", "--reason", "moved away")
    assert tuple(db.execute("SELECT status, household_id FROM customers").fetchone()) == ("closed", 1)
    assert db.execute("SELECT count(*) FROM cards WHERE status = ?", [headoffice.BLOCKED]).fetchone()[0] == 2


def test_import_customers_english_and_italian_headings(runner, db, desk):
    (desk / "en.csv").write_text(HEADER_EN + "Maria Rossi,maria@example.it,S1,%s,2,yes,yes,no\n" % CARD)
    (desk / "it.csv").write_text(HEADER_IT + "Luca Bianchi,+39 333 123 4567,S1,%s,0,no,,\n" % NEW)
    for name in ("en.csv", "it.csv"):
        assert "1" in ok(runner, "import-customers", desk / name, "--operator", "office", "--notice", "1")
    assert consents.in_force(db, 1) == {"scheme": True, "profiling": True, "marketing": False}
    assert consents.in_force(db, 2) == {"scheme": True, "profiling": False, "marketing": False}
    assert [tuple(r) for r in db.execute("SELECT contact, age_ok FROM customers ORDER BY id")] == [
        ("maria@example.it", 1), ("+393331234567", 0)]


@pytest.mark.parametrize("lang, says", [
    ("en", "line 3: contact: must be an e-mail address"),
    ("it", "riga 3: contatto: deve essere un indirizzo e-mail"),
])
def test_import_error_on_line_3_names_line_and_field_and_stores_nothing(runner, db, desk, lang, says):
    header = HEADER_IT if lang == "it" else HEADER_EN
    (desk / "bad.csv").write_text(header + "Maria Rossi,maria@example.it,S1,%s,2,1,1,0\n" % CARD
                                  + "Luca Bianchi,luca@,S1,%s,2,1,0,0\n" % NEW)
    with using(lang):
        result = run(runner, "import-customers", desk / "bad.csv", "--operator", "office", "--notice", "1")
    assert result.exit_code == 1 and says in result.output, result.output
    assert counts(db) == (0, 0, 0, 0)


def test_import_refuses_an_under_14_with_marketing_and_a_card_twice(runner, db, desk):
    (desk / "a.csv").write_text(HEADER_EN + "Maria,maria@example.it,S1,%s,2,no,no,yes\n" % CARD)
    (desk / "b.csv").write_text(HEADER_EN + "Maria,maria@example.it,S1,%s,2,yes,no,no\n" % CARD
                                + "Luca,luca@example.it,S1,%s,2,yes,no,no\n" % CARD)
    for name, says in (("a.csv", "line 2: marketing: needs a customer of at least 14"),
                       ("b.csv", "line 3: card: card %s is on line 2 too" % CARD)):
        with using("en"):
            result = run(runner, "import-customers", desk / name, "--operator", "office", "--notice", "1")
        assert result.exit_code == 1 and says in result.output, result.output
    assert counts(db) == (0, 0, 0, 0)


BAD = [
    (["--name", "\x07"], "name"), (["--contact", "maria"], "contact"), (["--store", "S9"], "store"),
    (["--card", "12ab"], "card"), (["--tier", "7"], "tier"), (["--channel", "fax"], "channel"),
    (["--notice", "4"], "notice"),
]


@pytest.mark.parametrize("change, field", BAD)
def test_enrol_bad_input_names_the_field_in_both_languages(runner, db, desk, change, field):
    args = list(ENROL)
    if change[0] in args:
        args[args.index(change[0]) + 1] = change[1]
    else:
        args += change
    texts = {}
    for lang in ("it", "en"):
        with using(lang):
            result = run(runner, *args)
        assert result.exit_code == 1, result.output
        assert "Error: %s: " % field in result.output or "Errore: %s: " % field in result.output, result.output
        texts[lang] = result.output
    assert texts["it"] != texts["en"]  # the rule is said in each language
    assert counts(db) == (0, 0, 0, 0)


@pytest.mark.parametrize("args, field", [
    (["consent", "1", "give", "gossip", "--operator", "a", "--notice", "1"], "purpose"),
    (["consent", "9", "give", "marketing", "--operator", "a", "--notice", "1"], "customer"),
    (["consent", "1", "give", "marketing", "--operator", "a", "--notice", "1", "--channel", "fax"], "channel"),
    (["object-marketing", "1", "--operator", "a", "--reason", ""], "reason"),
    (["replace-card", CARD, "x", "--operator", "a"], "new"),
    (["replace-card", NEW, CARD, "--operator", "a"], "old"),
    (["block-card", NEW, "--operator", "a", "--reason", "lost"], "card"),
    (["close-customer", "1", "--operator", "", "--reason", "x"], "operator"),
    (["add-household", "--join", "5", "--customer", "1", "--operator", "a"], "household"),
    (["publish-notice", "--it", "EMPTY", "--operator", "a"], "text_it"),
])
def test_every_command_names_the_field_it_refuses(runner, db, desk, args, field):
    ok(runner, *ENROL)
    (desk / "empty.txt").write_text("")
    args = [str(desk / "empty.txt") if a == "EMPTY" else a for a in args]
    before = counts(db)
    for lang in ("it", "en"):
        with using(lang):
            result = run(runner, *args)
        assert result.exit_code == 1 and ": %s: " % field in result.output, (lang, result.output)
    assert counts(db) == before
