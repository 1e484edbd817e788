"""The privacy documents (docs/privacy.md and its Italian docs/it/privacy.md) cannot drift
from the code, nor from each other.

Each points to the other; every retention setting (backend/config.py DEFAULTS: the keys
ending in _MONTHS or _DAYS, and RETENTION_AT) is in both documents' tables with the
default the code has; every command the rights table (section 4) names is one the app
registers; every table and column the "What remains, column by column" part of section 2
names is in the live schema (a database migrated for the test); and every table of the
live schema is named somewhere in each document, so a new table gets documented.
"""
import re
from pathlib import Path

import pytest

from loyalty.backend.config import DEFAULTS

from test_docs import section, tables

DOCS = Path(__file__).resolve().parents[2] / "docs"
PRIVACY = {"en": DOCS / "privacy.md", "it": DOCS / "it" / "privacy.md"}
POINTERS = {"en": "Italiano: [docs/it/privacy.md](it/privacy.md)",
            "it": "English: [docs/privacy.md](../privacy.md)"}
RETENTION = sorted(k for k in DEFAULTS if k.endswith(("_MONTHS", "_DAYS")) or k == "RETENTION_AT")
SQL_WORDS = {"json_extract", "LIKE"}  # named in the linkage test's paragraph: SQL, not the schema
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


@pytest.fixture(scope="module")
def texts():
    return {lang: path.read_text() for lang, path in PRIVACY.items()}


@pytest.fixture
def schema(db):
    """{table: {its columns}} of a freshly migrated database (the app fixture migrates it)."""
    names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                      "AND name NOT LIKE 'sqlite_%'")]
    return {t: {r[1] for r in db.execute("PRAGMA table_info(%s)" % t)} for t in names}


# -- reading the documents ------------------------------------------------------------------

def code_spans(text):
    return re.findall(r"`([^`]+)`", text)


def settings_defaults(text):
    """{SETTING: its default as the table shows it (the cell's first word)} for every table
    row whose first cell is an upper-case code span alone."""
    found = {}
    for table in tables(text):
        for row in table:
            m = re.fullmatch(r"`([A-Z][A-Z0-9_]*)`", row[0])
            if m and len(row) > 1:
                found[m.group(1)] = row[1].split()[0] if row[1].split() else ""
    return found


def rights_commands(text):
    """The commands the rights table (section 4's first table) names in its second column:
    the first word of each code span there."""
    rights = tables(section(text, 4))[0]
    return {code.split()[0] for row in rights for code in code_spans(row[1])
            if re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", code.split()[0])}


def what_remains(text):
    """The "What remains, column by column" part of section 2: from its ### heading to the
    end of the section."""
    part = section(text, 2)
    return part[part.index("\n### "):]


def named_schema(text, schema):
    """What the part `text` names that the schema lacks, as sorted strings:

      * in a table row, the first cell names tables (`t`) or columns (`t.c`); code spans of
        the second cell are columns of the tables the first cell names;
      * in prose, `t (...: a, b)` names the columns a, b of table t; `t.c` a column; any
        other identifier must be a table, or a column of a table named in the same
        sentence (SQL_WORDS aside);
      * an upper-case identifier anywhere is a setting: it must be in DEFAULTS."""
    missing = []

    def column(table, col, where):
        if table not in schema:
            missing.append("%s: no table %s" % (where, table))
        elif col not in schema[table]:
            missing.append("%s: no column %s.%s" % (where, table, col))

    def setting(name, where):
        """Is `name` a setting's (upper case)? If so, it must be a real one."""
        if re.fullmatch(r"[A-Z][A-Z0-9_]*", name) and name not in SQL_WORDS:
            if name not in DEFAULTS:
                missing.append("%s: no setting %s" % (where, name))
            return True
        return False

    prose = [line for line in text.splitlines() if not line.startswith("|")]
    for table in tables(text):
        for row in table:
            named = []
            for code in code_spans(row[0]):
                if "." in code:
                    column(*code.split(".", 1), where="table row")
                    named.append(code.split(".", 1)[0])
                elif not setting(code, "table row"):
                    if code not in schema:
                        missing.append("table row: no table %s" % code)
                    named.append(code)
            for code in (c for cell in row[1:] for c in code_spans(cell) if re.fullmatch(_IDENT, c)):
                if not setting(code, "table row") and not any(code in schema.get(t, ()) for t in named):
                    missing.append("table row: no column %s.%s" % ("/".join(named), code))
    words = " ".join(" ".join(prose).split())
    for m in re.finditer(r"`(%s)` \([^():]*:([^()]*)\)" % _IDENT, words):
        for code in code_spans(m.group(2)):
            if re.fullmatch(_IDENT, code):
                column(m.group(1), code, "list of %s" % m.group(1))
    words = re.sub(r"`(%s)` \([^():]*:([^()]*)\)" % _IDENT, r"`\1`", words)
    for sentence in re.split(r"\.\s+", words):
        spans = code_spans(sentence)
        tables_here = [s for s in spans if s in schema]
        for code in spans:
            if re.fullmatch(r"(%s)\.(%s)" % (_IDENT, _IDENT), code):
                column(*code.split("."), where="prose")
            elif re.fullmatch(_IDENT, code) and code not in schema and code not in SQL_WORDS \
                    and not setting(code, "prose") and not any(code in schema[t] for t in tables_here):
                missing.append("prose: %s is no table, nor a column of %s" % (code, tables_here or "a table beside it"))
    return sorted(missing)


def tables_named(text):
    """Every `t` or `t.c` code span's table part: the tables the document names."""
    return {code.split(".")[0] for code in code_spans(text) if re.fullmatch(r"%s(\.%s)?" % (_IDENT, _IDENT), code)}


# -- the readers, with counter-examples -------------------------------------------------------

TOY_SCHEMA = {"receipts": {"card", "t", "record", "lines"}, "cards": {"card", "tier"}}


def test_settings_defaults_read_the_first_word_of_the_second_cell():
    text = "| s | d |\n| --- | --- |\n| `VIEWS_MONTHS` | 12 (at least 6) |\n| `RETENTION_AT` | 03:30 | x |\n"
    assert settings_defaults(text) == {"VIEWS_MONTHS": "12", "RETENTION_AT": "03:30"}
    assert settings_defaults("`VIEWS_MONTHS` 12 in prose") == {}


def test_named_schema_finds_what_the_schema_lacks_and_nothing_else():
    good = ("| table | columns |\n| --- | --- |\n| `receipts` | `card`, `t` |\n| `receipts.record` | all |\n\n"
            "Left: `receipts` (after it: `card`, `lines`; `record` NULL), `cards`. "
            "`receipts.lines` counts. Only `card` joins `cards` and `receipts`. Keep `PROFILING_MONTHS`.\n")
    assert named_schema(good, TOY_SCHEMA) == []
    for bad, why in ((good.replace("| `receipts` | `card`", "| `receipt` | `card`"), "table row: no table receipt"),
                     (good.replace("`card`, `t` |", "`card`, `time` |"), "table row: no column receipts.time"),
                     (good.replace("`receipts.record` |", "`receipts.body` |"), "table row: no column receipts.body"),
                     (good.replace("`lines`; `record`", "`rows`; `record`"), "list of receipts: no column receipts.rows"),
                     (good.replace("`cards`. ", "`card_list`. "), "prose: card_list is no table"),
                     (good.replace("`receipts.lines` counts", "`receipts.n` counts"), "prose: no column receipts.n"),
                     (good.replace("Only `card` joins", "Only `tier` joins").replace("`cards` and ", ""),
                      "prose: tier is no table"),
                     (good.replace("`PROFILING_MONTHS`", "`PROFILE_MONTHS`"), "prose: no setting PROFILE_MONTHS")):
        found = named_schema(bad, TOY_SCHEMA)
        assert any(f.startswith(why) for f in found), (why, found)


def test_rights_commands_are_the_second_column_of_section_4s_first_table():
    text = ("## 3. x\n\n| a | b |\n| --- | --- |\n| `not-this` | `nor-this` |\n\n## 4. Rights\n\n"
            "| right | command | what |\n| --- | --- | --- |\n| access | `customer-export ID [--format json\\|csv]` | `x-y` |\n"
            "| consent | `consent CUSTOMER give\\|withdraw PURPOSE` | a row |\n\n## 5. next\n")
    assert rights_commands(text) == {"customer-export", "consent"}


def test_tables_named_take_the_table_of_a_column():
    assert tables_named("`receipts.record` and `cards`, `flask --app x`, `C-...`") == {"receipts", "cards"}


# -- the documents ----------------------------------------------------------------------------

def test_each_privacy_document_points_to_the_other(texts):
    for lang, text in texts.items():
        assert text.splitlines()[0] == POINTERS[lang]
        target = re.search(r"\]\(([^)]+)\)", text.splitlines()[0]).group(1)
        assert (PRIVACY[lang].parent / target).resolve() == PRIVACY["it" if lang == "en" else "en"].resolve()


def test_every_retention_setting_is_in_both_tables_with_the_codes_default(texts):
    assert {"RETURN_WINDOW_DAYS", "PROFILING_MONTHS", "VIEWS_MONTHS", "RETENTION_AT"} <= set(RETENTION)
    for lang, text in texts.items():
        shown = settings_defaults(text)
        assert (lang, {k: shown.get(k) for k in RETENTION}) == (lang, {k: str(DEFAULTS[k]) for k in RETENTION})
        assert (lang, sorted(set(shown) - set(DEFAULTS))) == (lang, [])


def test_the_rights_tables_name_the_same_registered_commands(app, texts):
    named = {lang: rights_commands(text) for lang, text in texts.items()}
    assert {"customer-export", "customer-rectify", "customer-erase", "object-marketing", "consent"} <= named["en"]
    assert named["en"] == named["it"]
    assert sorted(named["en"] - set(app.cli.commands)) == []


def test_what_remains_names_only_real_tables_and_columns(texts, schema):
    assert {"receipts", "product_day_totals", "customers", "trail"} <= set(schema)
    for lang, text in texts.items():
        part = what_remains(text)
        assert "`product_day_totals`" in part and "`receipts`" in part
        assert (lang, named_schema(part, schema)) == (lang, [])


def test_every_table_of_the_schema_is_named_in_the_documents(texts, schema):
    for lang, text in texts.items():
        assert (lang, sorted(set(schema) - tables_named(text))) == (lang, [])
