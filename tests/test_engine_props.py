"""Properties of the discount engine for any rules, basket and return sequence (CPython).

The worked cases (tests/cases/engine_cases.json) pin the arithmetic; these pin what must
hold whatever the numbers: money never created, every limit held, returns exact.
"""
import copy

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from loyalty.protocol import engine

NOW = 1700000000
BIG = 10 ** 9

SETTINGS = settings(max_examples=300, deadline=None)


@st.composite
def promotions(draw, tier_ids):
    out = []
    for k in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(("sku", "category", "threshold")))
        p = {"id": "P%d" % k, "kind": kind}
        if kind == "sku":
            p["sku"] = "S%d" % draw(st.integers(0, 3))
        elif kind == "category":
            p["category"] = "c%d" % draw(st.integers(0, 2))
        else:
            p["min_cents"] = draw(st.integers(0, 20000))
        if draw(st.booleans()):
            p["bp"] = draw(st.integers(0, 10000))
        else:
            # small amounts too, so fixed promotions land next to small line amounts
            p["cents"] = draw(st.integers(0, 5000) | st.integers(0, 40))
        if draw(st.integers(0, 3)) == 0:
            # at least one tier of the rules, none twice (check_rules refuses the rest)
            p["tiers"] = draw(st.lists(st.sampled_from(tier_ids), min_size=1, max_size=3, unique=True))
        if draw(st.integers(0, 3)) == 0:
            p["from"] = NOW + draw(st.integers(-7200, 3600))
        if draw(st.integers(0, 3)) == 0:
            p["to"] = p.get("from", NOW - 7200) + draw(st.integers(1, 10000))
        out.append(p)
    return out


@st.composite
def rule_sets(draw):
    tier_ids = draw(st.lists(st.integers(0, 5), min_size=1, max_size=3, unique=True))
    tiers = [{"id": t, "code": "t%d" % t, "bp": draw(st.integers(0, 10000))} for t in tier_ids]
    return {"version": 1, "tiers": tiers, "default_tier": draw(st.sampled_from(tier_ids)),
            "promotions": draw(promotions(tier_ids)),
            "limits": {"receipt_max_cents": draw(st.sampled_from((BIG, 0, 1, 500, 5000)))},
            "offline": {"receipt_max_cents": draw(st.sampled_from((BIG, 700, 3000))),
                        "card_day_max_cents": draw(st.sampled_from((BIG, 1000, 8000))),
                        "stale_hours": draw(st.sampled_from((48, 1, 0)))}}


lines_st = st.lists(st.fixed_dictionaries({
    "sku": st.sampled_from(("S0", "S1", "S2", "S3", "X")),
    "cat": st.sampled_from(("c0", "c1", "c2", "")),
    "qty": st.integers(1, 12) | st.just(1) | st.integers(1, 9999),
    "price": st.integers(0, 3000) | st.integers(0, 40) | st.sampled_from((0, 1, 10000000))}),
    max_size=12)

ctx_st = st.fixed_dictionaries({
    "now": st.just(NOW),
    "last_sync": st.none() | st.integers(NOW - 200000, NOW + 10),
    "card_day_used": st.integers(0, 10000)})

tier_st = st.none() | st.integers(0, 7)


def _amount(line):
    return line["qty"] * line["price"]


def _cap(rules, ctx):
    day = rules["offline"]["card_day_max_cents"] - ctx["card_day_used"]
    return min(rules["limits"]["receipt_max_cents"], rules["offline"]["receipt_max_cents"],
               max(0, day))


def _uncapped(rules):
    rules = copy.deepcopy(rules)
    rules["limits"]["receipt_max_cents"] = BIG
    rules["offline"]["receipt_max_cents"] = BIG
    rules["offline"]["card_day_max_cents"] = BIG
    return rules


@SETTINGS
@given(rule_sets(), lines_st, tier_st, ctx_st)
def test_money_is_never_created_and_limits_hold(rules, lines, tier, ctx):
    q = engine.quote(rules, lines, tier, ctx)
    assert q["gross"] == sum(_amount(l) for l in lines)
    assert q["discount"] == sum(d["cents"] for d in q["disc"])
    assert 0 <= q["discount"] <= q["gross"]
    assert all(d["cents"] > 0 for d in q["disc"])
    per_line = [0] * len(lines)
    for d in q["disc"]:
        per_line[d["line"]] += d["cents"]
    for i, line in enumerate(lines):
        assert per_line[i] <= _amount(line), i
    assert q["discount"] <= _cap(rules, ctx)
    assert q["discount"] <= rules["limits"]["receipt_max_cents"]
    assert q["discount"] <= rules["offline"]["receipt_max_cents"]
    assert ctx["card_day_used"] + q["discount"] <= max(rules["offline"]["card_day_max_cents"],
                                                      ctx["card_day_used"])
    # ordered by line; within a line at most one tier and one basket line, the basket last
    assert [d["line"] for d in q["disc"]] == sorted(d["line"] for d in q["disc"])
    if q["stale"]:
        assert all(d["rule"].startswith("tier:") for d in q["disc"])
    assert q["tier"] in [t["id"] for t in rules["tiers"]]


@SETTINGS
@given(rule_sets(), lines_st, tier_st, ctx_st)
def test_caps_cut_exactly_from_the_end(rules, lines, tier, ctx):
    q = engine.quote(rules, lines, tier, ctx)
    free = engine.quote(_uncapped(rules), lines, tier, ctx)
    assume(not free["capped"])  # a basket of 10**9 cents and more is capped even so
    cap = _cap(rules, ctx)
    assert q["discount"] == min(free["discount"], cap)
    assert bool(q["capped"]) == (free["discount"] > cap)
    # the capped lines are the uncapped ones cut from the end: a prefix, the last one trimmed
    n = len(q["disc"])
    assert q["disc"][:max(n - 1, 0)] == free["disc"][:max(n - 1, 0)]
    if n:
        last, was = q["disc"][-1], free["disc"][n - 1]
        assert (last["line"], last["rule"]) == (was["line"], was["rule"])
        assert 0 < last["cents"] <= was["cents"]


@SETTINGS
@given(rule_sets(), lines_st, tier_st, ctx_st)
def test_deterministic_and_inputs_untouched(rules, lines, tier, ctx):
    before = copy.deepcopy((rules, lines, tier, ctx))
    a = engine.quote(rules, lines, tier, ctx)
    assert (rules, lines, tier, ctx) == before
    b = engine.quote(*copy.deepcopy(before))
    assert a == b


@SETTINGS
@given(rule_sets(), lines_st.filter(bool), tier_st, ctx_st, st.data())
def test_returns_add_up_exactly(rules, lines, tier, ctx, data):
    sale = engine.quote(rules, lines, tier, ctx)
    before = [0] * len(lines)
    back_disc = {}
    back_gross = 0
    for step in range(data.draw(st.integers(0, 4))):
        now = [data.draw(st.integers(0, l["qty"] - b)) for l, b in zip(lines, before)]
        r = engine.reverse(lines, sale["disc"], before, now)
        assert r["discount"] == sum(d["cents"] for d in r["disc"]) <= 0
        for d in r["disc"]:
            back_disc[(d["line"], d["rule"])] = back_disc.get((d["line"], d["rule"]), 0) - d["cents"]
        back_gross -= r["gross"]
        before = [b + q for b, q in zip(before, now)]
        # never more back than the floor of the share returned so far
        for d in sale["disc"]:
            got = back_disc.get((d["line"], d["rule"]), 0)
            assert got == d["cents"] * before[d["line"]] // lines[d["line"]]["qty"]
    rest = engine.void(lines, sale["disc"], before)
    for d in rest["disc"]:
        back_disc[(d["line"], d["rule"])] = back_disc.get((d["line"], d["rule"]), 0) - d["cents"]
    back_gross -= rest["gross"]
    assert back_gross == sale["gross"]
    assert back_disc == {(d["line"], d["rule"]): d["cents"] for d in sale["disc"]}


@SETTINGS
@given(rule_sets(), lines_st.filter(bool), tier_st, ctx_st)
def test_full_return_is_the_sale_negated(rules, lines, tier, ctx):
    sale = engine.quote(rules, lines, tier, ctx)
    r = engine.reverse(lines, sale["disc"], [0] * len(lines), [l["qty"] for l in lines])
    assert r["gross"] == -sale["gross"] and r["discount"] == -sale["discount"]
    assert r["disc"] == [dict(d, cents=-d["cents"]) for d in sale["disc"]]
    assert engine.void(lines, sale["disc"], [0] * len(lines)) == r


@SETTINGS
@given(st.lists(st.integers(0, 10 ** 6), min_size=1, max_size=30), st.data())
def test_allocation_shares_are_fair_and_exact(rooms, data):
    total = data.draw(st.integers(0, sum(rooms)))
    shares = engine.allocate(total, rooms)
    assert sum(shares) == total
    whole = sum(rooms)
    for s, r in zip(shares, rooms):
        assert 0 <= s <= r
        if whole:
            # largest remainder: each share is the exact share rounded down or up
            assert total * r // whole <= s <= -(-total * r // whole)
