"""Launch's progress (search/run/progress.py), driven as Tune drives it, with stand-in trials:
plain timestamped lines in a pipe (a CI log), a live footer on a terminal that never reaches the
driver's log, per-epoch lines for long trials, and a resumed launch that keeps counting."""

import io
import pickle
import re
import sys
import time

import ray.cloudpickle
from rich.console import Console

from trials import FakeTrial
from tune_events import Fed

from search.engine.ledger import Ledger
from search.run.driverlog import Tee
from search.run.progress import ProgressPrinter

STAMP = re.compile(r"^\d\d:\d\d:\d\d ")
ESC = "\x1b["


def at_work(trial_id: str, config: dict | None = None, error_file: str = "", **fields
            ) -> FakeTrial:
    """A trial in its folder under /runs/x, in its first retry (the printer names both)."""
    return FakeTrial(trial_id, config, error_file=error_file, path=f"/runs/x/{trial_id}",
                     num_failures=1, **fields)


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def stamp(clock: Clock) -> str:
    return time.strftime("%H:%M:%S", time.localtime(clock.now))


def fed(printer_of, stopped=()) -> Fed:
    """A printer as a launch runs it, after the ledger (which knows the scheduler's stops)."""
    ledger = Ledger(3, stop_tag="asha")
    for trial_id in stopped:
        ledger.stop(trial_id)
    return Fed(ledger, printer_of(ledger))


def printer_on(file, clock: Clock, trials: int = 3, stopped: frozenset = frozenset(),
               terminal: bool = False) -> Fed:
    console = Console(file=file, width=200, force_terminal=terminal,
                      color_system="standard" if terminal else None)
    return fed(lambda ledger: ProgressPrinter("val_acc", 3, trials, ledger, console=console,
                                              mode="max", stop_label="ASHA", clock=clock),
               stopped)


def result(epoch: int, value: float, seconds: float = 1.0) -> dict:
    return {"epoch": epoch, "val_acc": value, "time_this_iter_s": seconds}


def test_lines_in_a_pipe_are_plain_text_with_the_time(tmp_path):
    error_file = tmp_path / "error.pkl"
    with open(error_file, "wb") as handle:  # Ray colours the exceptions it wraps
        ray.cloudpickle.dump(RuntimeError("\x1b[36mray::ImplicitFunc.train()\x1b[39m [boom]"),
                             handle)
    stream, clock = io.StringIO(), Clock()  # not a terminal
    printer = printer_on(stream, clock, trials=2)
    listed = at_work("a", {"milestones": [0.5, 0.75], "lr": 0.1}, str(error_file))
    printer.setup()
    printer.on_trial_start(0, [listed], listed)
    printer.on_trial_recover(0, [listed], listed)
    printer.on_trial_result(0, [listed], listed, result(3, 0.5))
    printer.on_trial_complete(0, [listed], listed)
    printer.on_trial_error(0, [listed], at_work("b", {}, str(error_file)))
    printer.on_experiment_end([listed])
    at = stamp(clock)
    lines = stream.getvalue().splitlines()
    assert lines[0] == f"{at} start a  milestones=[0.5, 0.75] lr=0.1"
    assert lines[1] == (f"{at} retry a (failure 1) from its last checkpoint: RuntimeError: "
                        "ray::ImplicitFunc.train() [boom]")
    assert lines[2] == f"{at} [1/2] a done after 3/3 epochs  val_acc=0.5000"
    # The first trial to end brings the first status line: from now on there is an ETA.
    assert lines[3].startswith(f"{at} status: budget used: 3/6 trial-epochs (50%) · trials: "
                               "0 running · 1 done · 0 stopped by ASHA · 0 failed · 1 to start"
                               " · best: val_acc=0.5000 (a) · elapsed 0:00:00 · ETA")
    assert lines[4].startswith(f"{at} [2/2] b failed after 0/3 epochs  RuntimeError: "
                               "ray::ImplicitFunc.train() [boom] (traceback: /runs/x/b/")
    assert lines[5] == (f"{at} launch ended: budget used: 3/6 trial-epochs (50%) · trials: "
                        "1 done · 0 stopped by ASHA · 1 failed · best: val_acc=0.5000 (a) · "
                        "elapsed 0:00:00")
    assert len(lines) == 6  # the status line came once: at most every 30 s
    assert ESC not in stream.getvalue() and "[/" not in stream.getvalue()


def test_a_pipe_gets_a_status_line_every_half_minute_with_an_honest_eta():
    stream, clock = io.StringIO(), Clock()
    printer = printer_on(stream, clock, trials=4, stopped=frozenset({"a"}))
    a, b = at_work("a"), at_work("b")
    printer.setup()
    for trial in (a, b):
        printer.on_trial_start(0, [a, b], trial)
    clock.now += 10
    printer.on_trial_result(0, [a, b], a, result(1, 0.4, 5.0))
    printer.on_trial_result(0, [a, b], b, result(1, 0.6, 5.0))
    printer.on_trial_complete(0, [a, b], a)  # ASHA stopped it after 1 epoch
    clock.now += 10
    printer.on_trial_result(0, [a, b], b, result(2, 0.7, 5.0))
    clock.now += 20  # 30 s after the first status line
    printer.on_trial_result(0, [a, b], b, result(3, 0.8, 5.0))
    status = [line for line in stream.getvalue().splitlines() if " status: " in line]
    assert len(status) == 2
    # 2 epochs in 10 s; ended trials ran 1 epoch each: 2 to start x 1, and b at epoch 1 has
    # outlived them (runs to its 3rd): 2 + 2 epochs at 0.2 epoch/s = 20 s.
    assert status[0].endswith("1 stopped by ASHA · 0 failed · 2 to start · best: val_acc=0.6000"
                              " (b) · elapsed 0:00:10 · ETA ~0:00:20")
    # 4 epochs in 40 s; b has run its 3 epochs, 2 to start x 1: 2 epochs at 0.1 epoch/s.
    assert status[1].endswith("best: val_acc=0.8000 (b) · elapsed 0:00:40 · ETA ~0:00:20")
    assert "budget used: 4/12 trial-epochs (33%)" in status[1]


def test_long_epochs_get_a_line_each_short_ones_only_after_a_quiet_minute():
    stream, clock = io.StringIO(), Clock()
    printer = printer_on(stream, clock, trials=2)
    printer.max_epochs = 100
    cifar, digits = at_work("cifar"), at_work("digits")
    printer.setup()
    printer.on_trial_start(0, [cifar], cifar)
    for epoch in (1, 2):
        clock.now += 41
        printer.on_trial_result(0, [cifar], cifar, result(epoch, 0.8 - epoch / 10, 41.0))
    printer.on_trial_start(0, [cifar, digits], digits)
    for epoch in range(1, 41):  # 2 s each: silent, until a minute has passed without a line
        clock.now += 2
        printer.on_trial_result(0, [cifar, digits], digits, result(epoch, 0.9, 2.0))
    lines = [line[9:] for line in stream.getvalue().splitlines() if " epoch " in line]
    assert lines == ["cifar epoch 1/100 val_acc=0.7000 (best 0.7000) 41 s/epoch",
                     "cifar epoch 2/100 val_acc=0.6000 (best 0.7000) 41 s/epoch",
                     "digits epoch 30/100 val_acc=0.9000 (best 0.9000) 2.0 s/epoch"]


def test_a_terminal_gets_a_live_footer_with_budget_best_and_eta_and_is_left_clean():
    stream, clock = io.StringIO(), Clock()
    printer = printer_on(stream, clock, trials=3, stopped=frozenset({"b"}), terminal=True)
    a, b = at_work("a"), at_work("b")
    printer.setup()
    printer.on_trial_start(0, [a, b], a)
    printer.on_trial_start(0, [a, b], b)
    clock.now += 6
    printer.on_trial_result(0, [a, b], a, result(1, 0.91))
    printer.on_trial_result(0, [a, b], b, result(1, 0.42))
    printer.on_trial_complete(0, [a, b], b)  # ASHA stopped it
    printer.screen.live.refresh()  # what rich's thread does twice a second
    shown = stream.getvalue()
    printer.on_experiment_end([a, b])
    printer.close()  # the driver closes too (a second Ctrl+C): nothing happens twice
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", stream.getvalue())
    assert "\x1b[?25l" in shown  # the footer hides the cursor while it is drawn...
    out = stream.getvalue()
    assert out.rfind("\x1b[?25h") > out.rfind("\x1b[?25l")  # ...and shows it again after
    assert "budget used: 2/9 trial-epochs (22%) · elapsed 0:00:06 · ETA ~" in plain
    assert "trials: 1 running · 0 done · 1 stopped by ASHA · 0 failed · 1 to start" in plain
    assert "best: val_acc=0.9100 (a)" in plain
    assert "running: a epoch 1/3" in plain
    assert " status: " not in plain  # the footer shows it: no status lines on a terminal
    ended = [line for line in plain.splitlines() if "launch ended:" in line]
    assert len(ended) == 1 and STAMP.match(ended[0])
    assert any(STAMP.match(line) and line.endswith("start a  ") for line in plain.splitlines())


def test_on_a_terminal_the_drivers_log_gets_lines_never_footer_frames(monkeypatch):
    terminal, log, clock = Terminal(), io.StringIO(), Clock()
    monkeypatch.setattr(sys, "stderr", Tee(terminal, log))  # what driverlog.teed_stderr does
    console = Console(stderr=True, soft_wrap=True)  # the CLI's: writes to sys.stderr
    printer = fed(lambda ledger: ProgressPrinter("val_acc", 3, 2, ledger, console=console,
                                                 mode="max", stop_label="ASHA", clock=clock))
    a = at_work("a")
    printer.setup()
    assert sys.stderr is not terminal and isinstance(printer.screen.copy, io.StringIO)
    printer.on_trial_start(0, [a], a)
    print("(run_trial pid=1) a worker's warning", file=sys.stderr)  # Ray forwards these
    for epoch in (1, 2, 3):
        clock.now += 1
        printer.on_trial_result(0, [a], a, result(epoch, 0.3 * epoch))
        printer.screen.live.refresh()
    printer.on_trial_complete(0, [a], a)
    printer.screen.live.refresh()
    printer.on_experiment_end([a])
    assert isinstance(sys.stderr, Tee)  # given back
    drawn = terminal.getvalue()
    assert drawn.count("budget used: ") > 3 and ESC in drawn  # the footer, redrawn
    assert "a worker's warning" in drawn
    logged = log.getvalue().splitlines()
    assert ESC not in log.getvalue() and "━" not in log.getvalue()
    assert [line.split(" ")[1] for line in logged if STAMP.match(line)] == [
        "start", "[1/2]", "status:", "launch"]
    assert "(run_trial pid=1) a worker's warning" in logged
    assert sum("budget used" in line for line in logged) == 2  # one status, the final line


def test_a_resumed_launch_keeps_counting_from_the_trials_ray_restored():
    stream, clock = io.StringIO(), Clock()
    first = ProgressPrinter("val_loss", 3, 4, Ledger(3, stop_tag="asha"),
                            console=Console(file=stream, width=200), mode="min", clock=clock)
    printer = ray.cloudpickle.loads(ray.cloudpickle.dumps(first))  # as tuner.pkl holds it
    restored = Fed(printer.ledger, printer)  # a ledger pickles empty; the launch loads it:
    restored.ledger.stop("a")  # ASHA stopped a (the record's scheduler.json)
    restored.console, restored.clock = Console(file=stream, width=200), clock
    earlier = [
        at_work("a", status="TERMINATED", last_result={"epoch": 1, "val_loss": 0.9},
              metric_analysis={"val_loss": {"min": 0.9, "max": 0.9}}),
        at_work("b", status="TERMINATED", last_result={"epoch": 3, "val_loss": 0.35},
              metric_analysis={"val_loss": {"min": 0.3, "max": 0.8}}),
        at_work("c", status="PENDING", last_result={"epoch": 2, "val_loss": 0.5},
              metric_analysis={"val_loss": {"min": 0.5, "max": 0.7}}),  # interrupted
    ]
    restored.setup()
    restored.on_step_begin(0, earlier)
    assert restored.standing.epochs_used == 6 and restored.standing.best == ("b", 0.3)
    assert (restored.standing.done, restored.standing.stopped) == (1, 1)
    c = earlier[2]
    c.status = "RUNNING"
    restored.on_trial_start(1, earlier, c)
    clock.now += 5
    restored.on_trial_result(1, earlier, c, {"epoch": 3, "val_loss": 0.25,
                                             "time_this_iter_s": 5.0})
    restored.on_trial_complete(1, earlier, c)
    ended = [line for line in stream.getvalue().splitlines() if "] c " in line]
    assert ended == [f"{stamp(clock)} [3/4] c done after 3/3 epochs  val_loss=0.2500"]
    # Epochs of earlier launches count in the budget; the ETA's rate is this launch's own
    # (1 epoch in 5 s): 1 trial to end at 7/3 epochs each.
    assert restored.standing.epochs_used == 7 and restored.standing.best == ("c", 0.25)
    assert restored.standing.eta_s == 5.0 * 7 / 3


def test_a_quiet_console_prints_nothing_and_draws_no_footer():
    stream = Terminal()
    console = Console(file=stream, force_terminal=True, quiet=True)  # the benchmarks' console
    printer = fed(lambda ledger: ProgressPrinter("val_acc", 3, 1, ledger, console=console))
    a = at_work("a")
    printer.setup()
    printer.on_trial_start(0, [a], a)
    printer.on_trial_result(0, [a], a, result(3, 0.5))
    printer.on_trial_complete(0, [a], a)
    printer.on_experiment_end([a])
    assert stream.getvalue() == ""


def test_a_paused_trial_is_neither_running_nor_ended_and_resumes_where_it_paused():
    """A scheduler may pause a trial at a rung (HyperBand) and run it again later: Tune says so
    only through the trial's status, and starts it again."""
    stream, clock = io.StringIO(), Clock()
    printer = printer_on(stream, clock, trials=2)
    a, b = at_work("a", {"lr": 0.1}), at_work("b")
    printer.setup()
    printer.on_trial_start(0, [a, b], a)
    printer.on_trial_start(0, [a, b], b)
    printer.on_trial_result(0, [a, b], a, result(1, 0.6))
    a.status = "PAUSED"
    printer.on_step_begin(0, [a, b])
    assert printer.standing.running == (("b", 0),) and printer.standing.paused == 1
    assert "trials: 1 running · 1 paused · 0 done" in standing_line(printer, clock)
    a.status = "RUNNING"
    printer.on_trial_start(0, [a, b], a)
    printer.on_trial_result(0, [a, b], a, result(2, 0.7))
    assert printer.standing.running == (("a", 2), ("b", 0)) and printer.standing.paused == 0
    lines = [line[9:] for line in stream.getvalue().splitlines()]
    assert lines == ["start a  lr=0.1", "start b  ", "resume a after epoch 1"]
    assert printer.standing.epochs_used == 2  # its epochs count once


def standing_line(printer, clock) -> str:
    from search.run.standing import status_line

    return status_line(printer.standing, clock.now)
def test_a_starved_search_shows_as_slow_not_silent():
    """Between Tune's events (its loop steps several times a second, `on_step_begin`), a launch
    whose first trial has not started says so every half minute, and a running trial that has
    reported nothing for a while, by its own pace, says so with how long and the load."""
    stream, clock = io.StringIO(), Clock()
    printer = printer_on(stream, clock, trials=2)
    printer.max_epochs = 30
    printer.ray_up = (clock.now - 20, True)  # the launch started its Ray 20 s before Tune
    printer.load = lambda: "load 9.1 on 2 CPUs"
    printer.setup()

    def step(seconds: float, trials: list) -> None:
        for _ in range(int(seconds * 2)):  # Tune's loop, twice a second
            clock.now += 0.5
            printer.on_step_begin(0, trials)

    step(65, [])  # the trial's process is slow to start
    a = at_work("a")
    printer.on_trial_start(0, [a], a)
    step(30, [a])
    clock.now += 2
    printer.on_trial_result(0, [a], a, result(1, 0.5, 2.0))
    step(125, [a])  # then starved: 2-s epochs, and nothing for two minutes
    said = [line[9:] for line in stream.getvalue().splitlines()]
    assert said == [
        "waiting for the first trial to start (Ray started 50 s ago; load 9.1 on 2 CPUs)",
        "waiting for the first trial to start (Ray started 1 min 20 s ago; load 9.1 on 2 CPUs)",
        "start a  ",
        "a running 1 min without an epoch since epoch 1/30 (load 9.1 on 2 CPUs)",
        "a running 2 min without an epoch since epoch 1/30 (load 9.1 on 2 CPUs)",
    ]
    assert all(STAMP.match(line) for line in stream.getvalue().splitlines())


def test_a_search_of_several_objectives_shows_its_front_as_trials_complete():
    stream, clock = io.StringIO(), Clock()
    printer = fed(lambda ledger: ProgressPrinter(
        "val_acc", 3, 3, ledger, console=Console(file=stream, width=200), mode="max",
        clock=clock, objectives=(("val_acc", "max"), ("params", "min")),
        constraints=(("params", "max", 1e5),)))
    trials = [at_work(t) for t in ("a", "b", "c")]
    printer.setup()
    for trial, acc, params in zip(trials, (0.9, 0.7, 0.95), (5e4, 1e4, 2e5)):
        printer.on_trial_start(0, trials, trial)
        for n in (1, 2, 3):
            printer.on_trial_result(0, trials, trial, {**result(n, acc), "params": params})
        trial.status = "TERMINATED"
        printer.on_trial_complete(0, trials, trial)
    # c breaks the constraint; a and b trade accuracy against size
    assert printer.standing.front == 2
    assert "Pareto front: 2 trials" in standing_line(printer, clock)
    # pickled with the tuner: a resumed launch shows it again
    again = pickle.loads(pickle.dumps(printer.callback))
    assert (again.objectives, again.constraints) == (printer.objectives, printer.constraints)
