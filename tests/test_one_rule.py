"""Each rule has one source: the integer check (an int, not a bool, in a range) is written
in shared/protocol/checks.py only; the reader's message modules and the backend call it."""
import re
from pathlib import Path

from loyalty.testing import runtimes

ROOT = runtimes.ROOT
# the integer rule written out: "isinstance(x, int) and not isinstance(x, bool)", or its negation
RULE = re.compile(r"isinstance\(([^(),]+), int\) and not isinstance\(\1, bool\)"
                  r"|not isinstance\(([^(),]+), int\) or isinstance\(\2, bool\)")
HOME = ROOT / "shared" / "protocol" / "checks.py"


def sources():
    for folder in ("shared/protocol", "backend", "firmware"):
        yield from sorted((ROOT / folder).rglob("*.py"))


def test_the_integer_rule_is_written_once():
    written = [(str(p.relative_to(ROOT)), n) for p in sources()
               for n, line in enumerate(p.read_text().splitlines(), 1) if RULE.search(line)]
    assert [w for w in written if w[0] != str(HOME.relative_to(ROOT))] == []
    assert written, "shared/protocol/checks.py no longer holds the rule this test looks for"


def test_the_search_finds_the_rule_written_out():
    assert RULE.search("ok = isinstance(v, int) and not isinstance(v, bool) and v > 0")
    assert RULE.search("if not isinstance(item[0], int) or isinstance(item[0], bool):")
    assert not RULE.search("if not isinstance(more, bool):")
