"""The host side with nfcpy: reader mode (tools/nfchost.py) and the issuing desk
(tools/issuedesk.py), read and written through nfcpy's `udp` device, the RF link nfcpy
simulates between two ContactlessFrontends on one machine.

On the reader side everything is nfcpy's own: sense, its tag activation (for an NXP Type 2
tag: AUTHENTICATE 1A probe, sense again, GET_VERSION, as with a real tag), Type2Tag and
Type4Tag.transceive. On the other side, `Field` puts a card model of sim/cardmodels.py
into the field with nfcpy's udp driver in target mode.

What nfcpy's public target API can and cannot do (nfcpy 1.0.4, nfc/clf/udp.py):
  * clf.listen(LocalTarget("106A", sens_res=, sdd_res=, sel_res=), timeout) answers the
    anticollision and returns the first command (tt2_cmd, or tt4_cmd for a RATS);
    clf.exchange(answer, timeout) then answers one command and returns the next.
  * nfcpy's reader switches the field off (RFOFF) and senses again in the middle of
    activating an NXP tag. clf.listen() closes and binds the socket again each time, so
    the SENS_REQ that follows the RFOFF at once is lost: activation then takes 1 s and
    the NTAG215 is not recognised (measured: a plain Type2Tag after 1.02 s).
  * So Field keeps one bound socket: the udp Device's listen_tta() once (it binds), then
    its private _listen_tta(target, deadline) for every later activation, and the
    device's send_rsp_recv_cmd() for commands. Nothing else of nfcpy is bypassed.
  * nfcpy has no Type 2 or Type 4 tag emulation (nfc.tag.emulate does Type 3 only), so
    Field answers Type 2 commands from NtagCard.answer and speaks ISO-DEP (ISO/IEC
    14443-4 blocks: I, R(ACK/NAK), S(DESELECT)) itself for the APDUs of
    AppletCard/PhoneCard. Over udp there is no CRC.
"""
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import nfc
import nfc.clf

from loyalty.sim import cardmodels
from loyalty.tools import issuedesk, nfchost
from loyalty.backend import headoffice
from loyalty.protocol import loyaltycard
from loyalty.sim.simboard import wait_for

NTAG_UID = bytes.fromhex("04a1b2c3d4e5f6")
OTHER_UID = bytes.fromhex("04112233445566")
CARD = "6001000000000042"
WAIT = 10  # seconds a card in the field may take to be found and read: a bound, not a pause


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def port_taken(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("0.0.0.0", port))
        return False
    except OSError:
        return True
    finally:
        s.close()


class Field:
    """One card model in the field of nfcpy's udp device on `port`, answered from a thread.

    `card` has uid, sak, atqa (PN532 order, most significant byte first) and answer(cmd)
    for Type 2 commands or apdu(cmd) for ISO-DEP. `commands` records what the reader
    sent: raw Type 2 commands, or whole APDUs."""

    def __init__(self, card, port):
        self.card = card
        self.port = port
        self.commands = []
        self.activations = 0
        self.failure = None
        self._stop = False
        self._clf = nfc.ContactlessFrontend("udp:127.0.0.1:%d" % port)
        self._dev = self._clf.device
        self._thread = threading.Thread(target=self._run, name="field-%d" % port, daemon=True)

    def __enter__(self):
        self._thread.start()
        # bound: the reader's first SENS_REQ is not lost
        wait_for(lambda: port_taken(self.port), timeout=30, what="the emulator to bind its port", every=0.005)
        return self

    def __exit__(self, *exc):
        self._stop = True
        # a datagram that is not anticollision ends the device's wait for a command (sent
        # again while the thread lives: in the middle of a cascade it is ignored)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        end = time.monotonic() + 30
        while self._thread.is_alive() and time.monotonic() < end:
            s.sendto(b"106A 00", ("127.0.0.1", self.port))
            self._thread.join(0.05)
        s.close()
        self._clf.close()
        assert not self._thread.is_alive(), "emulator thread did not stop"
        if self.failure is not None and exc[0] is None:
            raise self.failure

    def _local_target(self):
        return nfc.clf.LocalTarget("106A", sens_res=bytearray(self.card.atqa[::-1]),
                                   sdd_res=bytearray(self.card.uid), sel_res=bytearray([self.card.sak]))

    def _run(self):
        try:
            target = self._dev.listen_tta(self._local_target(), 30)  # binds the socket
            while not self._stop:
                if target is not None and not self._stop:
                    self.activations += 1
                    if target.tt4_cmd:
                        self._iso_dep(target)
                    else:
                        self._type2(target)
                # the field went off or the reader went quiet: the card leaves and comes back
                self.card.enter_field()
                target = None if self._stop else self._dev._listen_tta(self._local_target(), time.time() + 30)
        except Exception as e:  # reported by __exit__
            self.failure = e

    def _exchange(self, target, answer):
        try:
            cmd = self._dev.send_rsp_recv_cmd(target, answer, 1.0)
        except nfc.clf.CommunicationError:  # RFOFF, or no command for a second
            return None
        return None if self._stop else bytes(cmd)

    def _type2(self, target):
        cmd = bytes(target.tt2_cmd)
        while cmd is not None:
            self.commands.append(cmd)
            answer = self.card.answer(cmd) if hasattr(self.card, "answer") else None
            cmd = self._exchange(target, answer)

    def _iso_dep(self, target):
        # ISO/IEC 14443-4 on the card's side: RATS -> ATS, then blocks. The card's block
        # number starts at 1 and follows the reader's I-blocks (rules 9-12).
        if not hasattr(self.card, "apdu") or self.card.ats is None:
            return
        block = self._exchange(target, self.card.ats)
        number, last, apdu = 1, None, b""
        while block:
            pcb = block[0]
            if pcb & 0xE2 == 0x02:  # I-block
                number = pcb & 1
                apdu += block[1:]
                if pcb & 0x10:  # the reader chains: acknowledge and wait for the rest
                    answer = bytes([0xA2 | number])
                else:
                    self.commands.append(apdu)
                    answer = bytes([0x02 | number]) + self.card.apdu(apdu)
                    apdu = b""
                last = answer
            elif pcb & 0xE6 == 0xA2:  # R-block: ACK, or NAK with bit 0x10
                if pcb & 1 == number and last is not None:
                    answer = last  # our last block was lost: send it again
                else:
                    answer = bytes([0xA2 | number])
            elif pcb & 0xF7 == 0xC2:  # S(DESELECT): answer it and leave the protocol
                self._exchange(target, bytes([pcb]))
                return
            else:
                answer = None  # not a block we know: stay silent, as a card does
            block = self._exchange(target, answer)


# ------------------------------------------------------------------ fixtures


@pytest.fixture(autouse=True)
def no_stray_threads():
    before = set(threading.enumerate())
    yield
    left = [t.name for t in threading.enumerate() if t not in before]
    assert not left, "threads left running: %s" % left


@pytest.fixture
def port():
    return free_udp_port()


@pytest.fixture
def reader(port):
    clf = nfc.ContactlessFrontend("udp:127.0.0.1:%d" % port)
    yield clf
    clf.close()


def loyalty_ntag(issuer, epoch, uid=NTAG_UID, card=CARD):
    return cardmodels.NtagCard.loyalty(card, epoch, issuer, uid)


# ------------------------------------------------------------------ reader mode


def test_ntag_reads_as_its_card_through_nfcpy(reader, port, db, epoch, issuer):
    tag = loyalty_ntag(issuer, epoch)
    with Field(tag, port) as field:
        identity = nfchost.read_card(reader, nfchost.keys_from_db(db), wait=WAIT)
    assert identity == {"card": CARD, "kind": "ntag", "verified": True, "epoch": epoch, "counter": 0}
    # nfcpy activated it as an NXP tag does: the Ultralight C probe, then GET_VERSION
    assert field.commands[0] == b"\x1a\x00"
    assert b"\x60" in field.commands
    assert field.activations >= 2  # nfcpy sensed again after the probe


def test_phone_reads_with_a_fresh_nonce_each_tap(reader, port, epoch, issuer):
    phone = cardmodels.PhoneCard(card=CARD, epoch=epoch, issuer_key=issuer)
    keys = {epoch: issuer}.get
    with Field(phone, port) as field:
        first = nfchost.read_card(reader, keys, wait=WAIT)
        second = nfchost.read_card(reader, keys, wait=WAIT)
    assert first == {"card": CARD, "kind": "applet", "verified": True, "epoch": epoch, "counter": 1}
    assert second["counter"] == 2
    auths = [c for c in field.commands if c[:2] == b"\x80\x10"]
    assert field.commands[0] == loyaltycard.SELECT
    assert len(auths) == 2 and auths[0][5:21] != auths[1][5:21]


def test_contactless_smart_card_with_a_double_size_uid(reader, port, epoch, issuer):
    # a fixed 7-byte UID: two cascade levels of anticollision, then RATS and the applet
    uid = bytes.fromhex("04c1c2c3c4c5c6")
    card = cardmodels.AppletCard(uid, card="6001000000000099", epoch=epoch, issuer_key=issuer)
    with Field(card, port):
        identity = nfchost.read_card(reader, {epoch: issuer}.get, wait=WAIT)
    assert identity == {"card": "6001000000000099", "kind": "applet", "verified": True, "epoch": epoch,
                        "counter": 1}


def test_smart_card_without_the_applet_is_a_uid_card(reader, port):
    uid = bytes.fromhex("04c1c2c3c4c5c6")
    card = cardmodels.AppletCard(uid)
    card.apdu = lambda cmd: b"\x6a\x82"
    with Field(card, port):
        identity = nfchost.read_card(reader, {}.get, wait=WAIT)
    assert identity["kind"] == "uid" and identity["card"] == "9" + "%017d" % int(uid.hex(), 16)


def test_phone_without_the_app_is_no_card(reader, port, epoch, issuer):
    # its random UID says nothing: never a UID card
    phone = cardmodels.PhoneCard()
    phone.apdu = lambda cmd: b"\x6a\x82"  # no loyalty applet
    with Field(phone, port):
        with pytest.raises(loyaltycard.CardError) as e:
            nfchost.read_card(reader, {epoch: issuer}.get, wait=WAIT)
    assert e.value.code == "card.no_applet"


def test_uid_card_is_known_by_its_uid_and_never_spoken_to(reader, port, epoch, issuer):
    uid = bytes.fromhex("a1b2c3d4")
    with Field(cardmodels.UidCard(uid), port) as field:
        identity = nfchost.read_card(reader, {epoch: issuer}.get, wait=WAIT)
    # docs/cards.md: "9" and the UID as a big-endian decimal, zero-padded to 10 digits
    assert identity["card"] == "9" + "%010d" % 0xA1B2C3D4 and identity["kind"] == "uid"
    assert field.commands == []


def test_record_copied_onto_another_tag_is_forged(reader, port, epoch, issuer):
    genuine = loyalty_ntag(issuer, epoch)
    copy = cardmodels.NtagCard(OTHER_UID, memory=genuine.user_memory())
    with Field(copy, port):
        with pytest.raises(loyaltycard.CardError) as e:
            nfchost.read_card(reader, {epoch: issuer}.get, wait=WAIT)
    assert e.value.code == "card.forged"


def test_card_of_an_unknown_epoch_needs_a_sync(reader, port, epoch, issuer):
    with Field(loyalty_ntag(issuer, epoch), port):
        with pytest.raises(loyaltycard.CardError) as e:
            nfchost.read_card(reader, {}.get, wait=WAIT)
    assert e.value.code == "card.key"


def test_empty_field_gives_none(reader):
    assert nfchost.read_card(reader, {}.get, wait=0) is None


def test_key_file_round_trip_and_refused_when_others_can_read_it(tmp_path, db, epoch, issuer):
    path = tmp_path / "cardkeys.json"
    assert nfchost.export_keys(db, str(path)) == 1
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert nfchost.keys_from_file(str(path))(epoch) == issuer
    assert nfchost.keys_from_file(str(path))(epoch + 1) is None
    with pytest.raises(FileExistsError):
        nfchost.export_keys(db, str(path))
    os.chmod(path, 0o644)
    with pytest.raises(ValueError, match="chmod 600"):
        nfchost.load_key_file(str(path))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"card_keys": {"1": "abcd"}}))
    os.chmod(bad, 0o600)
    with pytest.raises(ValueError, match="64 hex digits"):
        nfchost.load_key_file(str(bad))


def test_mask_shows_only_the_last_four_digits():
    assert nfchost.mask("6001000000000042") == "************0042"
    assert nfchost.mask("42") == "42"
    # a UID card proves nothing, whatever identify() says
    assert nfchost.describe({"card": "90012345678", "kind": "uid", "verified": True}) == "*******5678 uid unverified"
    assert nfchost.describe({"card": CARD, "kind": "applet", "verified": True}) == "************0042 applet verified"


def run_tool(command, *args):
    """An operator's command as installed in the environment (pyproject.toml's scripts)."""
    return subprocess.run([str(Path(sys.executable).parent / command), *args], capture_output=True, text=True,
                          timeout=30)


def test_read_command_prints_a_masked_line_and_no_key(port, tmp_path, epoch, issuer):
    keyfile = tmp_path / "cardkeys.json"
    keyfile.write_text(json.dumps({"card_keys": {str(epoch): issuer.hex()}}))
    os.chmod(keyfile, 0o600)
    with Field(loyalty_ntag(issuer, epoch), port):
        r = run_tool("loyalty-nfchost", "read", "--device", "udp:127.0.0.1:%d" % port,
                     "--keys", str(keyfile), "--wait", str(WAIT))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "************0042 ntag verified\n"
    assert issuer.hex() not in r.stdout + r.stderr


def test_read_command_says_when_no_card_came(port, tmp_path, db, epoch):
    r = run_tool("loyalty-nfchost", "read", "--device", "udp:127.0.0.1:%d" % port,
                 "--db", str(tmp_path / "loyalty.db"), "--wait", "0.5")
    assert r.returncode == 1 and "no card within 0.5 s" in r.stderr


# ------------------------------------------------------------------ issuing desk


def test_desk_issues_a_blank_ntag_that_then_reads_as_the_card(reader, port, db, epoch, issuer):
    blank = cardmodels.NtagCard(NTAG_UID)
    with Field(blank, port):
        done = issuedesk.issue_card(reader, db, CARD, tier=1, wait=WAIT)
        identity = nfchost.read_card(reader, nfchost.keys_from_db(db), wait=WAIT)
    assert done["card"] == CARD and done["model"] == 215 and done["epoch"] == epoch
    assert identity == {"card": CARD, "kind": "ntag", "verified": True, "epoch": epoch, "counter": 0}
    row = db.execute("SELECT tier, status FROM cards WHERE card=?", [CARD]).fetchone()
    assert tuple(row) == (1, 0)
    # the record the desk wrote, byte for byte: TLV 03 len, record D4 0F len type payload, FE
    payload = loyaltycard.ntag_payload(issuer, epoch, CARD, NTAG_UID)
    record = bytes([0xD4, len(loyaltycard.NTAG_TYPE), len(payload)]) + loyaltycard.NTAG_TYPE + payload
    written = blank.user_memory()
    assert written[:2 + len(record) + 1] == bytes([0x03, len(record)]) + record + b"\xfe"
    assert bytes(blank.pages[12:16]) == b"\xe1\x10\x3e\x00"  # NTAG215's CC, untouched


def test_desk_keeps_the_lock_control_tlv_of_an_ntag213(reader, port, db, epoch, issuer):
    blank = cardmodels.NtagCard(NTAG_UID, model=213, memory=cardmodels.LOCK_TLV_213 + b"\x03\x00\xfe")
    with Field(blank, port):
        done = issuedesk.issue_card(reader, db, CARD, tier=0, wait=WAIT)
        identity = nfchost.read_card(reader, {epoch: issuer}.get, wait=WAIT)
    assert done["model"] == 213 and identity["card"] == CARD and identity["kind"] == "ntag"
    assert blank.user_memory()[:6] == b"\x01\x03\xa0\x0c\x34\x03"


def test_desk_refuses_a_tag_with_a_loyalty_record(reader, port, db, epoch, issuer):
    tag = loyalty_ntag(issuer, epoch, card="6001000000000007")
    before = bytes(tag.pages)
    with Field(tag, port):
        with pytest.raises(issuedesk.AlreadyIssued):
            issuedesk.issue_card(reader, db, CARD, tier=0, wait=WAIT)
    assert bytes(tag.pages) == before and tag.writes == 0
    assert db.execute("SELECT count(*) FROM cards").fetchone()[0] == 0


def test_desk_refuses_a_read_only_tag(reader, port, db, epoch):
    tag = cardmodels.NtagCard(NTAG_UID)
    tag.pages[15] = 0x0F  # CC byte 3: write access 0 (free) becomes F (none)
    with Field(tag, port):
        with pytest.raises(issuedesk.TagLocked, match="read-only"):
            issuedesk.issue_card(reader, db, CARD, tier=0, wait=WAIT)
    assert tag.writes == 0


def test_desk_refuses_a_phone(reader, port, db, epoch):
    with Field(cardmodels.PhoneCard(), port):
        with pytest.raises(issuedesk.NotNtag, match="through the app"):
            issuedesk.issue_card(reader, db, CARD, tier=0, wait=WAIT)


def test_desk_says_no_tag(reader, db, epoch):
    with pytest.raises(issuedesk.NoTag):
        issuedesk.issue_card(reader, db, CARD, tier=0, wait=0)


def test_desk_refuses_a_write_the_tag_refuses(reader, port, db, epoch):
    tag = cardmodels.NtagCard(NTAG_UID)
    answer = tag.answer
    tag.answer = lambda cmd: b"\x00" if cmd[:1] == b"\xa2" and cmd[1] == 5 else answer(cmd)
    with Field(tag, port):
        with pytest.raises(issuedesk.WriteFailed, match="page 5"):
            issuedesk.issue_card(reader, db, CARD, tier=0, wait=WAIT)
    assert bytes(tag.pages[16:19]) == b"\x03\x00\xfe"  # page 4 not written: still blank
    assert db.execute("SELECT count(*) FROM cards").fetchone()[0] == 0


def test_desk_refuses_a_message_that_does_not_fit(reader, port, db, epoch, monkeypatch):
    # every NTAG21x holds the record (59 bytes at most, NTAG213 has 144): ntag's refusal is forced
    monkeypatch.setattr(issuedesk.ntag, "pages_to_write",
                        lambda message, model, prefix: (_ for _ in ()).throw(ValueError("does not fit")))
    with Field(cardmodels.NtagCard(NTAG_UID), port):
        with pytest.raises(issuedesk.TagTooSmall):
            issuedesk.issue_card(reader, db, CARD, tier=0, wait=WAIT)


@pytest.mark.parametrize("card, why", [("0042", "leading zeros"), ("9" + "0" * 10, "UID cards"),
                                       ("12a4", "digits"), ("1" * 20, "digits")])
def test_desk_refuses_numbers_it_cannot_issue(db, epoch, card, why):
    with pytest.raises(issuedesk.BadRequest, match=why):
        issuedesk.issue_card(None, db, card, tier=0)


def test_desk_needs_an_epoch_a_tier_and_a_new_number(db):
    with pytest.raises(issuedesk.BadRequest, match="new-card-epoch"):
        issuedesk.issue_card(None, db, CARD, tier=0)
    headoffice.new_card_epoch(db)
    with pytest.raises(issuedesk.BadRequest, match="no tier 7"):
        issuedesk.issue_card(None, db, CARD, tier=7)
    headoffice.set_card(db, CARD, tier=0)
    with pytest.raises(issuedesk.BadRequest, match="in the directory already"):
        issuedesk.issue_card(None, db, CARD, tier=0)


def test_desk_command_help_and_run(port, tmp_path, db, epoch):
    r = run_tool("loyalty-issuedesk", "--help")
    assert r.returncode == 0 and "--card" in r.stdout and "--tier" in r.stdout
    blank = cardmodels.NtagCard(NTAG_UID)
    with Field(blank, port):
        r = run_tool("loyalty-issuedesk", "--db", str(tmp_path / "loyalty.db"), "--card", CARD,
                     "--tier", "1", "--device", "udp:127.0.0.1:%d" % port, "--wait", str(WAIT))
    assert r.returncode == 0, r.stderr
    assert "card %s issued on NTAG215 04A1B2C3D4E5F6" % CARD in r.stdout
    r = run_tool("loyalty-issuedesk", "--db", str(tmp_path / "loyalty.db"), "--card", "6001000000000043",
                 "--device", "udp:127.0.0.1:%d" % port, "--wait", "0.5")
    assert r.returncode == 1 and "no tag within 0.5 s" in r.stderr


def test_a_card_that_leaves_is_no_longer_there(reader, port, epoch, issuer):
    with Field(loyalty_ntag(issuer, epoch), port):
        card = nfchost.find_card(reader, wait=WAIT)
        assert card.still_there()
    assert not card.still_there()
    with pytest.raises(loyaltycard.CardError) as e:
        nfchost.identify(card, {epoch: issuer}.get)
    assert e.value.code == "card.removed"


def test_read_command_prints_a_refused_card(port, tmp_path, db, epoch, issuer):
    forged = cardmodels.NtagCard(OTHER_UID, memory=loyalty_ntag(issuer, epoch).user_memory())
    with Field(forged, port):
        r = run_tool("loyalty-nfchost", "read", "--device", "udp:127.0.0.1:%d" % port,
                     "--db", str(tmp_path / "loyalty.db"), "--wait", str(WAIT))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "refused card.forged: Card forged: MAC mismatch\n"


def _customer(db, card="6001000000000017"):
    """A customer enrolled at the desk with another card; returns their id."""
    from loyalty.backend.customers import enrol, notices
    headoffice.add_store(db, "S1", "Milano Centro")
    notice = notices.publish(db, {"it": "Informativa"}, "dpo", 1_780_000_000)
    return enrol.enrol(db, "Maria Rossi", "maria@example.it", "S1", card, 0, True, {"scheme"}, "desk", "anna",
                       notice, now=1_780_000_000)


def test_desk_issues_a_card_to_a_customer_in_the_same_step(reader, port, db, epoch, issuer):
    customer = _customer(db)
    with Field(cardmodels.NtagCard(NTAG_UID), port):
        done = issuedesk.issue_card(reader, db, CARD, tier=1, wait=WAIT, customer=str(customer), operator="anna")
    assert done["card"] == CARD
    row = db.execute("SELECT tier, status, customer_id FROM cards WHERE card=?", [CARD]).fetchone()
    assert tuple(row) == (1, 0, customer)
    assert [tuple(r) for r in db.execute("SELECT card, event, operator FROM card_events ORDER BY id")][-1] == \
        (CARD, "issued", "anna")


def test_desk_refuses_an_unknown_customer_before_it_writes_the_tag(reader, port, db, epoch):
    _customer(db)
    blank = cardmodels.NtagCard(NTAG_UID)
    before = blank.user_memory()
    with Field(blank, port):
        with pytest.raises(issuedesk.BadRequest, match="customer"):
            issuedesk.issue_card(reader, db, CARD, tier=1, wait=WAIT, customer="999")
    assert blank.user_memory() == before
    assert db.execute("SELECT count(*) FROM cards WHERE card=?", [CARD]).fetchone()[0] == 0
