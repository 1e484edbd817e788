"""The examples in the docstrings of shared/protocol and backend run, and say what happens.

Each module is imported under its installed name (pyproject.toml): `loyalty.protocol.engine`
for shared/protocol/engine.py, `loyalty.backend.sync.api` for backend/sync/api.py. A module joins by having an example (`>>> ` in its text); one
whose examples doctest cannot find (a `>>> ` outside a docstring) fails rather than
passing with nothing run.

    .venv/bin/python -m pytest -q tests/test_doctests.py
"""
import doctest
import importlib

import pytest

from loyalty.testing import runtimes

ROOT = runtimes.ROOT
PACKAGES = {"loyalty.protocol": ROOT / "shared" / "protocol", "loyalty.backend": ROOT / "backend"}


def modules():
    """The dotted names of the modules of PACKAGES whose text has an example."""
    names = []
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            if "__pycache__" in path.parts or ">>> " not in path.read_text():
                continue
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            names.append(".".join((package,) + parts))
    return names


MODULES = modules()


def test_there_are_examples_in_both_packages():
    assert {".".join(name.split(".")[:2]) for name in MODULES} == set(PACKAGES)


@pytest.mark.parametrize("name", MODULES)
def test_the_docstring_examples_hold(name):
    module = importlib.import_module(name)
    tests = [t for t in doctest.DocTestFinder().find(module, name) if t.examples]
    assert tests, "%s has '>>> ' in it but no example doctest can find" % name
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    report = []  # doctest's own account of each failure (it holds sys.stdout while running)
    for t in tests:
        runner.run(t, out=report.append)
    attempted = sum(len(t.examples) for t in tests)
    assert attempted and not runner.failures, "%s: %d of %d examples failed:\n%s" % (
        name, runner.failures, attempted, "".join(report))
