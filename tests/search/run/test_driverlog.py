"""The driver's log: what the launch printed on stderr, also in <experiment>/launch.log."""

import io
import sys

from rich.console import Console

from search.run.driverlog import LOG_FILE, Tee, teed_stderr


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_tee_keeps_colours_on_the_terminal_and_strips_them_in_the_log():
    terminal, log = FakeTerminal(), io.StringIO()
    tee = Tee(terminal, log)
    assert tee.isatty()
    Console(file=tee, force_terminal=True).print("[red]retry[/] t1", highlight=False)
    assert "\x1b[" in terminal.getvalue()
    assert log.getvalue() == "retry t1\n"


def test_a_broken_log_never_breaks_the_terminal():
    log = io.StringIO()
    log.close()
    terminal = io.StringIO()
    Tee(terminal, log).write("still here\n")
    assert terminal.getvalue() == "still here\n"


def test_stderr_is_teed_while_the_driver_runs_and_each_launch_has_a_header(tmp_path):
    console = Console(stderr=True)  # as the CLI's: it writes to whatever sys.stderr is now
    for n in (1, 2):
        with teed_stderr(tmp_path) as path:
            console.print(f"[{n}/2] t{n} done", highlight=False, markup=False)
        assert path == tmp_path / LOG_FILE
    print("after the launch", file=sys.stderr)
    lines = (tmp_path / LOG_FILE).read_text().splitlines()
    assert [line.startswith("=== launch on ") for line in lines] == [True, False, True, False]
    assert lines[1] == "[1/2] t1 done" and lines[3] == "[2/2] t2 done"
