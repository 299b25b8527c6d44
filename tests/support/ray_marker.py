"""Which tests start Ray, for the `ray` marker (`pytest -m "not ray"` is the inner loop).

A test is marked by the fixtures it uses (tests/conftest.py applies `starts_ray` to every
collected test): a test that asks for one of these, directly or through another fixture, starts
Ray or reads what a Ray run left. A test that starts Ray in its own body (a `launch` that gets
as far as training, a `ray start`) carries `@pytest.mark.ray` by hand; a launch refused before
Ray starts (preflight, a bad config, an unusable store) does not."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Iterable

# fixture name -> the file that defines it (a fixture of a conftest reaches the tests under its
# folder, one of a test module only that module's; tests/test_markers.py checks each is there).
RAY_FIXTURES = {
    "finished": "tests/e2e/conftest.py",  # a whole search, once per session
    "reaper": "tests/e2e/conftest.py",  # kills the Ray processes of a test's own launches
    "ray_experiment": "tests/search/experiment/conftest.py",  # a Ray Tune run, once per session
    "local_ray": "tests/search/remote/test_node_checks.py",
    "staging_ray": "tests/search/run/test_trialfiles.py",
    "head": "tests/e2e/test_cluster.py",  # a two-node cluster
    "cluster": "tests/e2e/test_jobs.py",  # a head that takes jobs
    "loop": "tests/e2e/test_recipes.py",  # the cluster scripts' two nodes on loopback
    "interrupted": "tests/e2e/test_security.py",  # a search interrupted by Ctrl+C
    "dry_run": "tests/bench/test_gpu_run.py",  # the GPU run's dry run: two searches
}


def in_reach(test_file: str, fixture_file: str) -> bool:
    """Whether a fixture defined in `fixture_file` is the one a test in `test_file` gets (paths
    relative to the repository)."""
    defined = PurePosixPath(fixture_file)
    if defined.name == "conftest.py":
        return defined.parent in PurePosixPath(test_file).parents
    return test_file == fixture_file


def starts_ray(test_file: str, fixturenames: Iterable[str]) -> bool:
    """Whether a test in `test_file` that uses `fixturenames` (pytest's closure: the fixtures of
    its fixtures too) starts Ray through one of them."""
    return any(name in RAY_FIXTURES and in_reach(test_file, RAY_FIXTURES[name])
               for name in fixturenames)
