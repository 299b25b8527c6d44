"""`resnet-search init`: a commented spec to start from, for every dataset of the registry, that
`validate` accepts as written and with every commented default uncommented; it never replaces a
file without --force and names a dataset the registry lacks in one line (exit 2)."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest
from typer.testing import CliRunner

from resnet_core.config import DataConfig, knob_of
from search.cli import app
from search.spec.json_schema import schema_text, spec_schema
from search.spec.model import load_spec
from search.spec.schema import fields_of
from search.spec.yaml_io import load_yaml

DATASETS = knob_of(fields_of(DataConfig)["dataset"]).allowed()
# a commented field: "  # key: value    # what it means"
COMMENTED = re.compile(r"^(\s*)# (\w+: .*?)\s+# .*$")


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def test_every_dataset_of_the_registry_is_offered():
    assert {"digits", "cifar10", "cifar100", "imagefolder", "synthetic"} <= set(DATASETS)
    helped = CliRunner().invoke(app, ["init", "--help"], terminal_width=200)
    assert all(name in helped.output for name in DATASETS), helped.output  # --help names them


@pytest.mark.parametrize("dataset", DATASETS)
def test_validate_accepts_what_init_writes(dataset, tmp_path):
    path = tmp_path / "specs" / f"{dataset}.yaml"
    done = invoke("init", "--dataset", dataset, "-o", str(path))
    assert done.exit_code == 0, done.output
    checked = invoke("validate", str(path))
    assert checked.exit_code == 0, checked.output
    assert checked.output.splitlines()[-1].startswith("valid (spec hash ")
    spec = load_spec(path)
    assert (spec.name, spec.data.dataset) == (f"{dataset}-search", dataset)
    assert spec.space, "a template that searches nothing"
    jsonschema.validate(load_yaml(path), spec_schema())
    text = path.read_text()
    # its first line points editors at the schema, written beside it
    assert text.splitlines()[0] == "# yaml-language-server: $schema=./spec.schema.json"
    assert text.splitlines()[1].startswith(f"# A resnet-search spec to start from: {dataset}")
    assert f"resnet-search validate {path}" in text
    beside = path.parent / "spec.schema.json"
    assert beside.read_text() == schema_text()
    jsonschema.validate(load_yaml(path), json.loads(beside.read_text()))


@pytest.mark.parametrize("dataset", DATASETS)
def test_its_commented_defaults_are_valid_values(dataset, tmp_path):
    path = tmp_path / "spec.yaml"
    assert invoke("init", "--dataset", dataset, "-o", str(path)).exit_code == 0
    lines = path.read_text().splitlines()
    opened = [COMMENTED.sub(r"\1\2", line) for line in lines
              if not line.startswith("# warm_start")]  # an example naming no experiment
    assert sum(a != b for a, b in zip(lines, opened)) >= 20  # the comments show many fields
    path.write_text("\n".join(opened) + "\n")
    load_spec(path)  # the defaults written are the model's own


def test_it_replaces_a_file_only_with_force(tmp_path):
    path = tmp_path / "search.yaml"
    path.write_text("mine\n")
    refused = invoke("init", "-o", str(path))
    assert refused.exit_code == 1 and "already exists" in refused.output
    assert path.read_text() == "mine\n"
    forced = invoke("init", "-o", str(path), "--force", "--name", "my-first")
    assert forced.exit_code == 0, forced.output
    assert load_spec(path).name == "my-first" and load_spec(path).data.dataset == "digits"


def test_the_schema_beside_it_is_refreshed_when_ours_and_left_alone_when_not(tmp_path):
    schema = tmp_path / "spec.schema.json"
    schema.write_text(json.dumps({"title": "resnet-search spec", "old": True}))  # an older one
    assert invoke("init", "-o", str(tmp_path / "a.yaml")).exit_code == 0
    assert schema.read_text() == schema_text()

    other = tmp_path / "other"
    other.mkdir()
    foreign = '{"title": "another tool"}'
    (other / "spec.schema.json").write_text(foreign)
    done = invoke("init", "-o", str(other / "b.yaml"))
    assert done.exit_code == 0, done.output
    assert (other / "spec.schema.json").read_text() == foreign
    assert "not a resnet-search schema" in done.output
    text = (other / "b.yaml").read_text()
    assert "$schema" not in text.splitlines()[0] and text.startswith("# A resnet-search spec")
    assert invoke("validate", str(other / "b.yaml")).exit_code == 0


def test_a_dataset_the_registry_lacks_is_one_line_exit_2(tmp_path):
    done = invoke("init", "--dataset", "mnist", "-o", str(tmp_path / "s.yaml"))
    assert done.exit_code == 2
    assert ("init (--dataset): data.dataset: dataset is 'mnist' but must be one of "
            f"{DATASETS}") in done.output
    assert "Traceback" not in done.output and not (tmp_path / "s.yaml").exists()
    assert not (tmp_path / "spec.schema.json").exists()
