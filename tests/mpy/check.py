"""Tiny assertion helpers for tests that run on MicroPython (no pytest there)."""


def raises(exc_class, fn, *args, **kwargs):
    """Call fn; return the exception of exc_class it raised, fail if it raised none."""
    try:
        fn(*args, **kwargs)
    except exc_class as e:
        return e
    raise AssertionError("expected %s from %s" % (exc_class.__name__, fn))


def eq(got, want, what=""):
    if got != want:
        raise AssertionError("%s: got %r, want %r" % (what, got, want))
