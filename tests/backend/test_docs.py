"""The docs cannot drift from the code, nor from each other.

The operator's guides: docs/backend.md and its Italian docs/it/backend.md both document
every command the backend registers (and each command has help text of its own); their
commands, settings and state tables name the same things; the settings are real ones; the
states are the dashboard's, in the guide's language; and each guide points to the other.

The protocol (docs/protocol.md): its canonical encoding example is what canonical.encode
writes, byte for byte, and the inputs it says are refused are refused with its codes; its
signature example verifies; every error code it names is in the table of codes
(shared/protocol/errortexts.py) and every HTTP status it gives a refusal is the one
shared/protocol/status.py answers with; its tables of record and status keys name exactly
the keys recordcheck.py and batchcheck.py take. docs/openapi.json has its own test
(test_sync_openapi.py)."""
import re
from pathlib import Path

import pytest

from loyalty.backend.config import DEFAULTS
from loyalty.backend.dashboard import readerstate
from loyalty.i18n import using
from loyalty.protocol import batchcheck, errors, recordcheck
from loyalty.protocol.canonical import decode, encode
from loyalty.protocol.errors import EncodingError
from loyalty.protocol.records import body_digest, sign, string_to_sign
from loyalty.protocol.status import http_status

DOCS = Path(__file__).resolve().parents[2] / "docs"
DOC = DOCS / "backend.md"
DOC_IT = DOCS / "it" / "backend.md"
GUIDES = {"en": DOC, "it": DOC_IT}
PROTOCOL = DOCS / "protocol.md"
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


# -- the protocol -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def protocol():
    return PROTOCOL.read_text()


def section(text, number):
    """Section `number` of the doc (from its `## N.` heading to the next `## `)."""
    start = text.index("\n## %d. " % number)
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end]


def code_spans(cell):
    return re.findall(r"`([^`]+)`", cell)


def test_the_canonical_example_is_what_encode_writes_byte_for_byte(protocol):
    m = re.search(r"Example: `([^`]+)` encodes as the (\d+) bytes `([^`]+)`", section(protocol, 1))
    value, count, shown = m.group(1), int(m.group(2)), m.group(3)
    data = encode(decode(value.encode()))
    assert len(data) == count
    assert data == shown.encode("latin-1").decode("unicode_escape").encode("latin-1")


@pytest.mark.parametrize("sample, code", [
    (b'{"a":1, "b":2}', "enc.canonical"), (b'{"b":1,"a":2}', "enc.canonical"), (b'{"a":1,"a":1}', "enc.canonical"),
    (b"-0", "enc.canonical"), (b'"\\u00e8"', "enc.canonical"), (b'"\\/"', "enc.canonical"),
    (b"2.0", "enc.type"), (b"1e3", "enc.type"), (b'"\\ud800"', "enc.json"), (b'"\xc3"', "enc.json"),
])
def test_what_the_canonical_section_says_is_refused_is_refused_with_its_code(protocol, sample, code):
    text = section(protocol, 1)
    assert "`%s`" % code in text
    with pytest.raises(EncodingError) as e:
        decode(sample, strict=True)
    assert e.value.code == code


def test_the_signature_example_verifies(protocol):
    block = section(protocol, 4)
    key = bytes.fromhex(re.search(r"^    key +([0-9a-f]{64})$", block, re.M).group(1))
    m = re.search(r"^    request +(GET|POST) (\S+) +X-Timestamp: (\d+) +X-Nonce: ([0-9a-f]{16})$", block, re.M)
    method, target, t, nonce = m.group(1), m.group(2), int(m.group(3)), m.group(4)
    signed = re.search(r'^    signed +"(.*)"$', block, re.M).group(1).replace("\\n", "\n").encode()
    signature = re.search(r"^    signature +([0-9a-f]{64})$", block, re.M).group(1)
    assert string_to_sign(method, target, t, nonce, body_digest(b"")) == signed
    assert sign(key, method, target, t, nonce, body_digest(b"")) == signature


def test_every_error_code_the_protocol_names_is_in_the_table_of_codes(protocol):
    prefixes = {code.split(".")[0] for code, *_ in errors.codes()}
    named = {c for c in re.findall(r"`([a-z0-9]+\.[a-z0-9_]+)`", protocol) if c.split(".")[0] in prefixes}
    assert {"enc.canonical", "till.frame", "disc.bad_record", "batch.status", "delta.format"} <= named
    assert sorted(c for c in named if not errors.known(c)) == []


def test_each_refusal_the_protocol_tables_give_a_status_is_answered_with_it(protocol):
    checked = set()
    for table in tables(section(protocol, 4)):
        for row in table:
            statuses = [c for c in row if re.fullmatch(r"[1-5]\d\d", c)]
            for code in (c for cell in row for c in code_spans(cell) if errors.known(c)):
                assert statuses and http_status(code) == int(statuses[0]), row
                checked.add(code)
    assert checked == {c for c, *_ in errors.codes() if c.startswith("batch.")}


def key_column(table):
    """The keys a table's first column names (`receipt`, `quote` -> two)."""
    return {k for row in table for k in code_spans(row[0])}


def test_the_record_tables_name_the_keys_recordcheck_takes(protocol):
    found = [key_column(t) for t in tables(section(protocol, 3))]
    common, reversal = set(recordcheck._COMMON), set(recordcheck._REVERSAL)
    assert common in found and reversal in found


def test_the_status_table_names_the_keys_check_status_takes(protocol):
    keys = {name for name, *_ in batchcheck._STATUS_INTS} | {name for name, _ in batchcheck._STATUS_TEXTS}
    # the status table sits in a list item, indented
    unindented = "\n".join(line.strip() for line in section(protocol, 4).splitlines())
    found = [key_column(t) for t in tables(unindented)]
    assert keys | {"journal"} in found
    assert set(batchcheck.JOURNAL_LEVELS) <= set(re.findall(r"`([a-z_]+)`", section(protocol, 4)))
