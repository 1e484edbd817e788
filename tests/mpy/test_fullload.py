# heapsize: 104k
"""A full load of the directory: the whole of it in pages from version 0, written once.

The reference is a plain dict; every page goes through the real page parser.
"""
import cardcache
from cardcache import ACTIVE, BLOCKED, REMOVED, CardCache
from check import eq, raises
from protocol.delta import make_page, parse_page
from protocol.errors import DeltaError
from tmpfs import rmtree, temp_dir


def _card(i, step=7, first=6001000000000000):
    return (first + step * i, i % 3, BLOCKED if i % 50 == 7 else ACTIVE)


def _cards(n, step=7, first=6001000000000000):
    return [_card(i, step, first) for i in range(n)]


def _pages(n, to, size, step=7, first=6001000000000000):
    """The pages of a full load of n cards, made one at a time (the heap is small)."""
    for k in range(0, n, size):
        chunk = [_card(i, step, first) for i in range(k, min(n, k + size))]
        yield parse_page(make_page(0, to, chunk, k + size < n), 0, 65536)


def test_pages_build_the_directory_at_the_last_page():
    root = temp_dir("fullload-")
    try:
        cache = CardCache(root)
        n = 1000
        versions = [cache.load_page(page) for page in _pages(n, 42, 150)]
        eq(versions, [0] * 6 + [42], "the old version until the last page")
        eq(cache.count, n, "count")
        for i in list(range(0, n, 37)) + [n - 1]:
            card, tier, status = _card(i)
            eq(cache.lookup(card), (tier, status), "card %d" % card)
        eq(cache.lookup(_card(0)[0] + 1), None, "absent card")
        cache.close()
        eq(CardCache(root).version, 42, "after a reboot")
    finally:
        rmtree(root)


def test_a_full_load_replaces_an_old_directory_only_when_complete():
    root = temp_dir("fullload-")
    try:
        cardcache.build(root, [(5, 1, ACTIVE), (9, 2, ACTIVE)], 3)
        cache = CardCache(root)
        pages = list(_pages(300, 50, 100, first=100))
        cache.load_page(pages[0])
        cache.cancel_load()  # the network dropped mid-load
        eq((cache.version, cache.lookup(5), cache.lookup(100)), (3, (1, ACTIVE), None), "old kept")
        for page in pages:
            cache.load_page(page)
        eq((cache.version, cache.lookup(5), cache.lookup(100)), (50, None, (0, ACTIVE)), "replaced")
        cache.close()
    finally:
        rmtree(root)


def test_a_load_whose_version_moves_on_ends_at_its_first_version():
    root = temp_dir("fullload-")
    try:
        cache = CardCache(root)
        cache.load_page(parse_page(make_page(0, 9, _cards(20)[:10], True), 0, 65536))
        eq(cache.load_page(parse_page(make_page(0, 12, _cards(20)[10:], False), 0, 65536)), 9, "version")
        eq(cache.count, 20, "every card")
        cache.close()
    finally:
        rmtree(root)


def test_bad_load_pages_are_refused_and_change_nothing():
    root = temp_dir("fullload-")
    try:
        cache = CardCache(root)
        cards = _cards(200)
        first = parse_page(make_page(0, 9, cards[100:150], True), 0, 65536)
        backwards = parse_page(make_page(0, 9, cards[:50], True), 0, 65536)
        cache.load_page(first)
        eq(raises(DeltaError, cache.load_page, backwards).code, "delta.order", "page before the last card")
        cache.load_page(first)
        older = parse_page(make_page(0, 8, cards[150:], False), 0, 65536)
        eq(raises(DeltaError, cache.load_page, older).code, "delta.version", "a version going back")
        not_from_zero = {"from": 3, "to": 9, "more": False, "entries": []}
        eq(raises(DeltaError, cache.load_page, not_from_zero).code, "delta.version", "from must be 0")
        eq((cache.version, cache.count), (0, 0), "nothing changed")
        # removed cards in a load are skipped: a new directory has nothing to remove
        mixed = [(1, 0, ACTIVE), (2, 0, REMOVED), (3, 1, BLOCKED)]
        eq(cache.load_page(parse_page(make_page(0, 4, mixed), 0, 65536)), 4, "loaded")
        eq((cache.count, cache.lookup(2), cache.lookup(3)), (2, None, (1, BLOCKED)), "removed skipped")
        cache.close()
    finally:
        rmtree(root)
