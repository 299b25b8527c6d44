"""`validate --warm-from` through the real command (no Ray): a warm start from a recorded
experiment prints the line launch would print, and one that names no experiment is exit 2 with
one line naming the flag, the field, the value and the rule."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from warm_records import record, search_spec


def validate(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "search.cli", "validate", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HOME": str(cwd)})


def test_validate_says_what_a_warm_start_would_tell(tmp_path):
    earlier = record(tmp_path / "old", search_spec("old"))
    path = tmp_path / "new.yaml"
    path.write_text(yaml.safe_dump(search_spec("new", warm_start={"top": 2})))
    done = validate(str(path), "--warm-from", "old/runs/old", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (f"warm start: told 2 of 3 earlier trials (2 completed, 0 stopped) from {earlier}; "
            "not told: 1 were beyond the top 2") in done.stdout


def test_validate_shows_the_narrowed_space(tmp_path):
    """One line per parameter: declared -> narrowed, and how many best trials it rests on; a
    narrowing that leaves too few configurations for the budget is exit 2 naming the field."""
    record(tmp_path / "old", search_spec("old"))
    path = tmp_path / "new.yaml"
    path.write_text(yaml.safe_dump(search_spec("new", warm_start={"narrow": 2})))
    done = validate(str(path), "--warm-from", "old/runs/old", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    head = lines.index("warm start: space narrowed to the bounding box of the 2 best trials of "
                       "each earlier experiment (2 trials):")
    assert lines[head + 1:head + 3] == [
        "  lr: float [0.01, 0.5] log -> float [0.05, 0.3] log (on 2)",
        "  schedule: choice cosine, step -> choice cosine, step (on 2)"]
    assert "space narrowed to the 2 best of each: lr" in lines[head - 1]
    path.write_text(yaml.safe_dump(search_spec("new", warm_start={"narrow": 1})))
    done = validate(str(path), "--warm-from", "old/runs/old", cwd=tmp_path)
    assert done.returncode == 2
    assert "warm_start.narrow: narrow is 1 but the narrowed space has only 1 distinct " \
           "configuration" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_warm_start_from_nothing_is_a_bad_config(tmp_path):
    path = tmp_path / "new.yaml"
    path.write_text(yaml.safe_dump(search_spec("new")))
    # a flag's path is relative to the current directory, not to the spec's
    (tmp_path / "elsewhere").mkdir()
    done = validate(str(path), "--warm-from", "runs/none", cwd=tmp_path / "elsewhere")
    assert done.returncode == 2
    missing = tmp_path / "elsewhere" / "runs" / "none"
    assert (f"{path} (--warm-from): warm_start.from[0]: from is '{missing}' but is neither a "
            "spec file nor an experiment directory (nor an s3:// URI of one)") in done.stderr
    assert "Traceback" not in done.stderr


def test_status_and_validate_say_where_a_warm_started_experiment_learnt_from(tmp_path):
    import json

    directory = record(tmp_path / "new", search_spec("new"))
    state = json.loads((directory / "resnet_search.json").read_text())
    line = "warm start: told 3 of 3 earlier trials (2 completed, 1 stopped) from runs/old"
    state["warm_start"] = {"from": ["runs/old"], "told": 3, "of": 3, "text": line}
    (directory / "resnet_search.json").write_text(json.dumps(state))
    shown = subprocess.run([sys.executable, "-m", "search.cli", "status", str(directory)],
                           cwd=tmp_path, capture_output=True, text=True, timeout=300,
                           env={**os.environ, "HOME": str(tmp_path)})
    assert shown.returncode == 0, shown.stderr
    assert any(row.split() == ["warm", "start", *line.split()] for row in
               shown.stdout.splitlines()), shown.stdout
    checked = validate(str(tmp_path / "new" / "spec.yaml"), cwd=tmp_path)
    assert f"it was warm-started: {line}" in checked.stdout, checked.stdout
