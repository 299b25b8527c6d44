"""`resnet-search schema`: the spec's JSON Schema. The committed copy the shipped spaces point at
is what the command prints (so it cannot drift from the model), every shipped space is valid
under it and still valid for `validate`, and it refuses what the model refuses in the parts it
fills in beyond Pydantic (the fields of `fixed` and `space`, the registries' choices)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from search.cli import app
from search.spec.model import SpecError, load_spec, parse_spec
from search.spec.yaml_io import load_yaml
from warm_records import search_spec

ROOT = Path(__file__).resolve().parents[3]
COMMITTED = ROOT / "spaces" / "spec.schema.json"
SHIPPED = sorted((ROOT / "spaces").glob("*.yaml"))
LINE = "# yaml-language-server: $schema=./spec.schema.json"


def printed() -> str:
    done = CliRunner().invoke(app, ["schema"])
    assert done.exit_code == 0, done.output
    return done.output


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(COMMITTED.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_committed_schema_is_what_the_command_prints(tmp_path):
    assert COMMITTED.read_text() == printed(), (
        "spaces/spec.schema.json is stale: run `resnet-search schema -o spaces/spec.schema.json`")
    done = CliRunner().invoke(app, ["schema", "-o", str(tmp_path / "s.json")])
    assert done.exit_code == 0 and (tmp_path / "s.json").read_text() == COMMITTED.read_text()


def test_the_shipped_spaces_point_at_it_and_are_valid(validator):
    assert len(SHIPPED) >= 5
    for path in SHIPPED:
        assert path.read_text().splitlines()[0] == LINE, path
        validator.validate(load_yaml(path))  # as the editor reads it: YAML 1.2 (1e-5 a float)
        load_spec(path)  # and the comment changes nothing for validate


BAD = {  # what the model refuses where the schema says more than Pydantic could
    "unknown field in fixed": {"fixed": {"optimiser": "sgd"}},
    "a choice outside a registry": {"fixed": {"block": "wide"}},
    "out of a knob's bounds": {"fixed": {"lr": 20.0}},
    "unknown field in space": {"space": {"learning_rate": {"float": [0.01, 0.1]}}},
    "unknown dataset": {"data": {"dataset": "mnist"}},
    "unknown section": {"sampler": {"type": "tpe"}, "schedular": {"type": "asha"}},
}


@pytest.mark.parametrize("case", BAD)
def test_it_refuses_what_the_model_refuses(case, validator):
    spec = search_spec("bad", **BAD[case])
    with pytest.raises(SpecError):
        parse_spec(spec)
    assert list(validator.iter_errors(spec)), f"the schema accepts {BAD[case]}"


def test_it_accepts_what_the_model_accepts(validator):
    spec = search_spec("good", fixed={"block": None, "milestones": [0.3, 0.6], "lr": 1},
                       space={"residual": {"choice": ["add", "scaled"]},
                              "residual_scale": {"float": [0.1, 1.0], "when": {
                                  "residual": "scaled"}}})
    parse_spec(spec)
    assert not list(validator.iter_errors(spec))
