"""The PC/SC host side (tools/pcschost.py) against the real PC/SC stack: pyscard, pcscd
(started here, tests/support/pcscd.py) with the vsmartcard-vpcd driver, and our virtual card
(sim/vpcdcard.py) running the loyalty applet of sim/cardmodels.py.

What pcscd does here is what it does with a real reader: it polls the reader for the
card (vpcd asks our card for its ATR), powers it on, picks T=0 or T=1 from the ATR and
passes the APDUs. Expected bytes come from docs/cards.md, ISO/IEC 7816-3/-4 and PC/SC
part 3, written out by hand.
"""
import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from smartcard import scard
from smartcard.ATR import ATR

from loyalty.sim import cardmodels
from loyalty.tools import pcschost
from loyalty.testing import pcscd as pcscd_helper
from loyalty.sim import vpcdcard
from loyalty.backend import headoffice
from loyalty.protocol import engine, loyaltycard

CARD = "6001000000000042"
AID = bytes.fromhex("F0 53 43 4F 4E 54 4F 01")
SELECT = bytes.fromhex("00 A4 04 00 08") + AID + b"\x00"  # docs/cards.md
UID = bytes.fromhex("04 c1 c2 c3 c4 c5 c6")


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def pcscd(tmp_path_factory):
    daemon = pcscd_helper.Pcscd(tmp_path_factory.mktemp("pcscd"))
    daemon.start()
    yield daemon
    daemon.stop()
    # nothing of ours left: no pcscd, no vpcd port listening
    assert pcscd_helper.running_pcscd() is None
    assert not any(pcscd_helper.listening(daemon.port + i) for i in range(pcscd_helper.SLOTS))


@pytest.fixture(autouse=True)
def no_stray_threads():
    before = set(threading.enumerate())
    yield
    left = [t.name for t in threading.enumerate() if t not in before]
    assert not left, "threads left running: %s" % left


@pytest.fixture
def pcsc(pcscd):
    p = pcschost.Pcsc()
    yield p
    p.close()


@pytest.fixture
def reader(pcscd):
    return pcscd.readers[0]


WAIT = 30  # seconds pcscd may take to see a card come or go: a bound, not a pause
# pcscd asks vpcd whether a card is there every 0.4 s (PCSCLITE_STATUS_POLL_RATE): a card
# put in before one of those polls has found the reader empty is taken for the card that
# left, as with any reader pcscd polls. What a client sees does not tell that poll apart
# (a card gone during a transaction shows as gone at once), so after pcscd says the
# card left, a new one waits three poll periods from the moment the last one left.
SWAP_GAP = 1.2
_last_out = [0.0]


@pytest.fixture
def slot(pcscd, pcsc, reader):
    """slot(applet, **VirtualCard options): the card in the first vpcd reader for the
    test; pulled out afterwards, and the test ends once pcscd has seen it go."""
    cards = []

    def put(applet, **kw):
        assert pcsc.wait_removed(reader, WAIT), "pcscd still sees the last card"
        out = max([_last_out[0]] + [c.removed_at for c in cards if c.removed_at is not None])
        # pcscd's own polls (see SWAP_GAP): a pause for a thread we cannot watch, kept
        time.sleep(max(0.0, out + SWAP_GAP - time.monotonic()))
        card = vpcdcard.VirtualCard(applet, port=pcscd.port, **kw)
        card.insert()
        cards.append(card)
        return card
    yield put
    for card in cards:
        card.remove()
        _last_out[0] = max(_last_out[0], card.removed_at)
    if cards:
        assert pcsc.wait_removed(reader, WAIT), "pcscd still sees a card"


def genuine(epoch, issuer, card=CARD):
    return cardmodels.AppletCard(UID, card=card, epoch=epoch, issuer_key=issuer)


def auth_commands(card):
    return [c for c in card.commands if isinstance(c, bytes) and c[:2] == b"\x80\x10"]


# ------------------------------------------------------------------ the ATRs we present


def test_atrs_are_what_the_standards_say_and_pyscard_agrees():
    # PC/SC part 3: a contactless ISO 14443-4 card is 3B 8n 80 01 + ATS historical bytes +
    # TCK; AppletCard's ATS (05 78 80 70 02) has none, TCK = 80^80^01 = 01
    assert vpcdcard.ATR_CONTACTLESS == bytes.fromhex("3B 80 80 01 01")
    t1 = ATR(list(vpcdcard.ATR_CONTACT_T1))
    assert t1.getSupportedProtocols() == {"T=1": True}
    assert bytes(t1.getHistoricalBytes()) == b"SCONTO\x01"
    assert t1.checksumOK
    t0 = ATR(list(vpcdcard.ATR_CONTACT_T0))
    assert t0.getSupportedProtocols() == {"T=0": True}
    assert t0.getChecksum() is None  # T=0 only: no TCK (ISO/IEC 7816-3 8.2.5)
    assert pcschost.is_contactless_atr(vpcdcard.ATR_CONTACTLESS)
    assert not pcschost.is_contactless_atr(vpcdcard.ATR_CONTACT_T1)
    assert not pcschost.is_contactless_atr(vpcdcard.ATR_CONTACT_T0)
    # a MIFARE Classic 1K on a PC/SC reader (PC/SC part 3 supplement: standard 03, name 00 01)
    mifare = bytes.fromhex("3B 8F 80 01 80 4F 0C A0 00 00 03 06 03 00 01 00 00 00 00 6A")
    assert pcschost.is_storage_card_atr(mifare)
    assert not pcschost.is_storage_card_atr(vpcdcard.ATR_CONTACTLESS)


# ------------------------------------------------------------------ reading


def test_contact_card_reads_through_pcscd_and_gets_its_tier_discount(pcsc, reader, slot, db, epoch, issuer):
    headoffice.set_card(db, CARD, tier=2)  # gold
    card = slot(genuine(epoch, issuer), atr=vpcdcard.ATR_CONTACT_T1)
    identity = pcschost.read_card(pcsc, pcschost.nfchost.keys_from_db(db), reader=reader, wait=WAIT)
    assert identity == {"card": CARD, "kind": "contact", "verified": True, "epoch": epoch, "counter": 1}
    # pcscd asked for the ATR and powered the card before the first APDU
    first_apdu = next(i for i, c in enumerate(card.commands) if isinstance(c, bytes))
    assert "atr" in card.commands[:first_apdu] and "on" in card.commands[:first_apdu]
    apdus = [c for c in card.commands if isinstance(c, bytes)]
    assert apdus[0] == SELECT
    assert len(apdus) == 2 and apdus[1][:5] == bytes.fromhex("80 10 00 00 10") and apdus[1][21:] == b"\x00"
    # the discount the till then grants: gold is 5 %, 10.00 of bread gives 0.50
    tier = db.execute("SELECT tier FROM cards WHERE card=?", [identity["card"]]).fetchone()[0]
    rules = headoffice.current_rules(db)[1]
    lines = [{"sku": "2001", "cat": "bakery", "qty": 1, "price": 1000}]
    now = int(time.time())
    quote = engine.quote(rules, lines, tier, {"now": now, "last_sync": now, "card_day_used": 0})
    assert quote["discount"] == 50 and quote["disc"] == [{"line": 0, "rule": "tier:gold", "cents": 50}]


def test_each_read_sends_a_fresh_nonce(pcsc, reader, slot, epoch, issuer):
    card = slot(genuine(epoch, issuer))
    keys = {epoch: issuer}.get
    first = pcschost.read_card(pcsc, keys, reader=reader, wait=WAIT)
    second = pcschost.read_card(pcsc, keys, reader=reader, wait=WAIT)
    assert (first["counter"], second["counter"]) == (1, 2)
    nonces = [c[5:21] for c in auth_commands(card)]
    assert len(nonces) == 2 and nonces[0] != nonces[1]


def test_contactless_card_on_a_pcsc_reader_is_an_applet(pcsc, reader, slot, epoch, issuer):
    slot(genuine(epoch, issuer), atr=vpcdcard.ATR_CONTACTLESS)
    identity = pcschost.read_card(pcsc, {epoch: issuer}.get, reader=reader, wait=WAIT)
    assert identity["kind"] == "applet" and identity["card"] == CARD


def test_t0_card_answers_through_get_response(pcsc, reader, slot, epoch, issuer):
    card = slot(genuine(epoch, issuer), atr=vpcdcard.ATR_CONTACT_T0, t0=True)
    name = pcsc.wait_for_card(reader, WAIT)
    with pcsc.connect(name) as c:
        assert c.protocol == "T=0" and c.kind == "contact"
        identity = pcschost.identify(c, {epoch: issuer}.get)
    assert identity["card"] == CARD and identity["counter"] == 1
    apdus = [x for x in card.commands if isinstance(x, bytes)]
    # SELECT's answer has one byte of data (the applet version): 61 01, GET RESPONSE Le=01
    assert apdus[0] == SELECT and apdus[1] == bytes.fromhex("00 C0 00 00 01")
    # AUTHENTICATE's answer: epoch 1, counter 4, len 1, 16 digits, MAC 16 = 38 bytes
    assert apdus[2][:2] == b"\x80\x10" and apdus[3] == bytes.fromhex("00 C0 00 00") + bytes([38])


def test_wrong_le_is_sent_again_with_the_length_the_card_gives(monkeypatch):
    # ISO/IEC 7816-4 5.3.4: 6C xx means "send it again with Le = xx"; then 61 xx means
    # "fetch xx more bytes with GET RESPONSE"
    sent = []
    script = [bytes.fromhex("6C 02"), bytes.fromhex("AA BB 61 01"), bytes.fromhex("CC 90 00")]

    def transmit(handle, pci, cmd):
        sent.append(bytes(cmd))
        return scard.SCARD_S_SUCCESS, list(script[len(sent) - 1])
    monkeypatch.setattr(pcschost.scard, "SCardTransmit", transmit)
    card = pcschost.PcscCard("r", 1, scard.SCARD_PROTOCOL_T0, vpcdcard.ATR_CONTACT_T0)
    card.handle = None  # nothing to disconnect
    assert card.apdu(bytes.fromhex("00 B0 00 00 00")) == bytes.fromhex("AA BB CC 90 00")
    assert sent == [bytes.fromhex("00 B0 00 00 00"), bytes.fromhex("00 B0 00 00 02"), bytes.fromhex("00 C0 00 00 01")]


def test_endless_get_response_is_a_named_error(monkeypatch):
    monkeypatch.setattr(pcschost.scard, "SCardTransmit", lambda h, p, c: (scard.SCARD_S_SUCCESS, [0x61, 0x01]))
    card = pcschost.PcscCard("r", None, scard.SCARD_PROTOCOL_T0, vpcdcard.ATR_CONTACT_T0)
    with pytest.raises(loyaltycard.CardError) as e:
        card.apdu(SELECT)
    assert e.value.code == "card.unreadable"


def test_forged_card_is_refused(pcsc, reader, slot, epoch):
    # the right epoch and number, but a key that is not head office's
    slot(genuine(epoch, os.urandom(32)))
    with pytest.raises(loyaltycard.CardError) as e:
        pcschost.read_card(pcsc, {epoch: b"\x11" * 32}.get, reader=reader, wait=WAIT)
    assert e.value.code == "card.forged"


class Replayer(cardmodels.AppletCard):
    """A copy made by someone who recorded a genuine card's answer to one AUTHENTICATE."""

    def __init__(self, recorded):
        cardmodels.AppletCard.__init__(self, UID)
        self.recorded = recorded

    def apdu(self, cmd):
        if bytes(cmd[:2]) == b"\x80\x10":
            return self.recorded
        return cardmodels.AppletCard.apdu(self, cmd)


def test_a_replayed_answer_fails_against_a_new_nonce(pcsc, reader, slot, epoch, issuer):
    # recorded off the genuine card: its answer to a nonce of the eavesdropper's choosing
    old_nonce = bytes(range(16))
    recorded = genuine(epoch, issuer)
    recorded.apdu(SELECT)
    answer = recorded.apdu(bytes.fromhex("80 10 00 00 10") + old_nonce + b"\x00")
    assert answer[-2:] == b"\x90\x00"
    assert loyaltycard.check_auth(answer, old_nonce, {epoch: issuer}.get)[0] == CARD  # genuine for that nonce
    slot(Replayer(answer))
    with pytest.raises(loyaltycard.CardError) as e:
        pcschost.read_card(pcsc, {epoch: issuer}.get, reader=reader, wait=WAIT)
    assert e.value.code == "card.forged"


def test_card_of_an_epoch_the_till_lacks_needs_a_sync(pcsc, reader, slot, epoch, issuer):
    slot(genuine(epoch, issuer))
    with pytest.raises(loyaltycard.CardError) as e:
        pcschost.read_card(pcsc, {}.get, reader=reader, wait=WAIT)
    assert e.value.code == "card.key"


def test_card_without_the_applet(pcsc, reader, slot):
    applet = cardmodels.AppletCard(UID)
    applet.apdu = lambda cmd: b"\x6a\x82"
    slot(applet)
    with pytest.raises(loyaltycard.CardError) as e:
        pcschost.read_card(pcsc, {}.get, reader=reader, wait=WAIT)
    assert e.value.code == "card.no_applet"


def test_card_pulled_out_mid_session_then_the_reader_reads_the_next(pcsc, reader, slot, epoch, issuer):
    card = slot(genuine(epoch, issuer), leave_at=b"\x80\x10")  # gone when AUTHENTICATE comes
    with pytest.raises(loyaltycard.CardError) as e:
        pcschost.read_card(pcsc, {epoch: issuer}.get, reader=reader, wait=WAIT)
    assert e.value.code == "card.removed"
    assert not card.inserted
    assert pcsc.wait_removed(reader, WAIT)
    slot(genuine(epoch, issuer))  # the next shopper's card
    assert pcschost.read_card(pcsc, {epoch: issuer}.get, reader=reader, wait=WAIT)["card"] == CARD


def test_no_card_and_no_such_reader(pcsc, reader):
    assert pcschost.read_card(pcsc, {}.get, reader=reader, wait=0.3) is None
    with pytest.raises(pcschost.NoReader, match="no PC/SC reader 'nowhere'"):
        pcsc.wait_for_card("nowhere", 0)


# ------------------------------------------------------------------ the issuing desk


def test_personalise_writes_a_blank_card_that_reads_back_and_is_in_the_directory(pcsc, reader, slot, db, epoch,
                                                                                   issuer):
    blank = cardmodels.AppletCard(UID)
    card = slot(blank)
    done = pcschost.personalise(pcsc, db, CARD, tier=1, reader=reader, wait=WAIT)
    assert done["card"] == CARD and done["tier"] == 1 and done["epoch"] == epoch and done["kind"] == "contact"
    # PERSONALISE as docs/cards.md writes it: 80 20 epoch 00 Lc | len | card | card key,
    # the key being HMAC-SHA256(issuer key, "sconto-card" || card number)
    key = hmac.new(issuer, b"sconto-card" + CARD.encode(), hashlib.sha256).digest()
    data = bytes([len(CARD)]) + CARD.encode() + key
    assert bytes([0x80, 0x20, epoch, 0x00, len(data)]) + data in card.commands
    assert (blank.card, blank.epoch, blank.key) == (CARD, epoch, key)
    # read back with AUTHENTICATE before the directory heard of it
    order = [c[:2] for c in card.commands if isinstance(c, bytes)]
    assert order == [b"\x00\xa4", b"\x80\x20", b"\x00\xa4", b"\x80\x10"]
    assert tuple(db.execute("SELECT tier, status FROM cards WHERE card=?", [CARD]).fetchone()) == (1, 0)
    identity = pcschost.read_card(pcsc, pcschost.nfchost.keys_from_db(db), reader=reader, wait=WAIT)
    assert identity == {"card": CARD, "kind": "contact", "verified": True, "epoch": epoch, "counter": 2}


def test_second_personalisation_is_refused_and_changes_nothing(pcsc, reader, slot, db, epoch, issuer):
    blank = cardmodels.AppletCard(UID)
    slot(blank)
    pcschost.personalise(pcsc, db, CARD, tier=1, reader=reader, wait=WAIT)
    with pytest.raises(pcschost.AlreadyPersonalised, match="personalised already"):
        pcschost.personalise(pcsc, db, "6001000000000043", tier=1, reader=reader, wait=WAIT)
    assert blank.card == CARD
    assert db.execute("SELECT count(*) FROM cards").fetchone()[0] == 1


def test_personalise_refuses_a_card_without_the_applet_and_bad_requests(pcsc, reader, slot, db, epoch):
    with pytest.raises(pcschost.NoCard, match="no card within"):
        pcschost.personalise(pcsc, db, CARD, tier=1, reader=reader, wait=0.3)
    with pytest.raises(pcschost.PersonaliseError, match="no tier 7"):
        pcschost.personalise(pcsc, db, CARD, tier=7, reader=reader, wait=0.3)
    with pytest.raises(pcschost.PersonaliseError, match="belong to UID cards"):
        pcschost.personalise(pcsc, db, "90012345678", tier=1, reader=reader, wait=0.3)
    other = cardmodels.AppletCard(UID)
    other.apdu = lambda cmd: b"\x6a\x82"
    slot(other)
    with pytest.raises(pcschost.WrongCard, match="not a loyalty card"):
        pcschost.personalise(pcsc, db, CARD, tier=1, reader=reader, wait=WAIT)
    assert db.execute("SELECT count(*) FROM cards").fetchone()[0] == 0


def test_card_pulled_out_while_personalising_leaves_the_directory_alone(pcsc, reader, slot, db, epoch):
    slot(cardmodels.AppletCard(UID), leave_at=b"\x80\x20")
    with pytest.raises(pcschost.PersonaliseError, match="left the reader"):
        pcschost.personalise(pcsc, db, CARD, tier=1, reader=reader, wait=WAIT)
    assert db.execute("SELECT count(*) FROM cards").fetchone()[0] == 0


# ------------------------------------------------------------------ the command line


def run_tool(*args, env=None):
    """loyalty-pcschost as installed in the environment (pyproject.toml's scripts)."""
    return subprocess.run([str(Path(sys.executable).parent / "loyalty-pcschost"), *args], capture_output=True,
                          text=True, timeout=60, env=env)


def test_read_command_prints_a_masked_line_and_no_key(reader, slot, tmp_path, epoch, issuer):
    keyfile = tmp_path / "cardkeys.json"
    keyfile.write_text(json.dumps({"card_keys": {str(epoch): issuer.hex()}}))
    os.chmod(keyfile, 0o600)
    slot(genuine(epoch, issuer))
    r = run_tool("read", "--keys", str(keyfile), "--reader", reader, "--wait", str(WAIT))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "************0042 contact verified\n"
    assert issuer.hex() not in r.stdout + r.stderr


def test_personalise_command_registers_the_card(reader, slot, tmp_path, db, epoch):
    blank = cardmodels.AppletCard(UID)
    slot(blank)
    r = run_tool("personalise", "--db", str(tmp_path / "loyalty.db"), "--card", CARD, "--tier", "2",
                 "--reader", reader, "--wait", str(WAIT))
    assert r.returncode == 0, r.stderr
    assert "card %s personalised" % CARD in r.stdout and "tier 2" in r.stdout
    assert blank.card == CARD
    assert db.execute("SELECT tier FROM cards WHERE card=?", [CARD]).fetchone()[0] == 2


def test_commands_say_when_there_is_no_card_or_no_pcscd(reader, tmp_path, db, epoch, pcscd):
    r = run_tool("read", "--db", str(tmp_path / "loyalty.db"), "--reader", reader, "--wait", "0.3")
    assert r.returncode == 1 and "no card within 0.3 s" in r.stderr
    r = run_tool("readers")
    assert r.returncode == 0 and r.stdout.splitlines() == pcscd.readers
    # pcsc-lite's client finds pcscd through PCSCLITE_CSOCK_NAME: a socket nobody serves
    env = dict(os.environ, PCSCLITE_CSOCK_NAME=str(tmp_path / "nobody.comm"))
    r = run_tool("readers", env=env)
    assert r.returncode == 1 and "pcscd is not running" in r.stderr
