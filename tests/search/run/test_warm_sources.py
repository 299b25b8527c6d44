"""The experiments a warm start learns from, as `warm_start.from` names them: a spec file, an
experiment directory (relative to the spec's directory) or an s3:// URI of one (moto's real S3
server), read from the record; an entry naming none is a bad field (loc, value, rule, the flag
that gave it). Records are written as a finished search leaves them, without Ray."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from search.experiment.storage import as_path
from search.run.warm import earlier, knowledge_of
from search.spec.model import load_spec, parse_spec
from search.spec.problems import SpecError
from warm_records import record, search_spec


def new_spec(tmp_path: Path, sources: list[str], warm_from=None, **warm):
    path = tmp_path / "new" / "spec.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(search_spec("new", warm_start={"from": sources, **warm})))
    return load_spec(path, warm_from=warm_from)


def test_a_spec_file_a_directory_and_a_relative_path_name_the_same_experiment(tmp_path):
    directory = record(tmp_path / "old", search_spec("old"))
    spec = new_spec(tmp_path, [str(tmp_path / "old" / "spec.yaml"), str(directory),
                               "../old/runs/old"])
    found = earlier(spec)
    assert [len(e.results.trials) for e in found] == [3, 3, 3]
    assert found[2].source == "../old/runs/old"
    known = knowledge_of(spec)
    assert len(known.trials) == 9
    assert known.text.startswith("warm start: told 9 of 9 earlier trials (6 completed, "
                                 "3 stopped) from ")


def test_an_entry_naming_no_experiment_is_a_bad_field(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.yaml").write_text("name: [x]\n")
    spec = new_spec(tmp_path, [str(tmp_path / "nowhere"), str(tmp_path / "empty"),
                               str(tmp_path / "bad.yaml")], warm_from=["spec.yaml"])
    with pytest.raises(SpecError) as caught:
        earlier(spec)
    lines = [(p.loc, p.flag, p.message) for p in caught.value.problems]
    assert [loc for loc, _, _ in lines] == [f"warm_start.from[{i}]" for i in range(4)]
    assert lines[0][2] == (f"from is {str(tmp_path / 'nowhere')!r} but is neither a spec file "
                           "nor an experiment directory (nor an s3:// URI of one)")
    assert "holds no experiment" in lines[1][2]
    assert "is a spec file that does not validate" in lines[2][2]
    # the flag gave the spec file itself (relative to its own directory)
    assert lines[3][1] == "--warm-from"
    assert "is this experiment itself" in lines[3][2]


def test_an_s3_uri_names_an_experiment_in_an_object_store(tmp_path, s3):
    local = record(tmp_path / "old", search_spec("old"))
    remote = as_path(f"{s3.uri}/runs/old")
    for file in local.rglob("*"):
        if file.is_file():
            remote.joinpath(str(file.relative_to(local))).write_bytes(file.read_bytes())
    spec = new_spec(tmp_path, [f"{s3.uri}/runs/old", f"{s3.uri}/runs/none"])
    with pytest.raises(SpecError) as caught:
        earlier(spec)
    assert [p.loc for p in caught.value.problems] == ["warm_start.from[1]"]
    assert "holds no experiment" in caught.value.problems[0].message
    spec = new_spec(tmp_path, [f"{s3.uri}/runs/old"])
    assert len(knowledge_of(spec).trials) == 3


def test_a_queue_alone_reads_no_experiment(tmp_path):
    spec = parse_spec(search_spec("q", warm_start={"enqueue": [{"lr": 0.1,
                                                                "schedule": "step"}]}))
    known = knowledge_of(spec)
    assert known.trials == [] and known.enqueue == [{"lr": 0.1, "schedule": "step"}]
    assert known.text == "warm start: 1 configuration queued first"
    assert knowledge_of(parse_spec(search_spec("cold"))) is None


def test_narrow_bounds_the_space_by_the_best_recorded_trials(tmp_path):
    """From a spec file: the box of the 2 best recorded trials (t2 and t1, lr 0.3 and 0.05, both
    schedules), both told; narrowed to the single best, the space holds one configuration, too
    few for 3 trials: a bad field naming narrow."""
    record(tmp_path / "old", search_spec("old"))
    known = knowledge_of(new_spec(tmp_path, ["../old/spec.yaml"], narrow=2))
    assert [b.line(n) for n, b in known.narrowing.bounds.items()] == [
        "lr: float [0.01, 0.5] log -> float [0.05, 0.3] log (on 2)",
        "schedule: choice cosine, step -> choice cosine, step (on 2)"]
    assert sorted(t.user_attrs["trial_id"] for t in known.trials) == ["t1", "t2"]
    assert "1 lie outside the narrowed space" in known.text
    with pytest.raises(SpecError) as caught:
        knowledge_of(new_spec(tmp_path, ["../old/spec.yaml"], narrow=1))
    assert [(p.loc, p.message) for p in caught.value.problems] == [(
        "warm_start.narrow", "narrow is 1 but the narrowed space has only 1 distinct "
        "configuration for budget.trials 3; raise narrow, lower budget.trials to 1 or set "
        "budget.repeat: true")]
