"""The README cannot drift from the tree: its layout table names every module of the
product's folders (and nothing that is not there), and its heap table says what each
MicroPython test file declares.

    | folder | what it is for | what is in it |      (README.md, "## Layout")
    | `firmware/` | what runs on the reader ... | `main.py` (boot), `app.py` ... |

A folder of the product is one of ROOTS or any folder below one that holds Python files;
each has a row of its own, says what it is for, and names each of its modules
(`name.py`, packages' `__init__.py` aside) and each of its subfolders with Python files
(`name/`) in its last column.
"""
import re

import pytest

from loyalty.testing import runtimes

ROOT = runtimes.ROOT
README = ROOT / "README.md"
ROOTS = ["firmware", "shared/protocol", "backend", "tools", "sim", "demo", "tests/support", "i18n"]
NAME = re.compile(r"`([A-Za-z0-9_]+(?:\.py|/))`")


def section(title):
    """The README's text from the heading `## title` to the next `## ` heading."""
    text = README.read_text()
    start = text.index("\n## %s\n" % title)
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else len(text)]


def rows(text):
    """The cells of each row of the Markdown tables in text (header and rule rows left out)."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if set("".join(cells)) <= set("-: ") or cells[0] in ("folder", "heap"):
            continue
        out.append(cells)
    return out


def layout():
    """{folder: (what it is for, what is in it)} from the layout table; folders without the
    backticks and the trailing slash."""
    table = {}
    for cells in rows(section("Layout")):
        m = re.fullmatch(r"`([^`]+)/`", cells[0])
        assert m and len(cells) == 3, "a layout row is `folder/` | what for | what is in it: %r" % cells
        assert m.group(1) not in table, "two rows for %s" % m.group(1)
        table[m.group(1)] = (cells[1], cells[2])
    return table


def holds_python(folder):
    return any(p.suffix == ".py" for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def product_folders():
    """ROOTS and every folder below them with Python files in it, as paths from ROOT."""
    found = []
    for top in ROOTS:
        found.append(top)
        for sub in sorted((ROOT / top).rglob("*")):
            if sub.is_dir() and "__pycache__" not in sub.parts and holds_python(sub):
                found.append(sub.relative_to(ROOT).as_posix())
    return found


def contents(folder):
    """What the row of `folder` must name: its modules and its subfolders with Python files."""
    here = ROOT / folder
    names = {p.name for p in here.glob("*.py") if p.name != "__init__.py"}
    names |= {p.name + "/" for p in here.iterdir()
              if p.is_dir() and p.name != "__pycache__" and holds_python(p)}
    return names


@pytest.mark.parametrize("folder", product_folders())
def test_the_layout_table_names_each_module_of_the_folder(folder):
    table = layout()
    assert folder in table, "README's layout table has no row for %s/" % folder
    purpose, listed = table[folder]
    assert purpose, "README's layout row for %s/ does not say what it is for" % folder
    named = set(NAME.findall(listed))
    missing = contents(folder) - named
    assert not missing, "README's layout row for %s/ does not name %s" % (folder, sorted(missing))
    gone = named - contents(folder)
    assert not gone, "README's layout row for %s/ names what is not there: %s" % (folder, sorted(gone))


# -- heaps ---------------------------------------------------------------------------------

def kb(text):
    """'128 KB' -> '128k', as `# heapsize:` lines write it."""
    m = re.fullmatch(r"(\d+) KB", text)
    assert m, "a heap in the README's table is 'N KB': %r" % text
    return m.group(1) + "k"


def heap_lines(path):
    """The values of the file's `# heapsize:` lines, wherever they are."""
    return [line.split(":", 1)[1].strip() for line in path.read_text().splitlines()
            if line.startswith("# heapsize:")]


def readme_heaps():
    """({test file: heap} the README's heap table names, the heap of its row naming no file)."""
    named, default = {}, []
    for cells in rows(section("What runs where")):
        heap, files = kb(cells[0]), re.findall(r"`(test_[A-Za-z0-9_]+\.py)`", cells[1])
        if not files:
            default.append(heap)
        for name in files:
            assert name not in named, "%s is in two rows of the README's heap table" % name
            named[name] = heap
    assert len(default) == 1, "the README's heap table has one row for the files that declare none"
    return named, default[0]


def test_each_heapsize_line_is_one_the_runner_reads():
    for path in sorted(runtimes.MPY_TESTS.glob("test_*.py")):
        lines = heap_lines(path)
        assert len(lines) <= 1, "%s declares its heap twice" % path.name
        if lines:
            assert runtimes.heap_for(path) == lines[0], \
                "%s: its # heapsize: line is not among the first lines the runner reads" % path.name


def test_the_readme_states_the_heap_each_micropython_test_file_declares():
    named, default = readme_heaps()
    assert default == runtimes.DEFAULT_HEAP, "the README's default heap is not the runner's"
    files = {path.name: path for path in runtimes.MPY_TESTS.glob("test_*.py")}
    assert files
    for name in sorted(named):
        assert name in files, "the README's heap table names %s, which is not in tests/mpy" % name
    for name, path in sorted(files.items()):
        declared = heap_lines(path)
        if declared:
            assert named.get(name) == declared[0], \
                "%s declares # heapsize: %s; the README says %s" % (name, declared[0], named.get(name, "none"))
        else:
            assert name not in named, "%s declares no heap; the README gives it %s" % (name, named[name])
