# heapsize: 104k
"""The reader's small parts, each on real files in a temporary folder: day totals, the
display's words, the till line reader, the rules store and atomic file writes (the sync
client's backoff: test_backoff.py).

Each part is imported by the tests that use it: all of them at once (the rules store
brings the engine) would leave too little of the 96 KB heap, in holes too small for
the line reader's chunks.
"""
import os

from check import eq, raises
from protocol import canonical
from protocol.errors import RulesError, TillError, known
from protocol import errortexts  # noqa: F401 (as the reader does at boot: known() needs the texts)
from tmpfs import rmtree, temp_dir

import daytotals
import fsutil
from daytotals import DayTotals

DAY = 86400
NOON = 20700 * DAY + DAY // 2  # 2026-09-05 12:00 UTC
GOLD, SILVER, NEW = "6001000000000042", "6001000000000017", "6001000000000555"
# two card numbers whose 30-bit keys collide (found by search; the test checks it)
TWIN_A, TWIN_B = "6001170316864393", "6001471371989475"


def _rules(version=3, card_day_max=20000):
    return {"version": version, "default_tier": 0,
            "tiers": [{"id": 0, "code": "base", "bp": 200}, {"id": 2, "code": "gold", "bp": 500}],
            "promotions": [{"id": "LATTE10", "kind": "category", "category": "dairy", "bp": 1000}],
            "limits": {"receipt_max_cents": 5000},
            "offline": {"receipt_max_cents": 5000, "card_day_max_cents": card_day_max, "stale_hours": 48}}


class Folder:
    def __enter__(self):
        self.root = temp_dir("parts-")
        return self.root

    def __exit__(self, *exc):
        rmtree(self.root)


def _files(root):
    return sorted(os.listdir(root))


# -- day totals ------------------------------------------------------------------------

def test_day_totals_per_card_per_day():
    with Folder() as root:
        days = DayTotals(root + "/days.json")
        eq(days.used(GOLD, NOON), 0, "nothing yet")
        days.add(GOLD, 120, NOON, seq=1)
        days.add(SILVER, 45, NOON + 60, seq=2)
        days.add(GOLD, 30, NOON + 120, seq=3)
        eq((days.used(GOLD, NOON + 180), days.used(SILVER, NOON + 180), days.used(NEW, NOON + 180)),
           (150, 45, 0), "per card")
        # midnight: a new day, every card starts again from nothing
        tomorrow = NOON + DAY // 2 + 1
        eq((days.used(GOLD, tomorrow), days.used(SILVER, tomorrow)), (0, 0), "next day")
        days.add(GOLD, 70, tomorrow, seq=4)
        # a record of yesterday counted late (at start-up, from the journal) changes nothing
        days.add(GOLD, 500, NOON, seq=5, replay=True)
        eq(days.used(GOLD, tomorrow + 60), 70, "yesterday's record ignored")
        # a live sale with the clock a day behind counts all the same, in the latest day
        days.add(GOLD, 200, NOON, seq=6)
        eq(days.used(GOLD, tomorrow + 60), 270, "a sale while the clock is behind")


def test_day_totals_saved_and_reloaded():
    with Folder() as root:
        path = root + "/days.json"
        days = DayTotals(path)
        days.add(GOLD, 120, NOON, seq=1)
        days.add(SILVER, 45, NOON, seq=2)
        days.add(GOLD, 30, NOON, seq=3)
        days.save(3)  # before the journal deletes records 1..3
        eq(_files(root), ["days.json"], "one file, no temporary left")
        again = DayTotals(path)
        eq((again.used(GOLD, NOON + 60), again.used(SILVER, NOON + 60)), (150, 45), "reloaded")
        # start-up recount from the journal: records up to 3 are in the file already
        for seq in (1, 2, 3):
            again.add(GOLD, 1000, NOON, seq=seq, replay=True)
        again.add(GOLD, 10, NOON, seq=4, replay=True)
        eq(again.used(GOLD, NOON + 60), 160, "only seq 4 counted again")
        # a later save with a lower ack never lowers what was counted
        again.save(2)
        third = DayTotals(path)
        third.add(GOLD, 1000, NOON, seq=3, replay=True)
        third.add(GOLD, 5, NOON, seq=5, replay=True)
        eq(third.used(GOLD, NOON + 60), 165, "upto kept at 3")
        # reloaded on the next day: yesterday's totals do not count
        eq(DayTotals(path).used(GOLD, NOON + DAY), 0, "file of yesterday")


def test_day_totals_damaged_file_starts_afresh():
    with Folder() as root:
        path = root + "/days.json"
        good = canonical.encode({"cards": [[daytotals._key(GOLD), 150]], "day": NOON // DAY, "upto": 7})
        for data in (good[:-3], b"\x00" * 16, b"[]", b"17", b'{"day":1}',
                     canonical.encode({"cards": [[1]], "day": NOON // DAY, "upto": 7}),
                     canonical.encode({"cards": [[[1], 2]], "day": NOON // DAY, "upto": 7}),
                     canonical.encode({"cards": [[daytotals._key(GOLD), "150"]], "day": NOON // DAY, "upto": 7}),
                     canonical.encode({"cards": [], "day": NOON // DAY, "upto": "7"}),
                     canonical.encode({"cards": [], "day": "today", "upto": 7})):
            fsutil.write_atomic(path, data)
            days = DayTotals(path)
            # counting goes on as on a fresh reader, without a crash now or later
            days.add(GOLD, 40, NOON, seq=8)
            eq(days.used(GOLD, NOON), 40, "after damaged file %r" % (data,))
            days.save(8)
        fsutil.write_atomic(path, good)
        eq(DayTotals(path).used(GOLD, NOON), 150, "the good file")


def test_day_totals_collisions_are_conservative():
    eq(daytotals._key(TWIN_A), daytotals._key(TWIN_B), "the two cards share a key")
    assert daytotals._key(GOLD) != daytotals._key(TWIN_A)
    with Folder() as root:
        days = DayTotals(root + "/days.json")
        days.add(TWIN_A, 300, NOON, seq=1)
        # the twin has spent nothing, but is counted as having spent the 300: the per-card
        # limit bites earlier for both, never later
        eq(days.used(TWIN_B, NOON), 300, "twin")
        days.add(TWIN_B, 50, NOON, seq=2)
        eq(days.used(TWIN_A, NOON), 350, "shared counter")


def test_day_totals_full_table():
    # beyond MAX_CARDS a new card counts as having used its whole limit; shrunk for the
    # test (4096 entries would not fit the test heap beside everything else)
    keep = daytotals.MAX_CARDS
    daytotals.MAX_CARDS = 3
    try:
        with Folder() as root:
            days = DayTotals(root + "/days.json")
            for i, card in enumerate((GOLD, SILVER, TWIN_A)):
                days.add(card, 10 + i, NOON, seq=i + 1)
            assert days.used(NEW, NOON) >= 1000000000, "a fourth card of the day"
            eq(days.used(SILVER, NOON), 11, "a card already counted")
            eq(days.used(NEW, NOON + DAY), 0, "a new day empties the table")
    finally:
        daytotals.MAX_CARDS = keep


# -- display ---------------------------------------------------------------------------

def test_euro_formatting():
    from display import euro

    for cents, text in ((0, "EUR 0,00"), (5, "EUR 0,05"), (99, "EUR 0,99"), (100, "EUR 1,00"),
                        (320, "EUR 3,20"), (123456, "EUR 1234,56"), (-5, "EUR -0,05"),
                        (-320, "EUR -3,20"), (-100, "EUR -1,00")):
        eq(euro(cents), text, "euro(%d)" % cents)


def test_display_italian_by_default():
    from display import Screen

    screen = Screen()
    eq(screen.lines, ("Pronto", ""), "at start")
    eq(screen.show("discount", amount=320), ("Sconto applicato", "EUR 3,20"), "discount")
    eq(screen.lines, ("Sconto applicato", "EUR 3,20"), "lines kept for the display task")
    eq(screen.show("tap_card", amount=1997), ("Avvicinare carta", "Tot. EUR 19,97"), "tap card")
    # a saving of nothing is still an amount, not an empty line
    eq(screen.show("committed", amount=0), ("Grazie! Sconto", "EUR 0,00"), "committed 0")
    eq(screen.show("returned", amount=45), ("Sconto stornato", "EUR 0,45"), "return")
    eq(screen.show("no_discount", reason="card.blocked"), ("Nessuno sconto", "Carta bloccata"), "reason")
    eq(Screen("fr").show("ready"), ("Pronto", ""), "an unknown language falls back to Italian")


def test_display_english_by_config():
    from display import Screen

    screen = Screen("en")
    eq(screen.lines, ("Ready", ""), "at start")
    eq(screen.show("discount", amount=320), ("Discount applied", "EUR 3,20"), "discount")
    eq(screen.show("no_discount", reason="card.blocked"), ("No discount", "Card blocked"), "reason")
    eq(screen.show("error", reason="till.checksum"), ("Error", "Till message checksum mismatch"), "error")
    # a code the table does not know is shown as it is rather than hidden
    eq(screen.show("error", reason="x.new_code"), ("Error", "x.new_code"), "unknown code")


def test_display_every_message_in_both_languages():
    import display
    from display import Screen

    for lang in ("it", "en"):
        screen = Screen(lang)
        for key in display.TEXTS:
            top, bottom = screen.show(key, amount=150, reason="disc.no_rules")
            assert top and "{" not in top + bottom, (lang, key, top, bottom)
    it, en = Screen("it"), Screen("en")
    for key in display.TEXTS:
        assert it.show(key)[0] != en.show(key)[0], key


def test_display_lines_fit_16_characters():
    import display
    from display import Screen

    for lang in ("it", "en"):
        screen = Screen(lang)
        for key in display.TEXTS:
            for amount in (0, 5, 99999, 999999):
                top, bottom = screen.show(key, amount=amount)
                assert len(top) <= 16 and len(bottom) <= 16, (lang, key, top, bottom)


# -- line reader -----------------------------------------------------------------------

def _line_reader(stream, size):
    from linereader import LineReader

    return LineReader(stream, bytearray(size))


class Stream:
    """A byte stream as the till link gives it: read(n) returns what has arrived, at most n."""

    def __init__(self, chunks):
        self.chunks = list(chunks)
        self.asked = []

    async def read(self, n):
        import asyncio

        self.asked.append(n)
        await asyncio.sleep(0)
        if not self.chunks:
            return b""
        chunk = self.chunks.pop(0)
        if len(chunk) > n:
            self.chunks.insert(0, chunk[n:])
            chunk = chunk[:n]
        return chunk


def _read_all(reader):
    """Every readline() result until end of stream: lines, and the codes of errors."""
    import asyncio

    async def run():
        out = []
        while True:
            try:
                line = await reader.readline()
            except TillError as e:
                out.append(e.code)
                continue
            out.append(line)
            if not line:
                return out

    return asyncio.run(run())


def test_line_reader_lines_split_across_chunks():
    stream = Stream([b'{"type":', b'"status"}*31265AE3', b"\nsecond li", b"ne\nthi", b"rd\n"])
    eq(_read_all(_line_reader(stream, 64)),
       [b'{"type":"status"}*31265AE3', b"second line", b"third", b""], "lines")
    assert max(stream.asked) <= 512, stream.asked


def test_line_reader_many_lines_in_one_chunk():
    stream = Stream([b"a\nbb\nccc\n", b"dddd\n"])
    eq(_read_all(_line_reader(stream, 8)), [b"a", b"bb", b"ccc", b"dddd", b""], "lines")


def test_line_reader_line_at_limit_and_over():
    # 16 bytes fit a 16-byte buffer; 17 do not
    stream = Stream([b"x" * 16 + b"\n", b"y" * 17 + b"\n", b"ok\n"])
    eq(_read_all(_line_reader(stream, 16)), [b"x" * 16, "till.too_long", b"ok", b""], "limit")


def test_line_reader_skips_over_long_line_and_reads_the_next():
    # a line of 3000 bytes arriving in pieces (several reads), then a good frame in the
    # same chunk as the end of the long one
    frame = b'{"type":"status"}*31265AE3'
    chunks = [b"garbage " * 100, b"g" * 1400, b"end of noise\n" + frame + b"\n"]
    reader = _line_reader(Stream(chunks), 1024)
    got = _read_all(reader)
    eq(got, ["till.too_long", frame, b""], "after the long line")
    import asyncio

    e = raises(TillError, asyncio.run, _line_reader(Stream([b"z" * 2000 + b"\n"]), 100).readline())
    assert known(e.code) and e.code == "till.too_long", e
    # two long lines in a row, each reported once
    eq(_read_all(_line_reader(Stream([b"a" * 30 + b"\n" + b"b" * 30 + b"\nc\n"]), 10)),
       ["till.too_long", "till.too_long", b"c", b""], "two long lines")


def test_line_reader_end_of_stream():
    eq(_read_all(_line_reader(Stream([]), 16)), [b""], "nothing at all")
    # a last line without its LF is incomplete: not handed over as a message
    eq(_read_all(_line_reader(Stream([b"done\n", b"half a li"]), 16)),
       [b"done", b""], "unterminated tail")


def test_line_reader_empty_lines_are_not_end_of_stream():
    # the till task takes b"" for a closed link and reconnects, dropping what it had read:
    # an empty line (a bare LF from the till) must not look like that
    frame = b'{"type":"status"}*31265AE3'
    eq(_read_all(_line_reader(Stream([b"\n" + frame + b"\n\n\n", b"\nnext\n"]), 64)),
       [frame, b"next", b""], "empty lines")


# -- rules store -----------------------------------------------------------------------

def test_rules_store_replace_validates_and_persists():
    from rulesstore import RulesStore

    with Folder() as root:
        path = root + "/rules.json"
        store = RulesStore(path)
        eq((store.rules, store.version, store.last_sync, store.error), (None, 0, None, None), "no file")
        store.replace(_rules(3), NOON)
        eq((store.version, store.last_sync), (3, NOON), "replaced")
        again = RulesStore(path)
        eq((again.rules, again.version, again.last_sync, again.error), (_rules(3), 3, NOON, None), "reloaded")
        # invalid rules: refused by name, and the old ones stay, in RAM and on flash
        bad = _rules(4)
        bad["tiers"] = []
        e = raises(RulesError, store.replace, bad, NOON + 60)
        eq((e.code, e.field), ("rules.format", "tiers"), "refusal")
        bad = _rules(4)
        bad["default_tier"] = 7
        eq(raises(RulesError, store.replace, bad, NOON + 60).field, "default_tier", "refusal")
        eq((store.version, store.last_sync), (3, NOON), "old rules kept")
        eq((RulesStore(path).version, RulesStore(path).last_sync), (3, NOON), "old file kept")
        # a successful sync without new rules moves only the time: at once in RAM, on
        # flash at most every 5 minutes (a reboot then believes the sync older, not newer)
        store.synced(NOON + 120)
        eq(store.last_sync, NOON + 120, "synced, in RAM")
        eq((RulesStore(path).version, RulesStore(path).last_sync), (3, NOON), "not yet on flash")
        store.synced(NOON + 400)
        eq((RulesStore(path).version, RulesStore(path).last_sync), (3, NOON + 400), "synced, on flash")
        store.replace(_rules(4), NOON + 480)
        eq((RulesStore(path).version, RulesStore(path).last_sync), (4, NOON + 480), "newer rules")
        eq(_files(root), ["rules.json", "rules.json.synced"], "no temporary left")


def test_rules_store_damaged_file_means_no_rules():
    from rulesstore import RulesStore

    with Folder() as root:
        path = root + "/rules.json"
        good = canonical.encode({"rules": _rules(3), "last_sync": NOON})
        wrong = _rules(3)
        wrong["offline"]["stale_hours"] = -1
        for data, code in ((good[:len(good) // 2], "enc.json"), (b"\xff\xfe\x00\x01", "enc.json"),
                           (b"", "enc.json"), (b"[1,2]", "rules.format"), (b"3", "rules.format"),
                           (b'"rules"', "rules.format"),
                           (canonical.encode({"last_sync": NOON}), "rules.format"),
                           (canonical.encode({"rules": None, "last_sync": NOON}), "rules.format"),
                           (canonical.encode({"rules": [1], "last_sync": NOON}), "rules.format"),
                           (canonical.encode({"rules": wrong, "last_sync": NOON}), "rules.format")):
            fsutil.write_atomic(path, data)
            store = RulesStore(path)
            eq((store.rules, store.version, store.error), (None, 0, code), "file %r" % (data[:40],))
            assert known(store.error), store.error
        # the next sync brings rules again, and the error is over
        store.replace(_rules(5), NOON)
        eq((store.version, store.error), (5, None), "rules again")
        eq(RulesStore(path).version, 5, "on flash")


def test_rules_store_rules_are_what_the_engine_checks():
    from protocol import engine
    from rulesstore import RulesStore

    # the store keeps exactly what engine.check_rules accepts, so a quote can use it
    with Folder() as root:
        store = RulesStore(root + "/rules.json")
        store.replace(_rules(3), NOON)
        q = engine.quote(RulesStore(root + "/rules.json").rules,
                         [{"sku": "1001", "cat": "dairy", "qty": 2, "price": 150}], 2,
                         {"now": NOON, "last_sync": NOON, "card_day_used": 0})
        eq(q["gross"], 300, "quote from reloaded rules")
        assert q["discount"] > 0, q


# -- atomic writes ---------------------------------------------------------------------

def test_write_atomic():
    with Folder() as root:
        path = root + "/state.json"
        eq(fsutil.read_or_none(path), None, "missing file")
        fsutil.write_atomic(path, b'{"a":1}')
        eq(fsutil.read_or_none(path), b'{"a":1}', "written")
        fsutil.write_atomic(path, b'{"a":22222}')
        eq(fsutil.read_or_none(path), b'{"a":22222}', "replaced, not appended")
        fsutil.write_atomic(path, b"")
        eq(fsutil.read_or_none(path), b"", "empty is not missing")
        eq(_files(root), ["state.json"], "no temporary left")
        # a cut during an earlier write left a half temporary: the old file is whole, and
        # the next write goes through
        with open(path + ".tmp", "wb") as f:
            f.write(b'{"a":')
        eq(fsutil.read_or_none(path), b"", "old bytes after the cut")
        fsutil.write_atomic(path, b'{"b":2}')
        eq((fsutil.read_or_none(path), _files(root)), (b'{"b":2}', ["state.json"]), "after the cut")
        eq(fsutil.read_or_none(root), None, "a folder is not a file")
