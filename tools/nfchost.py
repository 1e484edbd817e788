"""Reader mode for PC-based tills: loyalty cards read with any reader nfcpy supports.

The card logic is the reader's own (protocol.cardread.identify, the code the ESP32 runs);
this module finds a card with nfcpy, activates it the way nfcpy does, and lends
identify() the card's commands: raw Type 2 commands for NTAGs, ISO-DEP APDUs for phones
and contactless smart cards, nothing for UID-only cards.

    clf = nfc.ContactlessFrontend("usb")           # "udp:localhost:54321" in the tests
    identity = read_card(clf, keys_from_file("cardkeys.json"))
    # {"card": "6001000000000042", "kind": "ntag", "verified": True, "epoch": 1, ...}
    # None when no card came within `wait` seconds; CardError when a card was refused

    loyalty-nfchost read --device usb --db instance/loyalty.db
    loyalty-nfchost export-keys --db instance/loyalty.db --out cardkeys.json

`read` prints one line per card: the card number masked but for its last 4 digits, the
kind, verified or not (or the error's code and text). Issuer keys come from the backend's
database (--db) or from a key file that `export-keys` writes (mode 0600); they are never
printed. The command speaks the process's language (loyalty.i18n: Italian unless
LOYALTY_LANG or the locale says English); card kinds and error codes are the same in every
language.
"""
import argparse
import json
import os
import sys
import time


import nfc
import nfc.clf
import nfc.tag
import nfc.tag.tt2
import nfc.tag.tt4

from loyalty.i18n import _, error_text, for_commands, ngettext
from loyalty.protocol import cardread, ntag
from loyalty.protocol.errors import ProtocolError
from loyalty.protocol.loyaltycard import CardError, NONCE_LEN

SAK_ISO_DEP = 0x20
SAK_TYPE2 = 0x00
POLL = 0.1  # seconds between two senses of an empty field


class NfcpyCard:
    """A card nfcpy found, as protocol.cardread sees a card: sak, uid, ats, thru(), apdu().

    `tag` is nfcpy's tag object (Type2Tag or Type4Tag), None for a card that was not
    activated (a UID-only card answers no commands). Errors from the radio become
    CardError: card.removed when the card stopped answering, card.unreadable else.
    """

    def __init__(self, clf, target, tag):
        self.clf = clf
        self.target = target
        self.tag = tag
        self.sak = target.sel_res[0] if target.sel_res else 0
        self.uid = bytes(target.sdd_res or b"")
        # nfcpy's Type4ATag keeps what it derived from the ATS (frame size, waiting
        # time), not the ATS itself: identify() tells kinds apart without it
        self.ats = None

    def thru(self, cmd):
        if not isinstance(self.tag, nfc.tag.tt2.Type2Tag):
            raise CardError("card.unreadable", "tag", _("not a Type 2 tag"))
        try:
            return bytes(self.tag.transceive(bytes(cmd)))
        except (nfc.tag.TagCommandError, nfc.clf.CommunicationError) as e:
            raise _radio_error(e, "thru")

    def apdu(self, cmd):
        if not isinstance(self.tag, nfc.tag.tt4.Type4Tag):
            raise CardError("card.unreadable", "tag", _("not an ISO-DEP card"))
        try:
            answer = self.tag.transceive(bytes(cmd))
        except (nfc.tag.TagCommandError, nfc.clf.CommunicationError) as e:
            raise _radio_error(e, "apdu")
        if answer is None:
            raise CardError("card.removed", "apdu", _("no answer"))
        return bytes(answer)

    def still_there(self):
        """Is the card still in the field? (One tap must give one read, not one per poll.)"""
        if self.tag is not None:
            try:
                return bool(self.tag.is_present)
            except nfc.clf.CommunicationError:
                return False
        # not activated: sense again for this UID only (a Type 2 or UID card keeps its UID)
        again = nfc.clf.RemoteTarget("106A", sel_req=bytearray(self.uid))
        return self.clf.sense(again) is not None


def _radio_error(e, field):
    # nfcpy's tag errors carry an errno; its link errors are classes
    if isinstance(e, (nfc.clf.TimeoutError, nfc.clf.BrokenLinkError)) or \
            getattr(e, "errno", None) == nfc.tag.TIMEOUT_ERROR:
        return CardError("card.removed", field, _("card stopped answering"))
    return CardError("card.unreadable", field, "nfcpy: %s" % e)


def find_card(clf, wait=1.0):
    """Sense a Type A card for up to `wait` seconds and activate it: an NfcpyCard, or None.

    Only Type 2 tags (SAK 00) and ISO-DEP cards (SAK bit 0x20) are activated: a MIFARE
    Classic or other UID-only card is not spoken to (identify() needs only its UID).
    An activation that fails (the card moved, an answer came late) is tried again while
    `wait` lasts; CardError card.removed if none succeeded.
    """
    deadline = time.monotonic() + wait
    failed = False
    while True:
        target = clf.sense(nfc.clf.RemoteTarget("106A"))
        if target is not None:
            sak = target.sel_res[0] if target.sel_res else 0
            if sak != SAK_TYPE2 and not sak & SAK_ISO_DEP:
                return NfcpyCard(clf, target, None)
            tag = nfc.tag.activate(clf, target)
            if tag is not None:
                return NfcpyCard(clf, target, tag)
            failed = True
        if time.monotonic() >= deadline:
            if failed:
                raise CardError("card.removed", "activate", _("card left before it was read"))
            return None
        time.sleep(POLL)  # the reader's pause between two looks at the field (a poll loop)


def read_card(clf, keys, wait=1.0, check_signature=False):
    """The identity of the next card nfcpy finds (protocol.cardread.identify's dict), or
    None when no card came within `wait` seconds. A refused card raises its ProtocolError
    (card.forged, card.key, card.not_registered, card.removed ...).

    `keys(epoch)` gives the issuer key of an epoch or None; the nonce for phones and
    smart cards is fresh from os.urandom at every read."""
    card = find_card(clf, wait)
    if card is None:
        return None
    return identify(card, keys, check_signature)


def identify(card, keys, check_signature=False):
    """cardread.identify on a card find_card() found, with a fresh nonce and buffer."""
    return cardread.identify(card, keys, os.urandom(NONCE_LEN), bytearray(ntag.BUF_SIZE), check_signature)


# ------------------------------------------------------------------ issuer keys


def keys_from_db(db):
    """keys(epoch) -> issuer key or None, from the backend's database (sqlite_utils)."""
    from loyalty.backend import headoffice

    # a retired epoch's cards must not read here either
    return headoffice.active_issuer_keys(db).get


def load_key_file(path):
    """{epoch: issuer key} from a key file; ValueError says what is wrong with it.

    The file holds issuer keys: one that others can read is refused, as ssh refuses a
    private key that others can read."""
    mode = os.stat(path).st_mode
    if mode & 0o077:
        raise ValueError(_("%(path)s can be read by others (mode %(mode)03o): chmod 600 it", path=path,
                           mode=mode & 0o777))
    with open(path, encoding="utf-8") as f:
        try:
            data = json.load(f)
        except ValueError:
            raise ValueError(_("%(path)s is not JSON", path=path))
    if not isinstance(data, dict) or not isinstance(data.get("card_keys"), dict):
        raise ValueError(_("%(path)s: expected %(shape)s", path=path,
                           shape='{"card_keys": {"<epoch>": "<64 hex digits>"}}'))
    out = {}
    for epoch, key in data["card_keys"].items():
        try:
            e, k = int(epoch), bytes.fromhex(key)
        except (TypeError, ValueError):
            e, k = 0, b""
        if not 1 <= e <= 255 or len(k) != 32:
            raise ValueError(_("%(path)s: epoch %(epoch)r: expected an epoch 1-255 and 64 hex digits",
                               path=path, epoch=epoch))
        out[e] = k
    return out


def keys_from_file(path):
    """keys(epoch) -> issuer key or None, from a key file (see load_key_file)."""
    return load_key_file(path).get


def export_keys(db, path):
    """Write every issuer key of the backend's database to a new key file (mode 0600);
    returns the number of epochs. An existing file is never overwritten."""
    from loyalty.backend import headoffice

    keys = headoffice.active_issuer_keys(db)
    data = {"card_keys": {str(e): k.hex() for e, k in keys.items()}}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
    return len(keys)


def open_db(path):
    """The backend's database at `path`, with a schema this code knows; ValueError if not."""
    from loyalty.backend import db as dbmod
    if not os.path.exists(path):
        raise ValueError(_("no database at %(path)s: give the backend's (instance/loyalty.db)", path=path))
    db = dbmod.connect(path)
    try:
        dbmod.require_schema(db)
    except dbmod.SchemaError as e:
        db.conn.close()
        raise ValueError("%s: %s" % (path, e))
    return db


# ------------------------------------------------------------------ the command line


def mask(card):
    """The card number as a till may print it: all but the last 4 digits hidden."""
    return "*" * max(0, len(card) - 4) + card[-4:]


def describe(identity):
    """One line for a card read: masked number, kind (a code), verified or unverified."""
    # a UID card proves nothing (docs/cards.md): anyone can clone a UID
    verified = identity.get("verified") and identity["kind"] != "uid"
    return "%s %s %s" % (mask(identity["card"]), identity["kind"], _("verified") if verified else _("unverified"))


def describe_error(e):
    """One line for a card refused: its code and its text in the current language."""
    return _("refused %(code)s: %(text)s", code=e.code, text=error_text(e.code))


def open_reader(device):
    """nfcpy's ContactlessFrontend on `device`, or ValueError saying what to do."""
    try:
        clf = nfc.ContactlessFrontend()
        found = clf.open(device)
    except (IOError, ValueError) as e:
        raise ValueError(_("cannot open the NFC reader %(device)s (%(error)s): check it is plugged in and free",
                           device=device, error=e))
    if not found:
        raise ValueError(_("no NFC reader on %(device)s: plug one in or give --device (usb, tty:USB0:pn532, "
                           "udp:host:port)", device=device))
    return clf


def cmd_read(args, out):
    db = open_db(args.db) if args.db else None
    try:
        keys = keys_from_db(db) if db is not None else keys_from_file(args.keys)
        return _read_loop(args, keys, out)
    finally:
        if db is not None:
            db.conn.close()


def _read_loop(args, keys, out):
    clf = open_reader(args.device)
    try:
        n = 0
        while args.count == 0 or n < args.count:
            try:
                card = find_card(clf, args.wait if args.wait > 0 else 3600)
                if card is None:
                    if args.wait > 0:
                        raise ValueError(_("no card within %(wait)g s", wait=args.wait))
                    continue
                try:
                    print(describe(identify(card, keys, args.signature)), file=out, flush=True)
                except ProtocolError as e:
                    print(describe_error(e), file=out, flush=True)
            except CardError as e:  # the card left during activation
                print(describe_error(e), file=out, flush=True)
                card = None
            n += 1
            if card is not None and (args.count == 0 or n < args.count):
                while card.still_there():  # one tap, one line
                    time.sleep(POLL)  # a poll loop's pause: one tap, one line
    finally:
        clf.close()
    return 0


def cmd_export_keys(args, out):
    db = open_db(args.db)
    try:
        n = export_keys(db, args.out)
    except FileExistsError:
        raise ValueError(_("%(path)s exists already: move it away or give another --out", path=args.out))
    finally:
        db.conn.close()
    print(ngettext("%(num)d card key epoch written to %(path)s (mode 0600)",
                   "%(num)d card key epochs written to %(path)s (mode 0600)", n, path=args.out), file=out)
    return 0


def parser():
    ap = argparse.ArgumentParser(prog="loyalty-nfchost",
                                 description=_("Reader mode for PC-based tills: loyalty cards read with any reader "
                                               "nfcpy supports."))
    sub = ap.add_subparsers(dest="command", required=True)
    rd = sub.add_parser("read", help=_("read loyalty cards, one line per card"),
                        description=_("Read loyalty cards with an nfcpy reader; one line per card."))
    rd.add_argument("--device", default="usb", help=_("nfcpy device path: usb, tty:USB0:pn532, udp:host:port"))
    src = rd.add_mutually_exclusive_group(required=True)
    src.add_argument("--db", help=_("the backend's database (issuer keys of every epoch)"))
    src.add_argument("--keys", help=_("a key file written by export-keys"))
    rd.add_argument("--count", type=int, default=1, help=_("cards to read, 0 for no end (default 1)"))
    rd.add_argument("--wait", type=float, default=10.0,
                    help=_("seconds to wait for a card, 0 for no end (default 10)"))
    rd.add_argument("--signature", action="store_true", help=_("also check NTAG originality signatures"))
    rd.set_defaults(run=cmd_read)
    ex = sub.add_parser("export-keys", help=_("write the issuer keys to a key file for a till PC"),
                        description=_("Write every issuer key to a new key file (mode 0600)."))
    ex.add_argument("--db", required=True, help=_("the backend's database"))
    ex.add_argument("--out", required=True, help=_("the key file to write (must not exist)"))
    ex.set_defaults(run=cmd_export_keys)
    return ap


def main(argv=None, out=None):
    for_commands()
    args = parser().parse_args(argv)
    try:
        return args.run(args, out or sys.stdout)
    except (ValueError, OSError) as e:
        print(_("error: %(error)s", error=e), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
