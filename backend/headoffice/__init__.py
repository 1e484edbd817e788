"""Head office's data: stores, readers and their keys, tiers, promotions, limits, cards.

Plain functions over a sqlite_utils.Database; the CLI (backend/cli.py), the sync API,
the issuing desks (tools/) and tests call them. One module a part of head office's work:

  stores.py    stores and readers, the reader's provisioning file
  rules.py     tiers, promotions and limits, published as rules versions (docs/discount.md)
  cardkeys.py  card key epochs and card keys (docs/cards.md)
  cards.py     the card directory and its pages for readers (docs/directory.md)
  common.py    their errors (each names the input at fault), clock and id checks

Every public name is here too: head office is one door for its callers (the CLI, the
sync API, tools/issuedesk.py, tools/pcschost.py and the tests all say
`headoffice.add_store(...)`), whichever module holds it.

    add_store(db, "S1", "Milano Centro")
    key = add_reader(db, "R1", "S1")                # 32 random bytes, kept as key_hex
    add_tier(db, 0, "base", 200)                    # publishes rules version 1
    set_limits(db, receipt_max_cents=5000)          # version 2
    import_cards(db, [("6001000000000042", 0)])     # directory version 1
    directory_page(db, since=0, limit=100)          # b'{"entries":[["6001000000000042",0,0]],...'
"""
from loyalty.backend.headoffice.cardkeys import (active_issuer_keys, card_keys_for, current_epoch, issue_card_key,
                                         issuer_key, new_card_epoch, retire_card_epoch)
from loyalty.backend.headoffice.cards import (ACTIVE, BLOCKED, REMOVED, STATUS_WORDS, check_new_card, directory_page,
                                      import_cards, set_card, write_card)
from loyalty.backend.headoffice.common import AlreadyExists, HeadOfficeError, InvalidValue, NotFound, RulesRefused
from loyalty.backend.headoffice.rules import (DEFAULT_LIMITS, KINDS, LIMIT_KEYS, add_promotion, add_tier, build_rules,
                                      current_rules, end_promotion, rules_at, set_limits, set_tier)
from loyalty.backend.headoffice.stores import add_reader, add_store, write_provisioning

__all__ = ["ACTIVE", "BLOCKED", "DEFAULT_LIMITS", "KINDS", "LIMIT_KEYS", "REMOVED", "STATUS_WORDS",
           "AlreadyExists", "HeadOfficeError", "InvalidValue", "NotFound", "RulesRefused",
           "active_issuer_keys", "add_promotion", "add_reader", "add_store", "add_tier", "build_rules",
           "card_keys_for", "check_new_card", "current_epoch", "current_rules", "directory_page",
           "end_promotion", "import_cards", "issue_card_key", "issuer_key", "new_card_epoch",
           "retire_card_epoch", "rules_at", "set_card", "set_limits", "set_tier", "write_card", "write_provisioning"]
