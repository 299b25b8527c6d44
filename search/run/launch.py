"""A launch: one driver per experiment, then whatever the experiment record decides.

    lease -> decide -> finished: the results from the record, Ray never started
                    -> refuse:   a different spec under the same name (the changed fields named)
                    -> restart:  an aborted experiment is moved aside, then new
                    -> extend:   a larger budget (budget.trials, budget.max_epochs): resumed,
                                 the searcher going on from its state to the new budget
                    -> new / resume: (a new one: its warm start's experiments read, search/run/warm.py)
                                 the pre-flight checks (search/run/preflight.py), then
                                 search.run.driver runs the search on Ray

The lease is taken before anything is created or restored, so a second launch of the same
experiment (another shell, another node on shared storage) is refused in seconds, naming the
holder. This module imports no engine: a finished experiment relaunched prints its table without
starting (or importing) Ray.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import replace
from typing import Any, Optional

from search.experiment import trust
from search.experiment.decide import Action
from search.experiment.lease import LeaseLost
from search.experiment.location import Location, locate, storage_problem
from search.experiment.storage import is_local
from search.experiment.record import Experiment
from search.experiment.state import Status
from search.run.ending import Ending
from search.run.errors import LaunchError
from search.run.interrupt import MainThreadAbort
from search.run.raystart import give_ray_time
from search.spec.job import TrialJob
from search.spec.model import SearchSpec


def locate_spec(spec: SearchSpec) -> Location:
    return locate(spec.name, spec.storage_path, spec.tracking.mlflow_uri, spec.data.root,
                  spec.base_dir)


def job_of(spec: SearchSpec, location: Location) -> TrialJob:
    data = spec.data_config()
    data.root = location.data_root  # trials run in other directories, maybe on other machines
    return spec.job(data)


def cluster_address(address: Optional[str]) -> Optional[str]:
    """The Ray cluster a launch joins: `address`, else RAY_ADDRESS, else None (a local Ray).
    RAY_ADDRESS is Ray's own convention (a Ray job's driver gets it): without it a job's search
    would start a Ray of its own on the head and ignore the cluster."""
    return address if address is not None else (os.environ.get("RAY_ADDRESS") or None)


def say(console: Any, text: str) -> None:
    if console is not None:
        console.print(text, highlight=False, markup=False)


def launch(spec: SearchSpec, *, address: Optional[str] = None, console: Any = None,
           callbacks: tuple = (), reuse_actors: bool = True) -> Ending:
    """Run the experiment, resume it, or report it finished. Raises LeaseHeld (another driver
    holds it), LeaseLost (taken over while this one ran), DamagedRecord, LaunchError (cannot start) and SpecError (a field that cannot
    work here). `callbacks` and `reuse_actors` exist for benchmarks."""
    give_ray_time()  # before anything imports Ray: the driver reads its deadlines then
    location = locate_spec(spec)
    record = Experiment(location)
    job = job_of(spec, location)
    if storage_problem(spec.storage_path, location.storage):
        # Not even the lease can be taken there: report it with every other problem now.
        from search.run import preflight

        preflight.check(spec, location, job, preflight.for_launch(address))
    # (An object store has no directories to leave behind: a prefix goes with its objects.)
    made = [d for d in (location.directory, location.storage)
            if is_local(d) and not d.exists()]
    try:
        with MainThreadAbort() as abort, record.lease() as lease:
            # Taken over (this driver was silent longer than the TTL): stop now, write nothing.
            lease.on_lost = lambda holder: abort.abort(LeaseLost(lease.path, holder))
            # A request left from an earlier driver is moot: `stop` asks only a live one.
            record.clear_stop()
            if lease.taken_over is not None:
                say(console, f"took over the lease of a driver that is gone "
                             f"({lease.taken_over.describe()})")
            ending = _decided(spec, record, job, address, console, callbacks, reuse_actors)
            return replace(ending, took_over=lease.taken_over)
    finally:
        # A launch that stopped before computing anything leaves no directory behind (the
        # lease made them; rmdir removes only an empty one).
        for directory in made:
            with contextlib.suppress(OSError):
                directory.rmdir()


def _decided(spec: SearchSpec, record: Experiment, job: TrialJob, address: Optional[str],
             console: Any, callbacks: tuple, reuse_actors: bool) -> Ending:
    decision = record.decide(spec.resolved(), spec.spec_hash())
    if decision.action is Action.REFUSE:
        changed = "".join(f"\n  {change}" for change in decision.changes)
        raise LaunchError(f"{decision.reason}{changed}")
    if decision.action is Action.FINISHED:
        return Ending(Status.FINISHED, record.location, record.results(job),
                      decision.parent_run_id, already_finished=True)
    warm = None
    if decision.action in (Action.NEW, Action.RESTART):
        # Before anything moves or starts: a `from` naming no experiment is a bad field.
        from search.run.warm import knowledge_of

        warm = knowledge_of(spec)
        if warm is not None:
            for text in warm.lines():
                say(console, text)
    if decision.action is Action.RESTART:
        kept = record.move_aside("aborted")
        say(console, f"{decision.reason}; starting it anew, the aborted experiment is kept in "
                     f"{kept}")
    if decision.action is Action.EXTEND:
        say(console, decision.reason + "".join(f"\n  {change}" for change in decision.changes))
    if decision.action in (Action.RESUME, Action.EXTEND):
        if record.move_ray_below():
            say(console, f"moved Ray's files of this experiment (saved by resnet-search before "
                         f"0.3) into {record.ray_directory}, away from the record")
        # Before Ray starts or MLflow is touched: resuming unpickles Ray's saved state, so
        # state that someone else could have written is refused in seconds (tuner.py checks
        # again right before the restore).
        problems = trust.untrusted(record.directory)
        if problems:
            raise LaunchError(trust.refusal(record.directory, problems))
    from search.run import preflight  # the engines load only now

    preflight.check(spec, record.location, job, preflight.for_launch(address),
                    lambda text: say(console, text))
    preflight.tracking(record.location.tracking_uri, note=lambda text: say(console, text))
    # Ray only once the pre-flight passed: a refused launch has nothing of Ray to end
    from search.run.driver import drive

    return drive(spec, record, job, decision, address=address, console=console,
                 callbacks=callbacks, reuse_actors=reuse_actors, warm=warm)
