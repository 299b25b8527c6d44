"""What the xdist workers of one test run share: something built once for all of them.

The run's controller makes one folder and hands it to every worker (`workerinput`, xdist's way
of passing data to workers); `once(config, name, build)` builds a thing in the first worker that
asks for it, under a file lock, and every other worker reads what it wrote. A build that starts
processes names their HOME (`keep_until_the_end`): they live until the whole run ends, when the
controller sweeps them, since the worker that built them may finish long before another worker
is done reading them. Without xdist the one process is its own controller.

The module is a pytest plugin: its hooks are named as pytest's, so a conftest that imports them
(tests/conftest.py) or `-p shared` wires it in.

Used for the finished search of tests/e2e/finished.py: built once per run instead of once per
worker (a search and an MLflow server: a minute and more on the CI machine, per worker).
"""

from __future__ import annotations

import fcntl
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import pytest

HOMES = "homes.txt"  # HOMEs whose processes the controller sweeps at the end of the run


def pytest_configure(config: Any) -> None:
    if hasattr(config, "workerinput"):  # an xdist worker: the controller's folder
        config.shared_dir = Path(config.workerinput["shared_dir"])
    else:
        config.shared_dir = Path(tempfile.mkdtemp(prefix="rs-tests-shared-"))


@pytest.hookimpl(optionalhook=True)  # an xdist hook: absent without xdist
def pytest_configure_node(node: Any) -> None:
    node.workerinput["shared_dir"] = str(node.config.shared_dir)


def pytest_unconfigure(config: Any) -> None:
    """In the controller only (the run is over): sweep the processes of every HOME a build
    named, then the folder."""
    if hasattr(config, "workerinput") or not hasattr(config, "shared_dir"):
        return
    homes = config.shared_dir / HOMES
    if homes.is_file():
        from processes import kill_ours

        for home in homes.read_text().splitlines():
            kill_ours(Path(home))
    shutil.rmtree(config.shared_dir, ignore_errors=True)


def keep_until_the_end(config: Any, home: Path) -> None:
    """The processes whose HOME is `home` are swept when the whole run ends."""
    with open(config.shared_dir / HOMES, "a") as handle:
        handle.write(f"{home}\n")


def once(config: Any, name: str, build: Callable[[Path], dict]) -> dict:
    """What `build(folder)` returned (JSON-able), built by the first worker that asks, in a
    folder of its own under the shared folder. A build that failed is not tried again by the
    next worker: each gets the same failure."""
    root = config.shared_dir
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the others wait while the first one builds
        done = root / f"{name}.json"
        if not done.is_file():
            folder = root / name
            folder.mkdir()
            try:
                built = {"value": build(folder)}
            except BaseException as error:
                built = {"error": f"{type(error).__name__}: {error}"}
                done.write_text(json.dumps(built))
                raise
            done.write_text(json.dumps(built))
        built = json.loads(done.read_text())
    if "error" in built:
        raise RuntimeError(f"the shared {name!r}, built by another worker, failed: "
                           f"{built['error']}")
    return built["value"]
