"""Discount already granted today to each card on this reader (the per-card daily limit).

Kept in a small table in RAM: card numbers are hashed to 30-bit keys so that the
dictionary holds small integers, not long strings (about 1,000 shoppers a day fit in a
few KB). A hash collision makes two cards share a counter: the limit then bites
earlier, never later. Rebuilt at start-up from the journal's pending records plus the
file saved before acknowledged records are deleted.

    days = DayTotals("/days.json")
    days.used("6001000000000042", now)
"""
from protocol import canonical
from protocol.checks import is_int
from protocol.compat import crc32
from protocol.errors import EncodingError

import fsutil

MAX_CARDS = 4096  # beyond this, new cards of the day count as having used their limit


def day_of(t):
    return t // 86400  # UTC day; the store's local midnight is a rules matter for later


def _int(v):
    # a damaged file that is still JSON must not put text where sums and comparisons
    # later need numbers: that would crash the till task at the next sale, not here
    if not is_int(v):
        raise TypeError("not an integer")
    return v


def _key(card):
    return crc32(card.encode()) & 0x3FFFFFFF


class DayTotals:
    def __init__(self, path):
        self.path = path
        self.day = -1
        self.upto = 0  # journal seq up to which the saved file counted
        self._used = {}
        data = fsutil.read_or_none(path)
        if data:
            try:
                saved = canonical.decode(data)
                self.day, self.upto = _int(saved["day"]), _int(saved["upto"])
                for k, v in saved["cards"]:
                    self._used[_int(k)] = _int(v)
            except (EncodingError, KeyError, TypeError, ValueError):
                self.day, self.upto, self._used = -1, 0, {}

    def _roll(self, t):
        # forward only: a clock that steps back a day must not hand every card its daily
        # limit again (the totals then count towards the later day: cautious, not generous)
        if day_of(t) > self.day:
            self.day = day_of(t)
            self._used = {}

    def used(self, card, t):
        self._roll(t)
        if len(self._used) >= MAX_CARDS and _key(card) not in self._used:
            return 1 << 40
        return self._used.get(_key(card), 0)

    def add(self, card, cents, t, seq=0, replay=False):
        """Count a committed sale against its card's day.

        replay: the sale is re-read from the journal at start-up; seqs the saved file has
        counted, and sales of an earlier day, are skipped. A live sale always counts, in
        the latest day seen: a clock that is behind (an ESP32 before its first sync)
        must not let sales slip past the limit.
        """
        if replay and ((seq and seq <= self.upto) or day_of(t) < self.day):
            return
        self._roll(t)
        k = _key(card)
        self._used[k] = self._used.get(k, 0) + cents

    def save(self, upto):
        """Persist before the journal deletes acknowledged records (they can no longer be re-read)."""
        self.upto = max(self.upto, upto)
        cards = [[k, self._used[k]] for k in self._used]
        fsutil.write_atomic(self.path, canonical.encode({"cards": cards, "day": self.day, "upto": self.upto}))
