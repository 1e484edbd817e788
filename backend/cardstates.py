"""Which tiers a reader's card directory could have given a card at a given time.

A reader applies the tier its own copy of the directory gives: up to date, some
versions behind (it syncs when it can), or without the card at all (issued after its
last sync, or its directory was erased), and then the rules' default tier. So a sale
at time t may carry the tier of any active state the card had at or before t, or the
default tier; a tier the card never had before t is not the reader's to give. The
backend's clock and the reader's differ a little (the reader adopts the backend's time
when it is more than a minute off), hence CLOCK_SLACK.

    tiers_allowed(db, "6001000000000042", t, rules)   # -> {0, 2}: ids as the engine applies them

    states = CardStates(db)            # the auditor's: one query for many cards, then cached
    states.load(["6001000000000042", "6001000000000017"])
    states.tiers_allowed("6001000000000042", t, rules)   # -> {0, 2}, as above

What this cannot tell: a card blocked before the sale still shows the default tier as
allowed (the reader may not have known the card); the directory version a reader had
at the time of each sale is not recorded.
"""
from loyalty.protocol import engine

CLOCK_SLACK = 300  # seconds
ACTIVE = 0


def card_key(card):
    """The card's number as the directory stores it: without leading zeros."""
    return card.lstrip("0") or "0"


def states_before(db, card, t):
    """[(tier, status)] of every state `card` was put in up to t (+ slack), oldest first."""
    return db.execute("SELECT tier, status FROM card_history WHERE card = ? AND t <= ? ORDER BY version",
                      [card, t + CLOCK_SLACK]).fetchall()


def _allowed(states, rules):
    # states: [(tier, status)] of the card up to t (+ slack)
    allowed = {engine.tier_of(rules, rules["default_tier"])["id"]}
    for tier, status in states:
        if status == ACTIVE:
            allowed.add(engine.tier_of(rules, tier)["id"])
    return allowed


def tiers_allowed(db, card, t, rules):
    """The tier ids (as the engine applies them under `rules`) a sale at t may carry."""
    return _allowed(states_before(db, card_key(card), t), rules)


def history_sql(keys):
    """Every state of the cards `keys` (directory numbers), each card's oldest first."""
    return ("SELECT card, t, tier, status FROM card_history WHERE card IN (%s) ORDER BY card, version"
            % ",".join("?" * len(keys)), list(keys))


class CardStates:
    """tiers_allowed for many cards with one query per 500 of them: the auditor runs over
    thousands of receipts, a query per sale would cost more than the audit itself.

    What it loaded stays as it was: a chunk of the audit reads the history once (a card's
    later states are written with later times, so they change nothing before them)."""

    PART = 500  # cards per query: well under SQLite's limit of bound parameters

    def __init__(self, db):
        self.db = db
        self._states = {}  # directory number -> [(t, tier, status)], oldest first

    def load(self, cards):
        """Read the history of those of `cards` (record card numbers) not read yet."""
        keys = sorted({card_key(c) for c in cards if isinstance(c, str)} - self._states.keys())
        for k in range(0, len(keys), self.PART):
            part = keys[k:k + self.PART]
            for key in part:
                self._states[key] = []
            sql, params = history_sql(part)
            for card, t, tier, status in self.db.execute(sql, params):
                self._states[card].append((t, tier, status))

    def tiers_allowed(self, card, t, rules):
        """As tiers_allowed(db, card, t, rules), from what load() read (it loads the card if not)."""
        key = card_key(card)
        if key not in self._states:
            self.load([card])
        limit = t + CLOCK_SLACK
        return _allowed([(tier, status) for when, tier, status in self._states[key] if when <= limit],
                        rules)
