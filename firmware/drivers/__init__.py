"""Hardware drivers. Each takes its bus or pin objects as arguments and never builds them.

The package also holds the millisecond clock the drivers (and wifi.py) wait on, the same
on MicroPython and CPython: MicroPython's time.ticks_ms, ticks_diff and sleep_ms, and on
CPython the same wrap-around arithmetic. It lives here, not in protocol.compat, because
shared/protocol does no I/O and keeps no time; here it costs no module of its own, as
every board loads this package (drivers.feedback).

    from drivers import sleep_ms, ticks_diff, ticks_ms
"""
try:
    from time import sleep_ms, ticks_diff, ticks_ms
except ImportError:  # CPython: the same wrap-around arithmetic as MicroPython's ticks
    import time as _time

    _TICKS_PERIOD = 1 << 30
    _TICKS_HALF = _TICKS_PERIOD // 2

    def ticks_ms():
        return (_time.monotonic_ns() // 1000000) & (_TICKS_PERIOD - 1)

    def ticks_diff(end, start):
        """end - start in ms, right across one wrap-around of the counter."""
        return ((end - start + _TICKS_HALF) & (_TICKS_PERIOD - 1)) - _TICKS_HALF

    def sleep_ms(ms):
        _time.sleep(ms / 1000)
