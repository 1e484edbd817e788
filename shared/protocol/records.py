"""Journal records, their hash chain, and the signed sync batch (docs/protocol.md).

A record is a canonical-JSON object. Its hash is SHA-256 of its canonical bytes; each
record carries the hex hash of the one before it in `prev` (the first record of a
reader carries GENESIS), so the backend can prove that nothing was removed or altered.

A batch body is canonical JSON too, and the reader builds it from the stored record
bytes without decoding them:

    {"reader":"R1","records":[<record>,<record>,...],"status":{...},"totals":{...}}

The request is signed: HMAC-SHA256 under the reader's key over
    METHOD "\\n" PATH "\\n" TIMESTAMP "\\n" NONCE "\\n" hex(SHA-256(body))
and so is the backend's answer, under the same key, bound to that request's nonce:
    "ANSWER" "\\n" NONCE "\\n" HTTP-STATUS "\\n" hex(SHA-256(answer body))

    >>> rec = make_record("sale", reader="R1", seq=1, prev=GENESIS, t=1700000000, card="42",
    ...                   tier=1, lines=[], gross=0, discount=0, disc=[], rules=1)
    >>> len(record_hash(encode(rec)))
    64
"""
from .canonical import decode, encode
from .checks import is_int
from .compat import hexstr, sha256
from .hmac256 import hmac_sha256

FORMAT = 1
GENESIS = "0" * 64
KINDS = ("sale", "void", "return")


def make_record(kind, reader, seq, prev, t, card, tier, lines, gross, discount, disc, rules,
                receipt="", quote="", **extra):
    """The record dict for one committed sale, voided quote, voided sale or return.

    `extra` carries the fields of returns and voids: ref (the sale's seq), returned
    (quantities returned before, per sale line) and returning (returned now, per line).
    """
    rec = {"v": FORMAT, "kind": kind, "reader": reader, "seq": seq, "prev": prev, "t": t,
           "card": card, "tier": tier, "lines": lines, "gross": gross, "discount": discount,
           "disc": disc, "rules": rules, "receipt": receipt, "quote": quote}
    for k in extra:
        rec[k] = extra[k]
    return rec


def record_hash(record_bytes):
    """Hex SHA-256 of a record's canonical bytes: what the next record's `prev` holds."""
    return hexstr(sha256(record_bytes).digest())


class Totals:
    """Running totals of a batch: count of records, gross and discount in cents."""

    def __init__(self):
        self.count = 0
        self.gross = 0
        self.discount = 0

    def add(self, rec):
        # a record the backend takes into quarantine may hold anything as its money:
        # what is not an integer counts as 0, on the reader and the backend alike
        self.count += 1
        g = rec.get("gross")
        d = rec.get("discount")
        self.gross += g if is_int(g) else 0
        self.discount += d if is_int(d) else 0

    def as_dict(self):
        return {"count": self.count, "discount": self.discount, "gross": self.gross}


def batch_parts(reader, status, totals):
    """Head and tail bytes of a batch body; the record bytes go between them, comma-separated.

    Keys sort as reader < records < status < totals, so the concatenation is canonical.
    """
    head = b'{"reader":' + encode(reader) + b',"records":['
    tail = b'],"status":' + encode(status) + b',"totals":' + encode(totals) + b"}"
    return head, tail


def batch_body(reader, record_bytes_list, status):
    """A whole batch body in memory (for tests and the backend; the reader streams it)."""
    totals = Totals()
    for data in record_bytes_list:
        totals.add(decode(data))
    head, tail = batch_parts(reader, status, totals.as_dict())
    parts = [head]
    for i, data in enumerate(record_bytes_list):
        if i:
            parts.append(b",")
        parts.append(data)
    parts.append(tail)
    return b"".join(parts)  # one block of the body's size, not three copies of it


def string_to_sign(method, path, timestamp, nonce, body_sha256_hex):
    return ("%s\n%s\n%d\n%s\n%s" % (method, path, timestamp, nonce, body_sha256_hex)).encode()


def sign(key, method, path, timestamp, nonce, body_sha256_hex):
    """Hex HMAC-SHA256 for the X-Signature header.

    The nonce (X-Nonce, 16 hex digits, fresh for every request) makes two requests with
    the same body in the same second differ, so the server can refuse a replay by it.
    """
    return hexstr(hmac_sha256(key, string_to_sign(method, path, timestamp, nonce, body_sha256_hex)))


def sign_answer(key, nonce, status, body_sha256_hex):
    """Hex HMAC-SHA256 for the X-Signature header of the backend's answer to a request.

    Only the holder of the reader's key can make it, so nobody else on the store network
    can acknowledge records (the reader would delete them) or hand it rules. The request's
    nonce binds it to that one request: an answer recorded earlier does not verify for a
    new request. The status is covered so a refusal cannot pass for an acceptance.
    "ANSWER" keeps it apart from a request signature made with the same key.
    """
    return hexstr(hmac_sha256(key, ("ANSWER\n%s\n%d\n%s" % (nonce, status, body_sha256_hex)).encode()))


def body_digest(body):
    return hexstr(sha256(body).digest())
