"""A sample chain for the demo, the end-to-end tests and the benchmark, made through
head office's own functions (backend/headoffice/), as an operator's commands would.

    db = backend.db.connect(path); backend.db.migrate(db)
    keys = seed(db, stores={"S1": ["R1", "R2"]}, cards=200)   # {"R1": key bytes, ...}

Tiers base 2 %, silver 3 %, gold 5 %; a dairy promotion, a coffee promotion and a basket
threshold; cards 6001000000000001... with every tenth gold, every third silver, and cards
13 and 77 blocked; two legacy UID cards (UID_CARDS); card key epoch 1.
"""
from loyalty.backend import headoffice
from loyalty.protocol import loyaltycard

# legacy cards with only a UID (MIFARE Classic), registered by their UID's number
UID_CARDS = [(bytes.fromhex("5a3c9e21"), 1), (bytes.fromhex("04a2b3c4d5e6f7"), 2)]

TIERS = [(0, "base", 200, "Base"), (1, "silver", 300, "Argento"), (2, "gold", 500, "Oro")]
PROMOTIONS = [
    dict(id="LATTE10", kind="category", category="latticini", bp=1000),
    dict(id="CAFFE50", kind="sku", sku="8001", cents=50),
    dict(id="SPESA30", kind="threshold", min_cents=3000, cents=150),
]
LIMITS = dict(receipt_max_cents=2000, offline_receipt_max_cents=1500, card_day_max_cents=5000,
              stale_hours=48, default_tier=0)
BLOCKED = (13, 77)


def card_number(i):
    return "6001%012d" % i


def card_rows(n):
    """(card, tier, status) for cards 1..n."""
    return [(card_number(i), 2 if i % 10 == 0 else (1 if i % 3 == 0 else 0), 1 if i in BLOCKED else 0)
            for i in range(1, n + 1)]


def seed_rules(db):
    for tid, code, bp, name in TIERS:
        headoffice.add_tier(db, tid, code, bp, name=name)
    for p in PROMOTIONS:
        headoffice.add_promotion(db, **p)
    return headoffice.set_limits(db, **LIMITS)


def seed(db, stores, cards=200, tz="Europe/Rome", names=None):
    """Rules, `cards` cards, and the stores with their readers; returns {reader: key}."""
    seed_rules(db)
    headoffice.new_card_epoch(db)  # the issuer key NFC and smart cards are made with
    headoffice.import_cards(db, card_rows(cards) + [(loyaltycard.uid_card(u), t, 0) for u, t in UID_CARDS])
    keys = {}
    for store, readers in stores.items():
        headoffice.add_store(db, store, (names or {}).get(store, "Supermercato " + store), tz)
        for r in readers:
            keys[r] = headoffice.add_reader(db, r, store, name="Cassa " + r)
    return keys
