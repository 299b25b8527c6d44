"""The Jobs API side of `submit`: what a job's driver relies on in Ray, and exit codes."""

import re
from pathlib import Path

import pytest
from ray._private.runtime_env import constants

from search.cli.run_commands import job_exit_code
from search.remote.cluster import IN_A_JOB
from search.remote.jobs import new_job_id


def test_the_job_marker_is_the_one_rays_supervisor_sets():
    # A job's driver must not pass py_modules again (Ray refuses the conflict): it knows it is
    # in a job by this variable, named here by value because its module is private.
    assert constants.RAY_JOB_CONFIG_JSON_ENV_VAR == IN_A_JOB


def test_job_ids_are_readable_and_unique():
    ids = {new_job_id("digits-demo") for _ in range(1000)}  # most within the same second
    assert len(ids) == 1000
    assert all(re.fullmatch(r"rs-digits-demo-\d{8}-\d{6}-[0-9a-f]{8}", i) for i in ids)


@pytest.mark.parametrize("status, driver_code, code", [
    ("SUCCEEDED", 0, 0),
    ("FAILED", 2, 2),  # a bad spec on the cluster: the driver's own code
    ("FAILED", 130, 130),  # stopped by `resnet-search stop` through the record
    ("STOPPED", 143, 143),  # stopped through the Jobs API: SIGTERM
    ("STOPPED", None, 143),  # killed before it could say
    ("FAILED", None, 1),
    ("SUCCEEDED", None, 0),
])
def test_a_jobs_end_as_an_exit_code(status, driver_code, code):
    assert job_exit_code(status, driver_code) == code


def test_a_job_agent_that_never_came_up_is_named_with_how_to_retry():
    from search.remote.jobs import NO_AGENT, agent_never_came

    said = agent_never_came("http://127.0.0.1:8265", 600.0)
    assert said.startswith("the Ray head at http://127.0.0.1:8265 answered for 10 min but its "
                           f"job agent never came up (Ray: '{NO_AGENT}'); nothing was submitted")
    assert said.endswith("then submit again") and "dashboard_agent.log" in said


@pytest.mark.parametrize("address, here", [
    ("http://127.0.0.1:8265", True), ("http://localhost:8265", True), ("http://[::1]:8265", True),
    ("http://10.0.0.5:8265", False), ("https://head.example.com", False),
])
def test_a_head_on_loopback_is_waited_for_with_this_machines_load(address, here):
    from search.remote.jobs import Jobs

    jobs = Jobs.__new__(Jobs)  # no client: only the address matters here
    jobs.address = address
    assert jobs.on_this_machine is here


def _job(job_id, experiment, start):
    from search.remote.jobs import Job

    return Job(job_id=job_id, status="RUNNING", experiment=experiment, name=experiment,
               experiment_dir="", entrypoint="", message="", start_time=start, end_time=None,
               exit_code=None)


# newest first, as Jobs.ours() lists them; "demo" has two jobs, and the experiment
# "rs-demo-1x" has a name that starts like one of them
JOBS = [_job("rs-demo-2", "demo", 3.0), _job("rs-other-1", "other", 2.0),
        _job("rs-demo-1", "demo", 1.0), _job("rs-odd-1", "rs-demo-1x", 0.5)]


@pytest.mark.parametrize("target, spec_name, picked", [
    ("rs-demo-1", None, "rs-demo-1"),  # a job id, even an older one of its experiment
    ("demo", None, "rs-demo-2"),  # an experiment name (submit --name): its newest job
    ("other", None, "rs-other-1"),
    ("rs-demo-1x", None, "rs-odd-1"),  # a name is never taken for an id it merely starts
    ("spaces/demo.yaml", "demo", "rs-demo-2"),  # a spec file: its experiment's newest job
    ("spaces/demo.yaml", "nothing", None),  # a spec whose experiment never ran as a job
    ("unknown", None, None),  # neither: the caller asks Ray for the id (a foreign job)
])
def test_a_target_names_a_job_by_id_experiment_or_spec(target, spec_name, picked):
    from search.remote.jobs import pick

    found = pick(target, JOBS, spec_name)
    assert (found.job_id if found else None) == picked


def test_a_jobs_metadata_names_its_experiment_for_the_dashboards_name_column():
    from ray.dashboard.modules.job.common import JOB_NAME_METADATA_KEY

    from search.remote.submission import job_metadata
    from search.spec.model import load_spec

    spec = load_spec(Path(__file__).parents[3] / "spaces" / "digits.yaml")
    meta = job_metadata(spec, "/runs/x")
    # The dashboard's Jobs table reads metadata["job_name"] for its Name column (Ray 2.59's
    # client: "The job name from the job_name key in the job's metadata").
    assert JOB_NAME_METADATA_KEY == "job_name"
    assert meta["job_name"] == meta["experiment"] == spec.name
    assert meta["experiment_dir"] == "/runs/x"
    assert all(isinstance(v, str) for v in meta.values())  # Ray takes strings only
