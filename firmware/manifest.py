# What goes onto the reader, in MicroPython's manifest format (docs: "MicroPython manifest
# files"): MicroPython's own build can freeze it into an image. FROZEN_MANIFEST replaces the
# port's own manifest (asyncio and the ESP32's _boot.py, which mounts the filesystem, come
# from there), so the image's manifest includes both:
#     include("$(PORT_DIR)/boards/manifest.py")
#     include("/path/to/firmware/manifest.py")
#     make BOARD=ESP32_GENERIC FROZEN_MANIFEST=/path/to/that/manifest.py
# (tools/mpybuild.py refuses $(...) paths: it builds this file alone). tools/mpybuild.py compiles the same files to .mpy for a deploy (tools/flash) and
# for the tests. A file this manifest does not name is not on the reader: the simulated
# board's stand-ins live in sim/board/ and never ship.
#
# The firmware's modules are top-level modules on the device ("import app"); the drivers
# are the package drivers/; shared/protocol is the package protocol/ (its own manifest).
# main.py is the board's entry point: a deploy copies it as source, and it finishes an
# interrupted deploy at boot (see main.py).

metadata(description="Loyalty checkout reader firmware")

include("../shared/protocol")

module("main.py")  # the entry point, deployed as source
module("app.py")  # the checkout state machine
module("board.py")  # the board's parts, picked by the config
module("cardcache.py")  # the card directory
module("cardkeys.py")  # the issuers' card keys
module("contactreader.py")  # the contact slot's card task
module("daytotals.py")  # each card's discounts today
module("display.py")  # the display's words
module("fsutil.py")
module("httpclient.py")
module("journal.py")  # the receipts on flash
module("journalframe.py")  # a journal record's frame (also read by tools/flash status)
module("linereader.py")
module("nfcreader.py")  # the NFC card task
module("reader.py")  # the tasks
module("rulesstore.py")
module("syncclient.py")
module("wifi.py")

package("drivers", files=(
    "__init__.py",
    "contactslot.py",
    "feedback.py",
    "iso7816atr.py",  # the contact slot: ATR and PPS
    "iso7816line.py",  # its I/O line
    "iso7816t0.py",  # T=0
    "iso7816t1.py",  # T=1
    "pn532.py",
    "pn532frames.py",
))

# asyncio is frozen into every stock ESP32 image of MicroPython 1.20 and later (the port's
# manifest): nothing to require.
