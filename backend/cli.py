"""The operator's commands: `flask --app loyalty.backend.app <command>` (`--help` lists them).

A thin layer over backend/headoffice/ (and backend.auth.create_manager): each command
checks its options, calls one function, prints what it did. Errors exit with status 1
and a message that says what went wrong and what to do.

    flask --app loyalty.backend.app init-db
    flask --app loyalty.backend.app add-store S1 "Milano Centro" --tz Europe/Rome
    flask --app loyalty.backend.app add-reader R1 --store S1 --backend http://10.0.0.5:8000
    flask --app loyalty.backend.app add-tier 0 base 200
    flask --app loyalty.backend.app import-cards cards.csv
    flask --app loyalty.backend.app new-card-epoch
    flask --app loyalty.backend.app set-card 6001000000000042 --block
    flask --app loyalty.backend.app audit
    flask --app loyalty.backend.app retention
"""
import csv
import datetime
import json
import os
import time

import click
from flask import current_app
from flask.cli import with_appcontext

from loyalty.backend import auditor, auth, db as dbmod, headoffice
from loyalty.backend.privacy import retention
from loyalty.backend.cliutil import Failed as _Failed, db as _db, hint as _hint, run as _run
from loyalty.backend.customers import commands as customer_commands
from loyalty.backend.privacy import commands as rights_commands
from loyalty.backend.requestdb import get_db
from loyalty import i18n
from loyalty.i18n import _, lazy
from loyalty.protocol.checks import is_digits


def _when(value, option):
    """Epoch seconds, or an ISO 8601 date/time (UTC unless it carries an offset)."""
    if value is None:
        return None
    if is_digits(value, 12):
        return int(value)
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(_("%(value)r: give epoch seconds or an ISO date/time like 2025-03-01T08:00", value=value),
                                 param_hint=option)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return int(moment.timestamp())


@click.command("init-db", help=lazy("Create the database or bring its schema up to date; prints the schema version."))
@with_appcontext
def init_db():
    db = get_db()
    try:
        version = dbmod.migrate(db)
    except dbmod.SchemaError as e:
        raise _Failed(_("%(error)s: use a newer version of the backend", error=e))
    click.echo(_("schema version %(version)d in %(database)s", version=version, database=current_app.config["DATABASE"]))


@click.command("add-store", help=lazy("Add a store STORE_ID named NAME."))
@click.argument("store_id")
@click.argument("name")
@click.option("--tz", default="Europe/Rome", show_default=True,
              help=lazy("The store's IANA time zone: its days and the dashboard's times are local."))
@with_appcontext
def add_store(store_id, name, tz):
    _run(headoffice.add_store, _db(), store_id, name, tz)
    click.echo(_("store %(store)s added (%(tz)s)", store=store_id, tz=tz))


@click.command("add-reader", help=lazy("Add a reader with a new key and write its provisioning file (loyalty-flash reads it).\n"
              "\n"
              "The key is written only to the provisioning file (mode 0600), never printed."))
@click.argument("reader_id")
@click.option("--store", "store_id", required=True, help=lazy("The store the reader stands in."))
@click.option("--name", default="", help=lazy("A name managers recognise, e.g. 'Till 3'."))
@click.option("--backend", "backend_url", default="http://127.0.0.1:8000", show_default=True,
              help=lazy("The URL the reader syncs with."))
@click.option("--out", type=click.Path(dir_okay=False),
              help=lazy("The provisioning file to write [default: <instance>/provisioning/<id>.json]."))
@with_appcontext
def add_reader(reader_id, store_id, name, backend_url, out):
    path = out or os.path.join(current_app.instance_path, "provisioning", "%s.json" % reader_id)
    if os.path.exists(path):
        raise _Failed(_("%(path)s exists already: move it away or give another --out", path=path))
    db = _db()
    key = _run(headoffice.add_reader, db, reader_id, store_id, name)
    try:
        headoffice.write_provisioning(path, reader_id, key, backend_url, store_id)
    except OSError as e:
        # without its file the new key is lost: take the reader out again
        db.execute("DELETE FROM readers WHERE id=?", [reader_id])
        raise _Failed(_("cannot write %(path)s (%(error)s): the reader was not added", path=path, error=e.strerror or e))
    click.echo(path)


@click.command("import-cards", help=lazy("Import cards from a CSV file with the header card,tier[,status].\n"
              "\n"
              "status: 0 or active, 1 or blocked, 2 or removed (empty: active, or as it is).\n"
              "Every line is checked before anything is written."))
@click.argument("csv_file", type=click.File("r", encoding="utf-8-sig"))
@with_appcontext
def import_cards(csv_file):
    reader = csv.reader(csv_file)
    rows, lines = [], []
    try:
        header = [h.strip().lower() for h in next(reader, [])]
        if header not in (["card", "tier"], ["card", "tier", "status"]):
            raise _Failed(_("line 1: the header must be card,tier or card,tier,status (got %(header)s)", header=",".join(header)))
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise _Failed(_("line %(line)d: %(fields)d fields, the header has %(header)d", line=reader.line_num,
                                  fields=len(row), header=len(header)))
            rows.append(tuple(cell.strip() for cell in row))
            lines.append(reader.line_num)
    except UnicodeDecodeError:
        raise _Failed(_("line %(line)d: not UTF-8 text: save the file as UTF-8 CSV; nothing was imported",
                        line=reader.line_num + 1))
    try:
        changed, version = headoffice.import_cards(_db(), rows)
    except headoffice.HeadOfficeError as e:
        # rows[i].field -> the file's line
        field = e.field or ""
        if field.startswith("rows["):
            i = int(field[5:field.index("]")])
            raise _Failed(_("line %(line)d: %(field)s: %(error)s; nothing was imported", line=lines[i],
                            field=field[field.index("]") + 2:], error=e.message))
        raise _Failed(_hint(e))
    click.echo(_("%(read)d cards read, %(changed)d changed; directory version %(version)d", read=len(rows),
                 changed=changed, version=version))


@click.command("set-card", help=lazy("Set a card's tier, or block, unblock or remove it."))
@click.argument("card")
@click.option("--tier", type=click.IntRange(0, 255), help=lazy("The card's tier id."))
@click.option("--block", "status", flag_value=headoffice.BLOCKED, help=lazy("Block the card: it gets no discount."))
@click.option("--unblock", "status", flag_value=headoffice.ACTIVE, help=lazy("Make the card active again."))
@click.option("--remove", "status", flag_value=headoffice.REMOVED, help=lazy("Take the card out of the directory."))
@with_appcontext
def set_card(card, tier, status):
    if tier is None and status is None:
        raise click.UsageError(_("give --tier, --block, --unblock or --remove"))
    version = _run(headoffice.set_card, _db(), card, tier=tier, status=status)
    if version is None:
        click.echo(_("card %(card)s unchanged", card=card))
    else:
        click.echo(_("card %(card)s changed; directory version %(version)d", card=card, version=version))


@click.command("add-tier", help=lazy("Add tier TIER_ID with its CODE (in rule names: tier:CODE) and rate BP (basis points)."))
@click.argument("tier_id", type=click.IntRange(0, 255))
@click.argument("code")
@click.argument("bp", type=click.IntRange(0, 10000))
@click.option("--name", default="", help=lazy("The tier's name as managers read it."))
@with_appcontext
def add_tier(tier_id, code, bp, name):
    version = _run(headoffice.add_tier, _db(), tier_id, code, bp, name)
    click.echo(_("tier %(tier)d added; rules version %(version)d", tier=tier_id, version=version))


@click.command("set-tier", help=lazy("Change tier TIER_ID's code, rate or name."))
@click.argument("tier_id", type=click.IntRange(0, 255))
@click.option("--code", help=lazy("A new code."))
@click.option("--bp", type=click.IntRange(0, 10000), help=lazy("A new rate in basis points."))
@click.option("--name", help=lazy("A new name."))
@with_appcontext
def set_tier(tier_id, code, bp, name):
    version = _run(headoffice.set_tier, _db(), tier_id, code=code, bp=bp, name=name)
    click.echo(_("tier %(tier)d changed; rules version %(version)d", tier=tier_id, version=version))


@click.command("add-promotion", help=lazy("Add promotion PROMOTION_ID (in rule names: promo:ID or threshold:ID)."))
@click.argument("promotion_id")
@click.option("--kind", required=True, type=click.Choice(headoffice.KINDS),
              help=lazy("sku: one article; category: a category; threshold: the receipt from --min-cents."))
@click.option("--sku", help=lazy("The article (kind sku)."))
@click.option("--category", help=lazy("The category (kind category)."))
@click.option("--min-cents", type=click.IntRange(0), help=lazy("The receipt's minimum (kind threshold)."))
@click.option("--bp", type=click.IntRange(0, 10000), help=lazy("A rate in basis points (or --cents)."))
@click.option("--cents", type=click.IntRange(0), help=lazy("Cents per unit, or per receipt for threshold."))
@click.option("--tiers", help=lazy("Only these tier ids, comma-separated (default: every tier)."))
@click.option("--from", "from_t", help=lazy("Start: epoch seconds or ISO date/time (UTC unless given)."))
@click.option("--to", "to_t", help=lazy("End (excluded): epoch seconds or ISO date/time."))
@with_appcontext
def add_promotion(promotion_id, kind, sku, category, min_cents, bp, cents, tiers, from_t, to_t):
    tier_ids = None
    if tiers is not None:
        try:
            tier_ids = [int(t) for t in tiers.split(",") if t.strip()]
        except ValueError:
            raise click.BadParameter(_("%(tiers)r: give tier ids separated by commas, e.g. 1,2", tiers=tiers),
                                     param_hint="--tiers")
    version = _run(headoffice.add_promotion, _db(), promotion_id, kind, sku=sku, category=category,
                   min_cents=min_cents, bp=bp, cents=cents, tiers=tier_ids, from_t=_when(from_t, "--from"), to_t=_when(to_t, "--to"))
    click.echo(_("promotion %(promotion)s added; rules version %(version)d", promotion=promotion_id, version=version))


@click.command("end-promotion", help=lazy("Withdraw promotion PROMOTION_ID from the rules."))
@click.argument("promotion_id")
@with_appcontext
def end_promotion(promotion_id):
    version = _run(headoffice.end_promotion, _db(), promotion_id)
    click.echo(_("promotion %(promotion)s ended; rules version %(version)d", promotion=promotion_id, version=version))


@click.command("set-limits", help=lazy("Set the offline limits and the default tier (the others stay as they are)."))
@click.option("--receipt-max-cents", type=click.IntRange(0), help=lazy("Head office's maximum discount per receipt."))
@click.option("--offline-receipt-max-cents", type=click.IntRange(0), help=lazy("The reader's maximum per receipt."))
@click.option("--card-day-max-cents", type=click.IntRange(0), help=lazy("Maximum per card per day on one reader."))
@click.option("--stale-hours", type=click.IntRange(0), help=lazy("Hours without sync after which only tier rates apply."))
@click.option("--default-tier", type=click.IntRange(0, 255), help=lazy("The tier of cards the directory does not know."))
@click.option("--ntag-signature/--no-ntag-signature", default=None,
              help=lazy("Whether NTAG cards must carry NXP's originality signature."))
@with_appcontext
def set_limits(**limits):
    if all(v is None for v in limits.values()):
        raise click.UsageError(_("give at least one limit, e.g. --card-day-max-cents 10000"))
    if limits["ntag_signature"] is not None:
        limits["ntag_signature"] = int(limits["ntag_signature"])
    version = _run(headoffice.set_limits, _db(), **limits)
    click.echo(_("limits set; rules version %(version)d", version=version))


@click.command("show-rules", help=lazy("Print the rules readers get now (JSON) with their version."))
@with_appcontext
def show_rules():
    version, rules = headoffice.current_rules(_db())
    if rules is None:
        raise _Failed(_("no rules published yet: add a tier first (add-tier)"))
    click.echo(_("rules version %(version)d", version=version))
    click.echo(json.dumps(rules, indent=2, sort_keys=True, ensure_ascii=False))


@click.command("create-manager", help=lazy("Create a dashboard login USERNAME; the password is asked twice (or --password-file)."))
@click.argument("username")
@click.option("--store", "store_id", help=lazy("The store of a store manager (their store only); none for head office and care."))
@click.option("--role", type=click.Choice(auth.ROLES),
              help=lazy("head_office (everything), store_manager (their store's readers and figures: needs --store) "
                        "or care (the customer pages); default: store_manager with --store, else head_office."))
@click.option("--password-file", type=click.File("r"), help=lazy("Read the password from this file's first line."))
@click.option("--lang", type=click.Choice(i18n.LANGUAGES),
              help=lazy("The dashboard's language for this manager (default: the backend's, Italian "
                        "unless LOYALTY_LANG says otherwise); the manager can change it on any page."))
@with_appcontext
def create_manager(username, store_id, role, password_file, lang):
    if password_file is not None:
        password = password_file.readline().rstrip("\r\n")
    else:
        password = click.prompt(_("Password"), hide_input=True,
                                confirmation_prompt=_("Repeat for confirmation"))
    try:
        auth.create_manager(_db(), username, password, store_id, lang=lang, role=role)
    except auth.ManagerError as e:
        raise _Failed(_("%(error)s: nothing was created", error=e))
    if store_id:
        click.echo(_("manager %(username)s created for store %(store)s", username=username, store=store_id))
    elif role == "care":
        click.echo(_("manager %(username)s created (customer care)", username=username))
    else:
        click.echo(_("manager %(username)s created (head office)", username=username))


@click.command("audit", help=lazy("Audit the receipts awaiting audit now; prints how many, and how many mismatches.\n"
              "\n"
              "The server's auditor (backend/auditor.py, started by loyalty-backend) does this on its\n"
              "own; this is for a database no server runs on, or to catch up at once."))
@with_appcontext
def audit():
    click.echo(auditor.summary(auditor.audit_all(_db())))


@click.command("retention", help=lazy("Fold the receipt lines that are due and remove what is older than its period;\n"
              "prints how many of each kind.\n"
              "\n"
              "The server does this every day at RETENTION_AT (backend/privacy/retention.py lists\n"
              "the periods); safe to run again, and safe to stop: the next run finishes the job."))
@with_appcontext
def retention_cmd():
    try:
        removed = retention.run(_db(), int(time.time()), current_app.config)
    except retention.RetentionSettingError as e:
        raise _Failed(_("%(error)s: correct it in the instance's config.py; nothing was removed", error=e))
    names = retention.kinds()
    for kind, count in removed.items():
        click.echo("%s: %d" % (names[kind], count))


@click.command("new-card-epoch", help=lazy("Start a new card key epoch (a fresh issuer key; the key is never printed).\n"
              "\n"
              "New cards are issued in it; readers fetch it at their next sync and keep the old\n"
              "ones. Start one before issuing the first card, and when a reader goes missing."))
@with_appcontext
def new_card_epoch():
    epoch = _run(headoffice.new_card_epoch, _db())
    click.echo(_("card key epoch %(epoch)d started; readers fetch it at their next sync", epoch=epoch))


@click.command("retire-card-epoch", help=lazy("Retire a card key epoch: readers drop its key at their next sync and its cards stop\n"
              "reading. For a reader gone missing: start a new epoch first, reissue the cards."))
@click.argument("epoch", type=click.IntRange(1, 255))
@with_appcontext
def retire_card_epoch(epoch):
    _run(headoffice.retire_card_epoch, _db(), epoch)
    click.echo(_("card key epoch %(epoch)d retired; readers drop it at their next sync", epoch=epoch))


COMMANDS = (init_db, add_store, add_reader, import_cards, set_card, add_tier, set_tier, add_promotion,
            end_promotion, set_limits, show_rules, create_manager, new_card_epoch,
            retire_card_epoch, audit, retention_cmd)
COMMANDS += customer_commands.COMMANDS  # backend/customers/commands.py
COMMANDS += rights_commands.COMMANDS  # backend/privacy/commands.py


def register(app):
    """Add the operator's commands to `app.cli`, speaking the process's language (click's
    own texts too: i18n.for_commands)."""
    i18n.for_commands()
    for command in COMMANDS:
        app.cli.add_command(command)
