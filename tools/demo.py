"""`make demo`: three readers at the tills of one store, shoppers with loyalty cards,
and a network cut that one reader rides out offline.

Each reader is the real firmware on the MicroPython unix port (simulated board: the till
link and the card reader are TCP streams answered by simulators). They sync over real
HTTP to the reference sync server (tools/syncserver.py; the Flask backend replaces it in
its own issue). Everything lives in data/demo: run it again and the readers' journals,
sequence numbers and the server's records carry on. Ctrl-C stops everything.

    python tools/demo.py [--shoppers 40] [--readers 3]
"""
import argparse
import json
import os
import random
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "shared"), str(ROOT / "tools")]

from protocol import errors  # noqa: E402
from simboard import SimReader, wait_for  # noqa: E402
from syncserver import SyncServer  # noqa: E402

DATA = ROOT / "data" / "demo"

RULES = {
    "version": 1,
    "tiers": [{"id": 0, "code": "base", "bp": 200}, {"id": 1, "code": "silver", "bp": 300},
              {"id": 2, "code": "gold", "bp": 500}],
    "default_tier": 0,
    "promotions": [
        {"id": "LATTE10", "kind": "category", "category": "latticini", "bp": 1000},
        {"id": "CAFFE50", "kind": "sku", "sku": "8001", "cents": 50},
        {"id": "SPESA30", "kind": "threshold", "min_cents": 3000, "cents": 150},
    ],
    "limits": {"receipt_max_cents": 2000},
    "offline": {"receipt_max_cents": 1500, "card_day_max_cents": 5000, "stale_hours": 48},
}

CATALOGUE = [  # sku, category, unit price in cents
    ("1001", "latticini", 149), ("1002", "latticini", 239), ("8001", "caffe", 429),
    ("2001", "panetteria", 99), ("3001", "frutta", 189), ("3002", "frutta", 259),
    ("4001", "pasta", 119), ("5001", "detersivi", 549), ("6001", "bevande", 79),
]


def cards(n=200):
    """(card, tier, status): a few hundred shoppers, two of them blocked."""
    out = []
    for i in range(1, n + 1):
        out.append(("6001%012d" % i, 2 if i % 10 == 0 else (1 if i % 3 == 0 else 0), 1 if i in (13, 77) else 0))
    return out


def keys(readers):
    """Each reader's key, made once and kept in data/demo (a provisioning file stands in for it)."""
    path = DATA / "keys.json"
    known = json.loads(path.read_text()) if path.exists() else {}
    for r in readers:
        known.setdefault(r, os.urandom(32).hex())
    path.write_text(json.dumps(known))
    os.chmod(path, 0o600)
    return known


def basket(rng, receipt):
    lines = []
    for sku, cat, price in rng.sample(CATALOGUE, rng.randint(1, 6)):
        lines.append({"sku": sku, "cat": cat, "qty": rng.randint(1, 4), "price": price})
    return {"type": "basket", "receipt": receipt, "lines": lines}


def euro(cents):
    return "%s%d,%02d EUR" % ("-" if cents < 0 else "", abs(cents) // 100, abs(cents) % 100)


def shop(reader, rng, receipt, all_cards):
    """One shopper at this reader's till; returns a line for the log."""
    reader.till.send(basket(rng, receipt))
    reader.till.expect("ready")
    card = rng.choice(all_cards)[0] if rng.random() < 0.9 else "6001%012d" % rng.randint(900, 999)
    reader.cards.tap(card)
    q = reader.till.expect("quote")
    if rng.random() < 0.08:
        reader.till.send({"type": "void", "quote": q["quote"]})
        reader.till.expect("voided")
        return "%s %s card %s: quote voided at the till" % (reader.reader, receipt, q["card"])
    reader.till.send({"type": "commit", "quote": q["quote"], "paid": q["gross"] - q["discount"]})
    c = reader.till.expect("committed")
    note = (" (" + errors.text(q["note"], "en") + ")") if q["note"] else ""
    return "%s %s card %s tier %d: %s, sconto %s, seq %d%s" % (
        reader.reader, receipt, q["card"], q["tier"], euro(q["gross"]), euro(c["discount"]), c["seq"], note)


def wait_first_sync(reader, server, timeout=30):
    def synced():
        s = reader.status()
        return s["rules"] == RULES["version"] and s["directory"] == server.directory_version

    try:
        wait_for(synced, timeout, every=0.2)
    except AssertionError:
        raise SystemExit("%s did not sync within %d s: see %s" % (reader.reader, timeout, reader.log))


def status_table(readers, server):
    print("\n  reader  pending  journal   last sync error   server has")
    for r in readers:
        s = r.status()
        stored = len(server.stored(r.reader))
        print("  %-6s  %7d  %-8s  %-15s   %d receipts" % (r.reader, s["pending"], s["journal"],
                                                         s["sync_error"] or "-", stored))
    print()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--readers", type=int, default=3)
    ap.add_argument("--shoppers", type=int, default=40, help="shoppers per reader (0: until Ctrl-C)")
    ap.add_argument("--pause", type=float, default=0.2, help="seconds between shoppers")
    args = ap.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    names = ["R%d" % (i + 1) for i in range(args.readers)]
    key = keys(names)
    all_cards = cards()
    server = SyncServer({r: bytes.fromhex(key[r]) for r in names}, rules=RULES, cards=all_cards,
                        store=str(DATA / "server-records.jsonl")).start()
    readers = [SimReader(r, key[r], server.url, DATA / r, sync_interval=2, log=DATA / (r + ".log")) for r in names]
    stop = []
    signal.signal(signal.SIGINT, lambda *a: stop.append(1))
    try:
        print("sync server on %s; readers' flash and logs in %s" % (server.url, DATA))
        for r in readers:
            r.start()
        for r in readers:  # a reader in a shop has synced once before its first shopper
            wait_first_sync(r, server)
        rng = random.Random()
        run = int(time.time())
        cut = readers[1] if len(readers) > 1 else None
        n = 0
        while not stop and (args.shoppers == 0 or n < args.shoppers):
            if cut and n == args.shoppers // 4:
                server.offline.add(cut.reader)
                print("\n*** network cut for %s: it keeps granting discounts offline ***\n" % cut.reader)
            if cut and n == args.shoppers // 2:
                server.offline.discard(cut.reader)
                print("\n*** network back for %s: it catches up ***\n" % cut.reader)
            for r in readers:
                print(shop(r, rng, "%s-%d-%04d" % (r.reader, run % 100000, n), all_cards))
            n += 1
            if n % 10 == 0:
                status_table(readers, server)
            time.sleep(args.pause)
        deadline = time.time() + 30
        pending = -1
        while not stop and time.time() < deadline:
            pending = sum(r.status()["pending"] for r in readers)
            if not pending:
                break
            time.sleep(0.5)
        status_table(readers, server)
        total = sum(len(server.stored(r)) for r in names)
        if pending == 0:
            print("every reader in sync: %d receipts stored at the server, each once" % total)
        else:
            print("%d receipts stored at the server; %s receipts still on the readers (see the logs in %s)"
                  % (total, pending if pending > 0 else "some", DATA))
    finally:
        for r in readers:
            r.stop()
        server.stop()


if __name__ == "__main__":
    main()
