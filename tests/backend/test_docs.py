"""docs/backend.md cannot drift from the code: every command the backend registers is
documented there, and has help text of its own."""
import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "backend.md"


def documented(name, text):
    """Is command `name` named in the doc as code (`name` or `name ARGS`)?"""
    return re.search(r"`%s[ `]" % re.escape(name), text) is not None


def test_documented_finds_a_command_only_as_itself():
    text = "| `set-card CARD` | ... `audit` ..."
    assert documented("set-card", text) and documented("audit", text)
    assert not documented("set", text) and not documented("card", text)


def test_every_backend_command_is_in_the_docs_with_help(app):
    text = DOC.read_text()
    commands = app.cli.commands
    assert {"init-db", "new-card-epoch", "retire-card-epoch"} <= set(commands)
    assert [name for name in sorted(commands) if not documented(name, text)] == []
    assert [name for name, c in sorted(commands.items()) if not (c.help or "").strip()] == []
