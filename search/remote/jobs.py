"""A search as a Ray Job: submitted, followed, stopped and listed through Ray's Jobs API.

    jobs = Jobs("http://127.0.0.1:8265")          # token auth on whenever a token is at hand
    job_id = jobs.submit(spec_yaml, name, meta)     # the job's driver runs `resnet-search launch`
    jobs.follow(job_id, print)                      # its output until it ends
    jobs.stop(job_id)                               # SIGTERM: the search saves, ends interrupted

The job's driver is the same `launch` as on a laptop: inside a job Ray sets RAY_ADDRESS, and
`launch` joins the cluster it runs on. The project's code travels as `py_modules`, the spec as
the job's working directory. Ray's stop is SIGTERM then, after RAY_JOB_STOP_WAIT_TIME_S
(3 s by default), SIGKILL: the job gets long enough to save like a Ctrl+C.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional
from urllib.parse import urlsplit

import ray
from ray.dashboard.modules.job.common import JOB_NAME_METADATA_KEY
from ray.job_submission import JobStatus, JobSubmissionClient

import resnet_core
import search
from search.engine import compat
from search.remote import auth
from search.wait.rules import Look, Verdict, duration
from search.wait.waiter import wait_until

# Job metadata (strings only, Ray's rule) that marks a job as one of ours and names its search.
MARK = "resnet_search"
SPEC_FILE = "spec.yaml"  # the spec's name in the job's working directory
STOP_WAIT_S = 120  # SIGTERM -> SIGKILL: a graceful stop waits for the running epochs' snapshot
ENDED = {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED}
NO_AGENT = "No available agent to submit job"  # Ray's answer while the head's agent starts
# A head answers before its job agent is up (a freshly started head, and much longer on a
# loaded machine: 60 s were not enough under load). While the head answers it is waited for,
# with a line every 30 s; the limit only catches an agent that never comes up (it died).
AGENT_WAIT_S = 600.0


class JobsError(RuntimeError):
    """The Jobs API cannot be used as asked; the message says why and what to do."""


@dataclass(frozen=True)
class Job:
    job_id: str
    status: str  # PENDING / RUNNING / STOPPED / SUCCEEDED / FAILED
    experiment: str
    name: str  # its name in Ray's dashboard (metadata job_name): the experiment, for ours
    experiment_dir: str
    entrypoint: str
    message: str
    start_time: Optional[float]  # seconds since the epoch
    end_time: Optional[float]
    exit_code: Optional[int]  # the driver's, once it ended

    @property
    def ended(self) -> bool:
        return JobStatus(self.status) in ENDED

    def as_json(self) -> dict:
        return dict(self.__dict__)


def _job(info: Any) -> Job:
    meta = info.metadata or {}
    return Job(job_id=info.submission_id or info.job_id, status=str(info.status.value),
               experiment=meta.get("experiment", ""), name=meta.get(JOB_NAME_METADATA_KEY, ""),
               experiment_dir=meta.get("experiment_dir", ""), entrypoint=info.entrypoint,
               message=info.message or "",
               start_time=info.start_time / 1000 if info.start_time else None,
               end_time=info.end_time / 1000 if info.end_time else None,
               exit_code=getattr(info, "driver_exit_code", None))


def new_job_id(name: str) -> str:
    """Readable and unique: 'rs-digits-20260101-120000-a1b2c3d4'. 32 random bits: with 16, two
    submissions in the same second collided about once in 50 tries of 50 (the test caught it)."""
    return f"rs-{name}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(4)}"


class Jobs:
    def __init__(self, address: str):
        # The SDK logs each package upload and each closed log stream at INFO: noise between
        # the job's output and ours.
        for name in ("ray.dashboard.modules.job.sdk", "ray.dashboard.modules.dashboard_sdk",
                     "ray._private.runtime_env.packaging"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self.address = address
        self.source = auth.token_source()
        auth.private_token(auth.token_file())
        if self.source and "RAY_AUTH_MODE" not in os.environ:
            # The SDK sends the token only in token mode; Ray turns it on by itself only for a
            # cluster it started. Never from the YAML: the environment or Ray's token file.
            compat.enable_token_auth()
        self.client = self._call(lambda: JobSubmissionClient(address))

    def _call(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except ray.exceptions.AuthenticationError:
            raise JobsError(auth.refused(self.address, self.source)) from None
        except ConnectionError as error:
            raise JobsError(f"no Ray Jobs API answers at {self.address} "
                            f"({str(error).splitlines()[0][:200]}); start the head with "
                            "cluster/start-head.sh (Jobs API on 127.0.0.1:8265), or reach a "
                            "remote one through an SSH tunnel: ssh -L 8265:127.0.0.1:8265 HEAD"
                            ) from None
        except RuntimeError as error:  # the SDK's HTTP errors: a 404 for an unknown job, ...
            raise JobsError(str(error).splitlines()[0]) from None

    # ---- submit ----
    def submit(self, spec_yaml: str, *, name: str, metadata: dict[str, str],
               options: tuple[str, ...] = (),
               note: Callable[[str], None] = lambda text: None) -> str:
        """Submit `launch` of the spec text as a job; returns its id. A head whose job agent
        is still starting is waited for (`note` says so)."""
        job_id = new_job_id(name)
        folder = Path(tempfile.mkdtemp(prefix="resnet-search-job-"))
        (folder / SPEC_FILE).write_text(spec_yaml)
        entrypoint = " ".join(["python", "-m", "search.cli", "launch", SPEC_FILE, *options])
        # Paths, not modules: the SDK uploads local directories to the cluster.
        modules = [str(Path(m.__file__).parent) for m in (resnet_core, search)]
        runtime_env = {"working_dir": str(folder), "py_modules": modules,
                       "env_vars": {"RAY_JOB_STOP_WAIT_TIME_S": str(STOP_WAIT_S)}}
        submitted: list[str] = []

        def look() -> Look:
            try:
                submitted.append(self._call(lambda: self.client.submit_job(
                    entrypoint=entrypoint, submission_id=job_id, runtime_env=runtime_env,
                    metadata={MARK: "1", **metadata})))
            except JobsError as error:
                if NO_AGENT not in str(error):
                    raise
                return Look(ready=False, detail="the head answers; its agent is still starting")
            return Look(ready=True)

        waited = wait_until(look, f"the job agent of the Ray head at {self.address}", note=note,
                            limit_s=AGENT_WAIT_S, poll_s=1.0, local=self.on_this_machine)
        if waited.verdict is not Verdict.READY:
            raise JobsError(agent_never_came(self.address, waited.elapsed_s))
        return submitted[0]

    @property
    def on_this_machine(self) -> bool:
        """Whether the head is at a loopback address: its waiting lines then show this
        machine's load (through an SSH tunnel that is the load here, not the head's)."""
        host = (urlsplit(self.address).hostname or "").lower()
        return host in ("localhost", "::1") or host.startswith("127.")

    # ---- look ----
    def get(self, job_id: str) -> Job:
        return _job(self._call(lambda: self.client.get_job_info(job_id)))

    def ours(self) -> list[Job]:
        """Every job of this product on the cluster, newest first."""
        infos = self._call(self.client.list_jobs)
        found = [_job(i) for i in infos if (i.metadata or {}).get(MARK)]
        return sorted(found, key=lambda j: j.start_time or 0, reverse=True)

    def of_experiment(self, name: str) -> list[Job]:
        return [j for j in self.ours() if j.experiment == name]

    def named(self, target: str, spec_name: Optional[str] = None) -> Job:
        """The job a target names (see `pick`): one of ours by id or experiment, else any
        job of the cluster by its id (Ray's 404 then says there is none)."""
        found = pick(target, self.ours(), spec_name)
        if found is not None:
            return found
        if spec_name is not None:
            raise JobsError(f"no job of experiment '{spec_name}' on {self.address}")
        try:
            return self.get(target)
        except JobsError as error:
            raise JobsError(f"no job and no experiment named '{target}' on {self.address} "
                            f"({error})") from None

    def logs(self, job_id: str) -> str:
        return self._call(lambda: self.client.get_job_logs(job_id))

    def follow(self, job_id: str, write: Callable[[str], None]) -> Job:
        """Write the job's output as it comes until the job ends; its final info."""
        async def tail() -> None:
            async for chunk in self.client.tail_job_logs(job_id):
                write(chunk)

        self._call(lambda: asyncio.run(tail()))
        job = self.get(job_id)
        while not job.ended:  # the log stream can close a moment before the status is final
            time.sleep(0.5)
            job = self.get(job_id)
        return job

    # ---- stop ----
    def stop(self, job_id: str) -> bool:
        """Ask the job to stop (SIGTERM to its driver); False when it had already ended."""
        return bool(self._call(lambda: self.client.stop_job(job_id)))

    def wait(self, job_id: str, timeout_s: Optional[float] = None,
             note: Callable[[str], None] = lambda text: None) -> Job:
        """The job once it has ended; while the head says it runs it is waited for (a stopped
        job saves first, then Ray kills it after STOP_WAIT_S), up to `timeout_s` if given."""
        seen: list[Job] = []

        def look() -> Look:
            seen[:] = [self.get(job_id)]
            return Look(ready=seen[0].ended, detail=f"the head says {seen[0].status}")

        wait_until(look, f"job {job_id} to save and end", note=note, limit_s=timeout_s,
                   first_s=10.0, local=self.on_this_machine)
        return seen[0]


def pick(target: str, jobs: list[Job], spec_name: Optional[str] = None) -> Optional[Job]:
    """The job a target names among `jobs` (newest first), or None (pure): for a spec file
    (`spec_name`, its experiment's name) the newest job of that experiment; otherwise a job
    id, else an experiment name (`submit --name`): its newest job."""
    if spec_name is not None:
        return next((j for j in jobs if j.experiment == spec_name), None)
    return next((j for j in jobs if j.job_id == target),
                next((j for j in jobs if j.experiment == target), None))


def agent_never_came(address: str, waited_s: float) -> str:
    """The head answered all along, but its job agent never did (pure)."""
    return (f"the Ray head at {address} answered for {duration(waited_s)} but its job agent "
            f"never came up (Ray: '{NO_AGENT}'); nothing was submitted: the agent's log is "
            "dashboard_agent.log in the head's Ray logs (/tmp/ray/session_latest/logs by "
            "default); restart the head if the agent died, then submit again")
