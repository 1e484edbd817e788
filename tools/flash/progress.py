"""What a command is doing, for the person at the till: stages, and a bar on a terminal.

    p = Progress()
    p.stages(2)
    p.stage("copying 3 changed files")   # "[1/2] copying 3 changed files" on stderr
    p.bar(2048, 4096, "reader.mpy")      # only when stderr is a terminal
    p.note("up to date")
    p.done()

Progress(quiet=True) says nothing: what the library functions use when a script calls them.
The callers hand it texts already in the current language (loyalty.i18n's _()).
"""
import sys


class Progress:
    """Stages ("[2/5] copying files") on stderr; a bar within a stage only on a terminal."""

    def __init__(self, stream=None, quiet=False):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.n = self.total = 0
        self._bar = False

    def stages(self, total):
        self.n, self.total = 0, total

    def stage(self, text):
        self._end_bar()
        self.n += 1
        if not self.quiet:
            self.stream.write("[%d/%d] %s\n" % (self.n, max(self.total, self.n), text))
            self.stream.flush()

    def bar(self, done, total, label=""):
        if self.quiet or not self.tty or total <= 0:
            return
        width = 30
        full = width * done // total
        self.stream.write("\r      [%s%s] %3d%% %-30s" % ("#" * full, "." * (width - full), 100 * done // total, label[:30]))
        self.stream.flush()
        self._bar = True

    def note(self, text):
        self._end_bar()
        if not self.quiet:
            self.stream.write("      %s\n" % text)
            self.stream.flush()

    def _end_bar(self):
        if self._bar:
            self.stream.write("\n")
            self._bar = False

    def done(self):
        self._end_bar()
