"""Buzzer and LEDs: short signals the cashier and the shopper notice without reading.

Takes pin-like objects (anything with `.value(v)`: machine.Pin on the ESP32, a
recording pin on the simulated board) and plays patterns without blocking the loop.

    fb = Feedback(green=Pin(2, Pin.OUT), red=Pin(4, Pin.OUT), buzzer=Pin(5, Pin.OUT))
    await fb.play("ok")
"""
import asyncio

# pattern: (led, on_ms, off_ms) steps; the buzzer sounds while the LED is on
PATTERNS = {
    "ok": (("green", 120, 0),),
    "warn": (("green", 80, 80), ("red", 80, 0)),
    "error": (("red", 400, 0),),
}


class Feedback:
    def __init__(self, green, red, buzzer):
        self._leds = {"green": green, "red": red}
        self._buzzer = buzzer
        self.played = 0  # how many signals were played (shown in the reader's status)

    async def play(self, name):
        steps = PATTERNS.get(name)
        if steps is None:
            return
        for led, on_ms, off_ms in steps:
            self._leds[led].value(1)
            self._buzzer.value(1)
            await asyncio.sleep(on_ms / 1000)
            self._leds[led].value(0)
            self._buzzer.value(0)
            if off_ms:
                await asyncio.sleep(off_ms / 1000)
        self.played += 1
