"""Every command in the pseudo-locale: the backend's commands (loyalty-admin, the same as
`flask --app loyalty.backend.app`) and the operator's programs, each `--help` and what the commands print when they work and when they fail,
with a catalogue that brackets every translated text (tests/support/pseudolocale.py).
No word may be left outside a bracket but names, options, paths and codes.

The programs run as an operator runs them (subprocesses, LOYALTY_TRANSLATIONS pointing at
the pseudo-locale's catalogue, LOYALTY_LANG=it), and without LOYALTY_LANG they speak Italian.
"""
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from loyalty import i18n
from loyalty.backend import cli
from loyalty.testing import pseudolocale

BIN = Path(sys.executable).parent
FLASK = [str(BIN / "flask"), "--app", "loyalty.backend.app"]
ADMIN = [str(BIN / "loyalty-admin")]
CARD = "6001000000000042"


@pytest.fixture(scope="module")
def pseudo_env(tmp_path_factory):
    folder = pseudolocale.build(tmp_path_factory.mktemp("pseudo"))
    env = {k: v for k, v in os.environ.items() if k not in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")}
    env.update(LOYALTY_TRANSLATIONS=str(folder), LOYALTY_LANG="it")
    return env


def run(cmd, env, stdin=None, cwd=None):
    r = subprocess.run(cmd, env=env, input=stdin, capture_output=True, text=True, timeout=120, cwd=cwd)
    return r.returncode, r.stdout + r.stderr


def words_of(*values):
    """The words of names, options and paths a command was given: these may show as they are."""
    found = set()
    for v in values:
        if "/" in str(v):  # a path: its name only (its folders' words are a test's name)
            found.add(Path(str(v)).name)
            continue
        for w in re.findall(r"[\w'./=-]+", str(v)):
            found.update((w, w.strip("-/.'="), w.lstrip("-")))
            found.update(re.split(r"[/._=-]+", w))
    return found


def options_and_names(text):
    """What a --help shows that is code: option names (--tz), metavars (STORE_ID, TEXT),
    command names (add-store) and defaults in brackets."""
    choices = {c for group in re.findall(r"[\[{]([\w-]+(?:[|,][\w-]+)+)[\]}]", text) for c in re.split("[|,]", group)}
    ranges = set(re.findall(r"<=(\w)<", text))  # click's INTEGER RANGE [0<=x<=255]
    return set(re.findall(r"--?[\w-]+", text)) | set(re.findall(r"\b[A-Z][A-Z_]+\b", text)) | \
        {w.lstrip("-") for w in re.findall(r"--?[\w-]+", text)} | choices | ranges


# the fields head office's errors name (headoffice.HeadOfficeError.field): the names of
# the command's arguments and of a card file's columns, shown as they are
FIELDS = {"id", "tier", "card", "status", "store", "epoch", "kind", "tiers", "tz", "username", "password", "lang",
          "customer_id", "contact", "name", "actor", "reason"}


def check(outputs):
    problems = []
    for label, code, text, allowed in outputs:
        left = pseudolocale.leftovers(text, allowed | options_and_names(text) | FIELDS)
        if left:
            problems.append((label, code, sorted(set(left)), text[-600:]))
    return problems


def test_every_flask_command_is_translated(pseudo_env, tmp_path):
    names = [c.name for c in cli.COMMANDS]
    env = dict(pseudo_env, LOYALTY_INSTANCE=str(tmp_path / "instance"))
    code, listed = run(ADMIN + ["--help"], env)
    assert code == 0 and all(n in listed for n in names), listed
    assert all(n in run(FLASK + ["--help"], env)[1] for n in names)  # flask --app lists the same
    with ThreadPoolExecutor(2) as pool:
        helps = list(pool.map(lambda n: (n,) + run(ADMIN + [n, "--help"], env), names))
    outputs = [("loyalty-admin --help", code, listed, words_of("loyalty-admin", "LOYALTY_INSTANCE", *names))]
    outputs += [("%s --help" % n, code, text, words_of("loyalty-admin", n)) for n, code, text in helps]
    assert all(code == 0 for _, code, _, _ in outputs)

    (tmp_path / "cards.csv").write_text("card,tier\n%s,0\n" % CARD)
    (tmp_path / "bad.csv").write_text("card,tier\n%s,x\n" % CARD)
    (tmp_path / "pw").write_text("a long passphrase\n")
    script = [
        ["init-db"], ["add-store", "S1", "Milano Centro"], ["add-store", "S1", "Again"],
        ["add-reader", "R1", "--store", "S1", "--out", str(tmp_path / "R1.json")],
        ["add-reader", "R2", "--store", "S9"], ["show-rules"],
        ["add-tier", "0", "base", "200", "--name", "Base"], ["set-tier", "0", "--bp", "250"],
        ["set-tier", "7", "--bp", "250"], ["new-card-epoch"],
        ["import-cards", str(tmp_path / "cards.csv")], ["import-cards", str(tmp_path / "bad.csv")],
        ["set-card", CARD, "--block"], ["set-card", CARD], ["set-card", "6001000000000043", "--block"],
        ["add-promotion", "P1", "--kind", "sku", "--sku", "1001", "--bp", "500"],
        ["add-promotion", "P2", "--kind", "sku", "--sku", "1001", "--bp", "500", "--from", "tomorrow"],
        ["end-promotion", "P1"], ["end-promotion", "P9"],
        ["set-limits", "--card-day-max-cents", "10000"], ["set-limits"],
        ["create-manager", "giulia", "--password-file", str(tmp_path / "pw")],
        ["create-manager", "giulia", "--password-file", str(tmp_path / "pw")],
        ["audit"], ["retire-card-epoch", "1"], ["retire-card-epoch", "1"], ["retire-card-epoch", "9"],
        ["add-tier", "300", "x", "1"], ["no-such-command"],
        ["customer-export", "7", "--actor", "care.anna", "--out", str(tmp_path / "7.json")],
        ["customer-rectify", "7", "--contact", "x@", "--actor", "care.anna", "--reason", "x"],
        ["customer-erase", "--card", CARD, "--actor", "care.anna", "--reason", "x", "--yes"],
    ]
    for args in script:
        code, text = run(ADMIN + args, env)
        if args == ["show-rules"] and code == 0:
            text = text.split("\n", 1)[0]  # the rules themselves are JSON for programs
        outputs.append((" ".join(args), code, text, words_of(*args, "loyalty-admin", "sku", "S1")))
    codes = [code for _, code, _, _ in outputs[len(names) + 1:]]
    assert codes.count(0) >= 14 and codes.count(0) < len(codes)  # both the happy and the unhappy ways
    problems = check(outputs)
    assert problems == [], "\n".join("%s (%s): %s" % p[:3] for p in problems)
    print("pseudo-locale: %d backend commands, %d runs" % (len(names), len(outputs)))


def test_without_a_language_the_commands_speak_italian(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in i18n.VARIABLES}
    env["LOYALTY_INSTANCE"] = str(tmp_path / "instance")
    code, text = run(FLASK + ["add-store", "--help"], env)
    assert code == 0 and "Uso:" in text and "Aggiunge il negozio STORE_ID" in text and "Opzioni" in text
    code, text = run(FLASK + ["add-store"], env)
    assert code == 2 and "Argomento mancante 'STORE_ID'" in text
    code, text = run(FLASK + ["init-db"], env)
    assert code == 0 and text.startswith("versione dello schema ")
    code, text = run(FLASK + ["add-store", "--help"], dict(env, LANG="en_GB.UTF-8"))
    assert "Usage:" in text and "Add a store STORE_ID" in text
    code, text = run(ADMIN + ["--help"], env)
    assert code == 0 and text.startswith("Uso: loyalty-admin") and "Comandi:" in text


PROGRAMS = [[str(BIN / "loyalty-flash")], [str(BIN / "loyalty-issuedesk")], [str(BIN / "loyalty-nfchost")],
            [str(BIN / "loyalty-pcschost")], [str(BIN / "loyalty-backend")],
            [sys.executable, "-m", "loyalty.backend.auditor"], [sys.executable, "-m", "loyalty.tools.mpybuild"]]
# what the operating system says about a refused connection comes in its own words
OS_WORDS = {"Errno", "Connection", "refused", "No", "such", "file", "or", "directory"}


def subcommands(help_text):
    """The subcommands a program's --help lists: in {a,b} or one a line, by their description."""
    found = re.search(r"\{([\w,-]+)\}", help_text)
    if found:
        return found.group(1).split(",")
    return re.findall(r"^ {2,}([a-z][\w-]*)(?: +|\n +)%s" % pseudolocale.OPEN, help_text, re.M)


def test_every_program_of_tools_is_translated(pseudo_env, tmp_path):
    outputs, runs = [], []
    for program in PROGRAMS:
        code, text = run(program + ["--help"], pseudo_env)
        assert code == 0, text
        name = Path(program[-1]).name
        subs = subcommands(text)
        outputs.append((name + " --help", code, text, words_of(*program, *subs)))
        runs += [program + [sub, "--help"] for sub in subs]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda cmd: (cmd,) + run(cmd, pseudo_env), runs))
    for cmd, code, text in results:
        assert code == 0, text
        outputs.append((" ".join(cmd[-2:]), code, text, words_of(*cmd)))
    # failing the way an operator fails: no reader there, a missing file, no arguments
    for cmd in ([str(BIN / "loyalty-flash"), "deploy", "--port", "socket://127.0.0.1:1"],
                [str(BIN / "loyalty-flash"), "provision", "--port", "socket://127.0.0.1:1",
                 "--file", str(tmp_path / "none.json"), "--wifi-ssid", "x", "--wifi-password-file", "x"],
                [str(BIN / "loyalty-issuedesk")], [str(BIN / "loyalty-nfchost"), "read", "--keys",
                                                    str(tmp_path / "none.json"), "--device", "udp:127.0.0.1:1"],
                [sys.executable, "-m", "loyalty.backend.auditor", "--db", str(tmp_path / "none.db"), "--once"]):
        code, text = run(cmd, pseudo_env, cwd=str(tmp_path))
        assert code != 0, text
        outputs.append((" ".join(cmd[-3:]), code, text, words_of(*cmd) | OS_WORDS))
    problems = check(outputs)
    assert problems == [], "\n".join("%s (%s): %s" % p[:3] for p in problems)
    assert len(runs) >= 10
    print("pseudo-locale: %d programs, %d subcommands, %d runs" % (len(PROGRAMS), len(runs), len(outputs)))
