"""The rules of a wait on a busy machine (search/wait/rules.py): go on while what is awaited
shows progress, stop when it is ready or gone, give up only past a limit it was given; and what
the waiting lines say."""

from __future__ import annotations

import pytest

from search.wait.rules import (EVERY_S, Look, Verdict, duration, load_text, say_due, verdict,
                               waiting_line)


@pytest.mark.parametrize("look, elapsed, limit, decided", [
    (Look(ready=True), 0.0, None, Verdict.READY),
    (Look(ready=True, alive=False), 900.0, 60.0, Verdict.READY),  # ready wins over all
    (Look(ready=False), 5.0, None, Verdict.WAIT),
    # No limit: an hour of visible progress on a loaded machine is still a wait, not a failure
    (Look(ready=False), 3600.0, None, Verdict.WAIT),
    (Look(ready=False, alive=False), 0.1, None, Verdict.GONE),  # its process exited: at once
    (Look(ready=False, alive=False), 0.1, 600.0, Verdict.GONE),
    (Look(ready=False), 599.9, 600.0, Verdict.WAIT),  # an answer from elsewhere: up to its limit
    (Look(ready=False), 600.0, 600.0, Verdict.TOO_LONG),
])
def test_a_wait_goes_on_while_there_is_progress_and_gives_up_only_past_a_given_limit(
        look, elapsed, limit, decided):
    assert verdict(look, elapsed, limit) is decided


@pytest.mark.parametrize("elapsed, said_at, first, due", [
    (0.0, None, 0.0, True),  # a line at the start
    (0.5, 0.0, 0.0, False),
    (EVERY_S - 0.1, 0.0, 0.0, False),
    (EVERY_S, 0.0, 0.0, True),  # then every half minute
    (75.0, 60.0, 0.0, False),
    (90.0, 60.0, 0.0, True),
    (4.9, None, 5.0, False),  # a wait that is usually short says nothing at first...
    (5.0, None, 5.0, True),  # ...until it is not
    (34.9, 5.0, 5.0, False),
    (35.0, 5.0, 5.0, True),
])
def test_a_waiting_line_comes_at_the_start_then_every_half_minute(elapsed, said_at, first, due):
    assert say_due(elapsed, said_at, first) is due


@pytest.mark.parametrize("seconds, said", [
    (0, "0 s"), (0.9, "0 s"), (45.7, "45 s"), (60, "1 min"), (90, "1 min 30 s"),
    (599, "9 min 59 s"), (600, "10 min"), (3599, "59 min"), (3600, "1 h 00 min"),
    (7500, "2 h 05 min"), (-4, "0 s"),
])
def test_durations_read_as_a_person_says_them(seconds, said):
    assert duration(seconds) == said


@pytest.mark.parametrize("load, cpus, said", [
    (9.14, 2, "load 9.1 on 2 CPUs"), (0.0, 1, "load 0.0 on 1 CPU"), (None, 2, ""), (3.0, None, ""),
])
def test_the_load_of_the_machine(load, cpus, said):
    assert load_text(load, cpus) == said


@pytest.mark.parametrize("elapsed, detail, load, line", [
    (0.2, "", "", "waiting for the head's job agent"),
    (0.2, "", "load 9.0 on 2 CPUs", "waiting for the head's job agent (load 9.0 on 2 CPUs)"),
    (125, "the head answers; its agent is not up yet", "load 9.0 on 2 CPUs",
     "waiting for the head's job agent (2 min 5 s so far; the head answers; its agent is not "
     "up yet; load 9.0 on 2 CPUs)"),
    (30, "", "", "waiting for the head's job agent (30 s so far)"),
])
def test_a_waiting_line_says_what_it_waits_for_how_long_and_how_busy_the_machine_is(
        elapsed, detail, load, line):
    assert waiting_line("the head's job agent", elapsed, detail, load) == line
