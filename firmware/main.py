"""Runs at boot: the whole reader is in reader.py (compiled to .mpy on the device)."""
import reader

reader.run()
