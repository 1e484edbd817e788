"""The NFC benchmark of `make bench` (issue 4): per card kind, the firmware's time from
"target found" to "discount decided" on the MicroPython unix port, and the bytes each
kind puts on the wire (host <-> PN532 over HSU, reader <-> card over RF).

    .venv/bin/python bench/nfc_bench.py [--reads 200]

How (bench/mp_nfc.py is the MicroPython side):
1. The firmware's card path (nfcreader's _Tag, cardread.identify, the PN532 driver over
   HSU, then engine.quote of bench/mp_receipt.py's 30-line basket) runs once per card
   against sim/pn532sim.py over a socket UART, and the exchange is recorded: the bytes
   each write() was answered with. The applet kinds get a fixed nonce, so that...
2. ...the recording can be replayed many times through an in-memory UART: each answer is
   there right after its write, so the timed part is the firmware alone, not the
   simulator, the socket or the chip. Median and p90 per kind; the baseline, measured in
   the same run, is the quote alone, and ratio = card time / quote time.
3. Bytes: from the simulator's log (per command: bytes in, bytes out), checked against the
   driver's own counters, from poll's InListPassiveTarget to the last InRelease. RF bytes
   are the card commands and answers inside InDataExchange / InCommunicateThru, parsed
   from the recorded frames. Times on the wire are ESTIMATES, not measurements:
     HSU at 115200 baud, 10 bits per byte (start, 8 data, stop);
     RF at 106 kbit/s (fc/128 = 105.9 kbit/s), 9 bits per byte (8 + odd parity), with
     CRC_A (2 bytes) on every frame and the ISO-DEP PCB byte on every I-block, plus
     0.1 ms per exchange for SOF/EOF and the frame delay times. Not counted: the RF
     activation inside InListPassiveTarget (REQA, anticollision, SELECT, RATS), the
     PN532's own processing and the card's (a phone's app can take tens of ms to answer).
4. The NTAG originality signature check alone (ntagsig.verify, ECDSA secp128r1).

The times are this machine's unix port; the ESP32 is some 10-30 times slower per
bytecode, so the ESP32 column multiplies by 10 and by 30: a range to judge by, not a
measurement. The issue asks for "a few tens of milliseconds" per card on the ESP32 and
gives no other target.
"""
import argparse
import subprocess
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from loyalty.testing import runtimes
from loyalty.sim.cardmodels import AppletCard, NtagCard, PhoneCard, UidCard
from loyalty.sim.pn532sim import PN532Sim
from loyalty.protocol import loyaltycard

# as bench/run.py: the card path alone fits the smaller heap, and a GC sweep costs in
# proportion to the heap
HEAP = "192k"
READS = 200  # replays per card kind
WATCHDOG = 180  # seconds: a MicroPython side that hangs is killed, and the bench says so

ISSUER = bytes(range(0x40, 0x60))  # the same key as bench/mp_nfc.py's ISSUER (epoch 1)
REAL_UID = bytes.fromhex("04ab87f2ca1190")  # a genuine NTAG and its NXP signature (tests/mpy/test_ntagsig.py)
REAL_SIG = bytes.fromhex("67b1750bcceb1174f9a33bf20e0226551a6366939b31f949848c3c087350fa90")
LEGACY_UID = bytes.fromhex("5a3c9e71")

HSU_BAUD = 115200
HSU_BITS = 10
RF_RATE = 13.56e6 / 128  # bit/s, ISO/IEC 14443 type A at 106 kbit/s
RF_BITS = 9
RF_FRAME_MS = 0.1
CRC_A = 2
PCB = 1

IN_DATA_EXCHANGE = 0x40
IN_COMMUNICATE_THRU = 0x42
IN_LIST_PASSIVE_TARGET = 0x4A
IN_RELEASE = 0x52


def kinds():
    """(name, label, card model, card number, check the signature) per card kind."""
    uid7 = bytes.fromhex("04215a3b4c5d6e")
    return [
        ("ntag", "NTAG215, loyalty record", NtagCard.loyalty("6001000000000042", 1, ISSUER, uid7),
         "6001000000000042", False),
        ("ntag_sig", "NTAG215 + signature check",
         NtagCard.loyalty("6001000000000017", 1, ISSUER, REAL_UID, signature=REAL_SIG), "6001000000000017", True),
        ("phone", "phone (applet, random UID)", PhoneCard("6001000000000555", 1, ISSUER), "6001000000000555", False),
        ("javacard", "JavaCard (applet, fixed UID)",
         AppletCard(bytes.fromhex("04aa55aa55aa55"), card="6001000000000099", epoch=1, issuer_key=ISSUER),
         "6001000000000099", False),
        ("uid", "legacy UID card", UidCard(LEGACY_UID), loyaltycard.uid_card(LEGACY_UID), False),
    ]


# -- frames on the recorded wire (UM0701-02 6.2.1), parsed here on their own -------------------
def frames(data):
    """The information frames in a byte stream: (TFI, data) pairs; ACK/NACK/preambles skipped."""
    out = []
    i = 0
    while True:
        i = data.find(b"\x00\xff", i)
        if i < 0 or i + 4 > len(data):
            return out
        ln, lcs = data[i + 2], data[i + 3]
        if (ln, lcs) in ((0x00, 0xFF), (0xFF, 0x00)):  # ACK, NACK
            i += 4
            continue
        if ln == 0xFF and lcs == 0xFF:  # extended: LENM LENL LCS
            n, start = (data[i + 4] << 8) | data[i + 5], i + 7
        else:
            n, start = ln, i + 4
        body = data[start:start + n]
        if len(body) == n and n and (sum(body) + data[start + n]) & 0xFF == 0:
            out.append((body[0], bytes(body[1:])))
            i = start + n + 1
        else:
            i += 2


def rf_of(entries):
    """(exchanges, bytes reader->card, bytes card->reader, estimated RF ms) of a recording."""
    count = to_card = from_card = 0
    ms = 0.0
    for out, answer in entries:
        sent = [d for tfi, d in frames(out) if tfi == 0xD4]
        if not sent or sent[0][0] not in (IN_DATA_EXCHANGE, IN_COMMUNICATE_THRU):
            continue
        cmd = sent[0]
        got = [d for tfi, d in frames(answer) if tfi == 0xD5 and d and d[0] == cmd[0] + 1]
        if cmd[0] == IN_DATA_EXCHANGE:
            command, framing = cmd[2:], 2 * (CRC_A + PCB)  # after Tg; ISO-DEP I-blocks
        else:
            command, framing = cmd[1:], 2 * CRC_A
        reply = got[0][2:] if got else b""  # after the status byte
        count += 1
        to_card += len(command)
        from_card += len(reply)
        ms += (len(command) + len(reply) + framing) * RF_BITS / RF_RATE * 1000 + RF_FRAME_MS
    return count, to_card, from_card, ms


# -- the MicroPython side --------------------------------------------------------------------
class Board:
    """bench/mp_nfc.py on the unix port, driven line by line over its stdin and stdout."""

    def __init__(self, port, reads):
        self.proc = subprocess.Popen(
            [runtimes.micropython(), "-X", "heapsize=" + HEAP, str(ROOT / "bench" / "mp_nfc.py"),
             str(port), str(reads)],
            env=runtimes.env(), cwd=str(ROOT), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.seen = []
        self.hung = False
        self._watchdog = threading.Timer(WATCHDOG, self._kill)
        self._watchdog.start()

    def _kill(self):
        self.hung = True
        self.proc.kill()

    def send(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def line(self):
        text = self.proc.stdout.readline()
        if not text:
            self.fail("ended early")
        self.seen.append(text.rstrip("\n"))
        return text.split()

    def until(self, first):
        """Lines up to the one that starts with `first` (that one last)."""
        lines = []
        while True:
            words = self.line()
            lines.append(words)
            if words and words[0] == first:
                return lines

    def fail(self, what):
        self.close()
        why = "killed after %d s" % WATCHDOG if self.hung else what
        raise SystemExit("bench/mp_nfc.py %s:\n%s" % (why, "\n".join(self.seen[-30:])))

    def close(self):
        self._watchdog.cancel()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:  # a broken pipe to a process already gone
                pass


def run(reads=READS):
    """Records and replays every kind; returns (metrics from MicroPython, per-kind wire data)."""
    wire = {}
    with PN532Sim() as sim:
        board = Board(sim.port, reads)
        try:
            board.until("ready")
            for name, _label, model, card, sig in kinds():
                sim.remove()
                sim.tap(model)
                mark = len(sim.log)
                board.send("kind %s %s %d" % (name, card, sig))
                lines = board.until("recorded")
                log = sim.log[mark:]
                sim.remove()
                entries = [(bytes.fromhex(w[2]), b"" if w[3] == "-" else bytes.fromhex(w[3]))
                           for w in lines if w[0] == "rec"]
                _, _, kind, drv_out, drv_in, writes = lines[-1]
                if not log or log[0][0] != IN_LIST_PASSIVE_TARGET or log[-1][0] != IN_RELEASE:
                    board.fail("%s: the simulator's log is not InListPassiveTarget ... InRelease: %r" % (name, log))
                wire[name] = {
                    "kind": kind, "commands": len(log),
                    "to_chip": sum(e[1] for e in log), "from_chip": sum(e[2] for e in log),
                    "driver_out": int(drv_out), "driver_in": int(drv_in), "rf": rf_of(entries)}
            board.send("end")
            metrics = {}
            for words in board.until("done")[:-1]:
                if len(words) != 3:
                    board.fail("unexpected output")
                metrics[words[0]] = float(words[1])
        finally:
            board.close()
        if sim.errors:
            raise SystemExit("the PN532 simulator failed: %r" % sim.errors)
    return metrics, wire


def _alloc(n):
    # mp_nfc.py gives minus the free heap when one read needs more than all of it uncollected
    return "%d" % n if n >= 0 else ">%d" % -n


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reads", type=int, default=READS, help="replays per card kind (default %d)" % READS)
    args = ap.parse_args(argv)
    metrics, wire = run(args.reads)
    quote = metrics["quote_median"]

    print("NFC card path on the MicroPython unix port, heap %s; %d replays per kind" % (HEAP, args.reads))
    print("firmware time from target found to discount decided: identify + release + quote")
    print("(30-line basket); ratio = card median / quote median; ESP32 = median x10 .. x30 (rough)")
    print()
    print("%-30s %9s %9s %7s %9s %15s" % ("card kind", "median ms", "p90 ms", "ratio", "alloc B", "ESP32 est. ms"))
    for name, label, _model, _card, _sig in kinds():
        med, p90 = metrics["card_%s_median" % name], metrics["card_%s_p90" % name]
        print("  %-28s %9.2f %9.2f %7.1f %9s %7.0f .. %4.0f" % (
            label, med, p90, med / quote, _alloc(metrics["card_%s_alloc" % name]), med * 10, med * 30))
    print("  %-28s %9.2f %9.2f %7.1f %9s %7.0f .. %4.0f" % (
        "baseline: quote alone", quote, metrics["quote_p90"], 1.0, _alloc(metrics["quote_alloc"]),
        quote * 10, quote * 30))
    print()
    print("signature check alone (ntagsig.verify, secp128r1): median %.2f ms, p90 %.2f ms; "
          "%.1f x the quote; ESP32 est. %.0f .. %.0f ms" % (
              metrics["sig_verify_median"], metrics["sig_verify_p90"], metrics["sig_verify_median"] / quote,
              metrics["sig_verify_median"] * 10, metrics["sig_verify_median"] * 30))
    print()
    print("bytes on the wire per card, InListPassiveTarget .. InRelease (times are estimates: see nfc_bench.py)")
    print("%-30s %5s %9s %9s %7s %6s %8s %8s %7s" % (
        "card kind", "cmds", "host>chip", "chip>host", "HSU ms", "RF ex", "RF >card", "RF <card", "RF ms"))
    mismatch = []
    totals = []
    for name, label, _model, _card, _sig in kinds():
        w = wire[name]
        hsu_ms = (w["to_chip"] + w["from_chip"]) * HSU_BITS / HSU_BAUD * 1000
        count, to_card, from_card, rf_ms = w["rf"]
        print("  %-28s %5d %9d %9d %7.2f %6d %8d %8d %7.2f" % (
            label, w["commands"], w["to_chip"], w["from_chip"], hsu_ms, count, to_card, from_card, rf_ms))
        if (w["driver_out"], w["driver_in"]) != (w["to_chip"], w["from_chip"]):
            mismatch.append("%s: driver counted %d out, %d in" % (name, w["driver_out"], w["driver_in"]))
        totals.append((label, metrics["card_%s_median" % name], hsu_ms + rf_ms))
    print()
    if mismatch:
        print("driver counters DIFFER from the simulator's log: " + "; ".join(mismatch))
    else:
        print("driver counters (bytes_out, bytes_in) agree with the simulator's log for every kind")
    print("HSU: 115200 baud, 10 bits/byte. RF: 106 kbit/s, 9 bits/byte, CRC_A and ISO-DEP PCB added,")
    print("+%.1f ms per exchange; RF activation, the PN532's and the card's processing not counted." % RF_FRAME_MS)
    print()
    print("per card on an ESP32, roughly: unix median x10 .. x30 + HSU + RF (the poll's bytes included;")
    print("the PN532's and the card's own processing not): an estimate to judge by, not a measurement")
    for label, med, wire_ms in totals:
        print("  %-28s %5.0f .. %3.0f ms" % (label, med * 10 + wire_ms, med * 30 + wire_ms))
    print("target (issue 4): \"a few tens of milliseconds\" per card on the ESP32; no number given, no verdict")


if __name__ == "__main__":
    main()
