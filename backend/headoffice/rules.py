"""Head office's rules: tiers, promotions and limits, published as rules versions.

Every change publishes the complete rules object (docs/discount.md, what
protocol.engine.check_rules accepts) as the next rules version, in the same
transaction: rules that the engine refuses are never published and nothing changes.

    add_tier(db, 0, "base", 200)                  # publishes rules version 1
    set_limits(db, receipt_max_cents=5000)        # version 2
    current_rules(db)                             # (2, {...})

Limits not set yet take DEFAULT_LIMITS; the default tier is the lowest tier id until
set_limits(default_tier=...) names another.
"""
import json

from loyalty.backend import checks
from loyalty.backend.db import meta_int, set_meta, transaction
from loyalty.backend.headoffice import common
from loyalty.backend.headoffice.common import AlreadyExists, InvalidValue, NotFound, RulesRefused, need_text
from loyalty.protocol import engine
from loyalty.protocol.checks import text_fault
from loyalty.protocol.errors import RulesError
from loyalty.i18n import _

DEFAULT_LIMITS = {
    "receipt_max_cents": 5000,          # head office's maximum discount per receipt
    "offline_receipt_max_cents": 3000,  # the reader's floor limit per receipt
    "card_day_max_cents": 10000,        # per card per day on one reader
    "stale_hours": 48,                  # after this long without a sync: base rate only
}
LIMIT_KEYS = tuple(DEFAULT_LIMITS) + ("default_tier", "ntag_signature")
KINDS = ("sku", "category", "threshold")


def _limits(db):
    values = dict(DEFAULT_LIMITS)
    for key, value in db.execute("SELECT key, value FROM limits"):
        values[key] = value
    return values


def build_rules(db, version):
    """The rules object as the tables hold it now, numbered `version` (not checked here)."""
    tiers = [{"id": i, "code": c, "bp": bp}
             for i, c, bp in db.execute("SELECT id, code, bp FROM tiers ORDER BY id")]
    limits = _limits(db)
    default_tier = limits.get("default_tier")
    if default_tier is None and tiers:
        default_tier = tiers[0]["id"]
    promotions = []
    # rowid order is the order they were added: the engine applies promotions in list order
    for row in db.execute("SELECT id, kind, sku, category, min_cents, bp, cents, tiers, from_t, to_t "
                          "FROM promotions WHERE active=1 ORDER BY rowid"):
        pid, kind, sku, category, min_cents, bp, cents, tiers_json, from_t, to_t = row
        p = {"id": pid, "kind": kind}
        for name, value in (("sku", sku), ("category", category), ("min_cents", min_cents),
                            ("bp", bp), ("cents", cents), ("from", from_t), ("to", to_t)):
            if value is not None:
                p[name] = value
        if tiers_json is not None:
            p["tiers"] = json.loads(tiers_json)
        promotions.append(p)
    rules = {"version": version, "tiers": tiers, "default_tier": default_tier,
             "promotions": promotions,
             "limits": {"receipt_max_cents": limits["receipt_max_cents"]},
             "offline": {"receipt_max_cents": limits["offline_receipt_max_cents"],
                         "card_day_max_cents": limits["card_day_max_cents"],
                         "stale_hours": limits["stale_hours"]}}
    if limits.get("ntag_signature"):
        # only when asked for: the rules of a chain that does not check stay as they were
        rules["cards"] = {"ntag_signature": True}
    return rules


def _publish(db):
    """Inside a transaction: check the rules the tables now make and publish them."""
    version = meta_int(db, "rules_version") + 1
    rules = build_rules(db, version)
    try:
        engine.check_rules(rules)
    except RulesError as e:
        raise RulesRefused(e)
    db.execute("INSERT INTO rules_versions(version, rules, created) VALUES(?, ?, ?)",
               [version, json.dumps(rules, sort_keys=True, separators=(",", ":")), common.now()])
    set_meta(db, "rules_version", version)
    return version


def current_rules(db):
    """(version, rules dict) readers are given now, or (0, None) before any was published."""
    version = meta_int(db, "rules_version")
    rules = rules_at(db, version) if version else None
    return (version, rules) if rules is not None else (0, None)


def rules_at(db, version):
    """The rules object published as `version`, or None."""
    row = db.execute("SELECT rules FROM rules_versions WHERE version=?", [version]).fetchone()
    return json.loads(row[0]) if row else None


def _plain(value, field):
    """`value` if it passes the one text rule (protocol.checks.text_fault) that the engine
    applies to the rules' texts, else InvalidValue in the user's language. A lone surrogate
    is what Python makes of a command line's bytes that are not UTF-8; sqlite3 cannot even
    store it."""
    fault = text_fault(value)
    if fault is None:
        return value
    if fault == "holds a character UTF-8 cannot carry":
        message = _("holds a character UTF-8 cannot carry: is the terminal set to UTF-8?")
    elif fault == "holds a bidirectional control character":
        message = _("holds an invisible character that reorders text (a bidirectional control)")
    else:
        message = _("holds a control character (such as a tab or an escape)")
    raise InvalidValue(field, message)


def _code_free(db, code, id):
    # discount lines name a tier by its code (tier:CODE): two tiers with one code could not
    # be told apart on a receipt or in the audit, and the engine refuses such rules
    row = db.execute("SELECT id FROM tiers WHERE code=? AND id<>?", [code, id]).fetchone()
    if row:
        raise AlreadyExists("code", _("tier %(tier)d has the code %(code)s already: each tier needs its own",
                                      tier=row[0], code=code))


def add_tier(db, id, code, bp, name=""):
    """A new tier; returns the rules version published."""
    checks.integer(id, 0, 255, "id", InvalidValue)
    _plain(need_text(code, 1, 32, "code"), "code")
    checks.integer(bp, 0, 10000, "bp", InvalidValue)
    _plain(need_text(name, 0, 100, "name"), "name")
    with transaction(db):
        if db.execute("SELECT 1 FROM tiers WHERE id=?", [id]).fetchone():
            raise AlreadyExists("id", _("tier %(tier)d exists already: change it with set-tier", tier=id))
        _code_free(db, code, id)
        db.execute("INSERT INTO tiers(id, code, name, bp) VALUES(?, ?, ?, ?)", [id, code, name, bp])
        return _publish(db)


def set_tier(db, id, code=None, bp=None, name=None):
    """Change a tier's code, rate or name; returns the rules version published."""
    checks.integer(id, 0, 255, "id", InvalidValue)
    changes = {}
    if code is not None:
        changes["code"] = _plain(need_text(code, 1, 32, "code"), "code")
    if bp is not None:
        changes["bp"] = checks.integer(bp, 0, 10000, "bp", InvalidValue)
    if name is not None:
        changes["name"] = _plain(need_text(name, 0, 100, "name"), "name")
    if not changes:
        raise InvalidValue("", _("nothing to change: give a code, a rate (bp) or a name"))
    with transaction(db):
        if not db.execute("SELECT 1 FROM tiers WHERE id=?", [id]).fetchone():
            raise NotFound("id", _("no tier %(tier)d", tier=id))
        if code is not None:
            _code_free(db, code, id)
        sets = ", ".join("%s=?" % k for k in changes)
        db.execute("UPDATE tiers SET %s WHERE id=?" % sets, list(changes.values()) + [id])
        return _publish(db)


def add_promotion(db, id, kind, sku=None, category=None, min_cents=None, bp=None, cents=None,
                  tiers=None, from_t=None, to_t=None):
    """A new promotion (docs/discount.md: kind sku, category or threshold; bp or cents;
    optional tiers (ids of existing tiers, each once) and from/to epoch seconds); returns
    the rules version published."""
    _plain(need_text(id, 1, 32, "id"), "id")
    for name, value in (("sku", sku), ("category", category)):
        if isinstance(value, str):
            _plain(value, name)  # its length and its kind are the engine's to judge
    if kind not in KINDS:
        raise InvalidValue("kind", _("must be one of %(kinds)s", kinds=", ".join(KINDS)))
    # the engine judges the rules as a whole; these only keep what SQLite stores in range
    for name, value in (("min_cents", min_cents), ("bp", bp), ("cents", cents)):
        if value is not None:
            checks.integer(value, 0, 10 ** 12, name, InvalidValue)
    for name, value in (("from", from_t), ("to", to_t)):
        if value is not None:
            checks.integer(value, 0, 2 ** 40, name, InvalidValue)
    if tiers is not None:
        tiers = [checks.integer(t, 0, 255, "tiers", InvalidValue) for t in tiers]
        if not tiers:
            raise InvalidValue("tiers", _("an empty list would give the promotion to nobody: leave it out for every tier"))
        for j, t in enumerate(tiers):
            if t in tiers[:j]:
                raise InvalidValue("tiers", _("tier %(tier)d is listed twice", tier=t))
    row = {"id": id, "kind": kind, "sku": sku, "category": category, "min_cents": min_cents,
           "bp": bp, "cents": cents, "tiers": None if tiers is None else json.dumps(tiers),
           "from_t": from_t, "to_t": to_t, "active": 1}
    with transaction(db):
        if db.execute("SELECT 1 FROM promotions WHERE id=?", [id]).fetchone():
            raise AlreadyExists("id", _("promotion %(promotion)s exists already (ended ones keep their id)", promotion=id))
        for t in tiers or ():
            # an id of no tier would give the promotion to nobody, silently
            if not db.execute("SELECT 1 FROM tiers WHERE id=?", [t]).fetchone():
                raise NotFound("tiers", _("no tier %(tier)d: add it first (add-tier) or leave it out", tier=t))
        names = list(row)
        db.execute("INSERT INTO promotions(%s) VALUES(%s)" % (", ".join(names), ", ".join("?" * len(names))),
                   [row[n] for n in names])
        # the engine judges the promotion (kind's keys, ranges, from < to) as published
        return _publish(db)


def end_promotion(db, id):
    """Withdraw a promotion from the rules (its row stays, for the history); returns the version."""
    with transaction(db):
        row = db.execute("SELECT active FROM promotions WHERE id=?", [id]).fetchone()
        if row is None:
            raise NotFound("id", _("no promotion %(promotion)r", promotion=id))
        if not row[0]:
            raise InvalidValue("id", _("promotion %(promotion)s has ended already", promotion=id))
        db.execute("UPDATE promotions SET active=0 WHERE id=?", [id])
        return _publish(db)


def set_limits(db, **values):
    """Set offline limits (keys of LIMIT_KEYS; None leaves one as it is); returns the version."""
    for key in values:
        if key not in LIMIT_KEYS:
            raise InvalidValue(key, _("unknown limit; known: %(limits)s", limits=", ".join(LIMIT_KEYS)))
    values = {k: v for k, v in values.items() if v is not None}
    if not values:
        raise InvalidValue("", _("nothing to change: give at least one limit"))
    for key, value in values.items():
        checks.integer(value, 0, 1 if key == "ntag_signature" else 10 ** 9, key, InvalidValue)
    with transaction(db):
        for key, value in values.items():
            db.execute("INSERT INTO limits(key, value) VALUES(?, ?) "
                       "ON CONFLICT(key) DO UPDATE SET value=excluded.value", [key, value])
        return _publish(db)
