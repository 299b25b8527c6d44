"""Where a launch's progress lines go: a terminal gets them scrolling above a live footer; a pipe,
a CI log or a file gets them plain (no control codes), with periodic status lines instead.

    screen = screen_for(console, render)   # LiveFooter on a terminal, else Plain
    screen.line(text)    # a progress line, shown everywhere (and in the driver's launch.log)
    screen.note(text)    # a status line: only where no footer shows it (plain output, the log)
    screen.close()       # the footer goes, the terminal is left as it was; idempotent

While a driver runs, `sys.stderr` is a `driverlog.Tee` (the terminal, and a plain copy in
`launch.log`). The footer must never reach that log: it is redrawn twice a second, and the copy
would hold every frame. So on a terminal the footer is drawn on the Tee's terminal side only,
and each line is written to the log copy by itself.
"""

from __future__ import annotations

import io
import sys
import threading
from typing import Callable, Optional, TextIO

from rich.console import Console, RenderableType
from rich.live import Live
from rich.text import Text

from search.run.driverlog import Tee
from search.spec.problems import strip_ansi

# Often enough for a clock that ticks in seconds, rarely enough to cost nothing next to the
# trials on a 2-core machine.
REFRESH_PER_S = 2


class Plain:
    """Lines as they are: no footer, no cursor moves; rich drops the styles off a terminal."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def line(self, text: Text) -> None:
        self.console.print(text, highlight=False, soft_wrap=True)

    def note(self, text: Text) -> None:
        self.line(text)

    def close(self) -> None:
        pass


class Lines(io.TextIOBase):
    """A stand-in for sys.stderr/stdout while the footer is drawn: whatever else writes there (a
    library's warning, a worker's output Ray forwards) reaches `each_line` a whole line at a
    time, to be printed above the footer instead of over it."""

    def __init__(self, original: TextIO, each_line: Callable[[str], None]) -> None:
        self.original, self.each_line = original, each_line
        self._partial = ""
        self._lock = threading.Lock()  # Ray's log thread writes too

    def write(self, text: str) -> int:
        with self._lock:
            *whole, self._partial = (self._partial + text).split("\n")
        for line in whole:
            self.each_line(line)
        return len(text)

    def flush(self) -> None:
        pass  # a partial line waits for its end (or for close) rather than break the footer

    def close_lines(self) -> None:
        with self._lock:
            rest, self._partial = self._partial, ""
        if rest:
            self.each_line(rest)

    def isatty(self) -> bool:
        return self.original.isatty()

    def fileno(self) -> int:
        return self.original.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.original, "encoding", "utf-8")


class Fresh:
    """A renderable drawn anew each time rich draws it: at every refresh, and under every line
    printed above it (a footer set once per refresh would come back stale under a new line)."""

    def __init__(self, render: Callable[[], RenderableType]) -> None:
        self.render = render

    def __rich__(self) -> RenderableType:
        return self.render()


class LiveFooter:
    """A transient footer (rich `Live`) under the lines, redrawn REFRESH_PER_S times a second
    from `render`, on a terminal."""

    def __init__(self, console: Console, render: Callable[[], RenderableType]) -> None:
        stream = console.file
        self.copy: Optional[TextIO] = stream.copy if isinstance(stream, Tee) else None
        terminal = stream.primary if isinstance(stream, Tee) else stream
        # The console writes to whatever sys.stderr is: the footer gets one of its own, pinned
        # to the terminal, so neither the log copy nor our own stand-ins below ever see a frame.
        self.console = Console(file=terminal, force_terminal=True,
                               color_system=console.color_system or "auto",
                               width=None if terminal.isatty() else console.width)
        self.live = Live(Fresh(render), console=self.console, transient=True,
                         refresh_per_second=REFRESH_PER_S, redirect_stdout=False,
                         redirect_stderr=False)
        # Only the process's own streams are taken over (a test's console writing to a buffer
        # leaves them alone): stderr when the console writes there, stdout when it is a
        # terminal too (Ray prints the workers' output there).
        self._take: dict[str, Callable[[str], None]] = {}
        if stream is _unproxied(sys.stderr):
            self._take["stderr"] = self._stray_err
        if terminal.isatty() and sys.stdout.isatty():
            self._take["stdout"] = self._stray_out
        self._streams: dict[str, Lines] = {}
        self._closed = False

    def start(self) -> None:
        self.live.start(refresh=True)
        for name, each_line in self._take.items():
            self._streams[name] = Lines(getattr(sys, name), each_line)
            setattr(sys, name, self._streams[name])

    def line(self, text: Text) -> None:
        self.console.print(text, highlight=False, soft_wrap=True)
        self._log(text.plain)

    def note(self, text: Text) -> None:
        self._log(text.plain)  # the footer shows it on the terminal

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.live.stop()  # erases the footer, shows the cursor again
        finally:
            for name, lines in self._streams.items():
                if getattr(sys, name) is lines:
                    setattr(sys, name, lines.original)
                lines.close_lines()

    def _stray_err(self, line: str) -> None:
        self.console.print(Text.from_ansi(line), highlight=False, soft_wrap=True)
        self._log(strip_ansi(line))

    def _stray_out(self, line: str) -> None:
        self.console.print(Text.from_ansi(line), highlight=False, soft_wrap=True)

    def _log(self, plain: str) -> None:
        if self.copy is not None:
            try:
                self.copy.write(plain + "\n")
            except (OSError, ValueError):  # the log is not worth a search (driverlog.Tee)
                pass


def _unproxied(stream: TextIO) -> TextIO:
    """What rich writes to for `stream` (it looks through another Live's stand-in)."""
    return getattr(stream, "rich_proxied_file", stream)


def screen_for(console: Console, render: Callable[[], RenderableType]) -> Plain | LiveFooter:
    """A footer on an interactive terminal; plain lines anywhere else (a pipe, a file, CI, a
    dumb terminal, a console told to be quiet)."""
    if console.is_terminal and not console.is_dumb_terminal and not console.quiet:
        return LiveFooter(console, render)
    return Plain(console)
