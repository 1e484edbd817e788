"""The rules and the 30-line basket both MicroPython benches quote (bench/mp_receipt.py,
bench/mp_nfc.py), so their numbers are of the same discount decision."""
RULES = {"version": 3, "default_tier": 0,
         "tiers": [{"id": 0, "code": "base", "bp": 200}, {"id": 1, "code": "silver", "bp": 300},
                   {"id": 2, "code": "gold", "bp": 500}],
         "promotions": [{"id": "LATTE10", "kind": "category", "category": "dairy", "bp": 1000},
                        {"id": "CAFFE30", "kind": "sku", "sku": "800007", "cents": 30},
                        {"id": "SPESA", "kind": "threshold", "min_cents": 3000, "bp": 300}],
         "limits": {"receipt_max_cents": 5000},
         "offline": {"receipt_max_cents": 5000, "card_day_max_cents": 20000, "stale_hours": 48}}
LINES = [{"sku": "80%04d" % i, "cat": "dairy" if i % 3 == 0 else "grocery", "qty": 1 + i % 4,
          "price": 99 + 37 * i} for i in range(30)]
