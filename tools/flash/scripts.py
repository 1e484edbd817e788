"""The code the flash tool runs on the device: the files of device/, read when needed.

Each is a MicroPython script that prints its answer as a Python literal. A script that
needs values from the host names them in its first line, `# takes: _PATHS, _MANIFEST`;
script() defines them first, each as `NAME = repr(value)`, and refuses any other set:

    dev.exec(script("hashes", _PATHS=["main.py"], _MANIFEST="deploy.json"))

The names start with "_" because the raw REPL keeps one namespace for a whole session:
the scripts' names stay out of the way of anything else run there.
"""
import ast
import re
from pathlib import Path

DEVICE = Path(__file__).resolve().parent / "device"
_TAKES = re.compile(r"\A# takes: (.*)\n")


def names():
    """Every device script's name (device/NAME.py)."""
    return sorted(p.stem for p in DEVICE.glob("*.py"))


def takes(name):
    """The names a script needs the host to define, from its `# takes:` line."""
    m = _TAKES.match(source(name))
    return sorted(x.strip() for x in m.group(1).split(",")) if m else []


def source(name):
    return (DEVICE / (name + ".py")).read_text()


def script(name, **values):
    """The script `name`, after one assignment for each value it takes."""
    if sorted(values) != takes(name):
        raise ValueError("device/%s.py takes %s, not %s" % (name, ", ".join(takes(name)) or "nothing",
                                                             ", ".join(sorted(values)) or "nothing"))
    lines = []
    for key, value in sorted(values.items()):
        text = repr(value)
        try:
            same = ast.literal_eval(text) == value
        except (SyntaxError, ValueError):
            same = False
        if not same:  # the device could not read it back as it is
            raise ValueError("%s=%r is not a literal" % (key, value))
        lines.append("%s = %s\n" % (key, text))
    return "".join(lines) + source(name)
