# heapsize: 192k
# Why: compiling this module from source takes more than 96 KB at import (the reader runs
# precompiled .mpy files). Every test then fills the extra heap with ballast
# (_as_if_96k), so the directory code is tested within an ESP32's 96 KB.
"""The card directory on flash: lookups, deltas, refusals, power cuts, 100,000 cards.

Directories live in a fresh folder under /tmp (the unix port's VfsPosix; the host's file
system on CPython); the power-cut test runs on littlefs on MicroPython. A plain dict,
updated by the obvious rules, is the model every directory is checked against.
"""
import gc
import os

import cardcache
from cardcache import ACTIVE, BLOCKED, REMOVED, CardCache, CardNumberError, build, erase
from check import eq, raises, scaled
from protocol.compat import MICROPYTHON, hexstr, sha256
from protocol.delta import make_page, parse_page, write_page
from protocol.errors import DeltaError

try:
    from time import ticks_diff, ticks_us
except ImportError:  # CPython
    from time import perf_counter

    def ticks_us():
        return int(perf_counter() * 1000000)

    def ticks_diff(a, b):
        return a - b

try:
    from micropython import heap_lock, heap_unlock
except ImportError:  # CPython
    heap_lock = heap_unlock = None

_PAGE_LIMIT = 32768
_PAGE_BUF = 16384  # 500 entries of 19-digit cards take 14 KB
_PAGE_ENTRIES = 500
_LAST = 9999999999999999999  # the largest card number: 19 nines


def _tmpdir():
    root = "/tmp/cardcache-test-" + hexstr(os.urandom(6))
    os.mkdir(root)
    return root


def _rmdir(root):
    for name in os.listdir(root):
        os.remove(root + "/" + name)
    os.rmdir(root)


def _file_digest(path):
    h = sha256()
    buf = bytearray(2048)
    with open(path, "rb") as f:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(buf[:n])
    return hexstr(h.digest())


def _rng(seed):
    """A tiny LCG, the same numbers on both runtimes."""
    state = [seed]

    def below(n):
        state[0] = (state[0] * 1103515245 + 12345) & 0x7FFFFFFF
        return (state[0] >> 8) % n

    return below


def _check_model(cache, model, extra_absent=()):
    eq(cache.count, len(model), "count")
    for card in model:
        eq(cache.lookup(card), model[card], "card %d" % card)
    for card in extra_absent:
        if card not in model:
            eq(cache.lookup(card), None, "absent card %d" % card)


def _page(cache, to, entries):
    return parse_page(make_page(cache.version, to, entries), cache.version, _PAGE_LIMIT)


def test_lookup_present_absent_first_last():
    ballast = _as_if_96k()  # noqa: F841 (held to the end)
    root = _tmpdir()
    try:
        empty = CardCache(root)
        eq((empty.version, empty.count, empty.lookup("42")), (0, 0, None))
        cards = [1] + [1000 + 37 * i for i in range(300)] + [_LAST]
        entries = [(c, c % 7, BLOCKED if c % 5 == 0 else ACTIVE) for c in cards]
        eq(build(root, entries, 3), len(cards))
        cache = CardCache(root)
        eq((cache.version, cache.count), (3, len(cards)))
        for card, tier, status in entries:
            eq(cache.lookup(card), (tier, status), str(card))
        eq(cache.lookup("1"), (1, ACTIVE), "first")
        eq(cache.lookup("9999999999999999999"), (_LAST % 7, ACTIVE), "last, as text")
        eq(cache.lookup(b"9999999999999999999"), (_LAST % 7, ACTIVE), "last, as bytes")
        eq(cache.lookup("0001037"), (1037 % 7, ACTIVE), "leading zeros")
        eq(cache.find("1000"), (1000 % 7) << 8 | BLOCKED)
        for absent in ("0", "2", "999", "1001", "1036", "1038", str(1000 + 37 * 300),
                       "9999999999999999998", 10 ** 18):
            eq(cache.lookup(absent), None, absent)
            eq(cache.find(absent), -1, absent)
        for bad in ("", "12a", "-1", " 12", "12345678901234567890", "\u0661", b"1.5",
                    -1, 10 ** 19, True, None):
            e = raises(CardNumberError, cache.lookup, bad)
            eq((e.code, e.field), ("card.unreadable", "card"), repr(bad))
        cache.close()
    finally:
        _rmdir(root)


def test_deltas_add_change_block_remove():
    ballast = _as_if_96k()  # noqa: F841 (held to the end)
    root = _tmpdir()
    try:
        base = [(100 + 10 * i, 1, ACTIVE) for i in range(50)]  # 100 .. 590
        build(root, base, 5)
        cache = CardCache(root)
        model = {}
        for card, tier, status in base:
            model[card] = (tier, status)
        changes = [
            (5, 2, ACTIVE),  # before the first card
            (100, 3, ACTIVE),  # first card: new tier
            (105, 1, BLOCKED),  # new, blocked at once
            (200, 1, BLOCKED),  # blocked
            (300, 0, REMOVED),  # removed
            (301, 0, REMOVED),  # removing a card the reader never had: nothing to do
            (590, 4, BLOCKED),  # last card
            (7000000000000000000, 9, ACTIVE),  # after the last card
        ]
        eq(cache.apply(_page(cache, 6, changes)), 6)
        for card, tier, status in changes:
            if status == REMOVED:
                model.pop(card, None)
            else:
                model[card] = (tier, status)
        eq(cache.version, 6)
        _check_model(cache, model, (300, 301, 6, 591))
        eq(cache.lookup(300), None, "removed card")
        eq(cache.lookup(200), (1, BLOCKED), "blocked card stays, blocked")

        # Versions follow one another; a page may jump several versions at once.
        eq(cache.apply(_page(cache, 9, [(200, 2, ACTIVE), (7000000000000000000, 0, REMOVED)])), 9)
        model[200] = (2, ACTIVE)
        del model[7000000000000000000]
        eq(cache.apply(_page(cache, 9, [])), 9)  # up to date: nothing written
        # apply() also takes a page dict with a list of entries.
        listed = [("0", 0, ACTIVE), (_LAST, 255, ACTIVE)]
        eq(cache.apply({"from": 9, "to": 10, "more": False, "entries": listed}), 10)
        model[0] = (0, ACTIVE)
        model[_LAST] = (255, ACTIVE)
        _check_model(cache, model, (7000000000000000000, 1, 5))
        cache.close()

        again = CardCache(root)  # as after a reboot
        eq(again.version, 10)
        _check_model(again, model)
        # Removing everything leaves an empty directory that still has its version.
        eq(again.apply(_page(again, 11, [(c, 0, REMOVED) for c in sorted(model)])), 11)
        eq((again.count, again.lookup(100)), (0, None))
        again.close()
        eq(CardCache(root).version, 11)
    finally:
        _rmdir(root)


def test_random_deltas_match_the_model():
    ballast = _as_if_96k()  # noqa: F841 (held to the end)
    root = _tmpdir()
    try:
        cache = CardCache(root)
        model = {}
        below = _rng(12345)
        version = 0
        for round_ in range(25):
            picked = {}
            for _ in range(below(30) + 1):
                card = below(150) * 1000003
                picked[card] = (below(256), below(3))
            entries = [(c,) + picked[c] for c in sorted(picked)]
            version += 1 + below(3)
            eq(cache.apply(_page(cache, version, entries)), version)
            for card, tier, status in entries:
                if status == REMOVED:
                    model.pop(card, None)
                else:
                    model[card] = (tier, status)
            _check_model(cache, model, [c * 1000003 for c in range(0, 150, 7)])
        cache.close()
    finally:
        _rmdir(root)


def test_bad_pages_leave_directory_untouched():
    ballast = _as_if_96k()  # noqa: F841 (held to the end)
    root = _tmpdir()
    try:
        build(root, [(10 * i + 10, i % 3, ACTIVE) for i in range(100)], 20)
        cache = CardCache(root)
        path = root + "/cards.bin"
        before = _file_digest(path)
        good = make_page(20, 21, [(15, 1, ACTIVE), (20, 0, REMOVED)])
        bad_bytes = [
            (good[:-3], "delta.format"),
            (good.replace(b'"15"', b'"1x"'), "delta.format"),
            (good.replace(b'"15",1', b'"15",256'), "delta.format"),
            (good.replace(b'"20",0,2', b'"20",0,3'), "delta.format"),
            (good.replace(b'"15"', b'"25"'), "delta.order"),
            (make_page(19, 21, [(15, 1, ACTIVE)]), "delta.version"),
            (make_page(21, 22, [(15, 1, ACTIVE)]), "delta.version"),
            (good.replace(b'"to":21', b'"to":19'), "delta.version"),
        ]
        for data, code in bad_bytes:
            eq(raises(DeltaError, parse_page, data, cache.version, _PAGE_LIMIT).code, code, repr(data))
        eq(raises(DeltaError, parse_page, good, cache.version, len(good) - 1).code, "delta.too_long")
        # apply() checks again what it is given, whoever built it.
        bad_dicts = [
            ({"from": 19, "to": 21, "more": False, "entries": [(15, 1, 0)]}, "delta.version"),
            ({"from": 20, "to": 20, "more": False, "entries": [(15, 1, 0)]}, "delta.version"),
            ({"from": 20, "to": 21, "more": False, "entries": [(25, 1, 0), (15, 1, 0)]}, "delta.order"),
            ({"from": 20, "to": 21, "more": False, "entries": [(15, 1, 7)]}, "delta.format"),
            ({"from": 20, "to": 21, "more": False, "entries": [(15, 300, 0)]}, "delta.format"),
            ({"from": 20, "to": 21, "more": False, "entries": bytearray(15)}, "delta.format"),
            ({"from": 20, "to": 21, "more": False, "entries": bytes(9) + b"\x05"}, "delta.format"),
            ({"from": "20", "to": 21, "more": False, "entries": []}, "delta.format"),
        ]
        for page, code in bad_dicts:
            eq(raises(DeltaError, cache.apply, page).code, code, repr(page))
        for page, code in bad_dicts:  # and the same refusals after a reboot
            eq(raises(DeltaError, CardCache(root).apply, page).code, code, repr(page))
        eq(cache.version, 20)
        eq(_file_digest(path), before, "directory file changed")
        eq(sorted(os.listdir(root)), ["cards.bin"])
        eq(CardCache(root).version, 20)
        eq(cache.lookup(20), (1, ACTIVE))
        # The good page still applies afterwards.
        eq(cache.apply(parse_page(good, 20, _PAGE_LIMIT)), 21)
        eq((cache.lookup(15), cache.lookup(20), cache.count), ((1, ACTIVE), None, 100))
        cache.close()
    finally:
        _rmdir(root)


def test_build_refuses_bad_entries_and_keeps_the_old_directory():
    ballast = _as_if_96k()  # noqa: F841 (held to the end)
    root = _tmpdir()
    try:
        build(root, [(1, 1, ACTIVE), (2, 2, BLOCKED)], 4)
        before = _file_digest(root + "/cards.bin")
        for entries, code, field in [
            ([(1, 0, ACTIVE), (1, 0, ACTIVE)], "delta.order", "entries[1][0]"),
            ([(5, 0, ACTIVE), (3, 0, ACTIVE)], "delta.order", "entries[1][0]"),
            ([(1, 0, ACTIVE), (3, 0, REMOVED)], "delta.format", "entries[1][2]"),
            ([(1, 256, ACTIVE)], "delta.format", "entries[0][1]"),
            ([("x", 0, ACTIVE)], "delta.format", "entries[0][0]"),
        ]:
            e = raises(DeltaError, build, root, iter(entries), 5)
            eq((e.code, e.field), (code, field), repr(entries))
        eq(raises(DeltaError, build, root, [], -1).code, "delta.format")
        eq(_file_digest(root + "/cards.bin"), before)
        eq(sorted(os.listdir(root)), ["cards.bin"])
        eq(CardCache(root).lookup(2), (2, BLOCKED))
    finally:
        _rmdir(root)


def test_damaged_file_is_named_and_can_be_erased():
    ballast = _as_if_96k()  # noqa: F841 (held to the end)
    root = _tmpdir()
    try:
        build(root, [(i, 0, ACTIVE) for i in range(1, 20)], 8)
        with open(root + "/cards.tmp", "wb") as f:
            f.write(b"half-written merge")  # what a power cut during apply() leaves
        cache = CardCache(root)
        eq((cache.version, cache.count), (8, 19))
        eq(sorted(os.listdir(root)), ["cards.bin"])
        cache.close()
        with open(root + "/cards.bin", "rb") as f:
            whole = f.read()
        for damaged in (whole[:-3], b"XXXX" + whole[4:], whole[:10]):
            with open(root + "/cards.bin", "wb") as f:
                f.write(damaged)
            e = raises(DeltaError, CardCache, root)
            eq(e.code, "directory.corrupt")
        erase(root)
        fresh = CardCache(root)
        eq((fresh.version, fresh.count, fresh.lookup(3)), (0, 0, None))
        eq(fresh.apply(_page(fresh, 9, [(3, 1, ACTIVE)])), 9)
        eq(fresh.lookup(3), (1, ACTIVE))
    finally:
        _rmdir(root)


class _RAMBlocks:
    """A littlefs block device in RAM whose power can be cut at the n-th block write."""

    def __init__(self, block_size, blocks):
        self.block_size = block_size
        self.data = bytearray(block_size * blocks)
        self.writes_left = -1  # -1: never cut

    def readblocks(self, n, buf, offset=0):
        # Byte by byte: littlefs also reads while the heap is locked (closing a file
        # that the garbage collector finalises), when a slice could not be allocated.
        at = n * self.block_size + offset
        data = self.data
        for i in range(len(buf)):
            buf[i] = data[at + i]

    def writeblocks(self, n, buf, offset=None):
        if self.writes_left == 0:
            raise OSError(5)  # EIO: the power is gone, nothing more reaches the flash
        if self.writes_left > 0:
            self.writes_left -= 1
        at = n * self.block_size + (offset or 0)
        self.data[at:at + len(buf)] = buf

    def ioctl(self, op, arg):
        if op == 4:
            return len(self.data) // self.block_size
        if op == 5:
            return self.block_size
        if op == 6:  # erase
            return 0


def _old_cards():
    for i in range(250):
        yield (7 * i + 1, i % 4, ACTIVE)


_CUT_PAGE = ((8, 9, BLOCKED), (22, 0, REMOVED), (3000, 5, ACTIVE))


def _check_cut(cache, new):
    """The directory is wholly the old one (version 1) or wholly the new one (2)."""
    eq((cache.version, cache.count), (2, 250) if new else (1, 250))
    changed = {}
    if new:
        for card, tier, status in _CUT_PAGE:
            changed[card] = None if status == REMOVED else (tier, status)
    for card, tier, status in _old_cards():
        eq(cache.lookup(card), changed.get(card, (tier, status)), str(card))
    eq(cache.lookup(3000), changed.get(3000))


def _power_cut_littlefs(dev):
    """Cut the power at every block write of an apply() on littlefs; check after each reboot."""
    import vfs

    vfs.VfsLfs2.mkfs(dev)
    mount = "/cardcache-lfs-" + hexstr(os.urandom(4))
    vfs.mount(vfs.VfsLfs2(dev), mount)
    build(mount, _old_cards(), 1)
    page = make_page(1, 2, _CUT_PAGE)
    cuts = 0
    while True:
        dev.writes_left = cuts
        cache = CardCache(mount)
        try:
            cache.apply(parse_page(page, 1, _PAGE_LIMIT))
            done = True
        except OSError:
            done = False
        dev.writes_left = -1
        try:
            cache.close()
        except OSError:
            pass
        vfs.umount(mount)  # reboot: what is on the blocks is all there is
        vfs.mount(vfs.VfsLfs2(dev), mount)
        after = CardCache(mount)
        new = after.version == 2
        _check_cut(after, new)
        after.close()
        if done:
            break
        if new:  # the cut came after the commit: undo it so the next cut hits the work
            build(mount, _old_cards(), 1)
        cuts += 1
    vfs.umount(mount)
    assert cuts > 3, cuts  # the apply really did write several blocks
    print("power cut at each of %d block writes: old or new directory, never a mix" % cuts)


def _power_cut_posix():
    """CPython: the rename is the commit; fail it and every write before it."""
    root = _tmpdir()
    try:
        build(root, [(i, 1, ACTIVE) for i in range(1, 500)], 1)
        before = _file_digest(root + "/cards.bin")
        real_rename = os.rename

        def no_rename(a, b):
            raise OSError(28, "no space left")

        cardcache.os.rename = no_rename
        try:
            cache = CardCache(root)
            eq(raises(OSError, cache.apply, _page(cache, 2, [(3, 0, REMOVED)])).args[0], 28)
            eq((cache.version, cache.lookup(3)), (1, (1, ACTIVE)))
        finally:
            cardcache.os.rename = real_rename
        eq(_file_digest(root + "/cards.bin"), before)
        eq(sorted(os.listdir(root)), ["cards.bin"])
        eq(cache.apply(_page(cache, 2, [(3, 0, REMOVED)])), 2)
        eq(cache.lookup(3), None)
    finally:
        _rmdir(root)


def test_power_cut_during_apply():
    if MICROPYTHON:
        dev = _RAMBlocks(512, 40)  # stands for the flash: outside the 96 KB
        ballast = _as_if_96k(len(dev.data))  # noqa: F841 (held to the end)
        _power_cut_littlefs(dev)
    else:
        _power_cut_posix()


def _card(i):
    # Spread over 19 digits, many past 2**62 (big ints on both runtimes' small-int limit).
    return 4000000000000000000 + i * 55555555555555


def _cards(n):
    for i in range(n):
        yield (_card(i), i % 7, BLOCKED if i % 101 == 0 else ACTIVE)


def _as_if_96k(outside=0):
    """Ballast that leaves this test the free heap it would have in a 96 KB heap.

    Small pieces, taken first-fit, fill the holes the import left, as live objects
    would; what stays free is 96 KB minus everything live now but `outside` bytes
    (what stands for the flash).
    """
    if not MICROPYTHON:
        return None
    gc.collect()
    target = scaled(96 * 1024) - (gc.mem_alloc() - outside)
    chain = None  # linked pieces: no list that would need a large block itself
    while gc.mem_free() > target:
        chain = (chain, bytearray(64))
    return chain


def _scattered(n):
    """500 changes spread over the directory of _cards(n): blocks, removals, new cards."""
    for i in range(0, n, 200):
        if i % 400 == 0:
            yield (_card(i), 6, BLOCKED)  # was there: blocked
        elif i % 600 == 0:
            yield (_card(i), 0, REMOVED)  # was there: removed
        else:
            yield (_card(i) + 1, 3, ACTIVE)  # new, between two cards


def _heap_used(collect=True):
    if collect:
        gc.collect()
    if MICROPYTHON:
        return gc.mem_alloc()
    import tracemalloc

    return tracemalloc.get_traced_memory()[0]


def test_hundred_thousand_cards():
    # A reader receives pages into buffers allocated once, at start-up.
    page_buf = bytearray(_PAGE_BUF)
    records_buf = bytearray(_PAGE_ENTRIES * 10)
    ballast = _as_if_96k()  # noqa: F841 (held to the end)
    if not MICROPYTHON:
        import tracemalloc

        tracemalloc.start()
    n = 100000
    root = _tmpdir()
    try:
        t = ticks_us()
        eq(build(root, _cards(n), 77), n)
        build_ms = ticks_diff(ticks_us(), t) // 1000
        eq(os.stat(root + "/cards.bin")[6], 16 + 10 * n, "file size")

        before = _heap_used()
        cache = CardCache(root)
        object_bytes = _heap_used() - before
        eq((cache.version, cache.count), (77, n))

        for i in list(range(0, n, 997)) + [n - 1]:
            eq(cache.lookup(_card(i)), (i % 7, BLOCKED if i % 101 == 0 else ACTIVE), str(i))
            eq(cache.lookup(_card(i) + 1), None, str(i))
        texts = [str(_card(i)) for i in range(0, n, 1999)]
        read = [t.encode() for t in texts]  # card numbers as a card read gives them
        if MICROPYTHON:
            # find() on the card-read path allocates nothing at all.
            found = 0
            heap_lock()
            try:
                for card in read:
                    found += cache.find(card) >= 0
            finally:
                heap_unlock()
            eq(found, len(read))
        before = _heap_used()
        t = ticks_us()
        for card in read:
            cache.lookup(card)
        lookup_us = ticks_diff(ticks_us(), t) // len(read)
        per_lookup = (_heap_used(False) - before) // len(read)
        before = _heap_used()
        for card in texts:
            cache.lookup(card)
        per_text_lookup = (_heap_used(False) - before) // len(texts)
        print("100k cards: build %d ms; CardCache object %d bytes; lookup %d us, allocating"
              " %d bytes (card number as bytes) or %d (as text)"
              % (build_ms, object_bytes, lookup_us, per_lookup, per_text_lookup))
        if MICROPYTHON:
            assert object_bytes <= 8192, object_bytes
            assert per_lookup <= 32, per_lookup  # the answer tuple only
        texts = read = None

        # A delta of 500 changes scattered over the whole directory, received into the
        # page buffer as a reader would.
        size = write_page(page_buf, 77, 78, _scattered(n))
        t = ticks_us()
        eq(cache.apply(parse_page(page_buf, 77, len(page_buf), size, records_buf)), 78)
        apply_ms = ticks_diff(ticks_us(), t) // 1000
        count = n
        for card, tier, status in _scattered(n):
            eq(cache.lookup(card), None if status == REMOVED else (tier, status), str(card))
            count += 1 if status == ACTIVE else -1 if status == REMOVED else 0
        eq(cache.count, count)
        eq(cache.lookup(_card(1)), (1, ACTIVE))
        eq(cache.lookup(_card(n - 1)), ((n - 1) % 7, ACTIVE))
        print("100k cards: 500-entry page (%d bytes) parsed and applied in %d ms" % (size, apply_ms))
        cache.close()
    finally:
        _rmdir(root)


def test_paged_full_load_of_hundred_thousand_cards():
    # A reader receives pages into buffers allocated once, at start-up.
    page_buf = bytearray(_PAGE_BUF)
    records_buf = bytearray(_PAGE_ENTRIES * 10)
    ballast = _as_if_96k()  # noqa: F841 (held to the end)
    n = 100000
    per_page = 500
    root = _tmpdir()
    try:
        cache = CardCache(root)
        t = ticks_us()
        worst = 0
        for first in range(0, n, per_page):
            size = write_page(page_buf, cache.version, first // per_page + 1,
                              _cards_slice(first, first + per_page), more=first + per_page < n)
            p = ticks_us()
            cache.apply(parse_page(page_buf, cache.version, len(page_buf), size, records_buf))
            worst = max(worst, ticks_diff(ticks_us(), p))
        total_ms = ticks_diff(ticks_us(), t) // 1000
        eq((cache.version, cache.count), (n // per_page, n))
        for i in range(0, n, 4999):
            eq(cache.lookup(_card(i)), (i % 7, BLOCKED if i % 101 == 0 else ACTIVE), str(i))
        print("full load of %d cards in pages of %d: %d ms in all, slowest page %d ms"
              % (n, per_page, total_ms, worst // 1000))
        cache.close()
    finally:
        _rmdir(root)


def _cards_slice(start, stop):
    for i in range(start, stop):
        yield (_card(i), i % 7, BLOCKED if i % 101 == 0 else ACTIVE)
