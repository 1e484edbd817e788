"""A loyalty smart card in vpcd's virtual reader, for PC/SC tests without a card in hand.

vpcd (Debian's vsmartcard-vpcd, a pcscd reader driver) listens on a TCP port; a virtual
card connects to it and from then on is "in the reader". Every message both ways is a
2-byte big-endian length and that many bytes (vsmartcard's vpcd.c, sendToVICC and
recvFromVICC). vpcd sends

    00  power off          01  power on          02  reset       (no answer)
    04  get the ATR        the card answers with its ATR
    anything longer        a command APDU, answered with a response APDU (data, SW1 SW2)

(VPCD_CTRL_OFF/ON/RESET/ATR in vsmartcard's vpcd.h). vpcd asks for the ATR every time
pcscd polls the reader: the card must answer it at any moment. Closing the connection
is pulling the card out. Which protocol pcscd uses comes from the ATR alone.

The card behind the line is a card model of sim/cardmodels.py (AppletCard: SELECT,
AUTHENTICATE, PERSONALISE), so the till code meets the same applet as over NFC.

    card = VirtualCard(cardmodels.AppletCard(b"\\x04\\x01\\x02\\x03"), atr=ATR_CONTACT_T1, port=35963)
    with card:            # in the reader until the block ends (a thread answers vpcd)
        ...               # pyscard / pcschost.py talk to it through pcscd
    card.commands         # what vpcd sent: "on", "off", "reset", "atr" or APDU bytes

    python -m loyalty.sim.vpcdcard --port 35963                          # a blank card
    python -m loyalty.sim.vpcdcard --db instance/loyalty.db --card 6001000000000042

Faults on demand: `leave_at=b"\\x80\\x10"` pulls the card out when a command starting so
comes (before answering it); `t0=True` answers as a T=0 card behind a TPDU reader does,
61xx then GET RESPONSE, and 6Cxx when GET RESPONSE asks for the wrong length.
"""
import argparse
import socket
import sys
import threading
import time


from loyalty.sim import cardmodels

VPCD_PORT = 35963  # vpcd's default (VPCDPORT in vpcd.h; CHANNELID 0x8C7B in its reader.conf)

CTRL_OFF = 0x00
CTRL_ON = 0x01
CTRL_RESET = 0x02
CTRL_ATR = 0x04
_CTRL_NAMES = {CTRL_OFF: "off", CTRL_ON: "on", CTRL_RESET: "reset", CTRL_ATR: "atr"}

# "SCONTO" and applet version 1: proprietary historical bytes (first byte not 00, 10 or 8X)
HISTORICAL = b"SCONTO\x01"


def _with_tck(atr):
    # TCK: the XOR of every byte from T0 to the last must come out 0 (ISO/IEC 7816-3 8.2.5)
    tck = 0
    for b in atr[1:]:
        tck ^= b
    return atr + bytes([tck])


def contactless_atr(ats):
    """The ATR a PC/SC reader makes for an ISO 14443-4 Type A card (PC/SC part 3):
    3B 8n 80 01, the n historical bytes of the card's ATS, TCK."""
    ats = bytes(ats)
    t0 = ats[1] if len(ats) > 1 else 0
    at = 2 + bin(t0 & 0x70).count("1")  # TA1, TB1, TC1 as T0 announces them
    historical = ats[at:ats[0]] if ats else b""
    return _with_tck(bytes([0x3B, 0x80 | len(historical), 0x80, 0x01]) + historical)


# a contact card offering T=1 only: TD1 81 (TD2 follows, T=1), TD2 31 (TA3 TB3 follow,
# T=1), TA3 FE (IFSC 254), TB3 45 (BWI 4, CWI 5), historical bytes, TCK
ATR_CONTACT_T1 = _with_tck(bytes([0x3B, 0x80 | len(HISTORICAL), 0x81, 0x31, 0xFE, 0x45]) + HISTORICAL)
# a contact card offering T=0 only: no interface bytes at all, so no TCK either
ATR_CONTACT_T0 = bytes([0x3B, len(HISTORICAL)]) + HISTORICAL
# AppletCard's ATS 05 78 80 70 02 has no historical bytes: 3B 80 80 01 01
ATR_CONTACTLESS = contactless_atr(b"\x05\x78\x80\x70\x02")

GET_RESPONSE = 0xC0


def _sw(sw1, sw2):
    return bytes([sw1, sw2])


class VirtualCard:
    """`applet` (anything with apdu(cmd) -> response, and enter_field()) in vpcd's reader
    on `host`:`port`, answering from a thread once insert()ed.

    `commands` lists what vpcd sent, in order. `t0` makes the card answer case 4
    commands as a T=0 card does (61xx, the data on GET RESPONSE)."""

    def __init__(self, applet, atr=ATR_CONTACT_T1, port=VPCD_PORT, host="127.0.0.1", t0=False,
                 leave_at=None):
        self.applet = applet
        self.atr = bytes(atr)
        self.host = host
        self.port = port
        self.t0 = t0
        self.leave_at = leave_at
        self.commands = []
        self.powered = False
        self._pending = None  # T=0: the answer GET RESPONSE will fetch
        self._sock = None
        self._thread = None
        self._stop = threading.Event()
        self.removed_at = None  # time.monotonic() when the card left the reader

    # ------------------------------------------------------------ the card itself

    def power(self, on):
        """Power on, off or a reset: a new session, no application selected."""
        self.powered = on
        self._pending = None
        self.applet.enter_field()

    def answer(self, message):
        """The card's answer to one message from vpcd (bytes), or None for no answer."""
        message = bytes(message)
        if len(message) == 1:
            ctrl = message[0]
            self.commands.append(_CTRL_NAMES.get(ctrl, "ctrl %02x" % ctrl))
            if ctrl == CTRL_ATR:
                return self.atr
            if ctrl in (CTRL_ON, CTRL_RESET):
                self.power(True)
            elif ctrl == CTRL_OFF:
                self.power(False)
            return None  # unknown control bytes are ignored, as vsmartcard's vpicc does
        self.commands.append(message)
        if not message:
            return None
        if self.t0:
            return self._t0(message)
        return self.applet.apdu(message)

    def _t0(self, cmd):
        # ISO/IEC 7816-3 10.3.5 / 7816-4 5.1.3: a T=0 card cannot send data after taking
        # data in one exchange; it says 61xx and the reader fetches it with GET RESPONSE
        if len(cmd) >= 5 and cmd[0] & 0x80 == 0 and cmd[1] == GET_RESPONSE:
            pending, self._pending = self._pending, None
            if pending is None:
                return _sw(0x69, 0x85)  # no answer waiting: conditions of use not satisfied
            want = cmd[4] or 256
            if want != len(pending) - 2:
                self._pending = pending
                return _sw(0x6C, len(pending) - 2)  # wrong Le: here is the right one
            return pending
        self._pending = None
        answer = self.applet.apdu(cmd)
        if answer is not None and len(answer) > 2:
            self._pending = answer
            return _sw(0x61, (len(answer) - 2) & 0xFF)
        return answer

    # ------------------------------------------------------------ the line to vpcd

    def insert(self, timeout=5.0):
        """Put the card into the reader: connect to vpcd (retrying until it listens, at
        most `timeout` seconds) and answer it from a thread. OSError if vpcd never
        listened."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                sock = socket.create_connection((self.host, self.port), timeout=1.0)
                break
            except OSError:
                if time.monotonic() >= deadline:
                    raise OSError("vpcd does not listen on %s:%d: is pcscd running with the vpcd driver?"
                                  % (self.host, self.port))
                time.sleep(0.05)  # the pause before connecting again, not a wait: the loop waits for vpcd
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(0.2)  # so that remove() is noticed within 0.2 s
        self._sock = sock
        self._stop.clear()
        self.removed_at = None
        self._thread = threading.Thread(target=self._serve, name="vpcdcard:%d" % self.port, daemon=True)
        self._thread.start()

    def remove(self):
        """Pull the card out: close the connection and wait for the thread to end."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        self._close()

    def __enter__(self):
        self.insert()
        return self

    def __exit__(self, *exc):
        self.remove()

    @property
    def inserted(self):
        """Is the card in the reader (not pulled out, by remove() or a fault)?"""
        return self._thread is not None and self.removed_at is None

    def _close(self):
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None

    def _recv_exactly(self, n):
        # None when the line closed or remove() was called
        out = b""
        while len(out) < n:
            if self._stop.is_set():
                return None
            try:
                part = self._sock.recv(n - len(out))
            except socket.timeout:
                continue
            except OSError:
                return None
            if not part:
                return None
            out += part
        return out

    def _serve(self):
        try:
            while not self._stop.is_set():
                head = self._recv_exactly(2)
                if head is None:
                    break
                message = self._recv_exactly(head[0] << 8 | head[1])
                if message is None:
                    break
                if self.leave_at is not None and len(message) > 1 and message.startswith(self.leave_at):
                    self.commands.append(message)
                    break  # pulled out with the command unanswered
                answer = self.answer(message)
                if answer is not None:
                    self._sock.sendall(len(answer).to_bytes(2, "big") + answer)
        except OSError:
            pass  # vpcd went away: the card is out
        finally:
            self.removed_at = time.monotonic()  # before vpcd can notice: readers of it race the close
            self._close()


def _applet_from_db(db_path, card):
    """An AppletCard personalised as the issuing desk would, from the backend's database."""
    from loyalty.backend import headoffice
    from loyalty.tools import nfchost

    db = nfchost.open_db(db_path)
    try:
        epoch, key = headoffice.issue_card_key(db, card)
    finally:
        db.conn.close()
    applet = cardmodels.AppletCard(b"\x04\x5c\x0e\x70\x00\x00\x01")
    applet.card, applet.epoch, applet.key = card, epoch, key
    return applet


def parser():
    ap = argparse.ArgumentParser(prog="python -m loyalty.sim.vpcdcard", description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=VPCD_PORT, help="vpcd's port (default %d)" % VPCD_PORT)
    ap.add_argument("--host", default="127.0.0.1", help="where pcscd runs (default 127.0.0.1)")
    ap.add_argument("--atr", choices=("t1", "t0", "contactless"), default="t1",
                    help="contact card with T=1 or T=0, or a contactless card (default t1)")
    ap.add_argument("--db", help="personalise the card from this backend database (with --card)")
    ap.add_argument("--card", help="the card number (with --db); a blank card without")
    return ap


def main(argv=None):
    args = parser().parse_args(argv)
    if bool(args.db) != bool(args.card):
        print("error: give --db and --card together, or neither for a blank card", file=sys.stderr)
        return 2
    from loyalty.backend.headoffice import HeadOfficeError
    try:
        applet = _applet_from_db(args.db, args.card) if args.db else cardmodels.AppletCard(b"\x04\x5c\x0e\x70")
    except (ValueError, OSError, HeadOfficeError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    atr = {"t1": ATR_CONTACT_T1, "t0": ATR_CONTACT_T0, "contactless": ATR_CONTACTLESS}[args.atr]
    card = VirtualCard(applet, atr=atr, port=args.port, host=args.host, t0=args.atr == "t0")
    try:
        card.insert()
    except OSError as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    print("card in vpcd's reader on %s:%d (ATR %s); Ctrl-C pulls it out" % (args.host, args.port, card.atr.hex()))
    try:
        while card.inserted:
            time.sleep(0.2)  # the command line's look at the card now and then, until Ctrl-C
    except KeyboardInterrupt:
        pass
    card.remove()
    return 0


if __name__ == "__main__":
    sys.exit(main())
