"""Loyalty smart cards on PC-based tills and at the issuing desk, with any PC/SC reader.

PC/SC (pcscd and pyscard here, WinSCard on Windows) hides the contact line and the radio
alike: a contact card in a slot and a contactless card on a pad are both an ATR and
APDUs. So one module serves both: it waits for a card in a reader, tells contact from
contactless by the ATR (a contactless card's is made by the reader, PC/SC part 3:
3B 8n 80 01 ...), and has the loyalty applet's SELECT and AUTHENTICATE with a fresh
os.urandom nonce (docs/cards.md) checked by protocol.cardread.identify_applet, the code
the reader runs.

    pcsc = Pcsc()                                   # NoReader if pcscd or the readers are missing
    identity = read_card(pcsc, nfchost.keys_from_db(db), wait=10)
    # {"card": "6001000000000042", "kind": "contact", "verified": True, "epoch": 1, "counter": 7}
    # None when no card came within `wait` seconds; CardError (card.*) when a card was refused
    done = personalise(pcsc, db, "6001000000000043", tier=1)

    loyalty-pcschost readers
    loyalty-pcschost read --db instance/loyalty.db [--reader NAME] [--count N] [--wait S]
    loyalty-pcschost read --keys cardkeys.json
    loyalty-pcschost personalise --db instance/loyalty.db --card 6001000000000043 --tier 1

`read` prints one line per card (the number masked but for its last 4 digits, the kind,
verified), as tools/nfchost.py does, whose key helpers it uses: issuer keys come from the
backend's database or a 0600 key file and are never printed. `personalise` puts a card
number and its card key (headoffice.issue_card_key) into a blank applet, reads the card
back with AUTHENTICATE, and only then registers it in the directory.

T=0 contact cards behind a reader that passes TPDUs answer a command that carries data
both ways with 61xx: the answer is fetched with GET RESPONSE (00 C0 00 00 xx), and a
6Cxx is answered by sending the command again with Le = xx (ISO/IEC 7816-4, 5.3.4).

The command speaks the process's language (loyalty.i18n: Italian unless LOYALTY_LANG or the
locale says English); card kinds, error codes and pcscd's own messages are not translated.
"""
import argparse
import os
import sys
import time


from smartcard import scard

from loyalty.i18n import _, for_commands
from loyalty.tools import issuedesk, nfchost
from loyalty.protocol import cardread, loyaltycard
from loyalty.protocol.errors import ProtocolError
from loyalty.protocol.loyaltycard import CardError, NONCE_LEN

POLL_MS = 500  # longest single wait on pcscd, so Ctrl-C is heard
GET_RESPONSE = b"\x00\xc0\x00\x00"
MAX_GET_RESPONSE = 16  # a card that keeps saying 61xx is broken, not long-winded

# what pcscd answers when the card has gone (or is going) away
_GONE = {scard.SCARD_W_REMOVED_CARD, scard.SCARD_E_NO_SMARTCARD, scard.SCARD_E_NOT_TRANSACTED,
         scard.SCARD_W_RESET_CARD, scard.SCARD_W_UNPOWERED_CARD}
# what it answers when the reader or pcscd itself has gone
_NO_READER = {scard.SCARD_E_NO_SERVICE, scard.SCARD_E_SERVICE_STOPPED, scard.SCARD_E_NO_READERS_AVAILABLE,
              scard.SCARD_E_READER_UNAVAILABLE, scard.SCARD_E_UNKNOWN_READER}


class PcscError(Exception):
    """A PC/SC problem that is not the card's: the message says what to do."""


class NoReader(PcscError):
    """pcscd is not running, or has no reader (or not the one asked for)."""


class NoCard(PcscError):
    """No card came to the reader in time."""


class PersonaliseError(PcscError):
    """The card could not be personalised; the directory was not changed."""


class AlreadyPersonalised(PersonaliseError):
    """The applet holds a card number already (PERSONALISE answered 69 85)."""


class WrongCard(PersonaliseError):
    """The card has no loyalty applet, or answers it in a way no blank applet does."""


def _u32(code):
    # pyscard gives some return codes as negative 32-bit integers
    return code & 0xFFFFFFFF


def _message(code):
    return "%s (%08X)" % (scard.SCardGetErrorMessage(code).strip().rstrip("."), _u32(code))


def _no_reader(code, what):
    if _u32(code) in (_u32(scard.SCARD_E_NO_SERVICE), _u32(scard.SCARD_E_SERVICE_STOPPED)):
        return NoReader(_("%(what)s: pcscd is not running: start it (systemctl start pcscd.socket)", what=what))
    return NoReader(_("%(what)s: %(error)s: plug the reader in", what=what, error=_message(code)))


def _is(code, codes):
    return _u32(code) in {_u32(c) for c in codes}


# ------------------------------------------------------------------ ATRs


def is_contactless_atr(atr):
    """Is this the ATR a PC/SC reader makes for a contactless card (PC/SC part 3,
    3.1.3.2.3): 3B, T0 8n (only TD1, n historical bytes), TD1 80, TD2 01, the
    historical bytes, TCK? A contact card's ATR comes from the card itself."""
    atr = bytes(atr)
    return len(atr) >= 5 and atr[0] == 0x3B and atr[1] & 0xF0 == 0x80 and atr[2] == 0x80 \
        and atr[3] == 0x01 and len(atr) == 5 + (atr[1] & 0x0F)


def is_storage_card_atr(atr):
    """A contactless memory card (NTAG, MIFARE): PC/SC part 3 puts 80 4F 0C A0 00 00 03 06
    (category 80, application identifier of PC/SC's RID) in its historical bytes."""
    atr = bytes(atr)
    return is_contactless_atr(atr) and atr[4:12] == b"\x80\x4f\x0c\xa0\x00\x00\x03\x06"


# ------------------------------------------------------------------ cards and readers


class PcscCard:
    """A card connected through PC/SC: its reader, atr, protocol ("T=0" or "T=1"),
    kind ("contact" or "applet" for a contactless one) and apdu(cmd).

    apdu() returns the whole answer, data and SW1 SW2, after any GET RESPONSE; a card
    that went away raises CardError card.removed, a line that failed card.unreadable."""

    def __init__(self, reader, handle, protocol, atr):
        self.reader = reader
        self.handle = handle
        self.atr = bytes(atr)
        self.protocol = "T=0" if protocol == scard.SCARD_PROTOCOL_T0 else "T=1"
        self._pci = scard.SCARD_PCI_T0 if protocol == scard.SCARD_PROTOCOL_T0 else scard.SCARD_PCI_T1
        self.kind = "applet" if is_contactless_atr(self.atr) else "contact"

    def _transmit(self, cmd):
        code, answer = scard.SCardTransmit(self.handle, self._pci, list(cmd))
        if code != scard.SCARD_S_SUCCESS:
            if _is(code, _GONE):
                raise CardError("card.removed", "apdu", _message(code))
            if _is(code, _NO_READER):
                raise _no_reader(code, _("reader %(reader)s", reader=self.reader))
            raise CardError("card.unreadable", "apdu", _message(code))
        answer = bytes(answer)
        if len(answer) < 2:
            # vpcd and some drivers give an empty answer for a card that left mid-command
            raise CardError("card.removed", "apdu", _("no answer"))
        return answer

    def apdu(self, cmd):
        cmd = bytes(cmd)
        answer = self._transmit(cmd)
        if answer[-2] == 0x6C and len(cmd) >= 5:
            # wrong Le: the card says which; send the same command with it (once)
            answer = self._transmit(_with_le(cmd, answer[-1]))
        data = b""
        for _n in range(MAX_GET_RESPONSE):
            if answer[-2] != 0x61:
                return data + answer
            data += answer[:-2]
            answer = self._transmit(GET_RESPONSE + answer[-1:])
        raise CardError("card.unreadable", "apdu", _("more than %(n)d GET RESPONSEs", n=MAX_GET_RESPONSE))

    def disconnect(self):
        """End the session; the card is reset so its next session starts unselected."""
        if self.handle is not None:
            scard.SCardDisconnect(self.handle, scard.SCARD_RESET_CARD)  # a card gone fails: nothing to do
            self.handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.disconnect()


def _with_le(cmd, le):
    # the command with its Le byte set (short APDUs: a case 2 or 4 command ends in Le)
    lc_end = 5 + cmd[4] if len(cmd) > 5 else 4
    return cmd[:lc_end] + bytes([le])


class Pcsc:
    """A PC/SC context: the readers pcscd knows and the cards in them. NoReader when
    pcscd is not running."""

    def __init__(self):
        code, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if code != scard.SCARD_S_SUCCESS:
            raise _no_reader(code, "PC/SC")
        self.context = context

    def close(self):
        if self.context is not None:
            scard.SCardReleaseContext(self.context)
            self.context = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def readers(self):
        """The readers' names; NoReader if there is none."""
        code, names = scard.SCardListReaders(self.context, [])
        if code == scard.SCARD_S_SUCCESS and not names:
            raise NoReader(_("no PC/SC reader: plug one in"))
        if code != scard.SCARD_S_SUCCESS:
            raise _no_reader(code, _("no PC/SC reader"))
        return list(names)

    def _names(self, reader):
        names = self.readers()
        if reader is None:
            return names
        if reader not in names:
            raise NoReader(_("no PC/SC reader %(reader)r: the readers are %(readers)s",
                             reader=reader, readers=", ".join(names)))
        return [reader]

    def _states(self, names, known, wait_ms):
        code, states = scard.SCardGetStatusChange(self.context, wait_ms, [(n, known.get(n, 0)) for n in names])
        if _is(code, [scard.SCARD_E_TIMEOUT]):
            return None
        if code != scard.SCARD_S_SUCCESS:
            raise _no_reader(code, _("waiting for a card"))
        for name, state, _atr in states:
            # pcscd keeps an event count in the high 16 bits: handing it back unchanged
            # is how a wait asks "tell me when anything changes"
            known[name] = state & ~scard.SCARD_STATE_CHANGED
        return states

    def wait_for_card(self, reader=None, wait=10.0):
        """The name of a reader (`reader`, or any) with a card in it, waiting up to `wait`
        seconds for one; None if none came. A card that does not answer its reset (mute)
        does not count."""
        names = self._names(reader)
        deadline = time.monotonic() + wait
        known = {}
        while True:
            left = deadline - time.monotonic()
            states = self._states(names, known, 0 if not known else max(0, min(POLL_MS, int(left * 1000))))
            for name, state, _atr in states or ():
                if state & scard.SCARD_STATE_PRESENT and not state & scard.SCARD_STATE_MUTE:
                    return name
            if time.monotonic() >= deadline:
                return None

    def wait_removed(self, reader, wait=3600.0):
        """Wait until the card leaves `reader` (one card, one read); False if it stayed."""
        deadline = time.monotonic() + wait
        known = {}
        while True:
            left = deadline - time.monotonic()
            states = self._states([reader], known, 0 if not known else max(0, min(POLL_MS, int(left * 1000))))
            if states and not states[0][1] & scard.SCARD_STATE_PRESENT:
                return True
            if time.monotonic() >= deadline:
                return False

    def connect(self, reader):
        """A PcscCard for the card in `reader` (T=0 or T=1, as its ATR offers); CardError
        card.removed if it left first, card.unreadable if it does not answer."""
        code, handle, protocol = scard.SCardConnect(self.context, reader, scard.SCARD_SHARE_SHARED,
                                                    scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1)
        if code != scard.SCARD_S_SUCCESS:
            if _is(code, _GONE):
                raise CardError("card.removed", "connect", _message(code))
            if _is(code, _NO_READER):
                raise _no_reader(code, _("reader %(reader)s", reader=reader))
            raise CardError("card.unreadable", "connect", _message(code))
        code, _name, _state, _protocol, atr = scard.SCardStatus(handle)
        if code != scard.SCARD_S_SUCCESS:
            scard.SCardDisconnect(handle, scard.SCARD_LEAVE_CARD)
            raise CardError("card.removed", "connect", _message(code))
        return PcscCard(reader, handle, protocol, atr)


# ------------------------------------------------------------------ reading


def identify(card, keys):
    """The identity the loyalty applet of a connected PcscCard proves, with a fresh nonce:
    protocol.cardread.identify_applet, the reader's own SELECT and AUTHENTICATE, so a
    till checks a card exactly as the reader does. CardError card.no_applet,
    card.forged, card.key, card.unreadable or card.removed otherwise."""
    if is_storage_card_atr(card.atr):
        raise CardError("card.no_applet", "atr", _("a contactless memory card (NTAG, MIFARE): read it "
                                                   "with tools/nfchost.py"))
    return cardread.identify_applet(card.apdu, keys, os.urandom(NONCE_LEN), card.kind)


def read_card(pcsc, keys, reader=None, wait=10.0):
    """The identity of the next card in `reader` (or any reader), or None when none came
    within `wait` seconds. A refused card raises its CardError (card.forged, card.key,
    card.no_applet, card.removed ...)."""
    name = pcsc.wait_for_card(reader, wait)
    if name is None:
        return None
    with pcsc.connect(name) as card:
        return identify(card, keys)


# ------------------------------------------------------------------ the issuing desk


def personalise(pcsc, db, card, tier, reader=None, wait=10.0, customer=None, operator=None):
    """Put `card` and its card key into the blank applet of the next card in `reader`,
    read it back, and register it with `tier` (given a `customer`, as theirs: register());
    returns {"card", "tier", "epoch", "kind",
    "reader", "directory_version"}. PersonaliseError (or a subclass) says what went wrong;
    the directory changes only once the card has proved it is `card`."""
    from loyalty.backend import headoffice
    from loyalty.backend.customers import cards
    try:
        card = issuedesk.check_card_number(card)
    except issuedesk.BadRequest as e:
        raise PersonaliseError(str(e))
    try:
        headoffice.check_new_card(db, card, tier)  # the same rules as the NTAG desk
        cards.check_customer(db, customer)
    except headoffice.HeadOfficeError as e:
        raise PersonaliseError(e.message)
    try:
        epoch, key = headoffice.issue_card_key(db, card)
    except headoffice.HeadOfficeError as e:
        raise PersonaliseError("%s (flask --app loyalty.backend.app new-card-epoch)" % e)
    name = pcsc.wait_for_card(reader, wait)
    if name is None:
        raise NoCard(_("no card within %(wait)g s: put a blank loyalty card in the reader", wait=wait))
    written = False
    try:
        with pcsc.connect(name) as c:
            _write(c, epoch, card, key)
            written = True
            back = identify(c, nfchost.keys_from_db(db))
    except CardError as e:
        if e.code == "card.removed":
            raise PersonaliseError(_("the card left the reader (%(detail)s): put it back and personalise it again; "
                                     "if it says it is personalised already, it holds card %(card)s: register it "
                                     "with flask --app loyalty.backend.app set-card %(card)s --tier %(tier)d",
                                     detail=e.detail, card=card, tier=tier))
        if not written:
            raise WrongCard(_("the card cannot be personalised (%(code)s: %(detail)s): use another card",
                              code=e.code, detail=e.detail))
        raise WrongCard(_("the card does not read back as card %(card)s (%(code)s: %(detail)s): it is not registered",
                          card=card, code=e.code, detail=e.detail))
    if back["card"] != card or back["epoch"] != epoch:
        raise WrongCard(_("the card reads back as another card (epoch %(epoch)d): it is not registered",
                          epoch=back["epoch"]))
    version = register(db, card, tier, customer, operator)
    return {"card": card, "tier": tier, "epoch": epoch, "kind": back["kind"], "reader": name,
            "directory_version": version}


def register(db, card, tier, customer=None, operator=None):
    """The card, read back, into the directory with `tier` and, given a `customer` (id,
    pseudonym or card number), linked to them in the same transaction (phones too: their
    app is personalised through this path). Returns the directory version."""
    from loyalty.backend import headoffice
    from loyalty.backend.customers import cards
    try:
        return cards.issue(db, card, tier, customer, operator)
    except headoffice.HeadOfficeError as e:
        raise PersonaliseError(_("the card holds card %(card)s but the directory refused it (%(error)s): register "
                                 "it with flask --app loyalty.backend.app set-card %(card)s --tier %(tier)d",
                                 card=card, error=e, tier=tier))


def _write(c, epoch, card, key):
    try:
        loyaltycard.check_select(c.apdu(loyaltycard.SELECT))
    except CardError as e:
        if e.code == "card.no_applet" or e.code == "card.unreadable" and e.field == "apdu":
            raise WrongCard(_("not a loyalty card (%(detail)s): use a card with the loyalty applet", detail=e.detail))
        raise
    sw = loyaltycard.status_word(c.apdu(loyaltycard.personalise_command(epoch, card, key)))
    if sw == loyaltycard.SW_NOT_PERSONALISED:  # 69 85: conditions of use not satisfied
        raise AlreadyPersonalised(_("the card is personalised already (it holds a card number): use a blank card"))
    if sw != loyaltycard.SW_OK:
        raise WrongCard(_("PERSONALISE answered %(sw)04X: not a blank loyalty applet", sw=sw))


# ------------------------------------------------------------------ the command line


def cmd_readers(args, out):
    with Pcsc() as pcsc:
        for name in pcsc.readers():
            print(name, file=out)
    return 0


def cmd_read(args, out):
    db = nfchost.open_db(args.db) if args.db else None
    try:
        keys = nfchost.keys_from_db(db) if db is not None else nfchost.keys_from_file(args.keys)
        with Pcsc() as pcsc:
            return _read_loop(pcsc, args, keys, out)
    finally:
        if db is not None:
            db.conn.close()


def _read_loop(pcsc, args, keys, out):
    n = 0
    while args.count == 0 or n < args.count:
        name = pcsc.wait_for_card(args.reader, args.wait if args.wait > 0 else 3600)
        if name is None:
            if args.wait > 0:
                raise NoCard(_("no card within %(wait)g s", wait=args.wait))
            continue
        try:
            with pcsc.connect(name) as card:
                line = nfchost.describe(identify(card, keys))
        except ProtocolError as e:
            line = nfchost.describe_error(e)
        print(line, file=out, flush=True)
        n += 1
        if args.count == 0 or n < args.count:
            pcsc.wait_removed(name)  # one card in the slot, one line
    return 0


def cmd_personalise(args, out):
    db = nfchost.open_db(args.db)
    try:
        with Pcsc() as pcsc:
            done = personalise(pcsc, db, args.card, args.tier, args.reader, args.wait, args.customer, args.operator)
    finally:
        db.conn.close()
    print(_("card %(card)s personalised (%(kind)s card in %(reader)s): tier %(tier)d, key epoch %(epoch)d, "
            "directory version %(version)s", card=done["card"], kind=done["kind"], reader=done["reader"],
            tier=done["tier"], epoch=done["epoch"], version=done["directory_version"]), file=out)
    return 0


def parser():
    ap = argparse.ArgumentParser(prog="loyalty-pcschost",
                                 description=_("Loyalty smart cards on PC-based tills and at the issuing desk, "
                                               "with any PC/SC reader."))
    sub = ap.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("readers", help=_("list the PC/SC readers"), description=_("List the PC/SC readers."))
    ls.set_defaults(run=cmd_readers)
    rd = sub.add_parser("read", help=_("read loyalty smart cards, one line per card"),
                        description=_("Read loyalty smart cards with a PC/SC reader; one line per card."))
    src = rd.add_mutually_exclusive_group(required=True)
    src.add_argument("--db", help=_("the backend's database (issuer keys of every epoch)"))
    src.add_argument("--keys", help=_("a key file written by nfchost.py export-keys"))
    rd.add_argument("--reader", help=_("the reader's name (default: any; see `readers`)"))
    rd.add_argument("--count", type=int, default=1, help=_("cards to read, 0 for no end (default 1)"))
    rd.add_argument("--wait", type=float, default=10.0,
                    help=_("seconds to wait for a card, 0 for no end (default 10)"))
    rd.set_defaults(run=cmd_read)
    ps = sub.add_parser("personalise", help=_("put a card number and its key into a blank loyalty applet"),
                        description=_("Personalise a blank loyalty applet at the issuing desk and register the card."))
    ps.add_argument("--db", required=True, help=_("the backend's database (instance/loyalty.db)"))
    ps.add_argument("--card", required=True, help=_("the new card's number (1 to 19 digits, not yet issued)"))
    ps.add_argument("--tier", type=int, default=0, help=_("the card's tier id (default 0)"))
    ps.add_argument("--reader", help=_("the reader's name (default: any)"))
    ps.add_argument("--wait", type=float, default=10.0, help=_("seconds to wait for the card (default 10)"))
    ps.add_argument("--customer", help=_("the customer the card is for (id, pseudonym or card number; "
                                         "default: nobody's yet)"))
    ps.add_argument("--operator", help=_("who issues it (kept with the customer's card events)"))
    ps.set_defaults(run=cmd_personalise)
    return ap


def main(argv=None, out=None):
    for_commands()
    args = parser().parse_args(argv)
    try:
        return args.run(args, out or sys.stdout)
    except (PcscError, ValueError, OSError) as e:
        print(_("error: %(error)s", error=e), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
