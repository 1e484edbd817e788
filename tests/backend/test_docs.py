"""The operator's guides cannot drift from the code, nor from each other: docs/backend.md
and its Italian docs/it/backend.md both document every command the backend registers (and
each command has help text of its own); their commands, settings and state tables name the
same things; the settings are real ones; the states are the dashboard's, in the guide's
language; and each guide points to the other."""
import re
from pathlib import Path

import pytest

from loyalty.backend.config import DEFAULTS
from loyalty.backend.dashboard import readerstate
from loyalty.i18n import using

DOCS = Path(__file__).resolve().parents[2] / "docs"
DOC = DOCS / "backend.md"
DOC_IT = DOCS / "it" / "backend.md"
GUIDES = {"en": DOC, "it": DOC_IT}
POINTERS = {"en": "Italiano: [docs/it/backend.md](it/backend.md)",
            "it": "English: [docs/backend.md](../backend.md)"}


def documented(name, text):
    """Is command `name` named in the doc as code (`name` or `name ARGS`)?"""
    return re.search(r"`%s[ `]" % re.escape(name), text) is not None


def tables(text):
    """The doc's Markdown tables: for each, its body rows (header and rule left out), each
    row a list of stripped cells (`\\|` inside a cell does not split it)."""
    found, rows = [], None
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
            if rows is None:
                rows = []  # the header
            elif not all(re.fullmatch(r":?-+:?", c) for c in cells):
                rows.append(cells)
        elif rows is not None:
            found.append(rows)
            rows = None
    return found


def table_commands(text):
    """The commands the doc's tables name in a row's first cell: the first word of each
    code span there that is a command's name (`set-card CARD ...` -> set-card)."""
    names = set()
    for table in tables(text):
        for row in table:
            for code in re.findall(r"`([^`]+)`", row[0]):
                word = code.split()[0]
                if re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", word):
                    names.add(word)
    return names


def table_settings(text):
    """The settings the doc's tables name: an upper-case code span alone in a row's first
    cell (`LAGGING_AFTER`)."""
    return {m.group(1) for table in tables(text) for row in table
            if (m := re.fullmatch(r"`([A-Z][A-Z0-9_]*)`", row[0]))}


def state_table(text, words):
    """The state table's rows, top to bottom, as state codes: `words` maps each state's word
    (as the dashboard shows it in the doc's language) to its code; a row whose first cell is
    not a state's word gives None. The state table is the first table with a state's word
    in a row's first cell; [] if there is none."""
    def code(cell):
        return words.get(cell.strip("*_` ").lower())
    for table in tables(text):
        if any(code(row[0]) for row in table):
            return [code(row[0]) for row in table]
    return []


def state_words(lang):
    """{the state's word on the dashboard in `lang`: its code}."""
    with using(lang):
        return {word.lower(): state for state, word in readerstate.words().items()}


def links(text):
    """The targets of the doc's relative Markdown links, anchors left out."""
    return {m.group(1) for m in re.finditer(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
            if not re.match(r"[a-z][a-z0-9+.-]*:", m.group(1))}


@pytest.fixture(scope="module")
def texts():
    return {lang: path.read_text() for lang, path in GUIDES.items()}


# -- the helpers, with counter-examples ---------------------------------------------------

def test_documented_finds_a_command_only_as_itself():
    text = "| `set-card CARD` | ... `audit` ..."
    assert documented("set-card", text) and documented("audit", text)
    assert not documented("set", text) and not documented("card", text)


SAMPLE = """\
Prose names `audit` and `LOYALTY_LANG` but not in a table.

| setting | default | meaning |
| --- | --- | --- |
| `LAGGING_AFTER` | 300 | seconds → *lagging*; see `OFFLINE_AFTER` |
| `MAX_BATCH_BYTES` | 262144 | refused (`batch.too_large`) |

| command | what it does |
| --- | --- |
| `set-card CARD [--block\\|--unblock]` | one card |
| `add-tier`, `set-tier` | rules |
| plain `init-db` | a command's name not as the cell's code |

| state | colour | when |
| --- | --- | --- |
| never seen | grey | ... |
| *lagging* | amber | more than `LAGGING_AFTER` |
| stale | blue | not a state |
"""


def test_tables_split_rows_into_cells_but_not_on_an_escaped_bar():
    found = tables(SAMPLE)
    assert [len(t) for t in found] == [2, 3, 3]
    assert found[1][0] == ["`set-card CARD [--block\\|--unblock]`", "one card"]
    assert tables("no table here\n| a |\n") == [[]]  # a header alone: no rows


def test_table_commands_are_first_cells_code_not_prose_nor_settings():
    assert table_commands(SAMPLE) == {"set-card", "add-tier", "set-tier", "init-db"}
    assert "audit" not in table_commands(SAMPLE)  # named in prose only
    assert "set" not in table_commands(SAMPLE) and "LAGGING_AFTER" not in table_commands(SAMPLE)
    assert table_commands(SAMPLE.replace("| `add-tier`, `set-tier` | rules |\n", "")) != table_commands(SAMPLE)


def test_table_settings_are_first_cells_only():
    assert table_settings(SAMPLE) == {"LAGGING_AFTER", "MAX_BATCH_BYTES"}
    # in prose, or in another cell of a row, a name is not the table's
    assert "LOYALTY_LANG" not in table_settings(SAMPLE) and "OFFLINE_AFTER" not in table_settings(SAMPLE)


def test_state_table_reads_codes_in_order_and_keeps_rows_it_does_not_know():
    words = {"never seen": "never_seen", "lagging": "lagging"}
    assert state_table(SAMPLE, words) == ["never_seen", "lagging", None]
    assert state_table(SAMPLE, {"mai visto": "never_seen"}) == []  # another language's words
    assert state_words("it")["fuori linea"] == "offline" and state_words("en")["offline"] == "offline"


def test_links_are_relative_targets_only():
    text = "[a](../protocol.md) [b](it/backend.md#x) [c](https://example.com/x.md)"
    assert links(text) == {"../protocol.md", "it/backend.md"}


# -- the guides ---------------------------------------------------------------------------

def test_every_backend_command_is_in_the_docs_with_help(app, texts):
    commands = app.cli.commands
    assert {"init-db", "new-card-epoch", "retire-card-epoch"} <= set(commands)
    for lang, text in texts.items():
        assert (lang, [name for name in sorted(commands) if not documented(name, text)]) == (lang, [])
    assert [name for name, c in sorted(commands.items()) if not (c.help or "").strip()] == []


def test_the_guides_tables_name_the_same_commands_and_only_real_ones(app, texts):
    named = {lang: table_commands(text) for lang, text in texts.items()}
    assert named["en"] == named["it"]
    assert named["en"] - set(app.cli.commands) == set()
    assert set(app.cli.commands) - named["en"] == set()


def test_the_guides_settings_tables_name_the_same_real_settings(texts):
    named = {lang: table_settings(text) for lang, text in texts.items()}
    assert {"LAGGING_AFTER", "OFFLINE_AFTER", "LANGUAGE"} <= named["en"]
    assert named["en"] == named["it"]
    assert named["en"] - set(DEFAULTS) == set()


def test_the_guides_state_tables_are_the_dashboards_five_states_in_the_same_order(texts):
    rows = {lang: state_table(texts[lang], state_words(lang)) for lang in GUIDES}
    assert len(rows["en"]) == len(rows["it"]) == len(readerstate.STATES)
    assert rows["en"] == rows["it"]
    assert sorted(rows["en"], key=str) == sorted(readerstate.STATES)


def test_each_guide_points_to_the_other_and_its_links_resolve(texts):
    for lang, text in texts.items():
        assert text.splitlines()[0] == POINTERS[lang]
        here = GUIDES[lang].parent
        assert (lang, [t for t in sorted(links(text)) if not (here / t).exists()]) == (lang, [])
    assert "../protocol.md" in links(texts["it"])
