# The sans-I/O protocol package, in MicroPython's manifest format: installed on the reader as
# the package protocol/ (firmware/manifest.py includes this file), imported by the backend
# as a normal Python package. status.py (the servers' refusal-to-HTTP-status table) is the
# servers' only and does not ship.

metadata(description="Loyalty protocol: discount engine, records, sync messages, cards")

package("protocol", base_path="..", files=(
    "__init__.py",
    "batchcheck.py",
    "canonical.py",
    "checks.py",
    "cardread.py",
    "compat.py",
    "delta.py",
    "engine.py",
    "errors.py",
    "errortexts.py",
    "hmac256.py",
    "loyaltycard.py",
    "ndef.py",
    "ntag.py",
    "ntagsig.py",
    "recordcheck.py",
    "records.py",
    "syncmsg.py",
    "till.py",
))
