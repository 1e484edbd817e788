"""The customer's rights from a shell: access, rectification, erasure (backend/cli.py
registers them; the pages come later). Each is written in the trail with its actor and reason.

    flask --app loyalty.backend.app customer-export 7 --format csv --out 7.csv --actor care.anna
    flask --app loyalty.backend.app customer-rectify --card 6001000000000042 --contact "333 1234567" \
        --actor care.anna --reason "new number, by phone"
    flask --app loyalty.backend.app customer-erase 7 --actor care.anna --reason "request of 2026-12-01"
"""
import os
import time

import click
from flask import current_app
from flask.cli import with_appcontext

from loyalty.backend import cliutil
from loyalty.backend.cliutil import Failed, run
from loyalty.backend.headoffice import common
from loyalty.backend.customers import fields
from loyalty.backend.privacy import access, erasure, rectification
from loyalty.i18n import _, lazy

_WHO = [click.argument("customer_id", required=False, type=int),
        click.option("--card", help=lazy("Find the customer by one of their cards instead of by id.")),
        click.option("--actor", required=True, help=lazy("Who does this (the trail names them)."))]


def _who(fn):
    for decorate in reversed(_WHO):
        fn = decorate(fn)
    return fn


def exports_folder():
    """Where exports go unless --out says otherwise: the instance's, ours only."""
    return current_app.config["EXPORTS_FOLDER"]


def _find(db, customer_id, card):
    if customer_id is None and card is None:
        raise click.UsageError(_("give the customer's id or --card"))
    if customer_id is not None and card is not None:
        raise click.UsageError(_("give the customer's id or --card, not both"))
    if card is not None:
        # a number as long as an id's needs the prefix to be read as a card
        card = card.strip()
        return run(fields.customer, db, card if len(card) > fields.MAX_ID_DIGITS else "card:" + card, "card")
    return run(fields.customer, db, str(customer_id), "customer_id")


@click.command("customer-export", help=lazy("Export everything held on a customer (the right of access), with\n"
               "Italian headings; the export is written in the trail and the access log."))
@_who
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json", show_default=True,
              help=lazy("JSON, or CSV with one block per section."))
@click.option("--out", type=click.Path(dir_okay=False),
              help=lazy("The file to write, mode 0600 [default: <instance>/exports/<pseudonym>-<time>.<format>,\n"
                        "deleted with the customer if they are erased]."))
@click.option("--reason", help=lazy("Why (e.g. the customer's request and its date)."))
@with_appcontext
def customer_export(customer_id, card, actor, fmt, out, reason):
    db = cliutil.db()
    customer = _find(db, customer_id, card)
    now = common.now()
    if out is None:
        out = os.path.join(exports_folder(), "%s-%s.%s" % (customer["pseudonym"], time.strftime(
            "%Y%m%dT%H%M%SZ", time.gmtime(now)), fmt))
        os.makedirs(os.path.dirname(out), mode=0o700, exist_ok=True)
    if os.path.exists(out):
        raise Failed(_("%(path)s exists already: move it away or give another --out", path=out))
    actor = run(rectification.check_actor, actor)
    data = run(access.export, db, customer["id"], actor, now, what="export " + fmt, reason=reason)
    text = access.to_json(data) if fmt == "json" else access.to_csv(data)
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        # utf-8-sig for CSV: a spreadsheet then reads the accents right
        with os.fdopen(fd, "w", encoding="utf-8-sig" if fmt == "csv" else "utf-8", newline="") as f:
            f.write(text)
    except OSError as e:
        raise Failed(_("cannot write %(path)s (%(error)s)", path=out, error=e.strerror or e))
    click.echo(_("customer %(id)d exported to %(path)s", id=customer["id"], path=out))


@click.command("customer-rectify", help=lazy("Correct a customer's name or contact (the right of rectification).\n"
               "\n"
               "The trail records who, when, why and which field, never the values."))
@_who
@click.option("--name", help=lazy("The corrected name."))
@click.option("--contact", help=lazy("The corrected contact: an e-mail address or a phone number."))
@click.option("--reason", required=True, help=lazy("Why (e.g. the customer's request and its date)."))
@with_appcontext
def customer_rectify(customer_id, card, actor, name, contact, reason):
    if (name is None) == (contact is None):
        raise click.UsageError(_("give --name or --contact (one at a time)"))
    db = cliutil.db()
    customer = _find(db, customer_id, card)
    field, value = ("name", name) if name is not None else ("contact", contact)
    changed = run(rectification.rectify, db, customer["id"], field, value, actor, reason, common.now())
    click.echo(_("customer %(id)d: %(field)s corrected", id=customer["id"], field=field) if changed
               else _("customer %(id)d: %(field)s unchanged", id=customer["id"], field=field))


@click.command("customer-erase", help=lazy("Erase a customer (the right to erasure): name and contact deleted,\n"
               "cards taken out of the directory, receipts kept as anonymous figures.\n"
               "\n"
               "Cannot be undone. The reason goes in the trail: do not name the person in it."))
@_who
@click.option("--reason", required=True, help=lazy("Why (e.g. the customer's request and its date)."))
@click.option("--yes", is_flag=True, help=lazy("Do not ask for confirmation."))
@with_appcontext
def customer_erase(customer_id, card, actor, reason, yes):
    db = cliutil.db()
    customer = _find(db, customer_id, card)
    if not yes and not click.confirm(_("Erase customer %(id)d? This cannot be undone", id=customer["id"])):
        raise Failed(_("nothing was erased"))
    done = run(erasure.erase, db, customer["id"], actor, reason, common.now(), current_app.config["ERASURE_KEY"],
                    exports=exports_folder())
    click.echo(_("customer %(id)d erased (%(pseudonym)s): %(cards)d cards out of the directory, "
                 "%(receipts)d receipts anonymised", id=customer["id"], pseudonym=done["pseudonym"],
                 cards=done["cards"], receipts=done["receipts"]))
    if done["exports"]:
        click.echo(_("%(count)d exports of the customer deleted from %(folder)s", count=done["exports"],
                     folder=exports_folder()))
    if not done["checkpoint"]:
        click.echo(_("other connections kept the database's log busy: its old pages go at the next checkpoint"))


COMMANDS = (customer_export, customer_rectify, customer_erase)
