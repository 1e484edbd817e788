"""Hostile batches over real HTTP (issue 14, "What must be shown").

Each case is one request to the real backend (waitress on loopback, one server for the
module), correctly signed by a reader unless the case is about the headers or the
signature, carrying exactly one defect. The backend must refuse it with the HTTP status,
the code and the field the schema names (docs/protocol.md sections 3-4, enforced by
protocol.recordcheck and protocol.batchcheck), and every table of its database must be
as it was except for the refusal's own bookkeeping: loyalty.testing.dbsnapshot's rule.

Every case has a reader of its own, with four records stored before it (`staged`):

    seq 1  sale A    LINES_A, 2 lines, the engine's discount for a gold card
    seq 2  sale B    LINES_B, 3 lines
    seq 3  a cancelled quote
    seq 4  a return of one unit of A's first line

so the hostile record is seq 5 and its `prev` is seq 4's hash. The batch it travels in
reports a status (REPORTED) unlike the stored one, to see whether a refusal keeps it.

Beside the refusals, the regressions that held up well are kept: a replayed accepted batch
and the same batch twice change nothing; a record refused twice byte for byte goes to
quarantine, never into receipts or day totals.
"""
import json
import re
import socket

import pytest

from loyalty.protocol.canonical import encode
from loyalty.protocol.records import GENESIS, body_digest, record_hash, sign_answer
from loyalty.testing.dbsnapshot import Refusal, assert_refusal_only, changes, snapshot
from loyalty.testing.readerjournal import BATCH, STATUS, BatchLab, totals_of

LINES_A = [{"sku": "1001", "cat": "latticini", "qty": 2, "price": 149},
           {"sku": "8001", "cat": "caffe", "qty": 1, "price": 429}]
LINES_B = [{"sku": "2001", "cat": "panetteria", "qty": 3, "price": 99},
           {"sku": "1002", "cat": "latticini", "qty": 1, "price": 239},
           {"sku": "6001", "cat": "bevande", "qty": 6, "price": 79}]
REPORTED = dict(STATUS, pending=7, firmware="9.9.9-h", journal="nearly_full", last_error="sync.network")
KEPT = {"pending": 7, "firmware": "9.9.9-h", "journal": "nearly_full", "last_error": "sync.network"}
DROP = object()  # put(rec, path, DROP) takes the key out
SUM = object()  # put(rec, "discount", SUM): the sum of the disc lines' int cents, so only the defect differs
ENVELOPE = ("reader", "seq", "prev")  # what check_envelope judges; the rest is the record's content


def put(obj, path, value):
    """Set (or with DROP remove) `path` ("lines.0.price") in a record."""
    keys = path.split(".")
    for k in keys[:-1]:
        obj = obj[int(k)] if isinstance(obj, list) else obj[k]
    last = keys[-1]
    if isinstance(obj, list):
        obj[int(last)] = value
    elif value is DROP:
        del obj[last]
    elif value is SUM:
        obj[last] = sum(d["cents"] for d in obj["disc"] if type(d.get("cents")) is int)
    else:
        obj[last] = value


class Req:
    """A request a case makes: the body and, when the case is about them, its own headers."""

    def __init__(self, body, headers=None, records=None):
        self.body, self.headers, self.records = body, headers, records or []


class Case:
    def __init__(self, make, http, code, field, level="verified", status_ok=True, quarantine=None):
        self.make, self.http, self.code, self.field = make, http, code, field
        self.level, self.status_ok = level, status_ok
        # a refusal for a record's content notes that record's hash (quarantine); one for
        # its envelope, its place in the chain or the body does not
        m = re.match(r"records\[(\d+)\]\.(\w+)", field)
        self.quarantine = (code == "batch.record" and m is not None and m.group(2) not in ENVELOPE) \
            if quarantine is None else quarantine
        self.index = int(m.group(1)) if m else None


CASES = {}


def case(name, make, http, code, field, **kw):
    assert name not in CASES, name
    CASES[name] = Case(make, http, code, field, **kw)


def record(field, code="batch.record", http=400, **kw):
    if field == "body":
        # a body that is not canonical JSON is not read for the reader's status either
        kw["status_ok"] = False
    return dict(http=http, code=code, field=field, **kw)


# -- record makers: the next record of a staged reader (seq 5), then the edits ---------------

def edited(build, edits):
    """A record maker: the staged reader's next record from build(j), then the edits."""
    def make(j):
        rec = build(j)
        for path, value in edits:
            put(rec, path, value)
        return [rec]
    return make


def sale_with(*edits, lines=LINES_A):
    return edited(lambda j: j.sale(lines=[dict(line) for line in lines]), edits)


def cancelled_with(*edits):
    return edited(lambda j: j.cancelled(lines=[dict(line) for line in LINES_A]), edits)


def return_with(*edits, ref=1, returning=(1, 0)):
    """A return of sale `ref` (A: one unit of its first line was returned at seq 4)."""
    return edited(lambda j: j.ret(ref, list(returning)), edits)


def void_with(*edits, ref=1):
    """A void of sale `ref`: what is left of it (of A: one unit of each line)."""
    return edited(lambda j: j.void_sale(ref), edits)


def R(field):
    return "records[0]." + field


# -- lines ---------------------------------------------------------------------------------
for what, value in [("an empty list", []), ("text 'void'", "void"), ("negative", -1), ("text '149'", "149"),
                    ("float-ish text '1.49'", "1.49"), ("over 10,000,000", 10000001), ("null", None),
                    ("true", True), ("an object", {"cents": 149})]:
    case("line price %s" % what, sale_with(("lines.0.price", value)), **record(R("lines[0].price")))
for what, value in [("0", 0), ("10000", 10000), ("text 'void'", "void"), ("true", True), ("-1", -1),
                    ("null", None), ("text '2'", "2")]:
    case("line qty %s" % what, sale_with(("lines.0.qty", value)), **record(R("lines[0].qty")))
for key in ("sku", "qty", "price", "cat"):
    case("line without %s" % key, sale_with(("lines.1.%s" % key, DROP)), **record(R("lines[1].%s" % key)))
case("line with an extra key 'discount'", sale_with(("lines.0.discount", 0)), **record(R("lines[0].discount")))
case("line with an extra key 'note'", sale_with(("lines.1.note", "x")), **record(R("lines[1].note")))
case("line sku of 33 characters", sale_with(("lines.0.sku", "1" * 33)), **record(R("lines[0].sku")))
case("line sku empty", sale_with(("lines.0.sku", "")), **record(R("lines[0].sku")))
case("line sku an integer", sale_with(("lines.0.sku", 1001)), **record(R("lines[0].sku")))
case("line cat of 33 characters", sale_with(("lines.0.cat", "c" * 33)), **record(R("lines[0].cat")))
case("line cat null", sale_with(("lines.0.cat", None)), **record(R("lines[0].cat")))
case("line not an object", sale_with(("lines.1", ["8001", "caffe", 1, 429])), **record(R("lines[1]")))
case("lines empty", sale_with(("lines", []), ("gross", 0), ("disc", []), ("discount", 0)), **record(R("lines")))
case("lines not a list", sale_with(("lines", {"0": LINES_A[0]})), **record(R("lines")))
case("lines missing", sale_with(("lines", DROP)), **record(R("lines")))
case("201 lines", sale_with(("lines", [dict(LINES_A[0], sku="%d" % (1000 + i)) for i in range(201)]),
                            ("gross", 201 * 298), ("disc", []), ("discount", 0)), **record(R("lines")))

# -- card, tier, rules, time, format, kind -----------------------------------------------------
for what, value in [("'12ab'", "12ab"), ("empty", ""), ("of 20 digits", "1" * 20), ("an integer", 6001000000000042),
                    ("with a space", " 6001000000000042"), ("in Arabic-Indic digits", "\u0664\u0662"),
                    ("with a sign", "+42"), ("null", None), ("missing", DROP)]:
    case("card %s" % what, sale_with(("card", value)), **record(R("card")))
for what, value in [("256", 256), ("-1", -1), ("text '2'", "2"), ("true", True), ("missing", DROP)]:
    case("tier %s" % what, sale_with(("tier", value)), **record(R("tier")))
for what, value in [("-1", -1), ("2^53 + 1", 2 ** 53 + 1), ("text", "7"), ("missing", DROP)]:
    case("rules %s" % what, sale_with(("rules", value)), **record(R("rules")))
for what, value in [("negative", -1), ("over 2^40", 2 ** 40 + 1), ("text", "1700000000"), ("missing", DROP),
                    ("false", False)]:
    case("t %s" % what, sale_with(("t", value)), **record(R("t")))
for what, value in [("2", 2), ("text '1'", "1"), ("true", True), ("missing", DROP), ("0", 0)]:
    case("v %s" % what, sale_with(("v", value)), **record(R("v")))
for what, value in [("'refund'", "refund"), ("'SALE'", "SALE"), ("missing", DROP), ("a list", ["sale"])]:
    case("kind %s" % what, sale_with(("kind", value)), **record(R("kind")))
case("unknown record key", sale_with(("x", 1)), **record(R("x")))
case("unknown record key holding a deep value",
     sale_with(("nest", json.loads("[" * 50 + "]" * 50))), **record(R("nest")))
case("a sale with a ref", sale_with(("ref", 1)), **record(R("ref")))
case("a sale with returning", sale_with(("returning", [0, 0])), **record(R("returning")))

# -- money of a sale -----------------------------------------------------------------------------
case("sale gross not the sum of its lines", sale_with(("gross", 728)), **record(R("gross")))
case("sale gross negative", sale_with(("gross", -727)), **record(R("gross")))
case("sale gross text", sale_with(("gross", "727")), **record(R("gross")))
case("sale gross true", sale_with(("lines", [dict(LINES_A[1], price=1, qty=1)]), ("gross", True),
                                   ("disc", []), ("discount", 0)), **record(R("gross")))
case("sale gross over 2^40", sale_with(("gross", 2 ** 40 + 1)), **record(R("gross")))
case("sale gross of 4,000 digits", sale_with(("gross", 10 ** 3999)), **record(R("gross")))
case("sale gross missing", sale_with(("gross", DROP)), **record(R("gross")))
case("discount not the sum of disc", sale_with(("discount", 113)), **record(R("discount")))
case("discount missing", sale_with(("discount", DROP)), **record(R("discount")))
case("discount text", sale_with(("discount", "112")), **record(R("discount")))
case("disc line beyond its line's amount", sale_with(("disc.2.cents", 430), ("discount", SUM)),
     **record(R("disc[2].cents")))
case("two disc lines beyond their line's amount", sale_with(("disc.2.cents", 400), ("disc.3.cents", 100),
                                                             ("discount", SUM)), **record(R("disc[3].cents")))
case("disc cents 0", sale_with(("disc.0.cents", 0), ("discount", SUM)), **record(R("disc[0].cents")))
case("disc cents negative on a sale", sale_with(("disc.0.cents", -30), ("discount", SUM)),
     **record(R("disc[0].cents")))
case("disc cents text", sale_with(("disc.0.cents", "30")), **record(R("disc[0].cents")))
for what, value in [("out of range", 2), ("negative", -1), ("true", True), ("text", "0"), ("null", None)]:
    case("disc line index %s" % what, sale_with(("disc.0.line", value)), **record(R("disc[0].line")))
for what, value in [("empty", ""), ("of 43 characters", "threshold:" + "X" * 33), ("an integer", 10),
                    ("null", None)]:
    case("disc rule %s" % what, sale_with(("disc.0.rule", value)), **record(R("disc[0].rule")))
# a discount line of another shape than {cents, line, rule} is named whole: "must be {cents, line, rule}"
case("disc rule missing", sale_with(("disc.0.rule", DROP)), **record(R("disc[0]")))
case("disc rule missing, another key in its place", sale_with(("disc.0.rule", DROP), ("disc.0.why", "x")),
     **record(R("disc[0].rule")))
case("disc line with an extra key", sale_with(("disc.0.why", "x")), **record(R("disc[0]")))
case("disc line without cents", sale_with(("disc.1.cents", DROP), ("discount", SUM)), **record(R("disc[1]")))
case("disc line not an object", sale_with(("disc.0", [0, "tier:gold", 30])), **record(R("disc[0]")))
case("disc not a list", sale_with(("disc", {"0": 30})), **record(R("disc")))
case("disc missing", sale_with(("disc", DROP)), **record(R("disc")))
case("more than 4 disc lines per line", sale_with(("disc", [{"cents": 1, "line": 0, "rule": "r%d" % i}
                                                            for i in range(9)]), ("discount", 9)),
     **record(R("disc")))

# -- receipt and quote ids ---------------------------------------------------------------------
case("sale receipt empty", sale_with(("receipt", "")), **record(R("receipt")))
case("sale receipt of 33 characters", sale_with(("receipt", "T" * 33)), **record(R("receipt")))
case("sale quote empty", sale_with(("quote", "")), **record(R("quote")))
case("sale quote an integer", sale_with(("quote", 5)), **record(R("quote")))
case("sale receipt missing", sale_with(("receipt", DROP)), **record(R("receipt")))

# -- cancelled quotes -------------------------------------------------------------------------
case("cancelled quote with gross", cancelled_with(("gross", 727)), **record(R("gross")))
case("cancelled quote with a discount and no disc", cancelled_with(("discount", 5)), **record(R("discount")))
case("cancelled quote with a disc line", cancelled_with(("disc", [{"cents": 5, "line": 0, "rule": "tier:gold"}]),
                                                        ("discount", 5)), **record(R("disc[0].cents")))
case("cancelled quote with negative gross", cancelled_with(("gross", -727)), **record(R("gross")))
case("cancelled quote without a receipt", cancelled_with(("receipt", "")), **record(R("receipt")))
case("cancelled quote with returning", cancelled_with(("returning", [1, 1])), **record(R("returning")))

# -- returns ---------------------------------------------------------------------------------
case("return without ref", return_with(("ref", DROP)), **record(R("ref")))
case("return ref to a cancelled quote", return_with(("ref", 3)), **record(R("ref")))
case("return ref to a return", return_with(("ref", 4)), **record(R("ref")))
case("return ref to its own seq", return_with(("ref", 5)), **record(R("ref")))
case("return ref beyond its own seq", return_with(("ref", 6)), **record(R("ref")))
case("return ref 0", return_with(("ref", 0)), **record(R("ref")))
case("return ref text", return_with(("ref", "1")), **record(R("ref")))
case("return ref true", return_with(("ref", True)), **record(R("ref")))
case("return ref to a sale with other lines", return_with(("ref", 2)), **record(R("lines")))
case("return of more than was sold", return_with(("returning", [2, 0])), **record(R("returning[0]")))
case("return of more than is left", return_with(("returned", [2, 0])), **record(R("returning[0]")))
case("return of nothing", return_with(("returning", [0, 0])), **record(R("returning")))
case("return with returned too short", return_with(("returned", [1])), **record(R("returned")))
case("return with returning too long", return_with(("returning", [1, 0, 0])), **record(R("returning")))
case("return with returning not a list", return_with(("returning", 1)), **record(R("returning")))
case("return with returning missing", return_with(("returning", DROP)), **record(R("returning")))
case("return with a negative returning", return_with(("returning", [2, -1])), **record(R("returning[1]")))
case("return with returning true", return_with(("returning", [True, 0])), **record(R("returning[0]")))
case("return with returning 10000", return_with(("returning", [10000, 0])), **record(R("returning[0]")))
case("return with a negative returned", return_with(("returned", [-1, 0])), **record(R("returned[0]")))
case("return gross not what comes back", return_with(("gross", -148)), **record(R("gross")))
case("return gross positive", return_with(("gross", 149)), **record(R("gross")))
case("return disc cents positive", return_with(("disc.0.cents", 15), ("discount", SUM)), **record(R("disc[0].cents")))
case("return disc beyond what comes back", return_with(("disc.0.cents", -150), ("discount", SUM)),
     **record(R("disc[0].cents")))
case("return disc on a line not returned", return_with(("disc.1", {"cents": -1, "line": 1, "rule": "tier:gold"}),
                                                       ("discount", SUM)), **record(R("disc[1].cents")))
case("return discount not the sum of disc", return_with(("discount", -21)), **record(R("discount")))
case("return receipt of 33 characters", return_with(("receipt", "T" * 33)), **record(R("receipt")))
case("return with an unknown key", return_with(("why", "broken")), **record(R("why")))

# -- voided sales -----------------------------------------------------------------------------
case("voided sale not returning all that is left", void_with(("returning", [0, 1]), ("gross", -429),
                                                             ("disc", []), ("discount", 0)),
     **record(R("returning[0]")))
case("voided sale returning more than is left", void_with(("returning", [2, 1])), **record(R("returning[0]")))
case("voided sale of a sale with nothing left", void_with(("returned", [2, 1]), ("returning", [0, 0]),
                                                          ("gross", 0), ("disc", []), ("discount", 0)),
     **record(R("returning")))
case("voided sale ref to a cancelled quote", void_with(("ref", 3)), **record(R("ref")))
case("voided sale without returned", void_with(("returned", DROP)), **record(R("returned")))
case("voided sale with returned of the wrong length", void_with(("returned", [1, 0, 0])), **record(R("returned")))
case("voided sale gross not what comes back", void_with(("gross", -1)), **record(R("gross")))

# -- hostile text ------------------------------------------------------------------------------
CHARS = [("NUL", "\x00"), ("ESC", "\x1b"), ("DEL", "\x7f"), ("NEL", "\x85"), ("RLO", "\u202e"),
         ("LRM", "\u200e"), ("LRI", "\u2066")]
MORE_CHARS = [("TAB", "\t"), ("LF", "\n"), ("PDI", "\u2069"), ("ALM", "\u061c"), ("RLM", "\u200f"),
              ("APC", "\x9f"), ("LRE", "\u202a")]
for name, ch in CHARS + MORE_CHARS:
    case("sku with %s" % name, sale_with(("lines.0.sku", "10" + ch + "01")), **record(R("lines[0].sku")))
for name, ch in CHARS:
    case("cat with %s" % name, sale_with(("lines.1.cat", "caf" + ch + "fe")), **record(R("lines[1].cat")))
    case("receipt with %s" % name, sale_with(("receipt", "T-" + ch + "5")), **record(R("receipt")))
    case("quote with %s" % name, sale_with(("quote", "q" + ch + "5")), **record(R("quote")))
    case("rule with %s" % name, sale_with(("disc.1.rule", "tier:" + ch + "gold")), **record(R("disc[1].rule")))
    case("return receipt with %s" % name, return_with(("receipt", ch)), **record(R("receipt")))


def reader_text(ch):
    def make(j):
        rec = j.sale(lines=[dict(line) for line in LINES_A])
        rec["reader"] = j.reader + ch
        return [rec]
    return make


def status_with(**fields):
    def make(j):
        rec = j.sale(lines=[dict(line) for line in LINES_A])
        status = dict(REPORTED)
        for k, v in fields.items():
            if v is DROP:
                del status[k]
            else:
                status[k] = v
        return Req(j.body([rec], status=status), records=[rec])
    return make


for name, ch in CHARS:
    case("record reader with %s" % name, reader_text(ch), **record(R("reader")))
    case("status firmware with %s" % name, status_with(firmware="0.1" + ch),
         **record("status.firmware", code="batch.status", status_ok=False))
case("status firmware with an escape sequence", status_with(firmware="\x1b[31m0.1"),
     **record("status.firmware", code="batch.status", status_ok=False))
case("status last_error with RLO", status_with(last_error="sync.\u202enetwork"),
     **record("status.last_error", code="batch.status", status_ok=False))
case("status refused with ESC", status_with(refused="batch.\x1bgap"),
     **record("status.refused", code="batch.status", status_ok=False))


def escaped(placeholder_path, escape):
    """A record whose text holds `escape` written as a JSON escape the canonical encoding never
    writes (a lone surrogate has no UTF-8 at all)."""
    def make(j):
        rec = j.sale(lines=[dict(line) for line in LINES_A])
        put(rec, placeholder_path, "XPLACEX")
        body = j.body([rec], status=REPORTED).replace(b"XPLACEX", escape)
        return Req(body, records=[rec])
    return make


case("receipt with a lone surrogate \\ud800", escaped("receipt", b"T\\ud800"), **record("body"))
case("sku with a lone low surrogate \\udc00", escaped("lines.0.sku", b"\\udc00"), **record("body"))
case("cat with a surrogate pair as escapes", escaped("lines.0.cat", b"\\ud83d\\ude00"), **record("body"))
case("receipt with CESU-8 bytes of a surrogate", escaped("receipt", b"\xed\xa0\x80"), **record("body"))

# -- the envelope: seq, prev, the record's reader ------------------------------------------------
for what, value in [("0", 0), ("text '5'", "5"), ("-1", -1), ("true", True), ("missing", DROP),
                    ("2^53 + 1", 2 ** 53 + 1)]:
    case("seq %s" % what, sale_with(("seq", value)), **record(R("seq")))
for what, value in [("not hex", "g" * 64), ("upper-case hex", None), ("63 digits", "a" * 63),
                    ("65 digits", "a" * 65), ("an integer", 0), ("missing", DROP)]:
    def prev_make(j, value=value):
        rec = j.sale(lines=[dict(line) for line in LINES_A])
        rec["prev"] = rec["prev"].upper() if value is None else value
        if value is DROP:
            del rec["prev"]
        return [rec]
    case("prev %s" % what, prev_make, **record(R("prev")))
case("record reader another reader", lambda j: [dict(j.sale(lines=LINES_A), reader="H001")], **record(R("reader")))
case("record reader empty", lambda j: [dict(j.sale(lines=LINES_A), reader="")], **record(R("reader")))
case("record reader missing", sale_with(("reader", DROP)), **record(R("reader")))
case("record not an object", lambda j: [b"[1,2,3]"], **record("records[0]"))
case("record null", lambda j: [b"null"], **record("records[0]"))


def gap(j):
    rec = j.sale(lines=LINES_A)
    rec["seq"] = 6
    return [rec]


def gap_inside(j):
    a, b = j.sale(lines=LINES_A), j.sale(lines=LINES_B)
    b["seq"] = 7
    return [a, b]


def twice(j):
    a = j.sale(lines=LINES_A)
    return [a, dict(a)]


def stored_altered(j):
    """Seq 4 (stored) sent again with other bytes."""
    rec = j.sale(lines=LINES_A)
    rec["seq"], rec["prev"] = 4, record_hash(encode(j.base[2]))
    return [rec]


def wrong_prev(j):
    rec = j.sale(lines=LINES_A)
    rec["prev"] = "ab" * 32
    return [rec]


def wrong_prev_inside(j):
    a, b = j.sale(lines=LINES_A), j.sale(lines=LINES_B)
    b["prev"] = GENESIS
    return [a, b]


def first_after_gap_of_stored(j):
    """Seq 3 sent again as stored, then seq 5: seq 4 is missing between them."""
    rec = j.sale(lines=LINES_A)
    return [j.base[2], rec]


case("seq leaving a gap after the stored ones", gap, **record(R("seq"), code="batch.gap", http=409))
case("seq leaving a gap inside the batch", gap_inside, **record("records[1].seq", code="batch.gap", http=409))
case("the same record twice in a batch", twice, **record("records[1].seq", code="batch.gap", http=409))
case("a stored record sent again altered", stored_altered, **record("records[0]", code="batch.chain", http=409))
case("prev not the stored record's hash", wrong_prev, **record(R("prev"), code="batch.chain", http=409))
case("prev not the previous record's hash", wrong_prev_inside,
     **record("records[1].prev", code="batch.chain", http=409))
case("a stored record then a gap", first_after_gap_of_stored,
     **record("records[1].seq", code="batch.gap", http=409))
case("201 records", lambda j: [j.sale(lines=[dict(LINES_A[0], qty=1)]) for _ in range(201)],
     **record("records"))


# -- the batch around the records ---------------------------------------------------------------
def batch_with(totals=None, reader=None, extra=None, drop=None, status=REPORTED, records=None):
    def make(j):
        recs = [j.sale(lines=[dict(line) for line in LINES_A])]
        tot = totals_of(recs)
        if callable(totals):
            tot = totals(tot)
        value = {"reader": j.reader if reader is None else reader, "records": recs,
                 "status": status, "totals": tot}
        if records is not None:
            value["records"] = records
        value.update(extra or {})
        for k in drop or ():
            del value[k]
        return Req(encode(value), records=recs)
    return make


case("totals count wrong", batch_with(totals=lambda t: dict(t, count=2)), **record("totals", code="batch.totals"))
case("totals gross wrong", batch_with(totals=lambda t: dict(t, gross=t["gross"] - 1)),
     **record("totals", code="batch.totals"))
case("totals discount wrong", batch_with(totals=lambda t: dict(t, discount=t["discount"] + 1)),
     **record("totals", code="batch.totals"))
case("totals missing", batch_with(drop=["totals"]), **record("totals", code="batch.totals"))
case("totals with an extra key", batch_with(totals=lambda t: dict(t, net=t["gross"] - t["discount"])),
     **record("totals", code="batch.totals"))
case("totals without count", batch_with(totals=lambda t: {"discount": t["discount"], "gross": t["gross"]}),
     **record("totals", code="batch.totals"))
case("totals count true", batch_with(totals=lambda t: dict(t, count=True)), **record("totals", code="batch.totals"))
case("totals count text", batch_with(totals=lambda t: dict(t, count="1")), **record("totals", code="batch.totals"))
case("totals a list", batch_with(totals=lambda t: [1, 727, 112]), **record("totals", code="batch.totals"))
case("unknown batch key", batch_with(extra={"signature": "x"}), **record("signature"))
case("unknown batch key sorting first", batch_with(extra={"a": 1}), **record("a"))
case("batch reader not the signer", batch_with(reader="H001"), **record("reader"))
case("batch reader with RLO", batch_with(reader="H\u202e001"), **record("reader"))
case("batch reader missing", batch_with(drop=["reader"]), **record("reader"))
case("records not a list", batch_with(records={"0": 1}, totals=lambda t: dict(t, count=0, gross=0, discount=0)),
     **record("records", status_ok=True))
case("records missing", batch_with(drop=["records"]), **record("records"))
for what, fields in [("pending -1", dict(pending=-1)), ("pending text", dict(pending="7")),
                     ("pending true", dict(pending=True)), ("pending over 2^40", dict(pending=2 ** 40 + 1)),
                     ("oldest_t negative", dict(oldest_t=-5)), ("journal 'half'", dict(journal="half")),
                     ("journal null", dict(journal=None)), ("firmware of 33 characters", dict(firmware="1" * 33)),
                     ("last_error of 65 characters", dict(last_error="e" * 65)),
                     ("clock_drift over 2^40", dict(clock_drift=2 ** 40 + 1)), ("free_flash -2", dict(free_flash=-2)),
                     ("rules text", dict(rules="7")), ("keys a list", dict(keys=[1])),
                     ("an unknown key", dict(battery=80))]:
    case("status %s" % what, status_with(**fields), **record("status." + next(iter(fields)), code="batch.status",
                                                            status_ok=False))
for what, status in [("missing", DROP), ("a list", [REPORTED]), ("null", None), ("text", "ok")]:
    case("status %s" % what, batch_with(drop=["status"]) if status is DROP else batch_with(status=status),
         **record("status", code="batch.status", status_ok=False))
case("status unknown key 'pending ' with a space", status_with(**{"pending ": 1}),
     **record("status.pending ", code="batch.status", status_ok=False))


# -- the body's encoding -----------------------------------------------------------------------
def body_from(change):
    """A canonical batch body, then `change(body bytes)`; signed as it goes."""
    def make(j):
        rec = j.sale(lines=[dict(line) for line in LINES_A])
        return Req(change(j.body([rec], status=REPORTED)), records=[rec])
    return make


def replace(old, new, count=1):
    def change(body):
        assert old in body, (old, body[:200])
        return body.replace(old, new, count)
    return change


def duplicate_key(body):
    return body.replace(b'"card":', b'"card":"1","card":', 1)


BODY_CASES = [
    ("a space after a colon", replace(b'"records":[', b'"records": ['), True),
    ("a space after a comma", replace(b',"status":', b', "status":'), True),
    ("keys out of order", replace(b'"count":1,"discount":', b'"discount":'), None),  # fixed below
    ("a trailing newline", lambda b: b + b"\n", True),
    ("a leading space", lambda b: b" " + b, True),
    ("CRLF at the end", lambda b: b + b"\r\n", True),
    ("a byte-order mark", lambda b: b"\xef\xbb\xbf" + b, True),
    ("not UTF-8", replace(b'"caffe"', b'"caff\xe8"'), False),
    ("a truncated UTF-8 sequence", replace(b'"caffe"', b'"caff\xc3"'), False),
    ("a float price", replace(b'"price":149', b'"price":149.0'), True),
    ("a float in the totals", replace(b'"count":1', b'"count":1.0'), True),
    ("a float in the status", replace(b'"pending":7', b'"pending":7.5'), False),
    ("a float in a discount line", replace(b'"cents":30', b'"cents":30.0'), True),
    ("a float in a line's quantity", replace(b'"qty":1,', b'"qty":1.0,'), True),
    ("a float seq", replace(b'"seq":5', b'"seq":5.0'), True),
    ("an exponent", replace(b'"price":429', b'"price":4.29e2'), True),
    ("an integer exponent", replace(b'"qty":2', b'"qty":2e0'), True),
    ("minus zero", replace(b'"clock_drift":0', b'"clock_drift":-0'), True),
    ("a leading zero", replace(b'"price":149', b'"price":0149'), False),
    ("NaN", replace(b'"price":149', b'"price":NaN'), True),
    ("Infinity", replace(b'"used":0', b'"used":Infinity'), False),
    ("a duplicate key in a record", duplicate_key, True),
    ("a duplicate batch key", replace(b'"records":[', b'"reader":"X","records":['), True),
    ("a duplicate status key", replace(b'"pending":7', b'"pending":7,"pending":7'), True),
    ("an escaped slash", replace(b'"quote":"q', b'"quote":"\\/q'), True),
    ("an escaped e-grave", replace(b'"caffe"', b'"caff\\u00e8"'), True),
    ("an escaped letter", replace(b'"caffe"', b'"caff\\u0065"'), True),
    ("an upper-case escape", replace(b'"caffe"', b'"caff\\u001B"'), True),
    ("a \\b escape", replace(b'"caffe"', b'"caff\\b"'), True),
    ("a 5,000-digit integer", replace(b'"rules":', b'"rules":' + b"9" * 5000 + b',"x":'), False),
    ("a comment", replace(b'"records":[', b'/**/"records":['), False),
    ("single quotes", replace(b'"caffe"', b"'caffe'"), False),
    ("a trailing comma", replace(b'],"status":', b',],"status":'), False),
    ("the body cut short", lambda b: b[:-3], False),
]


def keys_out_of_order(body):
    """The totals' keys as a careless encoder would write them: count, gross, discount."""
    i = body.index(b'"totals":')
    t = json.loads(body[i + 9:-1])
    return body[:i + 9] + ('{"count":%d,"gross":%d,"discount":%d}}' % (t["count"], t["gross"], t["discount"])).encode()


for what, change, status_ok in BODY_CASES:
    if what == "keys out of order":
        change, status_ok = keys_out_of_order, True
    case("body: %s" % what, body_from(change), **record("body", status_ok=status_ok))


def whole_body(data):
    return lambda j: Req(data)


for what, data, field in [("empty", b"", "body"), ("null", b"null", "records"), ("a list", b"[]", "records"),
                          ("an empty object", b"{}", "records"), ("a number", b"1", "records"),
                          ("text", b'"batch"', "records"), ("nested 100,000 deep", b"[" * 100000 + b"]" * 100000, "body"),
                          ("objects nested 40,000 deep", b'{"a":' * 40000 + b"1" + b"}" * 40000, "body")]:
    case("body: %s" % what, whole_body(data), **record(field, status_ok=False))


def nested_status(j):
    rec = j.sale(lines=[dict(line) for line in LINES_A])
    body = j.body([rec], status=REPORTED).replace(b'"firmware":"9.9.9-h"', b'"firmware":' + b"[" * 3000 + b"]" * 3000)
    return Req(body, records=[rec])


case("body: status nested 3,000 deep", nested_status, **record("body", status_ok=False))


# -- headers and signature ---------------------------------------------------------------------
def headers_with(**changes):
    """A good batch (seq 5) with headers signed as the reader signs, then `changes`: a
    header's new text, DROP, or a function of (headers, body, journal) giving the text."""
    def make(j):
        rec = j.sale(lines=[dict(line) for line in LINES_A])
        body = j.body([rec], status=REPORTED)
        h = j.headers(body)
        for k, v in changes.items():
            k = k.replace("_", "-")
            if v is DROP:
                del h[k]
            elif callable(v):
                h[k] = v(h, body, j)
            else:
                h[k] = v
        return Req(body, h, records=[rec])
    return make


def resigned(**sign_args):
    def sig(h, body, j):
        return j.headers(body, t=sign_args.get("t", int(h["X-Timestamp"])), nonce=h["X-Nonce"],
                         key=sign_args.get("key"), path=sign_args.get("path", BATCH))["X-Signature"]
    return sig


def timestamp_text(text):
    """A timestamp header of `text` (its value is now's), the signature over now."""
    def ts(h, body, j):
        return text % h["X-Timestamp"]
    return ts


def off_by(seconds):
    def ts(h, body, j):
        t = int(h["X-Timestamp"]) + seconds
        h["X-Signature"] = j.headers(body, t=t, nonce=h["X-Nonce"])["X-Signature"]
        return str(t)
    return ts


UNVERIFIED = dict(level="unverified", status_ok=False)
case("unknown reader", headers_with(X_Reader="H999"), **record("X-Reader", code="batch.reader", http=401,
                                                                **UNVERIFIED))
case("no X-Reader", headers_with(X_Reader=DROP), **record("X-Reader", code="batch.reader", http=401, **UNVERIFIED))
case("unknown reader of 100 characters", headers_with(X_Reader="H" * 100),
     **record("X-Reader", code="batch.reader", http=401, **UNVERIFIED))
case("X-Reader of another reader", headers_with(X_Reader="H001"),
     **record("X-Signature", code="batch.signature", http=401, **UNVERIFIED))
case("signed with another key", headers_with(X_Signature=resigned(key=b"\x01" * 32)),
     **record("X-Signature", code="batch.signature", http=401, **UNVERIFIED))
case("signed with another reader's key", headers_with(X_Signature=lambda h, body, j: resigned(
    key=j.lab.keys["H001"])(h, body, j)), **record("X-Signature", code="batch.signature", http=401,
                                                   **UNVERIFIED))
case("signature in upper-case hex", headers_with(X_Signature=lambda h, body, j: h["X-Signature"].upper()),
     **record("X-Signature", code="batch.signature", http=401, **UNVERIFIED))
case("signature missing", headers_with(X_Signature=DROP),
     **record("X-Signature", code="batch.signature", http=401, **UNVERIFIED))
case("signature of 63 digits", headers_with(X_Signature=lambda h, body, j: h["X-Signature"][:-1]),
     **record("X-Signature", code="batch.signature", http=401, **UNVERIFIED))
case("signature over another path", headers_with(X_Signature=resigned(path="/api/v1/sync/batch?x=1")),
     **record("X-Signature", code="batch.signature", http=401, **UNVERIFIED))
case("signature over another timestamp", headers_with(X_Signature=lambda h, body, j: resigned(
    t=int(h["X-Timestamp"]) - 1)(h, body, j)), **record("X-Signature", code="batch.signature", http=401,
                                                        **UNVERIFIED))


def changed_after_signing(j):
    rec = j.sale(lines=[dict(line) for line in LINES_A])
    body = j.body([rec], status=REPORTED)
    h = j.headers(body)
    return Req(body.replace(b'"pending":7', b'"pending":1'), h, records=[rec])


case("body changed after signing", changed_after_signing,
     **record("X-Signature", code="batch.signature", http=401, **UNVERIFIED))
case("timestamp an hour old", headers_with(X_Timestamp=off_by(-3600)),
     **record("X-Timestamp", code="batch.stale", level="stale", status_ok=False))
case("timestamp an hour ahead", headers_with(X_Timestamp=off_by(3600)),
     **record("X-Timestamp", code="batch.stale", level="stale", status_ok=False))
case("timestamp 301 s old", headers_with(X_Timestamp=off_by(-301)),
     **record("X-Timestamp", code="batch.stale", level="stale", status_ok=False))
for what, text in [("with a space inside", "%s"), ("with a plus sign", "+%s"), ("with underscores", "%s"),
                   ("negative", "-%s"), ("empty", ""), ("with a decimal point", "%s.0"), ("in hex", "0x%s"),
                   ("of 20 digits", "1%s000000000")]:
    if what == "with a space inside":
        fix = lambda h, body, j: h["X-Timestamp"][:5] + " " + h["X-Timestamp"][5:]  # noqa: E731
    elif what == "empty":
        fix = lambda h, body, j: ""  # noqa: E731
    elif what == "with underscores":
        fix = lambda h, body, j: "{:_}".format(int(h["X-Timestamp"]))  # noqa: E731
    else:
        fix = timestamp_text(text)
    case("timestamp %s" % what, headers_with(X_Timestamp=fix),
         **record("X-Timestamp", code="batch.stale", **UNVERIFIED))
for what, nonce in [("with a hyphen", "0123-4567-89ab-cd"), ("with a slash", "0123456789abcd/f"),
                    ("empty", ""), ("of 65 characters", "a" * 65), ("with a space inside", "0123456789 abcde")]:
    case("nonce %s" % what, headers_with(X_Nonce=lambda h, body, j, nonce=nonce: nonce),
         **record("X-Nonce", code="batch.signature", http=401, **UNVERIFIED))


class Replay:
    """The case's request was sent once before (its nonce is stored); the case sends it again."""

    def __init__(self, first_status, make):
        self.first_status, self.inner = first_status, make


def replay_of_refused(j):
    rec = j.sale(lines=LINES_A)
    rec["tier"] = 256
    body = j.body([rec], status=REPORTED)
    return Req(body, j.headers(body), records=[rec])


def replay_of_accepted(j):
    rec = j.sale(lines=LINES_A)
    body = j.body([rec], status=REPORTED)
    return Req(body, j.headers(body), records=[rec])


def nonce_again_new_body(j):
    """A new batch signed with the nonce of the reader's last request (its base batch)."""
    rec = j.sale(lines=LINES_A)
    body = j.body([rec], status=REPORTED)
    return Req(body, j.headers(body, nonce=j.base_nonce), records=[rec])


case("nonce reused: a refused request sent again", Replay(400, replay_of_refused),
     **record("X-Nonce", code="batch.replay", level="replay", status_ok=False))
case("nonce reused: an accepted batch replayed", Replay(200, replay_of_accepted),
     **record("X-Nonce", code="batch.replay", level="replay", status_ok=False))
case("nonce reused with a new body", nonce_again_new_body,
     **record("X-Nonce", code="batch.replay", level="replay", status_ok=False))
case("body over the limit", lambda j: Req(b"{" + b" " * (256 * 1024) + b"}"),
     **record("body", code="batch.too_large", http=413, **UNVERIFIED))
case("body over the limit, signed and canonical", lambda j: Req(j.body(
    [j.sale(lines=[dict(LINES_A[0], sku="1" * 32, cat="c" * 32) for _ in range(200)]) for _ in range(13)],
    status=REPORTED)),
     **record("body", code="batch.too_large", http=413, **UNVERIFIED))

@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with BatchLab(tmp_path_factory.mktemp("hostile"), readers=len(CASES) + 30) as lab:
        yield lab


def staged(lab):
    """A reader of its own with seq 1-4 stored (see the module's note)."""
    j = lab.journal()
    j.lab = lab
    a = j.sale(lines=[dict(line) for line in LINES_A])
    j.sale(lines=[dict(line) for line in LINES_B])
    j.cancelled()
    j.ret(a, [1, 0])
    body = j.body(j.pending)
    h = j.headers(body)
    status, _, data = lab.send(body, h)
    assert status == 200 and json.loads(data)["ack"] == 4, data
    j.base, j.base_nonce = list(j.pending), h["X-Nonce"]
    j.stored(4)
    return j


def refused_as(j, req, want, data, status, headers, acked):
    answer = json.loads(data)  # a refusal is the answer object, never an error page
    refused = answer["refused"] or {}
    assert (status, refused.get("code"), refused.get("field")) == (want.http, want.code, want.field), answer
    assert refused.get("detail"), answer
    signature = headers.get("x-signature")
    if want.level == "unverified":
        assert signature is None and answer["ack"] == 0  # nothing told to whoever sent it
    else:
        assert signature == sign_answer(j.key, req.headers["X-Nonce"], status, body_digest(data))
        assert answer["ack"] == acked


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_request_is_refused_and_changes_nothing(lab, name):
    want = CASES[name]
    j = staged(lab)
    make = want.make
    if isinstance(make, Replay):
        req = make.inner(j)
        status, _, data = lab.send(req.body, req.headers)
        assert status == make.first_status, data
    else:
        req = make(j)
    if isinstance(req, list):
        req = Req(j.body(req, status=REPORTED), records=req)
    if req.headers is None:
        req.headers = j.headers(req.body)
    quarantine = None
    if want.quarantine:
        rec = req.records[want.index]
        data = rec if isinstance(rec, bytes) else encode(rec)
        quarantine = (json.loads(data)["seq"], record_hash(data))
    before = snapshot(lab.path)
    status, headers, data = lab.send(req.body, req.headers)
    after = snapshot(lab.path)
    refused_as(j, req, want, data, status, headers, before["readers"][(j.reader,)]["acked_seq"])
    assert_refusal_only(before, after, Refusal(
        req.headers.get("X-Reader", ""), want.http, want.code, want.field, level=want.level,
        nonce=req.headers.get("X-Nonce"), body_bytes=len(req.body), status_ok=want.status_ok,
        reported=KEPT, quarantine=quarantine))


def test_there_are_enough_cases():
    assert len(CASES) >= 165, len(CASES)


# -- what held up well, kept: accepted requests that must store nothing twice ------------------

def accepted_changes(before, after, reader):
    """The tables an accepted batch that stores no receipt may change, and how: a nonce,
    a batches row, the reader's contact and status, a pending-receipts sample."""
    diff = changes(before, after)
    for table in ("receipts", "day_totals", "refusals"):
        assert table not in diff, (table, diff[table])
    assert set(diff) <= {"nonces", "batches", "readers", "reader_samples", "quarantine"}, sorted(diff)
    assert len(diff["nonces"]["added"]) == 1 and not diff["nonces"]["removed"] and not diff["nonces"]["changed"]
    changed = diff.get("readers", {"changed": {}, "added": {}, "removed": {}})
    assert not changed["added"] and not changed["removed"] and set(changed["changed"]) <= {(reader,)}
    return diff


def test_the_same_batch_twice_acknowledges_once(lab):
    j = staged(lab)
    body = j.body([j.sale(lines=[dict(line) for line in LINES_A])], status=REPORTED)
    assert lab.send(body, j.headers(body))[0] == 200
    before = snapshot(lab.path)
    status, _, data = lab.send(body, j.headers(body))  # the answer was lost: sent again, a new nonce
    after = snapshot(lab.path)
    assert status == 200 and json.loads(data)["ack"] == 5 and json.loads(data)["refused"] is None
    diff = accepted_changes(before, after, j.reader)
    assert "quarantine" not in diff
    (row,) = diff["batches"]["added"].values()
    assert (row["outcome"], row["count"], row["fresh"], row["ack"]) == ("accepted", 1, 0, 5)
    assert set(diff.get("readers", {}).get("changed", {}).get((j.reader,), {})) <= {"last_contact", "last_batch",
                                                                                   "clock_offset"}


# A record the reader journaled and cannot change: refused once (its hash noted), the same
# bytes again are acknowledged into quarantine, never into receipts or the day totals.
QUARANTINED = {
    "tier 256": ([("tier", 256)], None),
    "gross 2^63": ([("gross", 2 ** 63)], None),  # beyond SQLite's integers, not only the schema's
    "discount -2^63 - 1": ([("discount", -(2 ** 63) - 1)], None),
    "t missing, more pending": ([("t", DROP)], 9),
    "t text, more pending": ([("t", "soon")], 9),
    "t 2^70, more pending": ([("t", 2 ** 70)], 9),
}


@pytest.mark.parametrize("name", list(QUARANTINED))
def test_a_record_refused_twice_byte_for_byte_goes_to_quarantine(lab, name):
    edits, pending = QUARANTINED[name]
    j = staged(lab)
    rec = sale_with(*edits)(j)[0]
    status = dict(REPORTED, pending=pending) if pending else REPORTED
    body = j.body([rec], status=status)
    data = encode(rec)
    before = snapshot(lab.path)
    h = j.headers(body)
    first, _, answer = lab.send(body, h)
    assert first == 400, answer
    refused = json.loads(answer)["refused"]
    assert_refusal_only(before, snapshot(lab.path), Refusal(
        j.reader, 400, "batch.record", refused["field"], nonce=h["X-Nonce"], body_bytes=len(body),
        status_ok=True, reported=dict(KEPT, pending=status["pending"]), quarantine=(5, record_hash(data))))

    before = snapshot(lab.path)
    again, _, answer = lab.send(body, j.headers(body))
    after = snapshot(lab.path)
    assert again == 200, answer[:300]
    assert json.loads(answer)["ack"] == 5
    diff = accepted_changes(before, after, j.reader)
    (note,) = diff["quarantine"]["changed"].values()
    row = after["quarantine"][(j.reader, 5)]
    assert row["acked_t"] is not None and row["record"] == data.decode() and row["hash"] == record_hash(data)
    (batch,) = diff["batches"]["added"].values()
    assert (batch["outcome"], batch["count"], batch["fresh"], batch["quarantined"], batch["ack"]) == \
        ("accepted", 1, 1, 1, 5)
    assert row["batch_id"] == batch["id"]
    reader = after["readers"][(j.reader,)]
    assert reader["acked_seq"] == 5
    # what the reader says waits, and since when, stays numbers the dashboard can show
    assert reader["pending"] == status["pending"] - 1
    assert reader["oldest_t"] is None or type(reader["oldest_t"]) is int and 0 <= reader["oldest_t"] <= 2 ** 40

    # the next record follows the quarantined one; a return of the quarantined sale names
    # no stored sale of this reader
    j.prev = record_hash(data)  # the record as journaled, edits and all
    j.stored(5)
    ret = j.ret(5, [1, 0])  # the till still has the sale it printed
    body = j.body([ret], status=REPORTED)
    h = j.headers(body)
    before = snapshot(lab.path)
    status, _, answer = lab.send(body, h)
    assert (status, json.loads(answer)["refused"]["field"]) == (400, "records[0].ref"), answer
    assert_refusal_only(before, snapshot(lab.path), Refusal(
        j.reader, 400, "batch.record", "records[0].ref", nonce=h["X-Nonce"], body_bytes=len(body),
        status_ok=True, reported=KEPT, quarantine=(6, record_hash(encode(ret)))))


def test_a_body_over_twice_the_limit_is_cut_off_before_the_app(lab):
    """waitress stops buffering a body at twice MAX_BATCH_BYTES (backend/serve.py): its own
    413, the connection closed, nothing written, not even a refusal (the app never sees it)."""
    j = staged(lab)
    body = b"{" + b" " * (600 * 1024) + b"}"
    head = "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n%s\r\n" % (
        BATCH, len(body), "".join("%s: %s\r\n" % kv for kv in j.headers(body).items()))
    before = snapshot(lab.path)
    with socket.create_connection(("127.0.0.1", lab.backend.port), timeout=30) as s:
        s.sendall(head.encode())
        try:
            s.sendall(body)
        except OSError:
            pass  # the server may close before the whole body is in
        answer = s.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413 "), answer
    assert changes(before, snapshot(lab.path)) == {}


def test_totals_past_what_json_writes_are_refused_not_a_500(lab):
    """Records taken into quarantine may hold any integer the body can carry (4,300 digits on
    CPython); sent again together, ten of them add up to a number of 4,301 digits, which
    Python's json will not write: the batch's totals cannot match, and are refused."""
    # json writes these records' canonical bytes at once; canonical.encode takes 0.3 s for
    # each such number, digit by digit
    dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
    j = staged(lab)

    def batch(records, totals):
        return dumps({"reader": j.reader, "records": [0], "status": REPORTED, "totals": totals}).encode().replace(
            b'"records":[0]', b'"records":[' + b",".join(records) + b"]")

    big = 10 ** 4299
    quarantined = []
    for _ in range(10):
        rec = sale_with(("gross", big))(j)[0]
        data = dumps(rec).encode()
        body = batch([data], {"count": 1, "discount": rec["discount"], "gross": big})
        assert lab.send(body, j.headers(body))[0] == 400  # noted
        status, _, answer = lab.send(body, j.headers(body))  # the same bytes again: quarantined
        assert status == 200 and json.loads(answer)["ack"] == rec["seq"], answer[:300]
        j.prev = record_hash(data)
        j.stored(rec["seq"])
        quarantined.append(data)
    body = batch(quarantined, {"count": 10, "discount": 1120, "gross": big})
    h = j.headers(body)
    before = snapshot(lab.path)
    status, headers, data = lab.send(body, h)
    assert status == 400, data[:300]
    assert (json.loads(data)["refused"]["code"], json.loads(data)["refused"]["field"]) == ("batch.totals", "totals")
    assert_refusal_only(before, snapshot(lab.path), Refusal(
        j.reader, 400, "batch.totals", "totals", nonce=h["X-Nonce"], body_bytes=len(body), status_ok=True,
        reported=KEPT))
