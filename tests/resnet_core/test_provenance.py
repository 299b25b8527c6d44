"""The one place that says where a result came from: the code's version (and when it is dirty),
the packages' versions, the machine."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from resnet_core import provenance


@pytest.mark.parametrize("porcelain, dirty", [
    ("", False),  # clean
    ("\n", False),
    ("?? notes.txt\n", False),  # untracked: no tracked file reads it, or that file is dirty
    ("?? spaces/mine.yaml\n?? bench/results/x.json\n", False),
    ("!! runs/\n", False),  # ignored
    (" M search/run/driver.py\n", True),  # changed, not staged
    ("M  search/run/driver.py\n", True),  # staged
    ("MM resnet_core/config.py\n", True),
    ("A  resnet_core/new.py\n", True),  # added: tracked now
    (" D README.md\n", True),  # deleted
    ("R  a.py -> b.py\n", True),  # renamed
    ("UU search/cli/app.py\n", True),  # in conflict
    ("?? scratch.py\n M resnet_core/config.py\n", True),  # one tracked change is enough
])
def test_a_checkout_is_dirty_when_a_tracked_file_differs_and_only_then(porcelain, dirty):
    assert provenance.dirty(porcelain) is dirty


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t",
                           *args], capture_output=True, text=True, check=True).stdout.strip()


def test_the_code_version_is_the_commit_marked_dirty_by_that_rule(tmp_path):
    git(tmp_path, "init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    git(tmp_path, "add", "code.py")
    git(tmp_path, "commit", "-q", "-m", "one")
    sha = git(tmp_path, "rev-parse", "HEAD")
    assert provenance.code_version(tmp_path) == sha
    (tmp_path / "spec.yaml").write_text("name: mine\n")  # untracked
    assert provenance.code_version(tmp_path) == sha
    (tmp_path / "code.py").write_text("x = 2\n")
    assert provenance.code_version(tmp_path) == sha + "+dirty"
    # Code installed inside someone else's checkout does not take that checkout's commit.
    (tmp_path / "site-packages").mkdir()
    assert provenance.code_version(tmp_path / "site-packages") is None
    assert provenance.code_version(tmp_path / "missing") is None


def test_a_loaded_package_names_its_own_build_and_others_their_installed_version():
    import torch

    assert provenance.version("torch") == str(torch.__version__)  # `+cu130` or `+cpu` kept
    assert provenance.version("no-such-package-here") is None
    found = provenance.versions(("numpy", "no-such-package-here"))
    assert found["numpy"] and found["no-such-package-here"] is None
    assert set(provenance.machine()) == {"python", "platform", "machine", "cpu", "cpu_count"}


def test_every_record_of_a_result_takes_the_same_facts():
    """The checkpoint's metadata, the parent run's tags and a benchmark's JSON agree."""
    import torch

    from bench.common import provenance as bench_provenance
    from resnet_core.train.runtime import provenance as checkpoint_provenance
    from search.run import provenance as run_provenance

    version = provenance.code_version()
    bench = bench_provenance("cpu")
    assert bench["git_commit"] == version
    assert run_provenance.code_version() == (version or "unknown")
    checkpoint = checkpoint_provenance(torch.device("cpu"))
    assert checkpoint["torch"] == bench["torch"] == run_provenance.versions()["torch"]
    assert checkpoint["python"] == bench["python"] == run_provenance.hardware()["python"]
