"""What `launch` says of where a search stands, and when it says it (search/run/standing.py)."""

import io

import pytest
from rich.console import Console

from search.run.standing import (QUIET_S, STATUS_EVERY_S, Standing, clock, epoch_line_due,
                                 first_trial_due, first_trial_text, footer, silent_due,
                                 silent_text, status_due, status_line)


@pytest.mark.parametrize("epoch_s, quiet_s, due", [
    (41.0, 41.0, True),  # a CIFAR epoch: each one is news
    (20.0, 20.0, True),  # the boundary counts as long
    (19.9, 19.9, False),
    (1.0, 1.0, False),  # digits: the footer and the end line say enough
    (1.0, 59.0, False),
    (1.0, QUIET_S, True),  # ...but a long trial of short epochs still shows life every minute
    (8.0, 64.0, True),
    (0.0, 0.0, False),
])
def test_an_epoch_gets_a_line_when_it_is_long_or_the_trial_was_quiet(epoch_s, quiet_s, due):
    assert epoch_line_due(epoch_s, quiet_s) is due


@pytest.mark.parametrize("since, ended, due", [
    (None, False, False),  # no trial has ended: no ETA yet, nothing worth a status line
    (None, True, True),  # the first trial end brings the first status line
    (5.0, True, False),  # then at most every STATUS_EVERY_S, however many trials end
    (STATUS_EVERY_S - 0.1, False, False),
    (STATUS_EVERY_S, False, True),  # ...also at an epoch, when no trial ends for long
    (120.0, True, True),
])
def test_a_status_line_is_due_at_the_first_trial_end_then_every_half_minute(since, ended, due):
    assert status_due(since, trial_ended=ended) is due


@pytest.mark.parametrize("seconds, shown", [
    (0, "0:00:00"), (59.9, "0:00:59"), (61, "0:01:01"), (3600 * 26 + 5, "26:00:05"),
    (-3, "0:00:00"),
])
def test_clock(seconds, shown):
    assert clock(seconds) == shown


def standing(**changes) -> Standing:
    fields = dict(metric="val_acc", max_epochs=3, epochs_used=7, epochs_budget=18,
                  running=(("t1", 2), ("t5", 1)), done=1, stopped=2, killed=0, failed=1,
                  to_start=1, best=("t3", 0.93125), eta_s=40.0, started_at=1000.0, at=1010.0,
                  stop_label="ASHA")
    return Standing(**{**fields, **changes})


def test_the_status_line_names_budget_trials_best_elapsed_and_eta():
    line = status_line(standing(), now=1015.0)
    assert line == ("budget used: 7/18 trial-epochs (39%) · trials: 2 running · 1 done · "
                    "2 stopped by ASHA · 1 failed · 1 to start · best: val_acc=0.9313 (t3) · "
                    "elapsed 0:00:15 · ETA ~0:00:35")  # counted down since the snapshot


def test_the_final_line_drops_what_no_longer_applies_and_keeps_what_happened():
    ended = standing(running=(), to_start=0, killed=2, best=None, eta_s=None)
    assert status_line(ended, now=1100.0, final=True) == (
        "budget used: 7/18 trial-epochs (39%) · trials: 1 done · 2 stopped by ASHA · "
        "2 killed · 1 failed · best: none yet · elapsed 0:01:40")


def test_no_eta_before_a_trial_has_ended():
    assert status_line(standing(eta_s=None), now=1015.0).endswith("ETA once a trial has ended")


def test_the_footer_shows_the_standing_on_lines_that_never_wrap():
    stream = io.StringIO()
    console = Console(file=stream, width=60, force_terminal=True, color_system=None)
    console.print(footer(standing(), now=1015.0))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 4 and all(len(line) <= 60 for line in lines)
    assert "budget used: 7/18" in lines[0]
    assert lines[1].startswith("trials: 2 running · 1 done")
    assert lines[2] == "best: val_acc=0.9313 (t3)"
    assert lines[3] == "running: t1 epoch 2/3 · t5 epoch 1/3"


def test_paused_trials_are_counted_apart_while_the_launch_runs_and_unfinished_after():
    paused = standing(running=(("t1", 2),), paused=2)
    assert "trials: 1 running · 2 paused · 1 done · 2 stopped by ASHA" in status_line(
        paused, now=1015.0)
    assert "trials: 3 unfinished · 1 done" in status_line(paused, now=1015.0, final=True)
    assert "paused" not in status_line(standing(), now=1015.0)  # shown when there are some


def test_the_stops_are_named_by_the_scheduler():
    assert "2 stopped by Hyperband" in status_line(standing(stop_label="Hyperband"), now=1015.0)
@pytest.mark.parametrize("since_epoch, since_line, epoch_s, due", [
    (59.0, 59.0, None, False),  # a first epoch under a minute: nothing to say
    (60.0, 60.0, None, True),  # a minute without its first epoch: said
    (60.0, 30.0, None, False),  # ...not twice within a minute
    (120.0, 60.0, None, True),  # ...but every minute while it lasts
    (61.0, 61.0, 2.0, True),  # digits' 2-s epochs, and nothing for a minute: starved
    (100.0, 100.0, 90.0, False),  # a CIFAR trial of 90-s epochs at its own pace
    (180.0, 180.0, 90.0, True),  # ...twice its pace is news
    (200.0, 10.0, 90.0, False),
])
def test_a_running_trial_silent_for_a_while_by_its_own_pace_says_so(since_epoch, since_line,
                                                                     epoch_s, due):
    assert silent_due(since_epoch, since_line, epoch_s) is due


@pytest.mark.parametrize("args, text", [
    (("t003", 125.0, 0, 30, "load 9.1 on 2 CPUs"),
     "t003 running 2 min 5 s without an epoch (load 9.1 on 2 CPUs)"),
    (("t003", 60.0, 3, 30, ""), "t003 running 1 min without an epoch since epoch 3/30"),
])
def test_what_a_silent_trial_says(args, text):
    assert silent_text(*args) == text


@pytest.mark.parametrize("waited, said_at, due", [
    (29.9, None, False),  # a normal start says nothing
    (30.0, None, True),
    (45.0, 30.0, False),
    (60.0, 30.0, True),  # then every half minute
])
def test_before_the_first_trial_the_search_says_every_half_minute_that_it_waits(waited, said_at,
                                                                                 due):
    assert first_trial_due(waited, said_at) is due


@pytest.mark.parametrize("up, local, load, text", [
    (90.0, True, "load 9.1 on 2 CPUs",
     "waiting for the first trial to start (Ray started 1 min 30 s ago; load 9.1 on 2 CPUs)"),
    (40.0, False, "", "waiting for the first trial to start (joined the cluster 40 s ago)"),
    (None, True, "", "waiting for the first trial to start"),
])
def test_what_a_search_waiting_for_its_first_trial_says(up, local, load, text):
    assert first_trial_text(up, local, load) == text


def test_a_search_of_several_objectives_shows_the_size_of_its_front_beside_the_best():
    line = status_line(standing(front=3), now=1015.0)
    assert "best: val_acc=0.9313 (t3) · Pareto front: 3 trials · elapsed" in line
    assert "Pareto front" not in status_line(standing(), now=1015.0)
    assert "best: none yet · Pareto front: 0 trials" in status_line(
        standing(best=None, front=0), now=1015.0)
