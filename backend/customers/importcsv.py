"""Customers from a CSV file, all or nothing.

The header names the columns, in English or in Italian, in any order (household is
optional; the other eight are required):

    name,contact,store,card,tier,age_ok,profiling,marketing[,household]
    nome,contatto,negozio,carta,livello,almeno_14,profilazione,marketing[,nucleo]

`age_ok`, `profiling` and `marketing` take yes/no (sì/no, 1/0, true/false); an empty
cell is no: nobody is imported with a consent the file does not state. Every customer
joins the scheme (the scheme consent); the channel, the operator and the notice version
the consents answered come from the command line, one for the whole file.

    with open("customers.csv", encoding="utf-8-sig") as f:
        import_customers(db, f, channel="desk", operator="office.marco", notice_version=2, now=now)  # -> 120

Every line is checked before anything is written; the first error names the line and
the column (as the file's header spells it) and nothing is stored.
"""
import csv

from loyalty.backend.db import transaction
from loyalty.backend.headoffice.common import HeadOfficeError, InvalidValue
from loyalty.backend.customers import enrol
from loyalty.i18n import _

COLUMNS = ("name", "contact", "store", "card", "tier", "age_ok", "profiling", "marketing", "household")
ITALIAN = dict(zip(("nome", "contatto", "negozio", "carta", "livello", "almeno_14", "profilazione", "marketing",
                    "nucleo"), COLUMNS))
OPTIONAL = ("household",)
YES = {"yes", "y", "sì", "si", "s", "1", "true", "vero", "x"}
NO = {"no", "n", "0", "false", "falso", ""}
# what the functions call a value -> the column it comes from
_FIELD_COLUMN = {"age_ok": "age_ok", "scheme": "name", "profiling": "profiling", "marketing": "marketing"}


class ImportRefused(HeadOfficeError):
    """A line of the file is wrong: `line` and `field` (the file's heading) say where."""

    def __init__(self, line, field, message):
        super().__init__("", _("line %(line)d: %(field)s: %(error)s; nothing was imported", line=line, field=field,
                               error=message))
        self.line = line
        self.field = field


def _header(row):
    names = [h.strip().lower() for h in row]
    columns = [ITALIAN.get(n, n) for n in names]
    missing = [c for c in COLUMNS if c not in columns and c not in OPTIONAL]
    unknown = [n for n, c in zip(names, columns) if c not in COLUMNS]
    if missing or unknown or len(set(columns)) != len(columns):
        raise ImportRefused(1, "header", _("the columns must be %(en)s (or in Italian: %(it)s), each once",
                                           en=",".join(COLUMNS), it=",".join(ITALIAN)))
    return names, columns


def _yes(value, line, heading):
    v = value.strip().lower()
    if v in YES or v in NO:
        return v in YES
    raise ImportRefused(line, heading, _("must be yes or no (sì/no, 1/0)"))


def read(f):
    """[(line, {column: text})] from the open file `f`, with the headings as written
    ({column: heading}); ImportRefused on a malformed line."""
    reader = csv.reader(f)
    try:
        names, columns = _header(next(reader, []))
        headings = dict(zip(columns, names))
        rows = []
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(columns):
                raise ImportRefused(reader.line_num, "", _("%(fields)d fields, the header has %(header)d",
                                                           fields=len(row), header=len(columns)))
            rows.append((reader.line_num, dict(zip(columns, (cell.strip() for cell in row)))))
    except UnicodeDecodeError:
        raise ImportRefused(reader.line_num + 1, "", _("not UTF-8 text: save the file as UTF-8 CSV"))
    except csv.Error as e:
        raise ImportRefused(reader.line_num, "", str(e))
    return rows, headings


def _values(db, line, row, headings, channel, operator, notice_version):
    def heading(field):
        return headings.get(_FIELD_COLUMN.get(field, field), field)
    try:
        age_ok = _yes(row["age_ok"], line, heading("age_ok"))
        given = {"scheme"} | {p for p in ("profiling", "marketing") if _yes(row[p], line, heading(p))}
        tier = row["tier"]
        tier = int(tier) if tier.isascii() and tier.isdigit() and len(tier) <= 3 else (None if tier == "" else tier)
        values = enrol.check(db, row["name"], row["contact"], row["store"], row["card"], tier, age_ok, given,
                             channel, operator, notice_version)
        household = row.get("household") or None
        if household is not None:
            if not (household.isascii() and household.isdigit() and len(household) <= 9):
                raise InvalidValue("household", _("must be a household id (digits)"))
            household = int(household)
        return values, household
    except ImportRefused:
        raise
    except HeadOfficeError as e:
        if e.field in ("channel", "operator", "notice"):
            raise  # the command line's, not the line's
        raise ImportRefused(line, heading(e.field), e.message)


def import_customers(db, f, channel, operator, notice_version, now):
    """Enrol the customers of the CSV file `f`; returns how many. ImportRefused names the
    line and column of the first fault; nothing is stored then."""
    rows, headings = read(f)
    checked, cards = [], {}
    for line, row in rows:
        values, household = _values(db, line, row, headings, channel, operator, notice_version)
        if values["card"] in cards:
            raise ImportRefused(line, headings["card"], _("card %(card)s is on line %(other)d too",
                                                          card=values["card"], other=cards[values["card"]]))
        cards[values["card"]] = line
        checked.append((line, values, household))
    with transaction(db):
        for line, values, household in checked:
            try:
                enrol.write(db, values, household, now)
            except ImportRefused:
                raise
            except HeadOfficeError as e:  # what only the database knows: a card issued already
                raise ImportRefused(line, headings.get(e.field, e.field), e.message)
    return len(checked)
