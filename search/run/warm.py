"""The experiments a warm start learns from, found and read: each `warm_start.from` entry is a
spec file (its experiment), an experiment directory or an object store URI, relative paths
relative to the spec's own directory. Read from the record as `trials` reads it, never Ray's
pickles; a bad entry is a bad field (exit 2, one line naming it) before anything starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from search.experiment.record import Experiment, NoExperiment
from search.experiment.state import DamagedRecord
from search.experiment.storage import UnsupportedStorage, as_path, scheme
from search.spec.model import SearchSpec, load_spec
from search.spec.problems import Problem, SpecError, join_loc

NOT_FOUND = "is neither a spec file nor an experiment directory (nor an s3:// URI of one)"


class Unusable(Exception):
    """Why one `from` entry names no experiment whose results can be read (the rule's text)."""


def experiment_of(source: str, base_dir: Path) -> Experiment:
    """The experiment one `from` entry names; Unusable saying why none."""
    from search.run.launch import locate_spec

    if scheme(source):
        try:
            return Experiment.open(as_path(source))
        except UnsupportedStorage as error:
            raise Unusable(str(error)) from None
        except NoExperiment as error:
            raise Unusable(f"holds no experiment: {error}") from None
    path = Path(source).expanduser()
    path = path if path.is_absolute() else base_dir / path
    if path.is_file():
        try:
            return Experiment(locate_spec(load_spec(path)))
        except SpecError as error:
            first = error.problems[0].render(str(path)) if error.problems else str(error)
            raise Unusable(f"is a spec file that does not validate: {first}") from None
    if path.is_dir():
        try:
            return Experiment.open(path)
        except NoExperiment as error:
            raise Unusable(f"holds no experiment: {error}") from None
    raise Unusable(NOT_FOUND)


def earlier(spec: SearchSpec) -> list[Any]:
    """Every experiment `spec.warm_start.from` names, with its results; SpecError listing every
    entry that names none (or this experiment itself)."""
    from search.engine.warm import Earlier
    from search.run.launch import locate_spec

    own = str(locate_spec(spec).directory)
    found, problems = [], []
    for i, source in enumerate(spec.warm_start.sources if spec.warm_start else []):
        loc = join_loc("warm_start.from", i)
        try:
            experiment = experiment_of(source, spec.base_dir)
            if str(experiment.directory) == own:
                raise Unusable("is this experiment itself: a warm start learns from another one")
            found.append(Earlier(source, experiment.recorded_results()))
        except Unusable as error:
            problems.append(Problem(loc, source, f"from is {source!r} but {error}",
                                    flag=spec.flag_of(loc)))
        except (NoExperiment, DamagedRecord) as error:
            problems.append(Problem(loc, source, f"from is {source!r} but its record cannot "
                                    f"be read: {error}", flag=spec.flag_of(loc)))
    if problems:
        raise SpecError(problems, spec.source)
    return found


def knowledge_of(spec: SearchSpec) -> Optional[Any]:
    """What the warm start of `spec` tells its searcher (search/engine/warm.py), or None for a
    cold start; SpecError for a `from` entry that names no experiment."""
    if spec.warm_start is None or not spec.warm_start.used:
        return None
    from search.engine.warm import knowledge

    known = knowledge(spec.space, spec.objective.metric, spec.objective.mode, earlier(spec),
                      top=spec.warm_start.top, enqueue=spec.warm_start.enqueue,
                      narrow=spec.warm_start.narrow, queue_best=spec.warm_start.queue_best)
    if known.narrowing is not None:
        room_in(spec, known.narrowing.space)
    return known


def room_in(spec: SearchSpec, narrowed: dict) -> None:
    """SpecError when the narrowed space has fewer distinct points than the budget's trials
    (the rule `budget.trials` obeys for the declared space)."""
    from search.spec.model import room_problem
    from search.spec.points import distinct_points

    points = distinct_points(narrowed)
    if room_problem(spec.budget.trials, points, spec.budget.repeat):
        narrow = spec.warm_start.narrow
        raise SpecError([Problem(
            "warm_start.narrow", narrow, f"narrow is {narrow} but the narrowed space has only "
            f"{points} distinct configuration{'s' if points != 1 else ''} for budget.trials "
            f"{spec.budget.trials}; raise narrow, lower budget.trials to {points} or set "
            "budget.repeat: true")], spec.source)
