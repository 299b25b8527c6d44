"""The Jobs API side of `submit`: what a job's driver relies on in Ray, and exit codes."""

import re

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
