# Prints 1 if this board's config says the firmware ran here on an ESP32, with its
# watchdog (8 s) started: nothing stops that watchdog, not even a soft reset, so the
# tool must feed it (feed.py) before each step. A simulated board ("sim") has none.
try:
    import json
    print(1 if json.load(open("/config.json")).get("board", "esp32") != "sim" else 0)
except Exception:
    print(0)
