"""The world around a reader, simulated (`loyalty.sim`): cards, the card readers' chips,
the till, the board, the network link, the backend as a process and the sample shop.

The firmware talks to these over the same byte streams it uses on an ESP32 (PN532
frames, ISO 7816-3 bytes, the till link), so the driver code under test is the code that
ships. sim/board/ holds the MicroPython side of the simulated board (never on the reader,
not part of this package: tools/mpybuild.py builds it for the unix port).
"""
