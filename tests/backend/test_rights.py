"""The customer's rights of access and rectification (backend/privacy/access.py,
rectification.py) and their commands; erasure has tests/backend/test_erasure.py.

The customer is written as rows (tests/backend/customerfixtures.py) and every expected
value below is worked out by hand from those rows."""
import csv
import io
import json

import pytest

from loyalty.backend.headoffice.common import InvalidValue, NotFound
from loyalty.backend.privacy import access, rectification
from loyalty.testing import shop
from customerfixtures import (add_card, add_care_contact, add_consent, add_customer, add_household, add_marketing,
                              add_notice, add_receipt)

T0 = 1793611800          # 2026-11-02T09:30:00Z
NOW = 1796558400         # 2026-12-06T12:00:00Z
CARD_A, CARD_B, OTHER = "6001000000000042", "6001000000000043", "6001000000000099"


@pytest.fixture
def mario(db):
    add_household(db, 3, "Famiglia Rossi", T0)
    add_customer(db, 7, "Mario Rossi", "mario.rossi@example.it", T0, household=3, pseudonym="C-mario")
    add_customer(db, 8, "Anna Bianchi", "333 1234567", T0, pseudonym="C-anna")
    add_card(db, 7, CARD_A, 1, T0, tier=1)
    add_card(db, 7, CARD_B, 2, T0 + 60)
    add_card(db, 8, OTHER, 3, T0)
    add_notice(db, 1, "it", "Informativa v1: i tuoi dati servono a...", T0 - 86400)
    add_notice(db, 1, "en", "Notice v1: your data serve to...", T0 - 86400)
    add_notice(db, 2, "it", "Informativa v2", T0 + 86400)  # nobody gave a consent under it
    add_consent(db, 7, "scheme", 1, T0)
    add_consent(db, 7, "profiling", 1, T0)
    add_consent(db, 7, "profiling", 0, T0 + 3600, channel="phone", operator="care.luca")
    add_consent(db, 8, "marketing", 1, T0)
    # a receipt with its lines; the card written with a leading zero, as a card may give it
    add_receipt(db, "R1", 5, "0" + CARD_A, T0 + 7200, "2026-11-02", 997, lines=shop.basket()["lines"])
    add_receipt(db, "R1", 6, CARD_B, T0 + 90000, "2026-11-03", 1250, discount=25, folded=T0 + 100000, count=2)
    add_receipt(db, "R1", 7, OTHER, T0 + 90060, "2026-11-03", 400, lines=[{"sku": "9", "cat": "x", "qty": 1, "price": 400}])
    add_care_contact(db, 7, T0 + 86400, "asked why the discount was missing")
    add_care_contact(db, 8, T0 + 86400, "not about Mario")
    add_marketing(db, 7, T0 + 172800, "natale-2026")
    db.execute("INSERT INTO views(t, actor, subject, what) VALUES(?, 'care.luca', 'C-mario', 'page')", [T0 + 86400])
    db.execute("INSERT INTO views(t, actor, subject, what) VALUES(?, 'care.luca', 'C-anna', 'page')", [T0 + 86400])
    return 7


def test_export_holds_everything_on_the_customer_and_nothing_else(db, mario):
    data = access.export(db, mario, "care.anna", NOW, what="export json", reason="richiesta del 5/12")
    assert data["Cliente"] == [{
        "Codice": 7, "Pseudonimo": "C-mario", "Nome": "Mario Rossi", "Contatto": "mario.rossi@example.it",
        "Negozio": "S1", "Nucleo familiare": 3, "Almeno 14 anni": 1, "Stato": "active",
        "Iscritto il": "2026-11-02T09:30:00Z", "Iscritto da": "desk.anna", "Aggiornato il": None,
        "Chiuso il": None, "Cancellato il": None}]
    assert data["Nucleo familiare"] == [{"Codice": 3, "Nome": "Famiglia Rossi", "Creato il": "2026-11-02T09:30:00Z"}]
    assert data["Carte"] == [
        {"Carta": CARD_A, "Livello": 1, "Stato": 0, "Versione": 1, "Aggiornata il": "2026-11-02T09:30:00Z"},
        {"Carta": CARD_B, "Livello": 0, "Stato": 0, "Versione": 2, "Aggiornata il": "2026-11-02T09:31:00Z"}]
    assert [e["Carta"] for e in data["Eventi delle carte"]] == [CARD_A, CARD_B]
    assert data["Consensi"] == [
        {"Data": "2026-11-02T09:30:00Z", "Finalità": "scheme", "Dato": 1, "Canale": "desk", "Operatore": "desk.anna",
         "Informativa": 1},
        {"Data": "2026-11-02T09:30:00Z", "Finalità": "profiling", "Dato": 1, "Canale": "desk",
         "Operatore": "desk.anna", "Informativa": 1},
        {"Data": "2026-11-02T10:30:00Z", "Finalità": "profiling", "Dato": 0, "Canale": "phone",
         "Operatore": "care.luca", "Informativa": 1}]
    assert [(n["Versione"], n["Lingua"], n["Testo"][:14]) for n in data["Informative"]] == [
        (1, "en", "Notice v1: you"), (1, "it", "Informativa v1")]
    assert data["Scontrini"] == [
        {"Data": "2026-11-02T11:30:00Z", "Giorno": "2026-11-02", "Negozio": "S1", "Cassa": "R1", "Numero": 5,
         "Scontrino": "T-5", "Tipo": "sale", "Carta": "0" + CARD_A, "Livello": 0, "Lordo (centesimi)": 997,
         "Sconto (centesimi)": 0, "Righe": 3, "Righe tolte il": None},
        {"Data": "2026-11-03T10:30:00Z", "Giorno": "2026-11-03", "Negozio": "S1", "Cassa": "R1", "Numero": 6,
         "Scontrino": "T-6", "Tipo": "sale", "Carta": CARD_B, "Livello": 0, "Lordo (centesimi)": 1250,
         "Sconto (centesimi)": 25, "Righe": 2, "Righe tolte il": "2026-11-03T13:16:40Z"}]
    # the folded receipt has no lines left to show; the other's three are shop.basket()'s
    assert [tuple(r.values()) for r in data["Righe degli scontrini"]] == [
        ("R1", 5, 1, "1001", "dairy", 2, 150), ("R1", 5, 2, "8001", "coffee", 1, 400),
        ("R1", 5, 3, "2001", "bakery", 3, 99)]
    assert data["Contatti con l'assistenza"] == [
        {"Data": "2026-11-03T09:30:00Z", "Canale": "phone", "Operatore": "care.luca", "Motivo": "complaint",
         "Nota": "asked why the discount was missing", "Esito": "solved"}]
    assert data["Comunicazioni di marketing"] == [
        {"Data": "2026-11-04T09:30:00Z", "Canale": "email", "Campagna": "natale-2026"}]
    # the export itself is in the trail and among the views
    assert data["Registro delle operazioni"] == [
        {"Data": "2026-12-06T12:00:00Z", "Chi": "care.anna", "Operazione": "access", "Motivo": "richiesta del 5/12",
         "Dettaglio": "export json"}]
    assert data["Accessi ai dati"] == [
        {"Data": "2026-11-03T09:30:00Z", "Chi": "care.luca", "Cosa": "page"},
        {"Data": "2026-12-06T12:00:00Z", "Chi": "care.anna", "Cosa": "export json"}]
    text = access.to_json(data)
    assert json.loads(text) == data
    for stranger in ("Anna", "333 1234567", OTHER, "not about Mario", "C-anna"):
        assert stranger not in text
    assert db.execute("SELECT actor, subject, what FROM views WHERE t = ?", [NOW]).fetchall() == [
        ("care.anna", "C-mario", "export json")]


def blocks(text):
    """The CSV export's sections: {title: [headings, row, ...]}."""
    found, current = {}, None
    for row in csv.reader(io.StringIO(text)):
        if not row:
            current = None
        elif current is None:
            current = found[row[0]] = []
        else:
            current.append(row)
    return found


def test_csv_export_has_italian_headings_and_the_same_rows(db, mario):
    text = access.to_csv(access.export(db, mario, "care.anna", NOW, what="export csv"))
    got = blocks(text)
    assert list(got) == ["Cliente", "Nucleo familiare", "Carte", "Eventi delle carte", "Consensi", "Informative",
                         "Scontrini", "Righe degli scontrini", "Contatti con l'assistenza",
                         "Comunicazioni di marketing", "Registro delle operazioni", "Accessi ai dati"]
    assert got["Scontrini"] == [
        ["Data", "Giorno", "Negozio", "Cassa", "Numero", "Scontrino", "Tipo", "Carta", "Livello",
         "Lordo (centesimi)", "Sconto (centesimi)", "Righe", "Righe tolte il"],
        ["2026-11-02T11:30:00Z", "2026-11-02", "S1", "R1", "5", "T-5", "sale", "0" + CARD_A, "0", "997", "0", "3", ""],
        ["2026-11-03T10:30:00Z", "2026-11-03", "S1", "R1", "6", "T-6", "sale", CARD_B, "0", "1250", "25", "2",
         "2026-11-03T13:16:40Z"]]
    assert got["Cliente"][0][:4] == ["Codice", "Pseudonimo", "Nome", "Contatto"]
    assert got["Cliente"][1][:4] == ["7", "C-mario", "Mario Rossi", "mario.rossi@example.it"]
    assert got["Righe degli scontrini"][0] == ["Cassa", "Numero", "Riga", "Articolo", "Categoria", "Quantità",
                                               "Prezzo (centesimi)"]
    assert len(got["Righe degli scontrini"]) == 4 and got["Accessi ai dati"][-1] == [
        "2026-12-06T12:00:00Z", "care.anna", "export csv"]


def test_rectification_writes_a_trail_row_without_the_values(db, mario):
    assert rectification.rectify(db, mario, "contact", " +39 333 765-4321 ", "care.anna", "new number", NOW)
    assert rectification.rectify(db, mario, "name", "Mario Rossi Verdi", "care.anna", "second surname", NOW + 1)
    assert db.execute("SELECT name, contact, updated_t FROM customers WHERE id = 7").fetchone() == (
        "Mario Rossi Verdi", "+393337654321", NOW + 1)
    assert db.execute("SELECT t, actor, action, subject, reason, detail FROM trail ORDER BY id").fetchall() == [
        (NOW, "care.anna", "rectify", "C-mario", "new number", "contact"),
        (NOW + 1, "care.anna", "rectify", "C-mario", "second surname", "name")]
    # as it is already: nothing to write
    assert not rectification.rectify(db, mario, "name", "Mario Rossi Verdi", "care.anna", "again", NOW + 2)
    assert db.execute("SELECT count(*) FROM trail").fetchone()[0] == 2


@pytest.mark.parametrize("field, value", [
    ("name", ""), ("name", "Mario\nRossi"), ("name", "Mario\u202eissoR"), ("name", "x" * 101),
    ("contact", "mario@"), ("contact", "mario.rossi@example"), ("contact", "12345"), ("contact", "+39 333 abc"),
    ("contact", "1234567890123456"), ("contact", "a@b.it\x00"), ("field", "store_id")])
def test_bad_rectifications_name_the_field_and_store_nothing(db, mario, field, value):
    with pytest.raises(InvalidValue) as e:
        rectification.rectify(db, mario, "store_id" if field == "field" else field, value, "care.anna", "x", NOW)
    assert e.value.field == field
    assert db.execute("SELECT name, contact FROM customers WHERE id = 7").fetchone() == (
        "Mario Rossi", "mario.rossi@example.it")
    assert db.execute("SELECT count(*) FROM trail").fetchone()[0] == 0


def test_unknown_customer_names_the_field(db, mario):
    with pytest.raises(NotFound) as e:
        access.export(db, 70, "care.anna", NOW)
    assert e.value.field == "customer_id"
    assert db.execute("SELECT count(*) FROM views WHERE t = ?", [NOW]).fetchone()[0] == 0


def test_commands_export_and_rectify(runner, db, mario, tmp_path):
    out = tmp_path / "mario.csv"
    r = runner.invoke(args=["customer-export", "--card", CARD_B, "--format", "csv", "--out", str(out),
                            "--actor", "care.anna"])
    assert r.exit_code == 0, r.output
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and (out.stat().st_mode & 0o777) == 0o600
    assert blocks(raw.decode("utf-8-sig"))["Cliente"][1][2] == "Mario Rossi"
    r = runner.invoke(args=["customer-export", "7", "--out", str(out), "--actor", "care.anna"])
    assert r.exit_code == 1 and "exists already" in r.output
    r = runner.invoke(args=["customer-rectify", "7", "--contact", "mario@", "--actor", "care.anna", "--reason", "x"])
    assert r.exit_code == 1 and "contact:" in r.output
    r = runner.invoke(args=["customer-rectify", "70", "--name", "Mario", "--actor", "care.anna", "--reason", "x"])
    assert r.exit_code == 1 and "customer_id:" in r.output
    r = runner.invoke(args=["customer-rectify", "--card", "6001", "--name", "Mario", "--actor", "a", "--reason", "x"])
    assert r.exit_code == 1 and "card:" in r.output
    r = runner.invoke(args=["customer-rectify", "7", "--name", "Mario Rossi Verdi", "--actor", "care.anna",
                            "--reason", "by mail"])
    assert r.exit_code == 0, r.output
    assert db.execute("SELECT name FROM customers WHERE id = 7").fetchone()[0] == "Mario Rossi Verdi"
    assert db.execute("SELECT action, detail FROM trail ORDER BY id").fetchall() == [
        ("access", "export csv"), ("rectify", "name")]
