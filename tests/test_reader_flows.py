"""The real firmware on the MicroPython unix port (96 KB heap), driven by the simulated till
and card reader, syncing over real HTTP on loopback to the reference sync server.
"""
import time

import pytest

from loyalty.testing import shop
from loyalty.protocol import engine
from loyalty.protocol.till import encode_frame
from loyalty.sim.simboard import SimReader, wait_for
from loyalty.testing.syncserver import SyncServer




@pytest.fixture
def server():
    key = shop.key_hex()
    srv = SyncServer(readers={"R1": bytes.fromhex(key)}, rules=shop.rules(), cards=shop.CARDS).start()
    srv.key_hex = key
    yield srv
    srv.stop()


@pytest.fixture
def reader(server, tmp_path):
    r = SimReader("R1", server.key_hex, server.url, tmp_path / "R1", sync_interval=1,
                  log=tmp_path / "R1.log").start()
    try:
        # the first sync brings rules and directory
        wait_for(lambda: r.status()["directory"] == server.directory_version and r.status()["rules"] == 3,
                 timeout=60, what="first sync")
        yield r
    finally:
        r.stop()




def sell(r, card, receipt="T1-0001"):
    r.till.send(shop.basket(receipt))
    r.till.expect("ready")
    r.cards.tap(card)
    q = r.till.expect("quote")
    r.till.send({"type": "commit", "quote": q["quote"], "paid": q["gross"] - q["discount"]})
    c = r.till.expect("committed")
    return q, c


def test_gold_card_sale_is_discounted_journaled_and_synced_once(server, reader):
    q, c = sell(reader, shop.GOLD)
    want = engine.quote(shop.rules(), shop.basket()["lines"], 2,
                        {"now": int(time.time()), "last_sync": int(time.time()), "card_day_used": 0})
    assert q["discount"] == want["discount"] > 0 and q["disc"] == want["disc"]
    assert c["seq"] == 1 and c["discount"] == q["discount"]
    rec = wait_for(lambda: server.stored("R1").get(1), what="record 1 at the server")
    assert rec["card"] == shop.GOLD and rec["discount"] == q["discount"] and rec["kind"] == "sale"
    wait_for(lambda: reader.status()["pending"] == 0, what="journal released after ack")


def test_blocked_and_unknown_cards(server, reader):
    reader.till.send(shop.basket())
    reader.till.expect("ready")
    reader.cards.tap(shop.BLOCKED)
    q = reader.till.expect("quote")
    assert q["discount"] == 0 and q["note"] == "card.blocked"
    reader.till.send({"type": "void", "quote": q["quote"]})
    assert reader.till.expect("voided")["seq"] == 1
    reader.till.send(shop.basket("T1-0002"))
    reader.till.expect("ready")
    reader.cards.tap(shop.UNKNOWN)
    q = reader.till.expect("quote")
    assert q["note"] == "card.unknown" and q["tier"] == 0 and q["discount"] > 0


def test_bad_till_input_gets_named_errors_and_leaves_journal_alone(server, reader):
    sell(reader, shop.GOLD)
    before = reader.status()
    good = encode_frame(shop.basket())
    cases = [
        (b"garbage without frame\n", "till.frame"),
        (good[:-12] + b"\n", "till.frame"),  # truncated
        (good.replace(b'"qty":2', b'"qty":3'), "till.checksum"),  # a flipped digit
        (b"x" * 9000 + b"\n", "till.too_long"),
        (encode_frame({"type": "launch"}), "till.type"),
        (encode_frame({"type": "basket", "receipt": "T", "lines": [{"sku": "1", "cat": "c", "qty": 0, "price": 1}]}),
         "till.field lines[0].qty"),
        (encode_frame({"type": "commit", "quote": "Q99", "paid": 1}), "till.state"),
    ]
    for raw, code in cases:
        reader.till.send_raw(raw)
        err = reader.till.expect("error")
        assert " ".join(filter(None, (err["code"], err["field"] if " " in code else ""))) == code, (raw[:60], err)
        assert err["text"]
    after = reader.status()
    assert after["next_seq"] == before["next_seq"] and reader.alive()
    assert "restarting" not in reader.log.read_text()  # errors were answered, no task died
    q, c = sell(reader, shop.SILVER, "T1-0003")
    assert c["seq"] == before["next_seq"]


def test_power_cut_keeps_every_committed_receipt_and_seq_goes_on(server, reader, tmp_path):
    server.offline.add("R1")  # nothing leaves the reader while we sell
    seqs = [sell(reader, shop.GOLD, "T1-%04d" % i)[1]["seq"] for i in range(5)]
    assert seqs == [1, 2, 3, 4, 5]
    reader.power_cut()
    reader.start()
    assert reader.status()["next_seq"] == 6 and reader.status()["pending"] == 5
    server.offline.discard("R1")
    wait_for(lambda: reader.status()["pending"] == 0, what="catch-up after power cut")
    stored = server.stored("R1")
    assert sorted(stored) == [1, 2, 3, 4, 5]
    assert [stored[s]["receipt"] for s in range(1, 6)] == ["T1-%04d" % i for i in range(5)]
    assert sell(reader, shop.GOLD, "T1-0099")[1]["seq"] == 6


def test_network_cut_then_catch_up_exactly_once(server, reader):
    server.offline.add("R1")
    for i in range(12):
        sell(reader, shop.SILVER if i % 2 else shop.GOLD, "T2-%04d" % i)
    assert reader.status()["pending"] == 12
    assert server.stored("R1") == {}
    server.offline.discard("R1")
    wait_for(lambda: reader.status()["pending"] == 0, timeout=60, what="catch-up")
    stored = server.stored("R1")
    assert sorted(stored) == list(range(1, 13))
    assert sum(r["discount"] for r in stored.values()) > 0


def test_return_reverses_discount_exactly(server, reader):
    q, c = sell(reader, shop.GOLD)
    sale = {"lines": shop.basket()["lines"], "disc": q["disc"], "card": shop.GOLD, "tier": 2}
    reader.till.send({"type": "return", "seq": c["seq"], "sale": sale, "qty": [1, 0, 0]})
    r1 = reader.till.expect("returned")
    reader.till.send({"type": "return", "seq": c["seq"], "sale": sale, "qty": [1, 1, 3], "returned": [1, 0, 0]})
    r2 = reader.till.expect("returned")
    assert r1["discount"] + r2["discount"] == -q["discount"]
    assert r1["gross"] + r2["gross"] == -q["gross"]
    reader.till.send({"type": "return", "seq": c["seq"], "sale": sale, "qty": [1, 0, 0], "returned": [2, 1, 3]})
    assert reader.till.expect("error")["code"] == "disc.return_exceeds"


def test_card_reader_faults_are_survived(server, reader):
    reader.till.send(shop.basket())
    reader.till.expect("ready")
    reader.cards.send_raw(b"\x00\xffnot an identity\n")  # a garbled read
    err = reader.till.expect("error")
    assert err["code"] == "card.unreadable"
    reader.cards.conn.close()  # the card reader goes away: its task fails and starts again
    reader.cards.conn = None
    reader.cards.connection()  # the firmware reconnects
    reader.cards.tap(shop.GOLD)
    q = reader.till.expect("quote")
    assert q["discount"] > 0
    assert "task cards failed" in reader.log.read_text()
    reader.till.send({"type": "status"})
    assert reader.till.expect("status")["state"] == "quoted"


def test_a_hanging_backend_never_blocks_the_till(server, reader):
    # the server takes the reader's requests and never answers: the sync task waits (up
    # to its timeout) while the till is served as usual
    assert reader.status()["sync_error"] == ""
    server.hang.add("R1")
    wait_for(lambda: server.held.get("R1"), what="a sync round of R1 stuck waiting")
    t0 = time.time()
    for i in range(3):
        sell(reader, shop.GOLD, "T9-%d" % i)
    took = time.time() - t0
    s = reader.status()
    # sold while the stuck request still waited: a reader whose loop it blocked would have
    # served the till only once it gave up on it (httpclient's 10 s), with sync.network
    assert s["sync_error"] == "", "three receipts took %.1f s, sync %r" % (took, s["sync_error"])
    assert s["pending"] == 3
    server.hang.discard("R1")
    wait_for(lambda: reader.status()["pending"] == 0, timeout=40, what="catch-up after the hang")
    assert sorted(server.stored("R1")) == [1, 2, 3]


def test_new_reader_loads_a_large_directory_then_follows_deltas(tmp_path):
    key = shop.key_hex()
    cards = [("6002%012d" % (i * 3), i % 3, 0) for i in range(2500)]  # 13 pages of 200
    srv = SyncServer(readers={"R9": bytes.fromhex(key)}, rules=shop.rules(), cards=cards).start()
    r = SimReader("R9", key, srv.url, tmp_path / "R9", sync_interval=1, log=tmp_path / "R9.log").start()
    try:
        wait_for(lambda: r.status()["directory"] == srv.directory_version, timeout=60, what="full load")
        size = (tmp_path / "R9" / "flash" / "cards" / "cards.bin").stat().st_size
        assert size == 16 + 10 * 2500  # one file, every card once
        srv.set_cards([(cards[1234][0], 1, 1)])  # head office blocks one card
        wait_for(lambda: r.status()["directory"] == srv.directory_version, what="delta")
        r.till.send(shop.basket())
        r.till.expect("ready")
        r.cards.tap(cards[1234][0])
        assert r.till.expect("quote")["note"] == "card.blocked"
        r.till.send(shop.basket("T1-0002"))
        r.till.expect("voided")
        r.till.expect("ready")
        r.cards.tap(cards[2499][0])
        q = r.till.expect("quote")
        assert (q["tier"], q["note"]) == (cards[2499][1], "")
    finally:
        r.stop()
        srv.stop()


def test_a_damaged_journal_stops_discounts_not_the_till(server, reader, tmp_path):
    server.offline.add("R1")  # keep the records on the reader
    for i in range(3):
        sell(reader, shop.GOLD, "T7-%d" % i)
    reader.power_cut()
    journal = tmp_path / "R1" / "flash" / "journal"
    seg = sorted(journal.glob("*.seg"))[0]
    data = bytearray(seg.read_bytes())
    data[20] ^= 0x01  # a bit flips inside the first receipt, good ones follow: not a torn write
    seg.write_bytes(bytes(data))
    reader.start()
    s = reader.status()
    assert s["journal"] == "journal.corrupt"
    q, c = sell(reader, shop.GOLD, "T7-9")
    assert (q["discount"], q["note"]) == (0, "disc.journal_full")
    assert (c["seq"], c["discount"]) == (0, 0)
    assert "journal damaged" in reader.log.read_text()
