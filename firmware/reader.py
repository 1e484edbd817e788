"""The reader: build the board and the app, then run the loop for ever (main.py calls run()).

Tasks: the till link (messages in, answers out), the card readers (NFC, and the
contact slot on a board that has one: identities in, quotes out), sync (batches up, rules and directory down), the display and feedback,
and the watchdog. Every task is supervised: an error in a driver or a task is recorded
(shown in the status and the display), and the task starts again after a pause. The
watchdog is fed by a task of its own, which runs only while the asyncio loop turns: a
driver that blocks the loop stops the feeding, and the board resets instead of
leaving the till with a frozen reader.

On the device `main.py` runs at boot and calls `reader.run()`; this module is compiled
to .mpy like the others (a main.py of this size compiled at boot would need its parse
tree in the heap). On the simulated board:
    READER_CONFIG=data/R1/config.json MICROPYPATH=build/mpy:build/mpysim:.frozen micropython build/mpy/main.py
(sim/simboard.py does this; build/mpysim holds the stand-ins, sim/board/).
"""
# The large buffers come first, while the heap is still in one piece: after the imports
# it is fragmented, and an 8 KB block may no longer be found in a 96 KB heap.
JOURNAL_BUFFER = bytearray(8192)  # one journal frame (a record is at most 8 KB)
TILL_BUFFER = bytearray(8192)  # one till line (protocol.till.MAX_FRAME)

import asyncio  # noqa: E402
import gc  # noqa: E402
import os  # noqa: E402

from protocol import till
from protocol.compat import unhexlify
from protocol.errors import DeltaError, JournalError, ProtocolError, TillError

import board as boardmod
from app import Checkout
import cardcache  # noqa: E402
from cardcache import CardCache
from cardkeys import CardKeys
from daytotals import DayTotals
from display import Screen
from drivers.feedback import Feedback
from journal import Journal
from linereader import LineReader
from rulesstore import RulesStore
from syncclient import SyncClient


def _mkdir(path):
    try:
        os.mkdir(path)
    except OSError:
        pass  # already there


class ClosedJournal:
    """Stands in for a journal that recovery found damaged: nothing can be recorded, so
    no discount is granted (app.py asks room_for first); the sale itself goes on."""

    def __init__(self, error):
        self.error = error

    def room_for(self, nbytes):
        return False

    def append(self, record):
        raise self.error

    def records(self, from_seq=0, max_count=50, max_bytes=16384):
        return iter(())

    def ack(self, seq):
        raise self.error

    def stats(self):
        return {"pending": 0, "oldest_t": None, "next_seq": 0, "acked": 0, "used": 0, "capacity": 0,
                "level": self.error.code}


class Reader:
    """Everything one reader runs, wired together."""

    def __init__(self, board):
        self.board = board
        cfg = board.cfg
        _mkdir(board.root)
        try:
            self.journal = Journal(board.path("journal"), capacity=cfg.get("journal_capacity", 512 * 1024),
                                   buffer=JOURNAL_BUFFER)
        except JournalError as e:
            # damage recovery will not guess about (a missing segment, a broken chain): the
            # files stay as they are for a technician, and the reader serves the till
            # without discounts, saying why in every status
            print("[%s] journal damaged (%s): no discounts until it is repaired" % (board.reader, e))
            self.journal = ClosedJournal(e)
        self.rules = RulesStore(board.path("rules.json"))
        _mkdir(board.path("cards"))
        try:
            self.cards = CardCache(board.path("cards"))
        except DeltaError as e:
            # a damaged directory: start it again from version 0; the next sync refills it
            print("[%s] directory damaged (%s): erased, will sync again" % (board.reader, e))
            cardcache.erase(board.path("cards"))
            self.cards = CardCache(board.path("cards"))
        self.days = DayTotals(board.path("days.json"))
        self.keys = CardKeys(board.path("keys.json"), unhexlify(cfg["key"]))
        self._recount_days()
        self.screen = Screen(board.lang)
        self.checkout = Checkout(board.reader, self.journal, self.cards, self.rules, self.days, self.screen)
        self.sync = SyncClient(cfg, self.journal, self.rules, self.cards, self.days, boardmod.now,
                               interval=cfg.get("sync_interval", 30), flash_root=board.root, keys=self.keys)
        self.checkout.sync = self.sync
        self.feedback = Feedback(board.green, board.red, board.buzzer)
        self.till_writer = None
        self.errors = {}  # task name -> count of errors survived
        self.beats = {"till": 0, "cards": 0}

    def _recount_days(self):
        """Add the pending sales the day-totals file has not counted yet."""
        from protocol import canonical

        first = self.journal.stats()["acked"] + 1
        while True:
            last = 0
            for seq, data in self.journal.records(first, 50, 16384):
                rec = canonical.decode(data)
                if rec["kind"] == "sale" and rec["discount"] > 0:
                    self.days.add(rec["card"], rec["discount"], rec["t"], seq, replay=True)
                last = seq
            if not last:
                break
            first = last + 1

    async def send(self, msgs):
        for msg in msgs:
            if self.till_writer is not None:
                self.till_writer.write(till.encode_frame(msg))
                await self.till_writer.drain()

    async def till_task(self):
        reader, self.till_writer = await self.board.till_link()
        lines = LineReader(reader, TILL_BUFFER)
        try:
            while True:
                try:
                    line = await lines.readline()
                    if not line:
                        raise EOFError("till link closed")
                    msg = till.decode_frame(line)
                except TillError as e:
                    await self.send([self.checkout.error(e)])
                    continue
                self.beats["till"] += 1
                await self.send(self.checkout.till(msg, boardmod.now()))
        finally:
            self.till_writer = None

    async def card_task(self):
        await self._read_cards(await self.board.card_reader(self.keys, self.rules))

    async def contact_task(self):
        await self._read_cards(self.board.contact_reader(self.keys, self.rules))

    async def _read_cards(self, cards):
        """Identities from one card reader (NFC or the contact slot) to the checkout."""
        try:
            while True:
                try:
                    identity = await cards.wait_card()
                except ProtocolError as e:
                    await self.send([self.checkout.error(e)])
                    continue
                self.beats["cards"] += 1
                await self.send(self.checkout.card(identity, boardmod.now()))
        finally:
            # the supervisor starts the task again with a new connection to the reader
            cards.close()

    async def display_task(self):
        while True:
            self.board.display.show(self.screen.lines)
            while self.checkout.signals:
                await self.feedback.play(self.checkout.signals.pop(0))
            await asyncio.sleep(0.05)

    async def watchdog_task(self):
        while True:
            self.board.watchdog.feed()
            gc.collect()
            await asyncio.sleep(1)

    async def supervise(self, name, make):
        """Run a task for ever: whatever it raises is counted, shown, and the task restarts."""
        while True:
            try:
                await make()
            except Exception as e:  # the loop must never die: record, show, retry
                self.errors[name] = self.errors.get(name, 0) + 1
                self.checkout.last_error = "%s: %s" % (name, type(e).__name__)
                print("[%s] task %s failed (%s: %s); restarting" % (self.board.reader, name, type(e).__name__, e))
                await asyncio.sleep(1)

    async def run(self):
        tasks = [
            asyncio.create_task(self.supervise("till", self.till_task)),
            asyncio.create_task(self.supervise("cards", self.card_task)),
        ]
        if "contact" in self.board.cfg or "contact_slot" in self.board.cfg:
            tasks.append(asyncio.create_task(self.supervise("contact", self.contact_task)))
        tasks += [
            asyncio.create_task(self.supervise("sync", self.sync.run)),
            asyncio.create_task(self.supervise("display", self.display_task)),
            asyncio.create_task(self.supervise("watchdog", self.watchdog_task)),
        ]
        await asyncio.gather(*tasks)


def run():
    import wifi

    board = boardmod.load()
    # the store's Wi-Fi ("wifi" in the config; nothing on the unix port): a reader that
    # cannot join starts all the same, offline (the station goes on trying by itself) and
    # its sync retries until the network is there. 5 s: the watchdog (8 s) already runs
    try:
        wifi.connect(board.cfg, timeout_ms=5000)
    except ProtocolError as e:
        print("[%s] wifi not configured: %s" % (board.reader, e))
    reader = Reader(board)
    print("[%s] reader up: journal next seq %d, rules v%d, directory v%d" % (
        reader.board.reader, reader.journal.stats()["next_seq"], reader.rules.version, reader.cards.version))
    asyncio.run(reader.run())
