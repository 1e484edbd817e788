"""Each rule has one source: the integer check (an int, not a bool, in a range) and the
decimal-digits check (ASCII digits only) are written in shared/protocol/checks.py only; the
reader's message modules, the firmware and the backend call them."""
import re

import pytest

from loyalty.testing import runtimes

ROOT = runtimes.ROOT
# the integer rule written out: "isinstance(x, int) and not isinstance(x, bool)", or its negation
RULE = re.compile(r"isinstance\(([^(),]+), int\) and not isinstance\(\1, bool\)"
                  r"|not isinstance\(([^(),]+), int\) or isinstance\(\2, bool\)")
# the digits rule written out: a character compared with "0", or "1 to N digits" as a regular
# expression (JSON's number syntax in backend/sync/fastjson.py is another rule)
DIGITS = re.compile(r'"0" <=|< "0"|\[0-9\]\{1,')
HOME = ROOT / "shared" / "protocol" / "checks.py"


def sources():
    for folder in ("shared/protocol", "backend", "firmware"):
        yield from sorted((ROOT / folder).rglob("*.py"))


def written(rule):
    return [(str(p.relative_to(ROOT)), n) for p in sources()
            for n, line in enumerate(p.read_text().splitlines(), 1) if rule.search(line)]


@pytest.mark.parametrize("rule", [RULE, DIGITS], ids=["integer", "digits"])
def test_the_rule_is_written_once(rule):
    found = written(rule)
    assert [w for w in found if w[0] != str(HOME.relative_to(ROOT))] == []
    assert found, "shared/protocol/checks.py no longer holds the rule this test looks for"


def test_the_search_finds_the_rule_written_out():
    assert RULE.search("ok = isinstance(v, int) and not isinstance(v, bool) and v > 0")
    assert RULE.search("if not isinstance(item[0], int) or isinstance(item[0], bool):")
    assert not RULE.search("if not isinstance(more, bool):")
    assert DIGITS.search('if ch < "0" or ch > "9":') and DIGITS.search('re.fullmatch("[0-9]{1,12}", value)')
    assert not DIGITS.search('out.write(b"0")') and not DIGITS.search("r'(?:0|-?[1-9][0-9]*+)'")
