"""A search submitted as a Ray job: what `resnet-search submit` and the Python API's `submit`
both do once the spec is valid (one experiment runs as one live job at most)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import yaml

from search.remote.jobs import JOB_NAME_METADATA_KEY, Jobs, JobsError

if TYPE_CHECKING:
    from search.spec.model import SearchSpec


class AlreadyRunning(JobsError):
    """The experiment already runs as a live job of this cluster; the message names it."""


def submit_search(jobs: Jobs, spec: SearchSpec, directory: str,
                  note: Callable[[str], None] = lambda text: None) -> str:
    """Submit `spec` (validated) as a job whose driver is `launch`; its job id. `directory` is
    the experiment's directory as the cluster sees it (the job's metadata names it)."""
    live = [job for job in jobs.of_experiment(spec.name) if not job.ended]
    if live:
        raise AlreadyRunning(
            f"experiment '{spec.name}' runs as job {live[0].job_id} ({live[0].status}) on "
            f"{jobs.address}; follow it with `resnet-search logs {live[0].job_id} --address "
            f"{jobs.address} --follow`")
    return jobs.submit(
        yaml.safe_dump(spec.resolved(), sort_keys=False), name=spec.name,
        metadata=job_metadata(spec, directory),
        options=("--relative-to", str(spec.base_dir)), note=note)


def job_metadata(spec: SearchSpec, directory: str) -> dict[str, str]:
    """What a search's job carries (strings, Ray's rule): its experiment and where it lives,
    and the experiment as the job's name: the key Ray's dashboard shows in its Name column
    (without it the column shows "-")."""
    return {"experiment": spec.name, "experiment_dir": directory,
            "spec_hash": spec.spec_hash(), JOB_NAME_METADATA_KEY: spec.name}
