"""The card-issuing desk: a blank NTAG becomes a loyalty card, and head office knows it.

    loyalty-issuedesk --db instance/loyalty.db --card 6001000000000042 --tier 1
    issue_card(clf, db, "6001000000000042", tier=1)   # -> {"card", "tier", "epoch", "model", "uid", ...}

With any reader nfcpy supports (--device usb, tty:USB0:pn532, udp:host:port) the desk
  1. finds the tag and asks its model (GET_VERSION): NTAG213, 215 or 216. Phones and
     smart cards are personalised through their app, not here;
  2. refuses a tag that already carries a loyalty record (of any epoch, genuine or not),
     a read-only or locked tag, a card number the directory already has, a tier that
     does not exist, and numbers of the shape reserved for UID-only cards;
  3. writes the NDEF message with the loyalty record for this tag's UID (protocol.ntag's
     pages: CC, NDEF TLV, terminator; lock and memory control TLVs the tag carries are
     kept), writing the first data page last: a write cut short leaves the tag's empty
     NDEF TLV in page 4, so the tag still reads as blank and can be issued again;
  4. reads the tag back as a reader does (protocol.cardread.identify), and only then
     puts the card in the directory with its tier and, with --customer, links it to that
     customer in the same transaction (customers.cards.issue).
Cards are issued in the current key epoch (headoffice.current_epoch) with its issuer key,
which is never printed. Anything else a tag held in its NDEF message is replaced. The desk
speaks the process's language (loyalty.i18n: Italian unless LOYALTY_LANG or the locale says
English), its errors too.
"""
import argparse
import sys


import nfc.clf
import nfc.tag

from loyalty.i18n import _, error_text, for_commands
from loyalty.tools import nfchost
from loyalty.protocol import loyaltycard, ndef, ntag
from loyalty.protocol.errors import ProtocolError

_READ = 0x30
_GET_VERSION = 0x60
_TLV_NULL, _TLV_LOCK, _TLV_MEMORY = 0x00, 0x01, 0x02


class DeskError(Exception):
    """The card could not be issued; the message says why and what to do."""


class NoTag(DeskError):
    """No tag came to the reader."""


class NotNtag(DeskError):
    """The card in the field is not an NTAG21x."""


class AlreadyIssued(DeskError):
    """The tag already carries a loyalty record."""


class TagLocked(DeskError):
    """The tag is read-only, or its memory is locked or not blank in a way we cannot undo."""


class TagTooSmall(DeskError):
    """The NDEF message does not fit the tag."""


class WriteFailed(DeskError):
    """A WRITE was refused, or the tag does not read back as the card."""


class BadRequest(DeskError):
    """The card number, the tier or the epoch is not one head office can issue."""


def check_card_number(card):
    """The card number as the directory keeps it, or BadRequest."""
    if not isinstance(card, str) or not card.isdigit() or not card.isascii() \
            or not 1 <= len(card) <= loyaltycard.MAX_CARD:
        raise BadRequest(_("card number %(card)r: must be 1 to %(max)d digits", card=card, max=loyaltycard.MAX_CARD))
    if card[0] == "0" and card != "0":
        # the directory keeps "0042" as 42: the record and the directory would disagree
        raise BadRequest(_("card number %(card)s: no leading zeros", card=card))
    if card[0] == "9" and len(card) in (11, 18):
        raise BadRequest(_("card number %(card)s: numbers of 11 or 18 digits starting with 9 belong to UID cards",
                           card=card))
    return card


def _issuing(db, card, tier, customer=None):
    """(epoch, issuer key) to issue `card` in; BadRequest when head office cannot (the
    card, the tier, or the customer it is for)."""
    from loyalty.backend import headoffice
    from loyalty.backend.customers import cards
    try:
        headoffice.check_new_card(db, card, tier)
        cards.check_customer(db, customer)
    except headoffice.HeadOfficeError as e:
        raise BadRequest(e.message)
    epoch = headoffice.current_epoch(db)
    if epoch is None:
        raise BadRequest(_("no card key epoch yet: start one with flask --app loyalty.backend.app new-card-epoch"))
    return epoch, headoffice.issuer_key(db, epoch)


def _thru(card, cmd, what):
    try:
        return card.thru(cmd)
    except ProtocolError as e:
        raise DeskError(_("%(command)s: %(error)s (%(detail)s): lay the tag on the reader again",
                          command=what, error=error_text(e.code), detail=e.detail))


def _model(card):
    if card.sak != 0x00:
        raise NotNtag(_("not an NTAG (SAK %(sak)02X): phones and smart cards get their card through the app",
                        sak=card.sak))
    version = _thru(card, bytes([_GET_VERSION]), "GET_VERSION")
    try:
        model = ntag.parse_version(version) if len(version) != 1 else 0
    except ProtocolError:
        model = 0
    if not model:
        raise NotNtag(_("not an NTAG213, 215 or 216 (GET_VERSION %(version)s)", version=bytes(version).hex()))
    return model


def _prefix(data):
    """The lock and memory control TLVs at the start of the data area (kept as they are)."""
    at, out = 0, b""
    while at + 1 < len(data) and data[at] in (_TLV_NULL, _TLV_LOCK, _TLV_MEMORY):
        if data[at] == _TLV_NULL:
            at += 1
            continue
        end = at + 2 + data[at + 1]
        if end > len(data):
            break
        out += bytes(data[at:end])
        at = end
    return out


def _check_blank(card, model, buf):
    """What to keep of the tag: (its CC, the control TLVs); refuses an issued or locked tag."""
    head = _thru(card, bytes([_READ, 2]), "READ")  # pages 2-5: lock bytes, CC, data
    if len(head) < 16:
        raise DeskError(_("READ answered %(n)d bytes, not 16: lay the tag on the reader again", n=len(head)))
    if head[2] or head[3]:
        raise TagLocked(_("pages are locked (static lock bytes %(lock)s): use another tag",
                          lock="%02X %02X" % (head[2], head[3])))
    tag_cc = bytes(head[4:8])
    want = ntag.cc(model)
    if tag_cc[0] == 0xE1:
        if tag_cc[3] & 0x0F:
            raise TagLocked(_("the tag is read-only (CC write access %(access)X): use another tag",
                              access=tag_cc[3] & 0x0F))
        try:
            message = ntag.read_message(buf, read=lambda p: _thru(card, bytes([_READ, p]), "READ"),
                                        last_page=ntag.model_info(model)[2])
            found = None
            if message is not None:
                found = ndef.find(message, ndef.TNF_EXTERNAL, loyaltycard.NTAG_TYPE)
        except ProtocolError as e:
            raise TagLocked(_("the tag's NDEF memory cannot be read (%(detail)s): use another tag", detail=e.detail))
        if found is not None:
            raise AlreadyIssued(_("the tag already carries a loyalty card: use a blank tag"))
    # the CC is one-time programmable: writing ORs bits in, so it must be ours or empty
    if any(b & ~w for b, w in zip(tag_cc, want)):
        raise TagLocked(_("the tag's capability container %(cc)s cannot become %(want)s: use another tag",
                          cc=tag_cc.hex(), want=want.hex()))
    data = _thru(card, bytes([_READ, ntag.DATA_PAGE]), "READ")
    return tag_cc, _prefix(data[:16])


def _write(card, pages):
    for page, data in pages:
        try:
            card.tag.write(page, data)
        except (nfc.tag.TagCommandError, nfc.clf.CommunicationError) as e:
            raise WriteFailed(_("WRITE of page %(page)d failed (%(error)s): the tag was moved or is locked; "
                                "lay it on the reader and issue it again", page=page, error=e))


def issue_card(clf, db, card, tier, wait=10.0, customer=None, operator=None):
    """Write the loyalty record for `card` onto the blank NTAG nfcpy finds and register
    the card with `tier`, and given a `customer` (id, pseudonym or card number) as
    theirs in the same step; returns {"card", "tier", "epoch", "model", "uid" (hex),
    "directory_version"}. DeskError (a subclass) says what went wrong; the directory is
    changed only once the tag reads back as the card."""
    from loyalty.backend import headoffice
    from loyalty.backend.customers import cards
    card = check_card_number(card)
    epoch, key = _issuing(db, card, tier, customer)
    try:
        tag = nfchost.find_card(clf, wait)
    except ProtocolError as e:
        raise NoTag(_("%(error)s: lay the tag on the reader again", error=error_text(e.code)))
    if tag is None:
        raise NoTag(_("no tag within %(wait)g s: lay a blank NTAG on the reader", wait=wait))
    model = _model(tag)
    buf = bytearray(ntag.BUF_SIZE)
    tag_cc, prefix = _check_blank(tag, model, buf)
    payload = loyaltycard.ntag_payload(key, epoch, card, tag.uid)
    message = ndef.encode([(ndef.TNF_EXTERNAL, loyaltycard.NTAG_TYPE, b"", payload)])
    try:
        pages = ntag.pages_to_write(message, model, prefix)
    except ValueError as e:
        raise TagTooSmall(_("%(error)s: use a larger tag", error=e))
    pages = [(p, d) for p, d in pages if not (p == ntag.CC_PAGE and d == tag_cc)]
    first = [pd for pd in pages if pd[0] == ntag.DATA_PAGE]
    _write(tag, [pd for pd in pages if pd[0] != ntag.DATA_PAGE] + first)
    try:
        back = nfchost.identify(tag, {epoch: key}.get)
    except ProtocolError as e:
        back = {"card": None, "kind": e.code}
    if back.get("kind") != "ntag" or back.get("card") != card:
        raise WriteFailed(_("the tag does not read back as card %(card)s (%(kind)s): issue it again",
                            card=card, kind=back.get("kind")))
    try:
        version = cards.issue(db, card, tier, customer, operator)
    except headoffice.HeadOfficeError as e:
        raise DeskError(_("the tag holds card %(card)s but the directory refused it (%(error)s): register it with "
                          "flask --app loyalty.backend.app set-card %(card)s --tier %(tier)d", card=card, error=e,
                          tier=tier))
    return {"card": card, "tier": tier, "epoch": epoch, "model": model, "uid": tag.uid.hex().upper(),
            "directory_version": version}


def parser():
    ap = argparse.ArgumentParser(prog="loyalty-issuedesk",
                                 description=_("The card-issuing desk: a blank NTAG becomes a loyalty card, "
                                               "and head office knows it."),
                                 epilog=_("Phones and smart cards are personalised through their app."))
    ap.add_argument("--db", required=True, help=_("the backend's database (instance/loyalty.db)"))
    ap.add_argument("--card", required=True, help=_("the new card's number (1 to 19 digits, not yet issued)"))
    ap.add_argument("--tier", type=int, default=0, help=_("the card's tier id (default 0)"))
    ap.add_argument("--device", default="usb", help=_("nfcpy device path: usb, tty:USB0:pn532, udp:host:port"))
    ap.add_argument("--wait", type=float, default=10.0, help=_("seconds to wait for the tag (default 10)"))
    ap.add_argument("--customer", help=_("the customer the card is for (id, pseudonym or card number; "
                                         "default: nobody's yet)"))
    ap.add_argument("--operator", help=_("who issues it (kept with the customer's card events)"))
    return ap


def main(argv=None, out=None):
    for_commands()
    args = parser().parse_args(argv)
    out = out or sys.stdout
    try:
        db = nfchost.open_db(args.db)
    except ValueError as e:
        print(_("error: %(error)s", error=e), file=sys.stderr)
        return 1
    try:
        clf = nfchost.open_reader(args.device)
        try:
            done = issue_card(clf, db, args.card, args.tier, args.wait, args.customer, args.operator)
        finally:
            clf.close()
    except (DeskError, ValueError, OSError) as e:
        print(_("error: %(error)s", error=e), file=sys.stderr)
        return 1
    finally:
        db.conn.close()
    print(_("card %(card)s issued on NTAG%(model)d %(uid)s: tier %(tier)d, key epoch %(epoch)d, "
            "directory version %(version)s", card=done["card"], model=done["model"], uid=done["uid"],
            tier=done["tier"], epoch=done["epoch"], version=done["directory_version"]), file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
