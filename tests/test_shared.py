"""tests/support/shared.py: a thing the xdist workers of one run share is built once, read by
every worker, and the processes it started are gone when the run ends, not before."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CONFTEST = '''
import os, subprocess, pytest, shared

def build(folder, config):
    with open(os.environ["BUILDS"], "a") as log:
        log.write(f"{os.getpid()}\\n")
    shared.keep_until_the_end(config, folder)
    proc = subprocess.Popen(["sleep", "600"], env={**os.environ, "HOME": str(folder)},
                            start_new_session=True)
    return {"pid": proc.pid, "folder": str(folder)}

@pytest.fixture(scope="session")
def thing(request):
    return shared.once(request.config, "thing", lambda folder: build(folder, request.config))
'''

TEST = '''
import os

def test_{n}(thing):
    os.kill(thing["pid"], 0)  # alive while any worker may read it
    with open(os.environ["SEEN"], "a") as log:
        log.write(f"{{os.getpid()}} {{thing['pid']}}\\n")
'''


def test_a_shared_thing_is_built_once_for_all_workers_and_swept_at_the_end(tmp_path):
    for n in range(4):
        (tmp_path / f"test_{n}.py").write_text(TEST.format(n=n))
    (tmp_path / "conftest.py").write_text(CONFTEST)
    builds, seen = tmp_path / "builds.txt", tmp_path / "seen.txt"
    env = {**os.environ, "BUILDS": str(builds), "SEEN": str(seen),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "support"),
                                          str(ROOT / "tests" / "e2e"), str(ROOT)])}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "2", "--dist", "load",
                          "-p", "no:cacheprovider", "-p", "shared", str(tmp_path)],
                         cwd=tmp_path, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert len(builds.read_text().split()) == 1  # one build for the whole run
    lines = [line.split() for line in seen.read_text().splitlines()]
    assert len(lines) == 4 and len({pid for _, pid in lines}) == 1  # every test read that one
    assert len({worker for worker, _ in lines}) == 2  # by both workers
    pid = int(lines[0][1])
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text(
        ).split()[2], "the shared process outlived the run"
