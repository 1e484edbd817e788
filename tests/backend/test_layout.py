"""The backend's wiring: domain modules never load Flask, and no backend module imports
one that imports it back (blueprints import loyalty.backend.requestdb, never the factory)."""
import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

from loyalty import backend

ROOT = Path(__file__).resolve().parents[2]
BACKEND = ROOT / "backend"

# The web side: the factory, its blueprints, the request's connection, the commands and
# the server. Every other backend module is domain code and must work without Flask.
WEB = {"loyalty.backend." + m for m in ("app", "requestdb", "auth", "errorpages", "dashboard.views", "care.views", "sync.api", "cli",
                                       "serve", "admin", "cliutil", "customers.commands", "shopper.views",
                                       "privacy.commands")}


def modules():
    """Every module and package under backend/, by dotted name."""
    found = {"loyalty.backend"}
    for info in pkgutil.walk_packages(backend.__path__, "loyalty.backend."):
        found.add(info.name)
    return sorted(found)


def test_the_web_side_names_modules_that_exist():
    assert WEB <= set(modules())


def test_domain_modules_load_without_flask():
    # (click may load: sqlite_utils itself imports it)
    domain = [m for m in modules() if m not in WEB]
    assert {"loyalty.backend." + m for m in ("headoffice", "dashboard.overview", "sync.ingest")} <= set(domain)
    code = ("import importlib, json, sys\n"
            "for name in %r: importlib.import_module(name)\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'werkzeug'))))"
            % (domain,))
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == []


def _file(name):
    path = BACKEND.joinpath(*name.split(".")[2:])  # loyalty.backend.a.b -> backend/a/b
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def imports_of(name, known):
    """The backend modules `name` imports, anywhere in it (inside functions too)."""
    tree = ast.parse(_file(name).read_text())
    package = name if _file(name).name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            found.add(base)
            found.update(base + "." + a.name for a in node.names)  # `from loyalty.backend import db`
    # a module imports its parent packages too: `import loyalty.backend.x.y` runs backend/x/__init__
    for m in list(found):
        while "." in m:
            m = m.rpartition(".")[0]
            found.add(m)
    return {m for m in found if m in known and m != name and not name.startswith(m + ".")}


def cycle(graph):
    """One import cycle in `graph` (name -> names) as a list, or None."""
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, path + [nxt])
                if found:
                    return found
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node, [node])
            if found:
                return found
    return None


def test_cycle_finds_a_circle_and_only_a_circle():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_backend_module_imports_itself_back():
    known = set(modules())
    graph = {m: imports_of(m, known) for m in known}
    assert graph["loyalty.backend.app"] >= {"loyalty.backend." + m for m in ("sync.api", "dashboard.views", "auth")}
    assert cycle(graph) is None


def test_blueprints_never_import_the_factory():
    known = set(modules())
    for name in WEB - {"loyalty.backend.app", "loyalty.backend.serve", "loyalty.backend.admin"}:
        assert "loyalty.backend.app" not in imports_of(name, known), name
