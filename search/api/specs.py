"""A spec from Python: validated, launched here or submitted to a cluster, by the code behind
`resnet-search validate`, `launch` and `submit`.

A spec is a path to a YAML file or a mapping of its sections (as the YAML would hold them).
Overrides are `launch`'s flags: `trials`, `max_epochs`, `seed`, `warm_from` (and `name` for
launch and submit). Every problem of a spec is raised at once, as one SpecError whose message
has one line per problem (field, value, rule), its `.problems` the same as data.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Optional, Union

from search.remote import JOBS_API
from search.spec.model import SearchSpec, apply_overrides, load_spec, parse_spec
from search.spec.problems import SpecError

if TYPE_CHECKING:
    from search.remote.jobs import Job
    from search.run.ending import Ending

SpecLike = Union[str, PathLike, Mapping[str, Any]]

__all__ = ["SpecError", "launch", "spec_of", "submit", "validate"]


def spec_of(spec: SpecLike, *, trials: Optional[int] = None, max_epochs: Optional[int] = None,
            seed: Optional[int] = None, warm_from: Optional[list[str]] = None,
            name: Optional[str] = None, base_dir: Optional[Union[str, PathLike]] = None
            ) -> SearchSpec:
    """The validated SearchSpec of a file or a mapping, with the overrides applied. A mapping's
    relative paths are relative to `base_dir` (default: the current directory); a file's to
    its own directory, as for the CLI. Raises SpecError."""
    if isinstance(spec, Mapping):
        raw = apply_overrides(dict(spec), trials, max_epochs, seed, warm_from)
        parsed = parse_spec(raw, "<spec>", base_dir=base_dir)
    else:
        parsed = load_spec(Path(spec), trials=trials, max_epochs=max_epochs, seed=seed,
                           warm_from=warm_from)
    return parsed.renamed(name) if name is not None else parsed


def validate(spec: SpecLike, **overrides: Any) -> dict:
    """The resolved spec (every default filled in, as `resnet-search validate` prints it), or
    SpecError listing every problem; a `warm_start.from` naming no experiment is one too."""
    from search.run.warm import knowledge_of

    parsed = spec_of(spec, **overrides)
    knowledge_of(parsed)  # what launch would tell its searcher: raises for a missing source
    return parsed.resolved()


def launch(spec: SpecLike, *, address: Optional[str] = None, console: Any = None,
           **overrides: Any) -> Ending:
    """Run the search in this process, as `resnet-search launch` does: a new experiment
    starts, an unfinished one resumes, a finished one returns its results without starting
    Ray. `address` joins a Ray cluster (default: RAY_ADDRESS when set, else a local Ray);
    `console` (a rich Console) shows the progress lines. Returns the Ending (status, results,
    MLflow parent run). Raises SpecError (the spec, or its pre-flight), LeaseError (another
    driver runs it), LaunchError (it cannot start) and DamagedRecord."""
    from search.run.launch import cluster_address
    from search.run.launch import launch as run_launch

    return run_launch(spec_of(spec, **overrides), address=cluster_address(address),
                      console=console)


def submit(spec: SpecLike, *, address: str = JOBS_API, wait: bool = False,
           **overrides: Any) -> Job:
    """Submit the search to a Ray cluster's Jobs API as a job whose driver is `launch`, as
    `resnet-search submit --no-wait` does (the token from RAY_AUTH_TOKEN,
    RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token). Returns the Job (`job_id`, `status`); with
    `wait=True`, once it has ended. Raises SpecError before anything reaches the cluster,
    JobsError (search.remote.jobs; AlreadyRunning when the experiment runs as a live job)."""
    from search.remote.jobs import Jobs
    from search.remote.submission import submit_search
    from search.run.launch import locate_spec

    parsed = spec_of(spec, **overrides)
    location = locate_spec(parsed)
    jobs = Jobs(address)
    job_id = submit_search(jobs, parsed, str(location.directory))
    return jobs.wait(job_id) if wait else jobs.get(job_id)
