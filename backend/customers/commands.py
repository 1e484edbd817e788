"""The operator's commands for customers, their cards, consents and the privacy notice.

Registered with the others in backend/cli.py (`flask --app loyalty.backend.app --help`):

    publish-notice --it informativa.txt --en notice.txt --operator dpo.rossi
    enrol --name "Maria Rossi" --contact maria@example.it --store S1 --card 6001000000000042 \\
          --tier 0 --age-ok --marketing --channel desk --operator desk.anna --notice 2
    consent 7 withdraw profiling --channel web --operator self --notice 2
    object-marketing 6001000000000042 --operator care.luca --reason "phoned: no more mail"
    replace-card 6001000000000042 6001000000000043 --operator desk.anna
    import-customers customers.csv --channel desk --operator office.marco --notice 2

A customer is named by id (up to 9 digits), pseudonym (C-...) or card number. Profiling
and marketing are consented only when --profiling / --marketing is given: nothing is
ticked for the customer. Errors name the field and store nothing.
"""
import click
from flask import current_app
from flask.cli import with_appcontext

from loyalty.backend.cliutil import db as _db, run as _run
from loyalty.backend.headoffice import common
from loyalty.backend.customers import cards, consents, enrol as enrolment, importcsv, notices
from loyalty.i18n import _, lazy


def _read(f, option):
    try:
        return f.read()
    except UnicodeDecodeError:
        raise click.BadParameter(_("not UTF-8 text: save the file as UTF-8"), param_hint=option)


_operator = click.option("--operator", required=True, help=lazy("Who does it (their login or name): kept with the change."))
_channel = click.option("--channel", default="desk",
                        help=lazy("Where the customer asked: desk (the default), web or phone."))
_reason = click.option("--reason", required=True, help=lazy("Why, kept in the audit trail."))
_notice = click.option("--notice", "notice", required=True, type=int,
                       help=lazy("The version of the privacy notice the customer saw (publish-notice)."))


@click.command("publish-notice", help=lazy("Publish a new version of the privacy notice (informativa) from text files;\n"
              "prints its number. Published texts are kept for ever and never changed."))
@click.option("--it", "it_file", required=True, type=click.File("r", encoding="utf-8-sig"),
              help=lazy("The Italian text (required)."))
@click.option("--en", "en_file", type=click.File("r", encoding="utf-8-sig"), help=lazy("The English text."))
@_operator
@with_appcontext
def publish_notice(it_file, en_file, operator):
    texts = {"it": _read(it_file, "--it")}
    if en_file is not None:
        texts["en"] = _read(en_file, "--en")
    version = _run(notices.publish, _db(), texts, operator, common.now())
    click.echo(_("privacy notice version %(version)d published", version=version))


@click.command("enrol", help=lazy("Enrol a customer with their card: name, one contact (e-mail or phone), store.\n"
              "\n"
              "Joining gives the scheme consent; profiling and marketing are consented only\n"
              "with --profiling and --marketing, and only for a customer of at least 14."))
@click.option("--name", required=True, help=lazy("The customer's name."))
@click.option("--contact", required=True, help=lazy("One e-mail address or phone number."))
@click.option("--store", "store_id", required=True, help=lazy("The store that enrols them."))
@click.option("--card", required=True, help=lazy("Their card: a new number, or one in the directory that is nobody's."))
@click.option("--tier", type=click.IntRange(0, 255), help=lazy("The new card's tier id (required for a new card; an existing card keeps its own)."))
@click.option("--age-ok/--under-14", "age_ok", default=None,
              help=lazy("Whether the desk saw the customer to be at least 14 (required)."))
@click.option("--profiling/--no-profiling", default=None, help=lazy("Consent to profiling (default: not given)."))
@click.option("--marketing/--no-marketing", default=None, help=lazy("Consent to marketing (default: not given)."))
@click.option("--household", type=int, help=lazy("The household to put them in (add-household)."))
@_channel
@_operator
@_notice
@with_appcontext
def enrol(name, contact, store_id, card, tier, age_ok, profiling, marketing, household, channel, operator, notice):
    if age_ok is None:
        raise click.UsageError(_("give --age-ok or --under-14: the desk must check the age"))
    db = _db()
    given = {"scheme"} | {p for p, yes in (("profiling", profiling), ("marketing", marketing)) if yes}
    customer = _run(enrolment.enrol, db, name, contact, store_id, card, tier, age_ok, given, channel, operator,
                    notice, household=household, now=common.now())
    click.echo(_("customer %(customer)d enrolled with card %(card)s", customer=customer, card=card))


@click.command("consent", help=lazy("Give or withdraw a consent of CUSTOMER (id, pseudonym or card number):\n"
              "ACTION is give or withdraw, PURPOSE scheme, profiling or marketing."))
@click.argument("customer")
@click.argument("action", type=click.Choice(["give", "withdraw"]))
@click.argument("purpose")
@_channel
@_operator
@_notice
@with_appcontext
def consent(customer, action, purpose, channel, operator, notice):
    if action == "give":
        who = _run(consents.give, _db(), customer, purpose, channel, operator, notice, common.now())
    else:
        who = _run(consents.withdraw, _db(), customer, purpose, channel, operator, notice, common.now(),
                   return_window_days=current_app.config["RETURN_WINDOW_DAYS"])
    click.echo(_("customer %(customer)d: %(purpose)s given", customer=who, purpose=purpose) if action == "give"
               else _("customer %(customer)d: %(purpose)s withdrawn", customer=who, purpose=purpose))


@click.command("object-marketing", help=lazy("CUSTOMER objects to marketing: the consent is withdrawn, the reason kept in\n"
              "the audit trail."))
@click.argument("customer")
@click.option("--reason", required=True, help=lazy("Why, in the customer's words or the operator's."))
@_channel
@_operator
@with_appcontext
def object_marketing(customer, reason, channel, operator):
    who = _run(consents.object_marketing, _db(), customer, operator, reason, common.now(), channel=channel)
    click.echo(_("customer %(customer)d: %(purpose)s withdrawn", customer=who, purpose="marketing"))


@click.command("replace-card", help=lazy("Replace a lost or broken card OLD with NEW: OLD is blocked, NEW gets its tier\n"
              "and its customer (their history follows them)."))
@click.argument("old")
@click.argument("new")
@_operator
@with_appcontext
def replace_card(old, new, operator):
    version = _run(cards.replace_card, _db(), old, new, operator, common.now())
    click.echo(_("card %(old)s replaced by %(new)s; directory version %(version)d", old=old, new=new, version=version))


def _changed(card, version):
    if version is None:
        click.echo(_("card %(card)s unchanged", card=card))
    else:
        click.echo(_("card %(card)s changed; directory version %(version)d", card=card, version=version))


@click.command("block-card", help=lazy("Block a customer's CARD (it gets no discount), with the reason."))
@click.argument("card")
@_reason
@_operator
@with_appcontext
def block_card(card, reason, operator):
    _changed(card, _run(cards.block_card, _db(), card, operator, reason, common.now()))


@click.command("unblock-card", help=lazy("Make a customer's blocked CARD active again."))
@click.argument("card")
@_operator
@with_appcontext
def unblock_card(card, operator):
    _changed(card, _run(cards.unblock_card, _db(), card, operator, common.now()))


@click.command("close-customer", help=lazy("Close CUSTOMER's account: their cards are blocked; the retention job erases\n"
              "it later."))
@click.argument("customer")
@_reason
@_operator
@with_appcontext
def close_customer(customer, reason, operator):
    _run(enrolment.close_customer, _db(), customer, operator, reason, common.now())
    click.echo(_("customer %(customer)s closed", customer=customer))


@click.command("add-household", help=lazy("Add a household, or with --customer put customers in one: each keeps their\n"
              "own consents."))
@click.option("--name", help=lazy("A name for a new household."))
@click.option("--join", "household", type=int, help=lazy("An existing household to put the customers in."))
@click.option("--customer", "customers", multiple=True, help=lazy("A customer to put in it (repeat for more)."))
@_operator
@with_appcontext
def add_household(name, household, customers, operator):
    db = _db()
    now = common.now()
    if household is None:
        household = _run(enrolment.add_household, db, name, operator, now)
        click.echo(_("household %(household)d added", household=household))
    for customer in customers:
        _run(enrolment.join_household, db, customer, household, operator, now)
        click.echo(_("customer %(customer)s is in household %(household)d", customer=customer, household=household))


@click.command("import-customers", help=lazy("Enrol the customers of a CSV file, all or nothing. Header (any order):\n"
              "name,contact,store,card,tier,age_ok,profiling,marketing[,household], or in Italian\n"
              "nome,contatto,negozio,carta,livello,almeno_14,profilazione,marketing[,nucleo].\n"
              "Yes/no columns take yes/no, sì/no or 1/0; empty is no."))
@click.argument("csv_file", type=click.File("r", encoding="utf-8-sig"))
@_channel
@_operator
@_notice
@with_appcontext
def import_customers(csv_file, channel, operator, notice):
    n = _run(importcsv.import_customers, _db(), csv_file, channel, operator, notice, common.now())
    click.echo(_("%(count)d customers imported", count=n))


COMMANDS = (publish_notice, enrol, consent, object_marketing, replace_card, block_card, unblock_card,
            close_customer, add_household, import_customers)
