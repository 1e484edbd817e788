"""The sync client's backoff: random delays, growing with failures in a row, within a cap.

A file of its own: the sync client brings HTTP, deltas and batches, more heap than the
reader's small parts (test_reader_parts.py) leave.
"""
from check import eq


def test_backoff_within_bounds_and_growing():
    from syncclient import Backoff

    b = Backoff(base=2, cap=300)
    highest = []
    for n in range(1, 13):
        top = 0
        for _ in range(40):
            b.failures = n - 1
            d = b.next()
            eq(b.failures, n, "failures counted")
            assert 0 <= d <= min(300, 2 * 2 ** n), (n, d)
            top = max(top, d)
        highest.append(top)
    # 40 draws below a quarter of the ceiling each time: chance (1/4)**40, never in practice
    for n, top in enumerate(highest, 1):
        assert top > min(300, 2 * 2 ** n) / 4, (n, top)
    assert highest[0] <= 4 < highest[7], highest
    # far beyond the cap: still at most the cap
    b.failures = 1000
    assert 0 <= b.next() <= 300


def test_backoff_grows_with_failures_in_a_row_and_resets():
    from syncclient import Backoff

    b = Backoff(base=2, cap=300)
    for n in range(1, 9):
        assert b.next() <= 2 * 2 ** n
    eq(b.failures, 8, "eight failures in a row")
    b.reset()
    eq(b.failures, 0, "reset")
    for _ in range(40):
        b.reset()
        assert b.next() <= 4, "first delay after a success"
    # the delays are random, not all the same (full jitter spreads the readers)
    b.reset()
    spread = set()
    for _ in range(20):
        b.failures = 8
        spread.add(b.next())
    assert len(spread) > 5, spread
