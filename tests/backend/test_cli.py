"""The operator's commands through app.test_cli_runner()."""
import json
import os
import stat

import pytest

from loyalty.backend import cli
from loyalty.backend.db import MIGRATIONS, connect, schema_version


def run(runner, *args, **kwargs):
    return runner.invoke(args=list(args), **kwargs)


def ok(runner, *args, **kwargs):
    result = run(runner, *args, **kwargs)
    assert result.exit_code == 0, result.output
    return result.output


def failed(runner, *args, **kwargs):
    result = run(runner, *args, **kwargs)
    assert result.exit_code != 0, result.output
    return result.output


@pytest.fixture
def store(runner):
    ok(runner, "add-store", "S1", "Milano Centro")
    return "S1"


def test_every_command_has_help(runner):
    listing = ok(runner, "--help")
    for command in cli.COMMANDS:
        assert command.name in listing
        assert command.help and command.help.strip()
        out = ok(runner, command.name, "--help")
        assert command.help.split("\n")[0].strip()[:30] in " ".join(out.split())
        for param in command.params:
            if param.param_type_name == "option":
                assert param.help, "%s %s has no help" % (command.name, param.name)


def test_init_db_creates_and_migrates(app, tmp_path):
    path = tmp_path / "fresh.db"
    app.config["DATABASE"] = str(path)
    out = ok(app.test_cli_runner(), "init-db")
    newest = len(MIGRATIONS)
    assert out.strip() == "schema version %d in %s" % (newest, path)
    db = connect(path)
    try:
        assert schema_version(db) == newest
    finally:
        db.conn.close()
    assert ok(app.test_cli_runner(), "init-db") == out  # again: nothing to do, same answer


def test_commands_need_a_database_first(app, tmp_path):
    app.config["DATABASE"] = str(tmp_path / "none.db")
    assert "init-db" in failed(app.test_cli_runner(), "add-store", "S1", "x")


def test_add_store(runner, db):
    assert "store S1 added (Europe/Rome)" in ok(runner, "add-store", "S1", "Milano Centro")
    ok(runner, "add-store", "S2", "NY", "--tz", "America/New_York")
    assert "time zone" in failed(runner, "add-store", "S3", "x", "--tz", "Mars/Olympus")
    assert "exists already" in failed(runner, "add-store", "S1", "again")
    assert db.execute("SELECT id, tz FROM stores ORDER BY id").fetchall() == [
        ("S1", "Europe/Rome"), ("S2", "America/New_York")]


def test_add_reader_writes_the_key_to_its_file_only(app, runner, db, store):
    out = ok(runner, "add-reader", "R1", "--store", "S1", "--backend", "http://10.0.0.5:8000")
    path = os.path.join(app.instance_path, "provisioning", "R1.json")
    assert out.strip() == path
    key_hex = db.execute("SELECT key_hex FROM readers WHERE id='R1'").fetchone()[0]
    assert key_hex not in out
    with open(path) as f:
        data = json.load(f)
    assert data["key"] == key_hex and data["backend"] == "http://10.0.0.5:8000" and data["store"] == "S1"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_add_reader_refusals(app, runner, db, store, tmp_path):
    assert "add it first" in failed(runner, "add-reader", "R1", "--store", "S9")
    out_file = tmp_path / "r1.json"
    out_file.write_text("{}")
    assert "exists already" in failed(runner, "add-reader", "R1", "--store", "S1", "--out", str(out_file))
    assert db.execute("SELECT count(*) FROM readers").fetchone()[0] == 0
    ok(runner, "add-reader", "R1", "--store", "S1", "--out", str(tmp_path / "new" / "r1.json"))
    assert "exists already" in failed(runner, "add-reader", "R1", "--store", "S1", "--out", str(tmp_path / "x.json"))
    assert not (tmp_path / "x.json").exists()


def test_rules_commands(runner, db):
    assert "add a tier first" in failed(runner, "show-rules")
    assert "rules version 1" in ok(runner, "add-tier", "0", "base", "200")
    ok(runner, "add-tier", "2", "gold", "500", "--name", "Gold")
    ok(runner, "set-tier", "2", "--bp", "600")
    ok(runner, "add-promotion", "LATTE10", "--kind", "category", "--category", "dairy", "--bp", "1000")
    ok(runner, "add-promotion", "SPESA", "--kind", "threshold", "--min-cents", "3000", "--cents", "200",
       "--tiers", "2", "--from", "2025-03-01T08:00", "--to", "1900000000")
    ok(runner, "set-limits", "--card-day-max-cents", "9000", "--stale-hours", "24", "--default-tier", "2")
    out = ok(runner, "show-rules")
    assert out.startswith("rules version 6\n")
    rules = json.loads(out.split("\n", 1)[1])
    assert rules["tiers"] == [{"id": 0, "code": "base", "bp": 200}, {"id": 2, "code": "gold", "bp": 600}]
    assert rules["promotions"][1] == {"id": "SPESA", "kind": "threshold", "min_cents": 3000, "cents": 200,
                                      "tiers": [2], "from": 1740816000, "to": 1900000000}
    assert rules["offline"]["card_day_max_cents"] == 9000 and rules["default_tier"] == 2
    assert "rules version 7" in ok(runner, "end-promotion", "LATTE10")
    # refusals name the problem and change nothing
    out = failed(runner, "add-promotion", "X", "--kind", "sku", "--bp", "100")
    assert "sku" in out and "nothing was changed" in out
    assert "no promotion" in failed(runner, "end-promotion", "NOPE")
    assert "give at least one limit" in failed(runner, "set-limits")
    assert "--from" in failed(runner, "add-promotion", "Y", "--kind", "category", "--category", "x",
                              "--bp", "1", "--from", "next tuesday")
    assert db.execute("SELECT max(version) FROM rules_versions").fetchone()[0] == 7


def test_import_cards(runner, db, tmp_path):
    f = tmp_path / "cards.csv"
    f.write_text("card,tier,status\n6001000000000042,2,\n6001000000000017,1,blocked\n\n99,0,0\n")
    assert "3 cards read, 3 changed; directory version 3" in ok(runner, "import-cards", str(f))
    assert db.execute("SELECT card, tier, status FROM cards ORDER BY version").fetchall() == [
        ("6001000000000042", 2, 0), ("6001000000000017", 1, 1), ("99", 0, 0)]
    bad = tmp_path / "bad.csv"
    bad.write_text("card,tier\n42,1\n43,1\n4x4,1\n")
    out = failed(runner, "import-cards", str(bad))
    assert "line 4" in out and "card" in out and "nothing was imported" in out
    bad.write_text("number,tier\n42,1\n")
    assert "line 1" in failed(runner, "import-cards", str(bad))
    bad.write_text("card,tier\n42,1,0\n")
    assert "line 2" in failed(runner, "import-cards", str(bad))
    assert db.execute("SELECT count(*) FROM cards").fetchone()[0] == 3


def test_set_card(runner, db):
    ok(runner, "set-card", "42", "--tier", "1")
    assert "directory version 2" in ok(runner, "set-card", "42", "--block")
    assert "unchanged" in ok(runner, "set-card", "42", "--block")
    ok(runner, "set-card", "42", "--unblock", "--tier", "2")
    ok(runner, "set-card", "42", "--remove")
    assert db.execute("SELECT tier, status, version FROM cards").fetchall() == [(2, 2, 4)]
    assert "give its tier" in failed(runner, "set-card", "77", "--block")
    assert "--tier" in failed(runner, "set-card", "42")
    assert "digits" in failed(runner, "set-card", "4-2", "--tier", "1")


def test_create_manager(runner, db, store, tmp_path):
    out = ok(runner, "create-manager", "giulia", "--store", "S1",
             input="correct horse battery\ncorrect horse battery\n")
    assert "manager giulia created for store S1" in out
    pw = tmp_path / "pw"
    pw.write_text("another long password\n")
    assert "(head office)" in ok(runner, "create-manager", "marco", "--password-file", str(pw))
    assert db.execute("SELECT username, store_id FROM managers ORDER BY username").fetchall() == [
        ("giulia", "S1"), ("marco", None)]
    pw.write_text("short\n")
    assert "nothing was created" in failed(runner, "create-manager", "anna", "--password-file", str(pw))
    pw.write_text("another long password\n")
    assert "already exists" in failed(runner, "create-manager", "marco", "--password-file", str(pw))
    # the confirmation differs every time: no account
    failed(runner, "create-manager", "luca", input="one long password\nanother one!!\n" * 3)
    assert db.execute("SELECT count(*) FROM managers").fetchone()[0] == 2


@pytest.mark.parametrize("args, says", [
    (["--from", "99999999999999999999"], "--from"),
    (["--from", "\u00b2"], "--from"),
    (["--cents", "99999999999999999999"], "cents"),
    (["--tiers", " "], "tiers"),
])
def test_bad_promotion_options_are_named_and_change_nothing(runner, db, args, says):
    ok(runner, "add-tier", "0", "base", "200")
    before = db.execute("SELECT value FROM meta WHERE key='rules_version'").fetchone()
    out = failed(runner, "add-promotion", "P1", "--kind", "sku", "--sku", "8001", *(args + (
        ["--bp", "100"] if "--cents" not in args else [])))
    assert says in out and "Traceback" not in out
    assert db.execute("SELECT value FROM meta WHERE key='rules_version'").fetchone() == before
    assert db.execute("SELECT count(*) FROM promotions").fetchone()[0] == 0


def test_a_csv_that_is_not_utf8_is_refused_whole(runner, db, tmp_path):
    f = tmp_path / "cards.csv"
    f.write_bytes(b"card,tier\n6001000000000042,2\n60010000000000\xe917,1\n")
    out = failed(runner, "import-cards", str(f))
    assert "not UTF-8" in out and "nothing was imported" in out
    assert db.execute("SELECT count(*) FROM cards").fetchone()[0] == 0


def test_an_id_cannot_end_in_json(runner, db):
    ok(runner, "add-store", "S1", "Centro")
    assert ".json" in failed(runner, "add-reader", "R1.json", "--store", "S1")
