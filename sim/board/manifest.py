# The simulated board's stand-ins for the ESP32's parts, in MicroPython's manifest format.
# Never on the reader: tools/mpybuild.py compiles them to build/mpysim, which the simulated
# and virtual boards put on MicroPython's path after the firmware's own build.

module("simparts.py")  # the parts board.py asks for when the config says "board": "sim"
module("simuart.py")  # machine.UART over a TCP socket
module("simslot.py")  # the contact slot's line and pins over TCP
module("simcard.py")  # card identities as lines, for tests about everything but the card
