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


# the time of the last sync is written at most this often: a sync every half minute
# would otherwise rewrite the file all day long; after a reboot the reader then believes
# its last sync a little older than it was, which can only make it cautious earlier
_SYNC_WRITE_EVERY = 300


class RulesStore:
    def __init__(self, path):
        self.path = path
        self.rules = None
        self.last_sync = None
        self._saved_sync = None
        self.error = None
        data = fsutil.read_or_none(path)
        if data is not None:
            try:
                rules = canonical.decode(data)
                engine.check_rules(rules)
                self.rules = rules
            except (EncodingError, RulesError) as e:
                # a damaged file means no rules (no discount), never a crash at start-up
                self.error = e.code
        synced = fsutil.read_or_none(path + ".synced")
        if self.rules is not None and synced and synced.isdigit():
            self.last_sync = self._saved_sync = int(synced)

    @property
    def version(self):
        return self.rules["version"] if self.rules else 0

    def replace(self, rules, now):
        """New rules from the backend; raises RulesError and keeps the old ones if invalid.

        The new rules are on flash before they are used, so the reader never grants a
        discount by rules it would not have after a reboot.
        """
        engine.check_rules(rules)
        fsutil.write_atomic(self.path, lambda f: canonical.encode(rules, f))
        self.rules = rules
        self.error = None  # whatever was wrong with the file, these rules replace it
        self._saved_sync = None
        self.synced(now)

    def synced(self, now):
        self.last_sync = now
        if self.rules is None:
            return  # nothing to keep: without rules there is no discount, stale or not
        if self._saved_sync is None or now - self._saved_sync >= _SYNC_WRITE_EVERY:
            fsutil.write_atomic(self.path + ".synced", b"%d" % now)
            self._saved_sync = now
