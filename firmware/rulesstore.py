"""The rules in force on this reader (tiers, promotions, limits) and when it last synced.

Rules come down from the backend, are validated by the shared engine, and are kept on
flash so a reader that reboots offline still grants discounts. The time of the last
successful sync is kept too: past `offline.stale_hours` only the base rate applies.

    store = RulesStore("/rules.json")
    store.rules, store.version, store.last_sync
"""
from protocol import canonical, engine
from protocol.errors import EncodingError, RulesError

import fsutil


class RulesStore:
    def __init__(self, path):
        self.path = path
        self.rules = None
        self.last_sync = None
        self.error = None
        data = fsutil.read_or_none(path)
        if data is not None:
            try:
                saved = canonical.decode(data)
                engine.check_rules(saved["rules"])
                self.rules = saved["rules"]
                self.last_sync = saved.get("last_sync")
            except (EncodingError, RulesError, KeyError, TypeError) as e:
                # a damaged file means no rules (no discount), never a crash at start-up
                self.error = getattr(e, "code", "rules.format")

    @property
    def version(self):
        return self.rules["version"] if self.rules else 0

    def replace(self, rules, now):
        """New rules from the backend; raises RulesError and keeps the old ones if invalid."""
        engine.check_rules(rules)
        self.rules = rules
        self.error = None  # whatever was wrong with the file, these rules replace it
        self.synced(now)

    def synced(self, now):
        self.last_sync = now
        if self.rules is None:
            return  # nothing to keep: without rules there is no discount, stale or not
        fsutil.write_atomic(self.path, canonical.encode({"rules": self.rules, "last_sync": now}))
