"""The simulated board's card reader for tests about everything but the card: card
identities arrive as lines on a stream (sim/simboard.py's CardSim), one per line,

    {"card": "6001000000000042", "kind": "applet", "verified": true}

`wait_card()` is the boundary the real readers (nfcreader.py, contactreader.py) implement:
it returns an identity dict, or raises CardError when what arrived cannot be read.
"""
from protocol import canonical
from protocol.errors import EncodingError, ProtocolError

from linereader import LineReader

KINDS = ("ntag", "applet", "uid", "contact")


class CardError(ProtocolError):
    pass


class SimCardReader:
    def __init__(self, stream, writer):
        self.lines = LineReader(stream, bytearray(512))
        self.writer = writer

    def close(self):
        """Lets go of the connection, as the real readers let go of their bus."""
        self.writer.close()

    async def wait_card(self):
        line = await self.lines.readline()
        if not line:
            raise EOFError("card reader stream closed")
        try:
            ident = canonical.decode(line)
        except EncodingError as e:
            raise CardError("card.unreadable", "card", e.detail)
        if not isinstance(ident, dict) or ident.get("kind") not in KINDS:
            raise CardError("card.unreadable", "kind", "must be one of " + ",".join(KINDS))
        card = ident.get("card")
        if not isinstance(card, str) or not card.isdigit() or not 1 <= len(card) <= 19:
            raise CardError("card.unreadable", "card", "must be 1 to 19 digits")
        return {"card": card, "kind": ident["kind"], "verified": ident.get("verified") is True,
                "why": str(ident.get("why", ""))[:40]}
