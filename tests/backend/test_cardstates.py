"""The tiers a reader's directory could have given a card at the time of a sale."""
from loyalty.backend import cardstates, headoffice as ho
from loyalty.testing import shop


def test_tiers_the_card_had_before_the_sale_and_the_default(db, monkeypatch):
    rules = shop.rules()
    clock = [1000]
    monkeypatch.setattr(ho.common, "now", lambda: clock[0])
    ho.import_cards(db, [(shop.SILVER, 1)])
    clock[0] = 5000
    ho.set_card(db, shop.SILVER, tier=2)
    clock[0] = 9000
    ho.set_card(db, shop.SILVER, status=ho.BLOCKED)
    assert cardstates.tiers_allowed(db, shop.SILVER, 500, rules) == {0}  # not issued yet
    assert cardstates.tiers_allowed(db, shop.SILVER, 2000, rules) == {0, 1}
    # gold from 5000: a reader a few versions behind may still give silver
    assert cardstates.tiers_allowed(db, shop.SILVER, 6000, rules) == {0, 1, 2}
    # the backend's clock may be a little ahead of the reader's
    assert cardstates.tiers_allowed(db, shop.SILVER, 5000 - cardstates.CLOCK_SLACK, rules) == {0, 1, 2}
    assert cardstates.tiers_allowed(db, shop.SILVER, 4000, rules) == {0, 1}
    # blocked later: the states before stay possible for a reader that has not synced
    assert cardstates.tiers_allowed(db, shop.SILVER, 9500, rules) == {0, 1, 2}
    assert cardstates.tiers_allowed(db, shop.GOLD, 9500, rules) == {0}  # never in the directory


def test_a_tier_the_rules_do_not_have_is_applied_as_the_default(db, monkeypatch):
    monkeypatch.setattr(ho.common, "now", lambda: 1000)
    ho.import_cards(db, [(shop.GOLD, 7)])
    assert cardstates.tiers_allowed(db, shop.GOLD, 2000, shop.rules()) == {0}


def test_card_states_answer_as_tiers_allowed(db, monkeypatch):
    rules = shop.rules()
    clock = [1000]
    monkeypatch.setattr(ho.common, "now", lambda: clock[0])
    ho.import_cards(db, [(shop.SILVER, 1), (shop.GOLD, 2)])
    clock[0] = 5000
    ho.set_card(db, shop.SILVER, tier=2)
    ho.set_card(db, shop.GOLD, status=ho.BLOCKED)
    states = cardstates.CardStates(db)
    states.load([shop.SILVER, "0" + shop.GOLD])  # leading zeros: the same card
    for card in (shop.SILVER, shop.GOLD, shop.UNKNOWN):  # UNKNOWN: loaded when asked
        for t in (500, 2000, 5000 - cardstates.CLOCK_SLACK, 4000, 9000):
            assert states.tiers_allowed(card, t, rules) == cardstates.tiers_allowed(db, card, t, rules), (card, t)
    assert states.tiers_allowed(shop.SILVER, 9000, rules) == {0, 1, 2}
