"""Tiny assertion helpers for tests that run on MicroPython (no pytest there)."""

# The share of its declared heap a test runs in (mprun's --heap-margin): tests/support/runtimes.py
# runs MicroPython in 85 % of it, so a declared heap always has 15 % to spare.
HEAP_MARGIN = 1.0


def scaled(nbytes):
    """A heap figure a test aims at (free bytes left by ballast, a heap it imitates), scaled
    by HEAP_MARGIN like the heap itself: the test proves the figure with 15 % to spare."""
    return int(nbytes * HEAP_MARGIN)


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


def without_allocating(fn):
    """Run fn with the heap locked on MicroPython (any allocation raises MemoryError), so a
    test proves a path allocates nothing; on CPython, which has no heap lock, just run it."""
    try:
        from micropython import heap_lock, heap_unlock
    except ImportError:  # CPython
        return fn()
    heap_lock()
    try:
        return fn()
    finally:
        heap_unlock()
