# Sent before each step while the firmware is stopped: WDT() gives the watchdog that
# the firmware started (it runs on), and feeding it buys the step another 8 s.
try:
    from machine import WDT
    WDT(timeout=8000).feed()
except Exception:
    pass
