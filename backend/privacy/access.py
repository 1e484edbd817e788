"""Access: everything the backend holds on a customer, as JSON and as CSV, with Italian
headings (the customer reads them; the headings are the same whatever the staff's language).

    data = export(db, 7, "care.anna", now, what="export json")   # writes a views and a trail row
    to_json(data)      # {"Cliente": [{"Codice": 7, "Nome": "Mario Rossi", ...}], "Carte": [...], ...}
    to_csv(data)       # one block per section: its title, its headings, its rows, a blank line

Sections (SECTIONS): the customer, their household, cards, card events, consents with
the notices they were given under (the texts), receipts (totals; lines where the receipt
still has them), customer care's contacts, marketing messages, the trail and the views
of their data. Times are ISO 8601 in UTC; amounts in euro cents; empty is null in JSON.
The receipts are those of the customer's cards (subject.cards_of).
"""
import csv
import datetime
import io
import json

from loyalty.backend.db import transaction
from loyalty.backend.privacy import subject, trail

_T = "t"  # a column of epoch seconds: shown as ISO 8601 UTC


def _in(values):
    return ",".join("?" * len(values)) or "NULL"


# (title, SQL over (customer id, pseudonym, card forms), [(heading, kind)]); kind _T: a time
SECTIONS = (
    ("Cliente", lambda c, p, f: ("SELECT id, pseudonym, name, contact, store_id, household_id, age_ok, status, "
                                 "created_t, created_by, updated_t, closed_t, erased_t FROM customers WHERE id = ?", [c]),
     [("Codice", None), ("Pseudonimo", None), ("Nome", None), ("Contatto", None), ("Negozio", None),
      ("Nucleo familiare", None), ("Almeno 14 anni", None), ("Stato", None), ("Iscritto il", _T),
      ("Iscritto da", None), ("Aggiornato il", _T), ("Chiuso il", _T), ("Cancellato il", _T)]),
    ("Nucleo familiare", lambda c, p, f: ("SELECT h.id, h.name, h.created_t FROM households h JOIN customers c "
                                          "ON c.household_id = h.id WHERE c.id = ?", [c]),
     [("Codice", None), ("Nome", None), ("Creato il", _T)]),
    ("Carte", lambda c, p, f: ("SELECT card, tier, status, version, updated FROM cards WHERE card IN (%s) "
                               "ORDER BY length(card), card" % _in(f), f),
     [("Carta", None), ("Livello", None), ("Stato", None), ("Versione", None), ("Aggiornata il", _T)]),
    ("Eventi delle carte", lambda c, p, f: ("SELECT t, card, event, operator, detail FROM card_events "
                                            "WHERE customer_id = ? ORDER BY t, id", [c]),
     [("Data", _T), ("Carta", None), ("Evento", None), ("Operatore", None), ("Dettaglio", None)]),
    ("Consensi", lambda c, p, f: ("SELECT t, purpose, given, channel, operator, notice_version FROM consents "
                                  "WHERE customer_id = ? ORDER BY id", [c]),
     [("Data", _T), ("Finalità", None), ("Dato", None), ("Canale", None), ("Operatore", None),
      ("Informativa", None)]),
    ("Informative", lambda c, p, f: ("SELECT version, lang, published_t, text FROM notices WHERE version IN "
                                     "(SELECT notice_version FROM consents WHERE customer_id = ?) "
                                     "ORDER BY version, lang", [c]),
     [("Versione", None), ("Lingua", None), ("Pubblicata il", _T), ("Testo", None)]),
    ("Scontrini", lambda c, p, f: ("SELECT t, day, store_id, reader_id, seq, receipt, kind, card, tier, gross, "
                                   "discount, lines, folded_t FROM receipts WHERE card IN (%s) "
                                   "ORDER BY t, reader_id, seq" % _in(f), f),
     [("Data", _T), ("Giorno", None), ("Negozio", None), ("Cassa", None), ("Numero", None),
      ("Scontrino", None), ("Tipo", None), ("Carta", None), ("Livello", None), ("Lordo (centesimi)", None),
      ("Sconto (centesimi)", None), ("Righe", None), ("Righe tolte il", _T)]),
    ("Righe degli scontrini", None,  # from the records still holding their lines: _lines
     [("Cassa", None), ("Numero", None), ("Riga", None), ("Articolo", None), ("Categoria", None),
      ("Quantità", None), ("Prezzo (centesimi)", None)]),
    ("Contatti con l'assistenza", lambda c, p, f: ("SELECT t, channel, operator, reason, note, outcome "
                                                  "FROM care_contacts WHERE customer_id = ? ORDER BY t, id", [c]),
     [("Data", _T), ("Canale", None), ("Operatore", None), ("Motivo", None), ("Nota", None), ("Esito", None)]),
    ("Comunicazioni di marketing", lambda c, p, f: ("SELECT t, channel, campaign FROM marketing_log "
                                                   "WHERE customer_id = ? ORDER BY t, id", [c]),
     [("Data", _T), ("Canale", None), ("Campagna", None)]),
    ("Registro delle operazioni", lambda c, p, f: ("SELECT t, actor, action, reason, detail FROM trail "
                                                  "WHERE subject = ? ORDER BY t, id", [p]),
     [("Data", _T), ("Chi", None), ("Operazione", None), ("Motivo", None), ("Dettaglio", None)]),
    ("Accessi ai dati", lambda c, p, f: ("SELECT t, actor, what FROM views WHERE subject = ? ORDER BY t, id", [p]),
     [("Data", _T), ("Chi", None), ("Cosa", None)]),
)


def _time(t):
    if t is None:
        return None
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def record_lines(text):
    """[(sku, category, quantity, price)] of a receipt's stored record (its lines while
    it still holds them); [] for NULL or a record that is not an object."""
    try:
        lines = json.loads(text).get("lines") or [] if text else []
    except (ValueError, AttributeError):
        return []
    return [(line.get("sku"), line.get("cat"), line.get("qty"), line.get("price"))
            for line in lines if isinstance(line, dict)]


def _lines(db, forms):
    """[(reader, seq, line number from 1, sku, category, quantity, price)] of the receipts
    of these card forms that still hold their record."""
    out = []
    for reader, seq, text in db.execute("SELECT reader_id, seq, record FROM receipts WHERE card IN (%s) AND "
                                        "record IS NOT NULL ORDER BY t, reader_id, seq" % _in(forms), forms):
        out.extend((reader, seq, i + 1) + line for i, line in enumerate(record_lines(text)))
    return out


def card_forms(db, customer_id):
    """Every form the customer's cards may be written in on a receipt: what the receipts'
    `card IN (...)` looks for (subject.cards_of, subject.written_forms)."""
    return [f for card in subject.cards_of(db, customer_id) for f in subject.written_forms(card)]


def export(db, customer_id, actor, now, what="export", reason=None):
    """Everything held on the customer: {section title: [{heading: value}]}. Writes, in
    the same transaction as it reads, a views row (`what`) and a trail row ('access'):
    the export lists itself among the views."""
    with transaction(db):
        customer = subject.find(db, customer_id)
        subject.looked_at(db, actor, customer, what, now)
        trail.note(db, actor, "access", customer["pseudonym"], reason=reason, detail=what, now=now)
        return holdings(db, customer)


def holdings(db, customer):
    """What export returns, for `customer` (a subject.find row), writing nothing: for the
    shopper's own page (backend/shopper/), where the customer looking is not staff."""
    forms = card_forms(db, customer["id"])
    data = {}
    for title, query, columns in SECTIONS:
        if query is None:
            rows = _lines(db, forms)
        else:
            sql, params = query(customer["id"], customer["pseudonym"], forms)
            rows = db.execute(sql, params).fetchall()
        data[title] = [{heading: _time(v) if kind == _T else v for (heading, kind), v in zip(columns, row)}
                       for row in rows]
    return data


def to_json(data):
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def to_csv(data):
    """The export as one CSV text: per section its title, its headings, its rows, a blank line."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    for title, _, columns in SECTIONS:
        w.writerow([title])
        w.writerow([heading for heading, _ in columns])
        for row in data[title]:
            w.writerow(["" if row[h] is None else row[h] for h, _ in columns])
        w.writerow([])
    return out.getvalue()
