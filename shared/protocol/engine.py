"""The discount engine (sconto corrente): basket, rules and card tier in, discount lines out.

Pure functions, no clock and no I/O: the reader runs them to quote a receipt and the
backend runs the very same code to recompute, for audit, every discount a reader granted;
equal inputs give byte-identical results on MicroPython and CPython. Every rounding and
ordering rule lives here once and is written down in docs/discount.md.

    >>> rules = {"version": 1, "tiers": [{"id": 0, "code": "base", "bp": 200}],
    ...          "default_tier": 0, "promotions": [],
    ...          "limits": {"receipt_max_cents": 5000},
    ...          "offline": {"receipt_max_cents": 5000, "card_day_max_cents": 20000,
    ...                      "stale_hours": 48}}
    >>> q = quote(rules, [{"sku": "800123", "cat": "dairy", "qty": 3, "price": 125}], 0,
    ...           {"now": 1700000000, "last_sync": 1699990000, "card_day_used": 0})
    >>> q["gross"], q["discount"], q["disc"]
    (375, 8, [{'line': 0, 'rule': 'tier:base', 'cents': 8}])

(3 x 125 = 375 cents; 2% of 375 = 7.5, rounded half-up to 8.)
"""
from .checks import integer, is_int, is_integer, text_fault
from .compat import const
from .errors import ProtocolError, RulesError, TillError

_MAX_LINES = const(200)
_MAX_QTY = const(9999)
_MAX_PRICE = const(10000000)  # 100,000.00 EUR per unit: more is a typo at the till
_MAX_TEXT = const(32)
_FULL_BP = const(10000)
_HALF_BP = const(5000)
_MAX_MONEY = const(1000000000)  # limits and promotion amounts, 10 million EUR
_MAX_TIER = const(255)
_MAX_STALE_HOURS = const(100000)
_MAX_BIG = 2 ** 40  # epoch seconds, versions, day totals; not a const: above the ESP32's small ints

_LINE_KEYS = ("sku", "cat", "qty", "price")
_LIMIT_NAMES = ("limit.receipt", "offline.receipt", "offline.card_day")  # as _cap's values
_KINDS = ("sku", "category", "threshold")
_KIND_KEY = ("sku", "category", "min_cents")  # what each kind matches on
_PROMO_KEYS = ("id", "kind", "sku", "category", "min_cents", "bp", "cents", "tiers", "from", "to")
_RULES_KEYS = ("version", "tiers", "default_tier", "promotions", "limits", "offline", "cards")
_OFFLINE_KEYS = ("receipt_max_cents", "card_day_max_cents", "stale_hours")


def _need_text(v, lo, field, error, code):
    if not isinstance(v, str) or len(v) < lo or len(v) > _MAX_TEXT:
        raise error(code, field, "must be text of %d to %d characters" % (lo, _MAX_TEXT))
    return v


def _pct(amount, bp):
    """bp basis points of amount cents, rounded half-up: the one rounding rule."""
    return (amount * bp + _HALF_BP) // _FULL_BP


def gross(lines):
    """Cents sold on a basket: the sum of qty x price."""
    total = 0
    for line in lines:
        total += line["qty"] * line["price"]
    return total


# ---------------------------------------------------------------- validation


def check_lines(lines, name="lines"):
    """Raise TillError('till.field', 'lines[i].name', rule) unless `lines` is a valid basket.

    A basket is a list of at most 200 objects {"sku": text 1-32, "cat": text 0-32,
    "qty": 1..9999, "price": 0..10000000 cents} with no other keys (whatever else came
    would be journaled for nothing); texts without control or bidirectional characters.
    """
    if not isinstance(lines, list):
        raise TillError("till.field", name, "must be a list")
    if len(lines) > _MAX_LINES:
        raise TillError("till.field", name, "must have at most %d lines" % _MAX_LINES)
    for i in range(len(lines)):
        line = lines[i]
        # the field's name is built only when it is wrong: this runs for every basket
        if not isinstance(line, dict):
            raise TillError("till.field", "%s[%d]" % (name, i), "must be an object")
        if not _text_ok(line.get("sku"), 1):
            _need_text(line.get("sku"), 1, "%s[%d].sku" % (name, i), TillError, "till.field")
        if not _text_ok(line.get("cat"), 0):
            _need_text(line.get("cat"), 0, "%s[%d].cat" % (name, i), TillError, "till.field")
        if not is_integer(line.get("qty"), 1, _MAX_QTY):
            integer(line.get("qty"), 1, _MAX_QTY, "%s[%d].qty" % (name, i), TillError, "till.field")
        if not is_integer(line.get("price"), 0, _MAX_PRICE):
            integer(line.get("price"), 0, _MAX_PRICE, "%s[%d].price" % (name, i), TillError, "till.field")
        for key in ("sku", "cat"):
            fault = text_fault(line[key])
            if fault is not None:
                raise TillError("till.field", "%s[%d].%s" % (name, i, key), fault)
        if len(line) != 4:
            for k in line:
                if k not in _LINE_KEYS:
                    raise TillError("till.field", "%s[%d].%s" % (name, i, k), "unknown key")
    return lines


def _text_ok(v, lo):
    return isinstance(v, str) and lo <= len(v) <= _MAX_TEXT


def _rules_int(obj, key, lo, hi, where):
    return integer(obj.get(key), lo, hi, where + key, RulesError, "rules.format")


def _only_keys(obj, allowed, where):
    # the backend writes the rules; an unknown key is a typo (or a newer format) whose
    # meaning this reader would silently ignore, with money at stake, so it is refused
    if not isinstance(obj, dict):
        raise RulesError("rules.format", where[:-1] if where else "rules", "must be an object")
    for k in obj:
        if k not in allowed:
            raise RulesError("rules.format", where + str(k), "unknown key")


def _rules_text(obj, key, where):
    # text 1-32 by the one text rule (checks.text_fault): the rules' texts reach receipts
    # and the journal as rule names ("tier:<code>"), where a control character, a
    # bidirectional mark or a lone surrogate would make the reader's own record invalid
    v = _need_text(obj.get(key), 1, where + key, RulesError, "rules.format")
    fault = text_fault(v)
    if fault is not None:
        raise RulesError("rules.format", where + key, fault)
    return v


def _check_promotion(p, where, ids, tier_ids):
    _only_keys(p, _PROMO_KEYS, where)
    pid = _rules_text(p, "id", where)
    if pid in ids:
        raise RulesError("rules.format", where + "id", "must be unique")
    ids.append(pid)
    kind = p.get("kind")
    if kind not in _KINDS:
        raise RulesError("rules.format", where + "kind", "must be one of " + ",".join(_KINDS))
    wanted = _KIND_KEY[_KINDS.index(kind)]
    for other in _KIND_KEY:
        if other != wanted and other in p:
            raise RulesError("rules.format", where + other, "not allowed for kind " + kind)
    if kind == "sku":
        _rules_text(p, "sku", where)
    elif kind == "category":
        # 1-32: a line's cat "" (no category) so matches no category promotion
        _rules_text(p, "category", where)
    else:
        _rules_int(p, "min_cents", 0, _MAX_MONEY, where)
    if ("bp" in p) == ("cents" in p):
        raise RulesError("rules.format", where + "bp", "exactly one of bp and cents")
    if "bp" in p:
        _rules_int(p, "bp", 0, _FULL_BP, where)
    else:
        _rules_int(p, "cents", 0, _MAX_MONEY, where)
    if "tiers" in p:
        tiers = p["tiers"]
        # [] would give the promotion to nobody and an id of no tier (a typo, a tier still
        # to come) to nobody now: both are head office's mistakes, not a way to switch off
        if not isinstance(tiers, list) or not tiers:
            raise RulesError("rules.format", where + "tiers", "must be a non-empty list")
        for j, t in enumerate(tiers):
            if not is_int(t) or t not in tier_ids:
                raise RulesError("rules.format", where + "tiers[%d]" % j, "must be the id of a tier")
            if tiers.index(t) < j:
                raise RulesError("rules.format", where + "tiers[%d]" % j, "must not repeat a tier")
    if "from" in p:
        _rules_int(p, "from", 0, _MAX_BIG, where)
    if "to" in p:
        _rules_int(p, "to", 0, _MAX_BIG, where)
        if "from" in p and p["from"] >= p["to"]:
            raise RulesError("rules.format", where + "to", "must be after from")


def check_rules(rules):
    """Raise RulesError('rules.format', field, rule) unless `rules` is a valid rule set.

    The format is in docs/discount.md; unknown keys are refused. Returns `rules`.
    """
    _only_keys(rules, _RULES_KEYS, "")
    _rules_int(rules, "version", 0, _MAX_BIG, "")
    tiers = rules.get("tiers")
    if not isinstance(tiers, list) or not tiers:
        raise RulesError("rules.format", "tiers", "must be a non-empty list")
    tier_ids = []
    for i, t in enumerate(tiers):
        where = "tiers[%d]." % i
        _only_keys(t, ("id", "code", "bp"), where)
        tid = _rules_int(t, "id", 0, _MAX_TIER, where)
        if tid in tier_ids:
            raise RulesError("rules.format", where + "id", "must be unique")
        tier_ids.append(tid)
        code = _rules_text(t, "code", where)
        # the code names the tier in every discount line ("tier:<code>"): two tiers with
        # one code could not be told apart on a receipt or in the audit
        for j in range(i):
            if tiers[j]["code"] == code:
                raise RulesError("rules.format", where + "code", "must be unique")
        _rules_int(t, "bp", 0, _FULL_BP, where)
    if _rules_int(rules, "default_tier", 0, _MAX_TIER, "") not in tier_ids:
        raise RulesError("rules.format", "default_tier", "must be the id of a tier")
    promotions = rules.get("promotions")
    if not isinstance(promotions, list):
        raise RulesError("rules.format", "promotions", "must be a list")
    ids = []
    for i, p in enumerate(promotions):
        _check_promotion(p, "promotions[%d]." % i, ids, tier_ids)
    limits = rules.get("limits")
    _only_keys(limits, ("receipt_max_cents",), "limits.")
    _rules_int(limits, "receipt_max_cents", 0, _MAX_MONEY, "limits.")
    offline = rules.get("offline")
    _only_keys(offline, _OFFLINE_KEYS, "offline.")
    _rules_int(offline, "receipt_max_cents", 0, _MAX_MONEY, "offline.")
    _rules_int(offline, "card_day_max_cents", 0, _MAX_MONEY, "offline.")
    _rules_int(offline, "stale_hours", 0, _MAX_STALE_HOURS, "offline.")
    if "cards" in rules:  # optional: how cards are checked (docs/cards.md)
        cards = rules["cards"]
        _only_keys(cards, ("ntag_signature",), "cards.")
        if not isinstance(cards.get("ntag_signature"), bool):
            raise RulesError("rules.format", "cards.ntag_signature", "must be true or false")
    return rules


def _check_ctx(ctx):
    if not isinstance(ctx, dict):
        raise ProtocolError("disc.context", "ctx", "must be an object")
    integer(ctx.get("now"), 0, _MAX_BIG, "ctx.now", ProtocolError, "disc.context")
    if ctx.get("last_sync") is not None:
        integer(ctx["last_sync"], 0, _MAX_BIG, "ctx.last_sync", ProtocolError, "disc.context")
    integer(ctx.get("card_day_used"), 0, _MAX_BIG, "ctx.card_day_used", ProtocolError,
              "disc.context")


# ---------------------------------------------------------------- quote


def tier_of(rules, tier_id):
    """The tier dict for `tier_id`; the default tier when the id is not in the rules."""
    default = None
    for t in rules["tiers"]:
        if is_int(tier_id) and t["id"] == tier_id:
            return t
        if t["id"] == rules["default_tier"]:
            default = t
    return default


def is_stale(rules, ctx):
    """True when only the tier base rate may apply: never synced, sync too old, or clock
    behind the last sync (a clock that went back cannot judge promotion windows)."""
    last = ctx["last_sync"]
    if last is None or ctx["now"] < last:
        return True
    return ctx["now"] - last > rules["offline"]["stale_hours"] * 3600


def _in_force(p, tier_id, now):
    if "tiers" in p and tier_id not in p["tiers"]:
        return False
    if "from" in p and now < p["from"]:
        return False
    return not ("to" in p and now >= p["to"])


def _grant(disc, i, rule, cents, left):
    # trim to what is left of the line, so a line never goes below zero
    if cents > left:
        cents = left
    if cents > 0:
        disc.append({"line": i, "rule": rule, "cents": cents})
    return left - cents


def _line_promos(promos, kind, key, value, qty, left, disc, i):
    # the promotions of `kind` whose `key` names this line's sku (or category) `value`
    for p, rule in promos:
        if p["kind"] == kind and p[key] == value:
            cents = _pct(left, p["bp"]) if "bp" in p else p["cents"] * qty
            left = _grant(disc, i, rule, cents, left)
    return left


def _best_threshold(promos, net):
    """(promotion, cents) of the basket promotion worth most on `net`; first listed wins ties."""
    best, best_cents = None, 0
    for p, _ in promos:
        if p["kind"] != "threshold" or net < p["min_cents"]:
            continue
        cents = _pct(net, p["bp"]) if "bp" in p else p["cents"]
        if cents > net:
            cents = net
        if cents > best_cents:
            best, best_cents = p, cents
    return best, best_cents


def allocate(total, rooms):
    """Split `total` cents over lines in proportion to `rooms` (largest remainder, ties to the
    lower index). Needs total <= sum(rooms); then no share exceeds its room."""
    whole = 0
    for room in rooms:
        whole += room
    shares = [0] * len(rooms)
    if whole == 0 or total == 0:
        return shares
    rests = [0] * len(rooms)
    given = 0
    for i in range(len(rooms)):
        shares[i] = total * rooms[i] // whole
        rests[i] = total * rooms[i] % whole
        given += shares[i]
    # the cents left over go one each to the largest remainders, the lower index first on
    # a tie; fewer cents are left than there are lines, so a scan per cent is cheap and,
    # unlike sorting (remainder, index) pairs, allocates nothing
    for _ in range(total - given):
        best = 0
        for i in range(1, len(rests)):
            if rests[i] > rests[best]:
                best = i
        shares[best] += 1
        rests[best] = -1
    return shares


def _cap(disc, total, rules, ctx):
    """Trim `disc` in place to the tightest limit, from the last discount line backwards.
    Returns (new total, names of the limits that cut)."""
    offline = rules["offline"]
    day_left = offline["card_day_max_cents"] - ctx["card_day_used"]
    values = (rules["limits"]["receipt_max_cents"], offline["receipt_max_cents"],
              day_left if day_left > 0 else 0)
    cap = min(values)
    if total <= cap:
        return total, []
    excess = total - cap
    k = len(disc) - 1
    while excess > 0:
        take = disc[k]["cents"] if disc[k]["cents"] < excess else excess
        disc[k]["cents"] -= take
        excess -= take
        if disc[k]["cents"] == 0:
            disc.pop(k)
        k -= 1
    # loops, not comprehensions or generators here and in quote(): each of those is one
    # more code object on the reader's heap
    capped = []
    for i in range(3):
        if values[i] == cap:
            capped.append(_LIMIT_NAMES[i])
    return cap, capped


_checked = [None]  # the rules object last checked by quote()


def quote(rules, lines, tier_id, ctx):
    """The discount for one receipt.

    rules: a rule set (check_rules); lines: the basket (check_lines); tier_id: the card's
    tier (unknown or None = the rules' default tier); ctx: {"now", "last_sync",
    "card_day_used"}. Returns {"gross", "discount", "disc": [{"line", "rule", "cents"}],
    "capped": [limit names], "stale": bool, "tier": the tier id applied}.
    """
    if rules is not _checked[0]:
        # the reader quotes many receipts with one rules object: check it once, not per
        # receipt (a check allocates; rules are replaced, never changed in place)
        check_rules(rules)
        _checked[0] = rules
    check_lines(lines)
    _check_ctx(ctx)
    tier = tier_of(rules, tier_id)
    stale = is_stale(rules, ctx)
    promos = []
    if not stale:
        # (promotion, its rule name): one name string per receipt, not one per line
        now = ctx["now"]
        for p in rules["promotions"]:
            if _in_force(p, tier["id"], now):
                promos.append((p, "promo:" + p["id"]))
    tier_rule = "tier:" + tier["code"]
    disc = []
    rooms = []
    gross = 0
    for i in range(len(lines)):
        line = lines[i]
        qty = line["qty"]
        left = qty * line["price"]
        gross += left
        # fixed order on a line: SKU promotions, category promotions (each in the order
        # the rules list them), then the tier's base rate on what is still to pay
        left = _line_promos(promos, "sku", "sku", line["sku"], qty, left, disc, i)
        left = _line_promos(promos, "category", "category", line["cat"], qty, left, disc, i)
        left = _grant(disc, i, tier_rule, _pct(left, tier["bp"]), left)
        rooms.append(left)
    best, cents = _best_threshold(promos, sum(rooms))
    if best is not None:
        shares = allocate(cents, rooms)
        rule = "threshold:" + best["id"]
        merged = []
        k = 0
        for i in range(len(lines)):
            while k < len(disc) and disc[k]["line"] == i:
                merged.append(disc[k])
                k += 1
            if shares[i]:
                merged.append({"line": i, "rule": rule, "cents": shares[i]})
        disc = merged
    total = 0
    for d in disc:
        total += d["cents"]
    total, capped = _cap(disc, total, rules, ctx)
    return {"gross": gross, "discount": total, "disc": disc, "capped": capped,
            "stale": stale, "tier": tier["id"]}


# ---------------------------------------------------------------- returns and voids


def _check_qtys(qtys, n, name, error, code):
    if not isinstance(qtys, list) or len(qtys) != n:
        raise error(code, name, "must be a list of %d quantities" % n)
    for i, q in enumerate(qtys):
        integer(q, 0, _MAX_QTY, "%s[%d]" % (name, i), error, code)


def _check_disc(disc, lines):
    if not isinstance(disc, list):
        raise ProtocolError("disc.original", "disc", "must be a list")
    given = [0] * len(lines)
    for k, d in enumerate(disc):
        where = "disc[%d]" % k
        if not isinstance(d, dict) or not isinstance(d.get("rule"), str):
            raise ProtocolError("disc.original", where, "must be {line, rule, cents}")
        fault = text_fault(d["rule"])  # the negative receipt journals the rule names again
        if fault is not None:
            raise ProtocolError("disc.original", where + ".rule", fault)
        i = integer(d.get("line"), 0, len(lines) - 1, where + ".line", ProtocolError,
                      "disc.original")
        amount = lines[i]["qty"] * lines[i]["price"]
        given[i] += integer(d.get("cents"), 1, amount, where + ".cents", ProtocolError,
                              "disc.original")
        if given[i] > amount:
            raise ProtocolError("disc.original", where + ".cents", "line discounted beyond its amount")


def _reversed(cents, qty, q):
    # floor of the cumulative share: partial returns never reverse more than their part,
    # and returning the last unit brings the total to exactly `cents`
    return cents * q // qty


def reverse(original_lines, original_disc, returned_before, returning):
    """The negative receipt for a return (or a void) against a committed sale.

    original_lines / original_disc: the sale's basket and discount lines; returned_before:
    quantity already returned per line; returning: quantity returned now per line. Returns
    {"gross": -amount, "discount": -discount, "disc": [{"line", "rule", "cents" < 0}]}.
    Raises ProtocolError('disc.return_exceeds', 'lines[i].qty') past what was sold, once
    every input has its format (a format error wins).
    """
    check_lines(original_lines)
    n = len(original_lines)
    _check_disc(original_disc, original_lines)
    _check_qtys(returned_before, n, "returned_before", ProtocolError, "disc.original")
    _check_qtys(returning, n, "returning", TillError, "till.field")
    gross = 0
    for i, line in enumerate(original_lines):
        if returned_before[i] + returning[i] > line["qty"]:
            raise ProtocolError("disc.return_exceeds", "lines[%d].qty" % i,
                                "%d returned before + %d now > %d sold"
                                % (returned_before[i], returning[i], line["qty"]))
        gross += returning[i] * line["price"]
    disc = []
    total = 0
    for d in original_disc:
        i = d["line"]
        qty = original_lines[i]["qty"]
        before = returned_before[i]
        cents = _reversed(d["cents"], qty, before + returning[i]) - _reversed(d["cents"], qty, before)
        if cents:
            disc.append({"line": i, "rule": d["rule"], "cents": -cents})
            total += cents
    return {"gross": -gross, "discount": -total, "disc": disc}


def void(original_lines, original_disc, returned_before):
    """Reverse all of a sale that is not yet returned (a void of a committed receipt)."""
    check_lines(original_lines)
    _check_disc(original_disc, original_lines)  # in reverse()'s order: disc before returned_before
    _check_qtys(returned_before, len(original_lines), "returned_before", ProtocolError,
                "disc.original")
    rest = []
    for i, line in enumerate(original_lines):
        left = line["qty"] - returned_before[i]
        # over-returned lines keep 0 here so that reverse() names them
        rest.append(left if left > 0 else 0)
    return reverse(original_lines, original_disc, returned_before, rest)
