"""What the reader's two-line display says, in Italian (default) or English.

The app decides *what* to say (a message key and values); this module decides the
words. Error codes use the shared table in protocol.errors, so the cashier, the till
and the dashboard read the same sentence.

    >>> Screen("it").show("discount", amount=320)
    ('Sconto applicato', 'EUR 3,20')
"""
from protocol import errors
from protocol import errortexts  # noqa: F401 (loaded at boot, see below)

# The error texts are loaded with the display, at boot, while the heap is in one piece:
# errors.text() would otherwise import them at the first error shown, when a 3 KB block
# in one piece may no longer be there.

# Two lines of 16 characters (an HD44780-style display has no euro sign: "EUR"). Every
# line with an amount up to EUR 9999,99 fits (amounts shown are never negative); reasons (error texts) are longer and the
# display driver scrolls them.
TEXTS = {
    "ready": (("Pronto", ""), ("Ready", "")),
    "tap_card": (("Avvicinare carta", "Tot. {amount}"), ("Tap your card", "Tot. {amount}")),
    "discount": (("Sconto applicato", "{amount}"), ("Discount applied", "{amount}")),
    "no_discount": (("Nessuno sconto", "{reason}"), ("No discount", "{reason}")),
    "committed": (("Grazie! Sconto", "{amount}"), ("Thanks! Saved", "{amount}")),
    "voided": (("Annullato", ""), ("Cancelled", "")),
    "returned": (("Sconto stornato", "{amount}"), ("Discount undone", "{amount}")),
    "error": (("Errore", "{reason}"), ("Error", "{reason}")),
    "wait_basket": (("Attendere cassa", ""), ("Wait for till", "")),
}


def euro(cents):
    """Amount in euro as the display shows it: 'EUR 3,20', 'EUR -0,05' (comma decimals)."""
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return "EUR %s%d,%02d" % (sign, cents // 100, cents % 100)


class Screen:
    """Holds the two lines currently shown; `show` returns them for the display driver."""

    def __init__(self, lang="it"):
        self.lang = "en" if lang == "en" else "it"
        self.lines = ("", "")
        self.show("ready")

    def show(self, key, amount=None, reason=None):
        pair = TEXTS[key][1 if self.lang == "en" else 0]
        values = {"amount": euro(amount) if amount is not None else "",
                  "reason": errors.text(reason, self.lang) if reason else ""}
        self.lines = (pair[0].format(**values), pair[1].format(**values))
        return self.lines
