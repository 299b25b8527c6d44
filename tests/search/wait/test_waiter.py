"""A wait on a fake clock (search/wait/waiter.py): it looks until the rules end it, and says
what it waits for at the start and every half minute."""

from __future__ import annotations

import re

from search.wait.rules import Look, Verdict
from search.wait.waiter import machine_load, wait_until


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def run(looks, **options):
    clock, said = Clock(), []
    seen = iter(looks)
    waited = wait_until(lambda: next(seen), "the thing", note=said.append, clock=clock,
                        sleep=clock.sleep, local=False, **options)
    return waited, said


def test_a_slow_but_live_thing_is_waited_for_as_long_as_it_takes_with_a_line_each_half_minute():
    # 10 minutes of "not yet" at one look a second, then ready: no deadline trips it.
    looks = [Look(False, detail="still starting")] * 600 + [Look(True)]
    waited, said = run(looks, poll_s=1.0)
    assert waited.verdict is Verdict.READY and waited.elapsed_s == 600.0
    assert said[0] == "waiting for the thing (still starting)"
    assert said[1] == "waiting for the thing (30 s so far; still starting)"
    assert said[-1] == "waiting for the thing (9 min 30 s so far; still starting)"
    assert len(said) == 20


def test_a_thing_that_stops_showing_progress_ends_the_wait_at_once():
    waited, said = run([Look(False), Look(False), Look(False, alive=False, detail="exited 1")],
                       poll_s=1.0)
    assert waited.verdict is Verdict.GONE and waited.look.detail == "exited 1"
    assert waited.elapsed_s == 2.0 and said == ["waiting for the thing"]


def test_a_limit_is_kept_only_where_one_was_given():
    waited, _ = run([Look(False)] * 1000, poll_s=1.0, limit_s=120.0)
    assert waited.verdict is Verdict.TOO_LONG and waited.elapsed_s == 120.0


def test_a_usually_short_wait_says_nothing_until_it_is_long():
    waited, said = run([Look(False)] * 4 + [Look(True)], poll_s=1.0, first_s=5.0)
    assert waited.verdict is Verdict.READY and said == []
    waited, said = run([Look(False)] * 6 + [Look(True)], poll_s=1.0, first_s=5.0)
    assert said == ["waiting for the thing (5 s so far)"]


def test_a_local_wait_names_the_machine_load():
    clock, said = Clock(), []
    looks = iter([Look(False), Look(True)])
    wait_until(lambda: next(looks), "the thing", note=said.append, clock=clock,
               sleep=clock.sleep)
    assert len(said) == 1
    assert re.fullmatch(r"waiting for the thing \(load \d+\.\d on \d+ CPUs?\)", said[0]), said
    assert re.fullmatch(r"load \d+\.\d on \d+ CPUs?", machine_load())
