"""`validate` through the real command (typer's runner, in process; no engine is imported): the
summary comes first and alone, the resolved spec only with --show-spec, after the summary."""

from __future__ import annotations

import yaml
from typer.testing import CliRunner

from search.cli import app
from search.spec.model import load_spec
from warm_records import search_spec


def validate(*args: str):
    return CliRunner().invoke(app, ["validate", *args])


def spec_file(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(search_spec("summary", storage_path=str(tmp_path / "runs"))))
    return path


def test_the_summary_alone_by_default(tmp_path):
    done = validate(str(spec_file(tmp_path)))
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    assert lines[0] == "space of 'summary'"  # the table's title opens the output
    assert "3 trials x up to 2 epochs = at most 6 trial-epochs; sampler tpe, scheduler " \
        "promotion_asha (promotion ASHA rungs at epochs [1])" in done.output
    assert lines[-1].startswith("valid (spec hash ")
    # no line of the resolved YAML: its top-level keys are not printed
    assert not [line for line in lines if line.startswith(("storage_path:", "tracking:",
                                                            "sampler:"))], done.output


def test_show_spec_adds_the_resolved_spec_after_the_summary(tmp_path):
    path = spec_file(tmp_path)
    done = validate(str(path), "--show-spec")
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    budget = next(i for i, line in enumerate(lines) if " trials x up to " in line)
    start = lines.index("name: summary")
    assert budget < start and lines[-1].startswith("valid (spec hash ")
    shown = yaml.safe_load("\n".join(lines[start:-1]))
    assert shown == load_spec(path).resolved()
