"""Runs test functions of one module; works on MicroPython and CPython alike.

    micropython tests/mpy/mprun.py [--heap-margin=0.85] test_canonical [test_name ...]

`--heap-margin`: the share of its declared heap the test runs in; tests that fill the
heap with ballast scale their targets by it (check.scaled). Prints `PASS name` or `FAIL name` with the traceback, then `N passed, N failed`;
exits 1 if anything failed. pytest (tests/test_runtimes.py) drives it.
"""
import sys


def _print_exc(e):
    try:
        sys.print_exception(e)  # MicroPython
    except AttributeError:
        import traceback

        traceback.print_exception(type(e), e, e.__traceback__)


def main(argv):
    argv = list(argv)
    if argv[1].startswith("--heap-margin="):
        import check

        check.HEAP_MARGIN = float(argv.pop(1).split("=", 1)[1])
    module = __import__(argv[1])
    names = argv[2:] or sorted(n for n in dir(module) if n.startswith("test_"))
    passed = failed = 0
    for name in names:
        try:
            getattr(module, name)()
        except Exception as e:
            failed += 1
            print("FAIL", name)
            _print_exc(e)
        else:
            passed += 1
            print("PASS", name)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
