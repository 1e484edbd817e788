"""The operator's programs (`loyalty.tools`): what a person runs to put readers into service
and to serve cards from a PC.

    flash/        loyalty-flash: MicroPython, the firmware, the reader's identity, its status
    issuedesk.py  loyalty-issuedesk: the issuing desk writes a loyalty card through nfcpy
    nfchost.py    loyalty-nfchost: a PC till reads cards through nfcpy
    pcschost.py   loyalty-pcschost: a PC till or desk with a PC/SC reader (pyscard)
    mpybuild.py   builds the reader's .mpy files from the firmware's manifests
"""
