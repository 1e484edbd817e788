"""The buzzer and LED driver plays its patterns on pin objects and leaves them off."""
import asyncio

from simparts import SimPin
from drivers.feedback import PATTERNS, Feedback


def play(*names):
    pins = SimPin("green"), SimPin("red"), SimPin("buzzer")
    fb = Feedback(*pins)

    async def go():
        for name in names:
            await fb.play(name)

    asyncio.run(go())
    return fb, pins


def test_each_pattern_lights_its_leds_and_sounds_the_buzzer():
    for name in PATTERNS:
        fb, (green, red, buzzer) = play(name)
        want_green = sum(1 for step in PATTERNS[name] if step[0] == "green")
        want_red = sum(1 for step in PATTERNS[name] if step[0] == "red")
        assert (green.pulses, red.pulses) == (want_green, want_red), name
        assert buzzer.pulses == len(PATTERNS[name]), name
        assert (green.value(), red.value(), buzzer.value()) == (0, 0, 0), name
        assert fb.played == 1


def test_ok_is_green_error_is_red_unknown_is_silent():
    fb, (green, red, buzzer) = play("ok", "error", "no-such-signal")
    assert green.pulses == 1 and red.pulses == 1 and buzzer.pulses == 2
    assert fb.played == 2
