"""What `launch` shows while it runs, through the real CLI: in a terminal (a pseudo-terminal) a
live footer with the budget used, the best so far and an ETA, above which timestamped lines
scroll, and a terminal left as it was found; in a pipe (a CI log) plain timestamped lines with
periodic status lines, never a control code. The driver's launch.log is plain in both cases."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

from driving import SMALL_DATA, cli_env

from search.experiment.record import Experiment

CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
STAMPED = re.compile(r"^\d\d:\d\d:\d\d (start |\[\d+/\d+\] |status: |launch ended: )")
ENDED = re.compile(r"^\d\d:\d\d:\d\d launch ended: budget used: (\d+)/(\d+) trial-epochs")
STATUS = re.compile(r"^\d\d:\d\d:\d\d status: budget used: \d+/\d+ trial-epochs \(\d+%\) · "
                    r"trials: \d+ running · \d+ done · \d+ stopped by ASHA · .* · best: "
                    r"val_acc=\d\.\d{4} \(\w+\) · elapsed \d+:\d\d:\d\d · ETA ~\d+:\d\d:\d\d$")


def in_terminal(args: list[str], cwd: Path, timeout_s: float = 480) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal (120 x 40) as its stdout and stderr, as a shell
    would; (exit code, everything it drew)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {**cli_env(cwd), "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    for name in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        env.pop(name, None)
    proc = subprocess.Popen([sys.executable, "-m", "search.cli", *args], cwd=cwd, env=env,
                            stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    os.close(slave)
    drawn, deadline = [], time.monotonic() + timeout_s
    try:
        # Read while it runs (a full pty would block it), then what is left once it exited.
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: no process holds the terminal any more
                    break
                if not chunk:
                    break
                drawn.append(chunk)
            elif proc.poll() is not None:
                break  # exited, and nothing more came for a second
        else:
            proc.kill()
            raise AssertionError(f"launch ran past {timeout_s:.0f} s:\n"
                                 + b"".join(drawn).decode(errors="replace")[-3000:])
        return proc.wait(timeout=60), b"".join(drawn).decode("utf-8", errors="replace")
    finally:
        os.close(master)


def plain_lines(text: str) -> list[str]:
    """The lines as the terminal shows them: what follows a bare carriage return (the footer's
    redraw) overwrites what came before it on that line."""
    return [CONTROL.sub("", line.split("\r")[-1]).rstrip()
            for line in text.replace("\r\n", "\n").split("\n")]


def used_epochs(experiment: Path) -> int:
    return Experiment.open(experiment).recorded_results().epochs_used


def test_in_a_terminal_a_live_footer_shows_budget_best_and_eta(tmp_path, digits_spec,
                                                                write_spec, reaper):
    spec = digits_spec(data=SMALL_DATA, budget={"trials": 4, "max_epochs": 3})
    path = write_spec(spec)
    code, drawn = in_terminal(["launch", str(path)], cwd=tmp_path)
    assert code == 0, drawn[-4000:]

    # The footer was drawn (the cursor hidden meanwhile) and went, leaving the cursor shown.
    assert "\x1b[?25l" in drawn and drawn.rfind("\x1b[?25h") > drawn.rfind("\x1b[?25l")
    frames = CONTROL.sub("", drawn.replace("\r", ""))
    assert re.search(r"budget used: \d+/12 trial-epochs \(\d+%\) · elapsed \d+:\d\d:\d\d · "
                     r"ETA ~\d+:\d\d:\d\d", frames), drawn[-4000:]
    assert re.search(r"best: val_acc=\d\.\d{4} \(\w+\)", frames)
    assert re.search(r"running: \w+ epoch \d/3", frames)

    lines = plain_lines(drawn)
    stamped = [line for line in lines if STAMPED.match(line)]
    # (a loaded machine may add "waiting for the first trial to start" lines: not starts)
    assert sum(bool(re.match(r"^\d\d:\d\d:\d\d start \w+  ", line)) for line in stamped) == 4
    assert sum(re.search(r"\[\d/4\] ", line) is not None for line in stamped) == 4
    ended = [ENDED.match(line) for line in lines if ENDED.match(line)]
    assert len(ended) == 1
    experiment = Path(spec["storage_path"]) / spec["name"]
    assert (int(ended[0][1]), int(ended[0][2])) == (used_epochs(experiment), 12)
    assert not any(" status: " in line for line in lines)  # the footer shows it here

    # The driver's log has the lines (status lines too), never a frame of the footer.
    log = (experiment / "launch.log").read_text()
    assert "\x1b" not in log and "━" not in log and "running: " not in log
    logged = log.splitlines()
    assert [line for line in logged if STAMPED.match(line) and " status: " not in line] == \
        stamped
    status = [line for line in logged if " status: " in line]
    assert status and all(STATUS.match(line) for line in status), status
    assert log.count("budget used") == len(status) + 1  # + the final line


def test_in_a_pipe_the_lines_are_plain_with_timestamps_and_status_lines(finished):
    # The shared finished search was launched with its output in a pipe.
    output = finished.launch.stderr
    assert "\x1b" not in output and "━" not in output and "running: " not in output
    lines = output.splitlines()
    trials = finished.spec["budget"]["trials"]
    assert sum(bool(re.match(r"^\d\d:\d\d:\d\d start \w+  \w+=", line)) for line in lines) \
        == trials
    assert sum(bool(re.match(rf"^\d\d:\d\d:\d\d \[\d+/{trials}\] \w+ ", line))
               for line in lines) == trials
    status = [line for line in lines if " status: " in line]
    assert status and all(STATUS.match(line) for line in status), status
    ended = [ENDED.match(line) for line in lines if ENDED.match(line)]
    assert len(ended) == 1
    budget = trials * finished.spec["budget"]["max_epochs"]
    assert (int(ended[0][1]), int(ended[0][2])) == (used_epochs(finished.experiment), budget)
    # The same lines in the driver's log, for `logs --follow`.
    log = (finished.experiment / "launch.log").read_text()
    assert [line for line in lines if STAMPED.match(line)] == [
        line for line in log.splitlines() if STAMPED.match(line)]
