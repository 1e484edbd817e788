"""A small shop for tests and the demo: rules, cards and baskets, built by hand.

Tier rates and promotions are chosen so that discounts are easy to check by hand.
"""
import os

NOW_RULES_VERSION = 3


def rules(version=NOW_RULES_VERSION, receipt_max=5000, card_day_max=20000, stale_hours=48):
    return {
        "version": version,
        "tiers": [{"id": 0, "code": "base", "bp": 200}, {"id": 1, "code": "silver", "bp": 300},
                  {"id": 2, "code": "gold", "bp": 500}],
        "default_tier": 0,
        "promotions": [{"id": "LATTE10", "kind": "category", "category": "dairy", "bp": 1000},
                       {"id": "CAFFE30", "kind": "sku", "sku": "8001", "cents": 30}],
        "limits": {"receipt_max_cents": receipt_max},
        "offline": {"receipt_max_cents": receipt_max, "card_day_max_cents": card_day_max,
                    "stale_hours": stale_hours},
    }


GOLD = "6001000000000042"
SILVER = "6001000000000017"
BLOCKED = "6001000000000099"
UNKNOWN = "6001000000000555"  # genuine, issued after the reader's last sync

CARDS = [(GOLD, 2, 0), (SILVER, 1, 0), (BLOCKED, 1, 1)]


def basket(receipt="T1-0001"):
    # 2 x 1.50 milk (dairy), 1 x 4.00 coffee 8001, 3 x 0.99 bread
    return {"type": "basket", "receipt": receipt, "lines": [
        {"sku": "1001", "cat": "dairy", "qty": 2, "price": 150},
        {"sku": "8001", "cat": "coffee", "qty": 1, "price": 400},
        {"sku": "2001", "cat": "bakery", "qty": 3, "price": 99}]}


def key_hex():
    return os.urandom(32).hex()
