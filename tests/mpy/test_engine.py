"""The discount engine on both runtimes: the hand-worked table and the named errors.

tests/cases/engine_cases.json holds cases computed by hand from docs/discount.md; every
one must come out exactly. The rest checks that each kind of bad input gets its code and
names its field.
"""
import gc
import json

from check import eq, raises
from protocol import engine
from protocol.errors import ProtocolError, RulesError, TillError

CASES = "tests/cases/engine_cases.json"
NOW = 1700050000
CTX = {"now": NOW, "last_sync": NOW - 60, "card_day_used": 0}


def items(path=CASES):
    """Yield the items of the table (a JSON array) one at a time.

    The whole table does not fit a 96 KB heap as Python objects, so the text of each
    item is cut out by counting brackets outside strings and parsed on its own.
    """
    depth = 0
    in_text = escaped = False
    part = []
    with open(path) as f:
        while True:
            chunk = f.read(512)
            if not chunk:
                break
            start = 0 if depth >= 2 else -1
            for i, ch in enumerate(chunk):
                if in_text:
                    if escaped:
                        escaped = False
                    elif ch == "\\":
                        escaped = True
                    elif ch == '"':
                        in_text = False
                elif ch == '"':
                    in_text = True
                elif ch in "[{":
                    depth += 1
                    if depth == 2:
                        start = i
                elif ch in "]}":
                    depth -= 1
                    if depth == 1:
                        part.append(chunk[start:i + 1])
                        yield json.loads("".join(part))
                        part = []
                        start = -1
            if start >= 0:
                part.append(chunk[start:])


def _std():
    for item in items():
        if item.get("ruleset") == "std":
            return item["rules"]


def _rules(rulesets, case):
    rules = dict(rulesets[case["rules"]])
    for k, v in case.get("patch", {}).items():
        rules[k] = v
    return rules


def run_case(rulesets, case):
    """The engine's answer to one case of the table."""
    if case.get("op") == "reverse":
        return engine.reverse(case["lines"], case["disc"], case["before"], case["now"])
    if case.get("op") == "void":
        return engine.void(case["lines"], case["disc"], case["before"])
    return engine.quote(_rules(rulesets, case), case["lines"], case["tier"], case["ctx"])


def cases():
    """Yield (rulesets, case) for every case of the table, one parsed at a time."""
    rulesets = {}
    for item in items():
        if "ruleset" in item:
            rulesets[item["ruleset"]] = item["rules"]
        elif "name" in item:
            yield rulesets, item


def test_worked_cases():
    n = 0
    for rulesets, case in cases():
        gc.collect()
        n += 1
        if "error" in case:
            e = raises(ProtocolError, run_case, rulesets, case)
            eq((e.code, e.field), (case["error"]["code"], case["error"]["field"]), case["name"])
        else:
            eq(run_case(rulesets, case), case["expect"], case["name"])
    assert n >= 25, n


def test_partial_returns_in_table_add_up_to_the_sale():
    # the table returns the 4 x "8005" sale in three parts (1, 2, 1): together, all of it
    wanted = ("sku fixed cents per unit", "partial return 1 of 4 floors its share",
              "second partial return 2 more of 4", "last partial return completes the reversal",
              "full return reverses exactly")
    found = {}
    for _, case in cases():
        if case["name"] in wanted:
            found[case["name"]] = case["expect"]["discount"]
    sale = found[wanted[0]]
    eq(-(found[wanted[1]] + found[wanted[2]] + found[wanted[3]]), sale, "sum of partial returns")
    eq(-found[wanted[4]], sale, "full return")


def _line(**kw):
    line = {"sku": "800123", "cat": "dairy", "qty": 1, "price": 100}
    line.update(kw)
    return line


def test_bad_lines_are_named():
    bad = [
        ([_line(price=-1)], "lines[0].price"),
        ([_line(), _line(price=10000001)], "lines[1].price"),
        ([_line(price=True)], "lines[0].price"),
        ([_line(price=1.5)], "lines[0].price"),
        ([_line(qty=0)], "lines[0].qty"),
        ([_line(qty=10000)], "lines[0].qty"),
        ([_line(qty=True)], "lines[0].qty"),
        ([_line(sku="")], "lines[0].sku"),
        ([_line(sku=8001)], "lines[0].sku"),
        ([_line(sku="x" * 33)], "lines[0].sku"),
        ([_line(cat=None)], "lines[0].cat"),
        ([_line(), _line(), _line(), "milk"], "lines[3]"),
        ([_line()] * 201, "lines"),
        ({"0": _line()}, "lines"),
    ]
    for lines, field in bad:
        e = raises(TillError, engine.check_lines, lines)
        eq((e.code, e.field), ("till.field", field), field)
        # quote() refuses the same basket with the same error
        e = raises(TillError, engine.quote, _std(), lines, 0, CTX)
        eq(e.field, field, "quote " + field)
    e = raises(TillError, engine.check_lines, [_line(price=10000001)])
    eq(e.detail, "must be an integer from 0 to 10000000", "detail")
    # the limits themselves are fine
    engine.check_lines([_line(qty=9999, price=10000000, cat="")] * 200)
    engine.check_lines([])


def _bad_rules(change, field, std=None):
    rules = dict(std) if std else _std()  # change() copies what it changes: std stays as it is
    change(rules)
    e = raises(RulesError, engine.check_rules, rules)
    eq((e.code, e.field), ("rules.format", field), field)
    return e


def _set(path, value):
    # path like ("promotions", 2, "cents"): set it on a copy made by _std()
    def change(rules):
        obj = rules
        for key in path[:-1]:
            obj[key] = obj[key].copy() if isinstance(obj[key], (dict, list)) else obj[key]
            obj = obj[key]
        if value is _DELETE:
            del obj[path[-1]]
        else:
            obj[path[-1]] = value
    return change


_DELETE = object()


def test_bad_rules_are_named():
    engine.check_rules(_std())
    _bad_rules(_set(("version",), -1), "version")
    _bad_rules(_set(("tiers",), []), "tiers")
    _bad_rules(_set(("tiers", 1, "bp"), 10001), "tiers[1].bp")
    _bad_rules(_set(("tiers", 1, "id"), 0), "tiers[1].id")
    _bad_rules(_set(("tiers", 2, "code"), ""), "tiers[2].code")
    _bad_rules(_set(("default_tier",), 7), "default_tier")
    _bad_rules(_set(("promotions", 0, "kind"), "bogof"), "promotions[0].kind")
    _bad_rules(_set(("promotions", 1, "id"), "P1"), "promotions[1].id")
    _bad_rules(_set(("promotions", 2, "bp"), 500), "promotions[2].bp")
    _bad_rules(_set(("promotions", 2, "cents"), _DELETE), "promotions[2].bp")
    _bad_rules(_set(("promotions", 0, "category"), _DELETE), "promotions[0].category")
    _bad_rules(_set(("promotions", 0, "sku"), "8001"), "promotions[0].sku")
    _bad_rules(_set(("promotions", 3, "min_cents"), -5), "promotions[3].min_cents")
    _bad_rules(_set(("promotions", 4, "tiers"), [1, "gold"]), "promotions[4].tiers[1]")
    _bad_rules(_set(("promotions", 4, "tier"), [1]), "promotions[4].tier")
    _bad_rules(_set(("promotions", 5, "to"), 1700000000), "promotions[5].to")
    _bad_rules(_set(("promotions", 6, "bp"), 10001), "promotions[6].bp")
    _bad_rules(_set(("limits",), None), "limits")
    _bad_rules(_set(("limits", "receipt_max_cents"), True), "limits.receipt_max_cents")
    _bad_rules(_set(("offline", "stale_hours"), _DELETE), "offline.stale_hours")
    _bad_rules(_set(("offline", "card_day_max_cents"), "100"), "offline.card_day_max_cents")
    _bad_rules(_set(("extra",), 1), "extra")
    eq(raises(RulesError, engine.check_rules, [1]).field, "rules", "not an object")
    # quote() checks the rules too: rules corrupted on flash give no discount at all
    rules = _std()
    rules["default_tier"] = 9
    eq(raises(RulesError, engine.quote, rules, [_line()], 0, CTX).field, "default_tier", "quote")


def test_tiers_and_their_codes_are_unique():
    std = _std()
    # two tiers with one code would both be "tier:silver" on the receipt and in the audit
    e = _bad_rules(_set(("tiers", 2, "code"), "silver"), "tiers[2].code", std)
    eq(e.detail, "must be unique", "code")
    e = _bad_rules(_set(("tiers", 2, "id"), 1), "tiers[2].id", std)
    eq(e.detail, "must be unique", "id")
    # codes that differ in case are different codes
    rules = dict(std)
    _set(("tiers", 2, "code"), "Silver")(rules)
    engine.check_rules(rules)


def test_a_promotions_tiers_name_existing_tiers_once():
    std = _std()
    # std: tiers 0, 1, 2; promotions[4] is P5 with "tiers": [1, 2]
    for tiers, field, detail in (
            ([], "promotions[4].tiers", "must be a non-empty list"),
            ({"1": 1}, "promotions[4].tiers", "must be a non-empty list"),
            ([1, 3], "promotions[4].tiers[1]", "must be the id of a tier"),
            ([256], "promotions[4].tiers[0]", "must be the id of a tier"),
            ([True], "promotions[4].tiers[0]", "must be the id of a tier"),
            ([1.0], "promotions[4].tiers[0]", "must be the id of a tier"),
            ([2, 1, 2], "promotions[4].tiers[2]", "must not repeat a tier")):
        e = _bad_rules(_set(("promotions", 4, "tiers"), tiers), field, std)
        eq(e.detail, detail, repr(tiers))
    for tiers in ([0], [2, 0, 1]):
        rules = dict(std)
        _set(("promotions", 4, "tiers"), tiers)(rules)
        engine.check_rules(rules)


def test_a_promotion_category_is_never_empty():
    # a line's cat "" means no category: no category promotion can name it
    _bad_rules(_set(("promotions", 0, "category"), ""), "promotions[0].category")
    lines = [_line(cat="")]
    engine.check_lines(lines)
    eq(engine.quote(_std(), lines, 0, CTX)["disc"], [{"line": 0, "rule": "tier:base", "cents": 2}], "cat ''")


_SURROGATE = "a\ud800"


def test_text_utf8_cannot_carry_and_control_characters_are_refused():
    std = _std()
    for path in (("tiers", 1, "code"), ("promotions", 0, "id"), ("promotions", 0, "category"),
                 ("promotions", 1, "sku")):
        field = "%s[%d].%s" % path
        e = _bad_rules(_set(path, _SURROGATE), field, std)
        eq(e.detail, "holds a character UTF-8 cannot carry", field)
    # the one text rule (checks.text_fault) holds for the rules' texts as for a basket's:
    # they come back in every rule name the reader journals
    for text, detail in (("a\x1b[2J", "holds a control character"),
                         ("a\u202e", "holds a bidirectional control character")):
        e = _bad_rules(_set(("tiers", 1, "code"), text), "tiers[1].code", std)
        eq(e.detail, detail, repr(text))
        e = _bad_rules(_set(("promotions", 3, "id"), text), "promotions[3].id", std)
        eq(e.detail, detail, repr(text))
    # a surrogate pair written as such is one character beyond U+FFFF: fine
    rules = dict(std)
    _set(("tiers", 1, "code"), "\U0001F600")(rules)
    engine.check_rules(rules)
    for key in ("sku", "cat"):
        for text, detail in ((_SURROGATE, "holds a character UTF-8 cannot carry"),
                             ("a\x00", "holds a control character"),
                             ("a\u2066", "holds a bidirectional control character")):
            e = raises(TillError, engine.check_lines, [_line(), _line(**{key: text})])
            eq((e.code, e.field, e.detail), ("till.field", "lines[1]." + key, detail), key)
    # a line has its four keys and no other
    e = raises(TillError, engine.check_lines, [_line(colour="red")])
    eq((e.field, e.detail), ("lines[0].colour", "unknown key"), "line key")
    lines = [_line(qty=2, price=500)]
    disc = [{"line": 0, "rule": "tier:" + _SURROGATE, "cents": 20}]
    for fn, args in ((engine.reverse, (lines, disc, [0], [1])), (engine.void, (lines, disc, [0]))):
        e = raises(ProtocolError, fn, *args)
        eq((e.code, e.field), ("disc.original", "disc[0].rule"), "rule name")


def _add_tier(tid):
    def change(rules):
        rules["tiers"] = rules["tiers"] + [{"id": tid, "code": "top", "bp": 0}]
    return change


def test_rule_ranges_include_both_ends():
    std = _std()
    big = 2 ** 40
    money = 1000000000
    # promotions[0] (P1) has no "to" and promotions[1] (P2) no "from": each bound alone
    for path, lo, hi in ((("version",), 0, big), (("tiers", 1, "bp"), 0, 10000),
                         (("promotions", 3, "min_cents"), 0, money),
                         (("promotions", 2, "cents"), 0, money), (("promotions", 0, "bp"), 0, 10000),
                         (("promotions", 0, "from"), 0, big), (("promotions", 1, "to"), 0, big),
                         (("limits", "receipt_max_cents"), 0, money),
                         (("offline", "receipt_max_cents"), 0, money),
                         (("offline", "card_day_max_cents"), 0, money),
                         (("offline", "stale_hours"), 0, 100000)):
        field = path[0] + ("[%d]" % path[1] if len(path) == 3 else "") + (
            "." + path[-1] if len(path) > 1 else "")
        for good in (lo, hi):
            rules = dict(std)
            _set(path, good)(rules)
            engine.check_rules(rules)
        for bad in (lo - 1, hi + 1):
            e = _bad_rules(_set(path, bad), field, std)
            eq(e.detail, "must be an integer from %d to %d" % (lo, hi), field)
    rules = dict(std)
    _add_tier(255)(rules)
    engine.check_rules(rules)
    _bad_rules(_add_tier(256), "tiers[3].id", std)
    # from < to, one second apart at least
    _bad_rules(_set(("promotions", 5, "to"), 1700000000), "promotions[5].to", std)
    rules = dict(std)
    _set(("promotions", 5, "to"), 1700000001)(rules)
    engine.check_rules(rules)


def test_zero_stale_hours_leave_only_the_second_of_the_sync():
    rules = _std()
    rules["offline"] = {"receipt_max_cents": 50000, "card_day_max_cents": 200000, "stale_hours": 0}
    engine.check_rules(rules)
    eq(engine.is_stale(rules, {"now": NOW, "last_sync": NOW, "card_day_used": 0}), False, "same second")
    eq(engine.is_stale(rules, {"now": NOW + 1, "last_sync": NOW, "card_day_used": 0}), True, "a second later")


def test_cards_present_must_say_whether_ntag_signatures_are_checked():
    # "cards" left out: no NXP signature needed; "cards": {} says nothing and is refused
    rules = _std()
    engine.check_rules(rules)
    rules["cards"] = {}
    e = raises(RulesError, engine.check_rules, rules)
    eq((e.field, e.detail), ("cards.ntag_signature", "must be true or false"), "{}")
    rules["cards"] = {"ntag_signature": False}
    engine.check_rules(rules)


def test_return_checks_formats_before_the_sale():
    # the order: lines, disc, returned_before, returning, then the sold quantities (lowest
    # line first): a quantity past both 9999 and the sale is a format error
    lines = [_line(qty=4, price=89), _line(sku="9", qty=1, price=300)]
    disc = [{"line": 0, "rule": "tier:base", "cents": 7}]
    bad_disc = [{"line": 0, "rule": "x", "cents": 0}]
    for args, code, field, also_void in (
            ((lines, disc, [0, 0], [10000, 0]), "till.field", "returning[0]", False),
            ((lines, disc, [10000, 0], [0, 0]), "disc.original", "returned_before[0]", True),
            ((lines, disc, [0, 2], [5, 0]), "disc.return_exceeds", "lines[0].qty", False),
            ((lines, disc, [0], [10000, 0]), "disc.original", "returned_before", True),
            ((lines, bad_disc, None, [10000]), "disc.original", "disc[0].cents", True),
            (([_line(qty=0)], None, None, None), "till.field", "lines[0].qty", True)):
        e = raises(ProtocolError, engine.reverse, *args)
        eq((e.code, e.field), (code, field), field)
        if also_void:  # void checks the sale in the same order
            e = raises(ProtocolError, engine.void, *args[:3])
            eq((e.code, e.field), (code, field), "void " + field)
    # a void after an over-return names the line; it does not clip the quantity
    e = raises(ProtocolError, engine.void, lines, disc, [0, 2])
    eq((e.code, e.field, e.detail), ("disc.return_exceeds", "lines[1].qty", "2 returned before + 0 now > 1 sold"),
       "void")


def test_bad_context_is_named():
    rules = _std()
    for ctx, field in (
            ([], "ctx"),
            ({"last_sync": None, "card_day_used": 0}, "ctx.now"),
            ({"now": NOW, "last_sync": "yesterday", "card_day_used": 0}, "ctx.last_sync"),
            ({"now": NOW, "last_sync": None, "card_day_used": -1}, "ctx.card_day_used")):
        e = raises(ProtocolError, engine.quote, rules, [_line()], 0, ctx)
        eq((e.code, e.field), ("disc.context", field), field)


def test_bad_returns_are_named():
    lines = [_line(qty=2, price=500), _line(sku="9", qty=1, price=300)]
    disc = [{"line": 0, "rule": "tier:base", "cents": 20}, {"line": 1, "rule": "tier:base", "cents": 6}]
    for args, code, field in (
            ((lines, disc, [0, 0], [0, 2]), "disc.return_exceeds", "lines[1].qty"),
            ((lines, disc, [2, 0], [1, 0]), "disc.return_exceeds", "lines[0].qty"),
            ((lines, disc, [0, 0], [1]), "till.field", "returning"),
            ((lines, disc, [0, 0], [1, -1]), "till.field", "returning[1]"),
            ((lines, disc, [0, 0], [True, 0]), "till.field", "returning[0]"),
            ((lines, disc, None, [1, 0]), "disc.original", "returned_before"),
            ((lines, disc + [{"line": 2, "rule": "x", "cents": 1}], [0, 0], [1, 0]),
             "disc.original", "disc[2].line"),
            ((lines, [{"line": 0, "rule": "x", "cents": 0}], [0, 0], [1, 0]),
             "disc.original", "disc[0].cents"),
            ((lines, disc + [{"line": 1, "rule": "x", "cents": 295}], [0, 0], [1, 0]),
             "disc.original", "disc[2].cents"),
            ((lines, [{"line": 0, "cents": 3}], [0, 0], [1, 0]), "disc.original", "disc[0]"),
            ((lines[:1] + [_line(qty=0)], disc, [0, 0], [1, 0]), "till.field", "lines[1].qty")):
        e = raises(ProtocolError, engine.reverse, *args)
        eq((e.code, e.field), (code, field), field)


def test_void_reverses_what_is_left():
    lines = [_line(qty=3, price=333), _line(sku="9", qty=2, price=250)]
    sale = engine.quote(_std(), lines, 2, CTX)
    first = engine.reverse(lines, sale["disc"], [0, 0], [1, 1])
    rest = engine.void(lines, sale["disc"], [1, 1])
    eq(first["discount"] + rest["discount"], -sale["discount"], "discount")
    eq(first["gross"] + rest["gross"], -sale["gross"], "gross")
    whole = engine.void(lines, sale["disc"], [0, 0])
    eq(whole["discount"], -sale["discount"], "whole void")
    eq(engine.void(lines, sale["disc"], [3, 2])["disc"], [], "void after full return")
    e = raises(ProtocolError, engine.void, lines, sale["disc"], [4, 0])
    eq((e.code, e.field), ("disc.return_exceeds", "lines[0].qty"), "void over-returned")


def test_allocate_keeps_every_cent():
    for total, rooms in ((7, [5, 0, 5]), (30, [3, 7, 11, 13]), (0, [4]), (0, [0, 0]),
                         (3, [1, 1, 1]), (34, [34])):
        shares = engine.allocate(total, rooms)
        eq(sum(shares), total, "sum %r" % rooms)
        for s, r in zip(shares, rooms):
            assert 0 <= s <= r, (total, rooms, shares)
    # 7*5 // 10 = 3 rest 5 on lines 0 and 2: the tie goes to line 0
    eq(engine.allocate(7, [5, 0, 5]), [4, 0, 3], "tie to the lower index")
    # 2 over three equal rooms: 0 each rest 2, the two lowest indexes get a cent
    eq(engine.allocate(2, [1, 1, 1]), [1, 1, 0], "two ties")


def test_rules_may_say_how_cards_are_checked():
    from protocol.engine import check_rules
    from protocol.errors import RulesError

    rules = _std()
    rules["cards"] = {"ntag_signature": True}
    check_rules(rules)
    for bad, field in (({"ntag_signature": 1}, "cards.ntag_signature"), ({}, "cards.ntag_signature"),
                       ({"ntag_signature": True, "x": 1}, "cards.x"), ([], "cards")):
        rules["cards"] = bad
        eq(raises(RulesError, check_rules, rules).field, field, repr(bad))
