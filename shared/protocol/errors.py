"""Error codes with their texts, shared by reader, backend and dashboard.

Every way an input can be wrong has a code. An error names the code, the field it
found wrong and a detail; `text(code, lang)` gives the sentence a cashier or a
store manager reads, in Italian (the default) or English, from the table in
`protocol.errortexts`.

    >>> e = TillError("till.field", "lines[2].qty", "must be an integer from 1 to 9999")
    >>> e.code, e.field
    ('till.field', 'lines[2].qty')
"""

def _tables():
    # The texts are imported when first asked for: the modules that only raise errors
    # (most of the reader's) then leave their 5 KB out of the heap.
    from .errortexts import TABLES

    return TABLES


def _row(code):
    for table in _tables():
        i = table.find("\n" + code + "|")
        if i >= 0:
            return table[i + 1:table.find("\n", i + 1)].split("|")
    return None


def known(code):
    """Is `code` one of the shared error codes?"""
    return _row(code) is not None


def codes():
    """Every (code, italiano, English), for the dashboard and the docs."""
    return [tuple(line.split("|")) for table in _tables() for line in table.strip().split("\n")]


def text(code, lang="it"):
    """The sentence for `code` in `lang` ('it' or 'en'); unknown codes are shown as is."""
    row = _row(code)
    if row is None:
        return code
    return row[2] if lang == "en" else row[1]


class ProtocolError(Exception):
    """An input broke a rule. `code` is one of codes(), `field` names where, `detail` which rule."""

    def __init__(self, code, field="", detail=""):
        super().__init__(code, field, detail)
        self.code = code
        self.field = field
        self.detail = detail

    def __str__(self):
        where = (" at " + self.field) if self.field else ""
        why = (": " + self.detail) if self.detail else ""
        return self.code + where + why

    def as_dict(self):
        return {"code": self.code, "field": self.field, "detail": self.detail}


class EncodingError(ProtocolError):
    pass


class TillError(ProtocolError):
    pass


class JournalError(ProtocolError):
    pass


class SyncError(ProtocolError):
    pass


class DeltaError(ProtocolError):
    pass


class RulesError(ProtocolError):
    pass
