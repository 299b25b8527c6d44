"""The `warm_start` section: its shape, queued configurations checked against the space (field,
value, rule), `--warm-from` added to the file's sources and named in a problem, and a cold spec
resolving (and hashing) as it did before the section existed."""

from __future__ import annotations

import pytest

from search.spec.model import load_spec, parse_spec
from search.spec.problems import SpecError

BASE = {"name": "w", "data": {"dataset": "digits"}, "budget": {"trials": 4, "max_epochs": 2},
        "space": {"lr": {"float": [0.001, 0.1], "log": True},
                  "optimizer": {"choice": ["sgd", "adamw"]},
                  "momentum": {"float": [0.5, 0.99], "when": {"optimizer": "sgd"}}}}


def problems(warm_start) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse_spec({**BASE, "warm_start": warm_start})
    return [f"{p.loc}: {p.message}" for p in caught.value.problems]


@pytest.mark.parametrize("warm_start, expected", [
    ({"from": [""]}, "warm_start.from[0]: an experiment must be named (a spec file, an "
                     "experiment directory or an s3:// URI), not an empty string"),
    ({"from": "runs/a"}, "warm_start.from: "),
    ({"top": 0}, "warm_start.top: top is 0 but must be >= 1"),
    ({"from": ["runs/a"], "narrow": 0}, "warm_start.narrow: narrow is 0 but must be >= 1"),
    ({"from": ["runs/a"], "narrow": True}, "warm_start.narrow: "),
    ({"enqueue": [{"lr": 0.01, "optimizer": "adamw"}], "narrow": 2},
     "warm_start.narrow: narrow is 2 but from names no earlier experiment whose best trials "
     "could bound the space; name one or drop narrow"),
    ({"enqueue": [{"lr": 0.01, "optimizer": "adamw"}], "queue_best": 1},
     "warm_start.queue_best: queue_best is 1 but from names no earlier experiment whose best "
     "trials could be queued; name one or drop queue_best"),
    ({"from": ["runs/a"], "queue_best": 0},
     "warm_start.queue_best: queue_best is 0 but must be >= 1"),
    ({"form": ["a"]}, "warm_start.form: "),
    ({"enqueue": [{"lr": 0.5, "optimizer": "adamw"}]},
     "warm_start.enqueue[0].lr: lr is 0.5 but must be within [0.001, 0.1]"),
    ({"enqueue": [{"lr": 0.01, "optimizer": "adam"}]},
     "warm_start.enqueue[0].optimizer: optimizer is 'adam' but must be one of ['sgd', 'adamw']"),
    ({"enqueue": [{"lr": 0.01, "optimizer": "adamw", "momentum": 0.9}]},
     "warm_start.enqueue[0].momentum: momentum does not exist here: its condition when: "
     "{'optimizer': ['sgd']} does not hold"),
    ({"enqueue": [{"lr": 0.01, "optimizer": "sgd"}]},
     "warm_start.enqueue[0].momentum: momentum is missing: the space samples it here, so a "
     "queued configuration must give it"),
    ({"enqueue": [{"lr": 0.01, "optimizer": "sgd", "momentum": 0.9, "lrr": 1}]},
     "warm_start.enqueue[0].lrr: lrr is not a parameter of the space; did you mean 'lr'?"),
])
def test_a_bad_warm_start_names_field_value_and_rule(warm_start, expected):
    assert any(line.startswith(expected) for line in problems(warm_start)), problems(warm_start)


def test_a_good_warm_start_resolves_with_its_yaml_key():
    spec = parse_spec({**BASE, "warm_start": {"from": ["runs/a"], "top": 3, "enqueue": [
        {"lr": 0.01, "optimizer": "sgd", "momentum": 0.9}]}})
    assert spec.warm_start.sources == ["runs/a"]
    assert spec.resolved()["warm_start"] == {"from": ["runs/a"], "top": 3, "enqueue": [
        {"lr": 0.01, "optimizer": "sgd", "momentum": 0.9}]}
    assert spec.with_overrides(trials=5).warm_start == spec.warm_start


def test_a_cold_spec_has_no_warm_start_key_and_keeps_its_hash():
    spec = parse_spec(BASE)
    assert "warm_start" not in spec.resolved()
    assert spec.spec_hash() == parse_spec({**BASE, "warm_start": None}).spec_hash()


def test_warm_from_adds_to_the_files_sources_and_is_named_in_a_problem(tmp_path):
    import yaml

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**BASE, "warm_start": {"from": ["runs/a"]}}))
    spec = load_spec(path, warm_from=["runs/b"])
    assert spec.warm_start.sources == ["runs/a", "runs/b"]
    with pytest.raises(SpecError) as caught:
        load_spec(path, warm_from=[""])
    assert [(p.loc, p.flag) for p in caught.value.problems] == [("warm_start.from[1]",
                                                                 "--warm-from")]


@pytest.mark.parametrize("field, value", [("narrow", 2), ("queue_best", 1)])
def test_a_later_field_is_part_of_the_spec_and_only_when_given(field, value):
    """A warm start that narrows (or queues its sources' best) hashes apart from one that does
    not (a resume with the field added is a changed field); one without it hashes as before
    the field existed."""
    plain = parse_spec({**BASE, "warm_start": {"from": ["runs/a"]}})
    given = parse_spec({**BASE, "warm_start": {"from": ["runs/a"], field: value}})
    assert plain.resolved()["warm_start"] == {"from": ["runs/a"], "top": None, "enqueue": []}
    assert given.resolved()["warm_start"] == {"from": ["runs/a"], "top": None, "enqueue": [],
                                              field: value}
    assert plain.spec_hash() != given.spec_hash()
    assert getattr(given.with_overrides(trials=5).warm_start, field) == value
