"""The learning-curve table file: a header line, one JSON line per trial, appended as trials end;
a rerun of the same recording resumes it, a different one is refused, and a line cut short by
a killed writer is ignored (and removed on resume) while any other damage is an error."""

from __future__ import annotations

import copy
import json
import math

import pytest

from search.replay import table
from search.replay.table import Row, TableError
from search.spec.model import parse_spec

BASE = {
    "name": "curves",
    "data": {"dataset": "synthetic"},
    "objective": {"metric": "val_acc", "mode": "max"},
    "budget": {"trials": 6, "max_epochs": 3},
    "sampler": {"type": "tpe", "seed": 0},
    "scheduler": {"type": "asha", "grace_period": 1},
    "fixed": {"batch_size": 64},
    "space": {"lr": {"float": [1e-3, 1e-1], "log": True},
              "residual": {"choice": ["add", "scaled"]}},
}
PROVENANCE = {"git_commit": "abc", "device": "cpu"}


def resolved(**changes) -> dict:
    """BASE with top-level sections replaced (or, for budget, merged), parsed and resolved."""
    raw = copy.deepcopy(BASE)
    for key, value in changes.items():
        raw[key] = {**raw[key], **value} if key == "budget" else value
    return parse_spec(raw).resolved()


def row(index: int, epochs: int = 3, outcome: str = "completed") -> Row:
    return Row(index=index, params={"lr": 10 ** (-3 + index / 4), "residual": "add"},
               epochs=[{"epoch": e, "val_acc": 0.1 * e + 0.01 * index, "val_loss": 2.0 / e,
                        "epoch_seconds": 1.5} for e in range(1, epochs + 1)],
               outcome=outcome, config={"lr": 10 ** (-3 + index / 4), "depth": 20})


def header(seed: int = 0, **changes) -> dict:
    return table.header(resolved(**changes), seed, PROVENANCE)


def lines(path) -> list[str]:
    return path.read_text().splitlines()


# ---- writing and reading back ----

def test_written_table_reads_back_equal(tmp_path):
    path = tmp_path / "deep" / "t.jsonl"  # the writer makes missing folders
    head = header()
    writer = table.Writer(path, head)
    written = [row(2), row(0), row(1, epochs=0, outcome="invalid"), row(3, outcome="diverged")]
    for r in written:
        writer.add(r)

    found = table.read(path)
    assert found.header == head
    assert found.rows == sorted(written, key=lambda r: r.index)  # by index, not arrival
    assert writer.done == {0, 1, 2, 3}
    assert len(lines(path)) == 1 + len(written)
    assert (found.spec, found.max_epochs, found.metric, found.mode) == (
        head["spec"], 3, "val_acc", "max")


def test_each_row_is_on_disk_as_soon_as_it_is_added(tmp_path):
    path = tmp_path / "t.jsonl"
    writer = table.Writer(path, header())
    assert [r.index for r in table.read(path).rows] == []
    writer.add(row(5))
    assert [r.index for r in table.read(path).rows] == [5]  # before the writer is done


def test_header_records_spec_seed_hash_and_provenance():
    spec = resolved()
    head = table.header(spec, 7, PROVENANCE)
    assert head["kind"] == table.KIND and head["version"] == table.VERSION
    assert (head["spec"], head["sampler_seed"], head["provenance"]) == (spec, 7, PROVENANCE)
    assert head["curve_hash"] == table.curve_hash(spec)


def test_row_curve_and_seconds():
    r = Row(index=0, params={}, outcome="completed",
            epochs=[{"epoch": 1, "val_acc": 0.5, "epoch_seconds": 2.0},
                    {"epoch": 2, "val_acc": 0.75}])  # a missing time counts as 0
    assert r.curve("val_acc") == [0.5, 0.75]
    assert r.seconds() == [2.0, 0.0]


@pytest.mark.parametrize("metrics, kept", [
    ({"epoch": 1, "val_acc": 0.5, "lr": 0.1, "grad_norm": 3.0, "trial_id": "x"},
     {"epoch": 1, "val_acc": 0.5, "lr": 0.1}),
    ({key: i for i, key in enumerate(table.EPOCH_KEYS)},
     {key: i for i, key in enumerate(table.EPOCH_KEYS)}),
    ({"done": True}, {}),
])
def test_epoch_row_keeps_only_epoch_keys(metrics, kept):
    assert table.epoch_row(metrics) == kept


# ---- resuming, or refusing to mix recordings ----

def test_rerun_with_same_spec_and_seed_resumes(tmp_path):
    path = tmp_path / "t.jsonl"
    first = table.Writer(path, header())
    for index in (0, 1, 3):
        first.add(row(index))

    again = table.Writer(path, header())
    assert again.done == {0, 1, 3}
    assert table.missing(6, again.done) == [2, 4, 5]
    again.add(row(2))
    assert [r.index for r in table.read(path).rows] == [0, 1, 2, 3]
    assert sum(l.startswith('{"kind"') for l in lines(path)) == 1  # one header, not two


@pytest.mark.parametrize("changes", [
    {"name": "renamed"},
    {"sampler": {"type": "random", "seed": 5}},
    {"scheduler": {"type": "fifo"}},
    {"budget": {"trials": 500}},
], ids=["name", "sampler", "scheduler", "trials"])
def test_search_settings_keep_the_curve_hash_and_resume(tmp_path, changes):
    assert table.curve_hash(resolved(**changes)) == table.curve_hash(resolved())
    path = tmp_path / "t.jsonl"
    table.Writer(path, header()).add(row(0))
    assert table.Writer(path, header(**changes)).done == {0}


CURVE_CHANGES = {
    "space": {"space": {"lr": {"float": [1e-4, 1e-1], "log": True},
                        "residual": {"choice": ["add", "scaled"]}}},
    "fixed": {"fixed": {"batch_size": 32}},
    "data": {"data": {"dataset": "synthetic", "val_fraction": 0.3}},
    "max_epochs": {"budget": {"max_epochs": 4}},
    "objective": {"objective": {"metric": "val_loss", "mode": "min"}},
}


@pytest.mark.parametrize("changes", CURVE_CHANGES.values(), ids=CURVE_CHANGES.keys())
def test_a_different_curve_is_refused_naming_the_key(tmp_path, changes):
    assert table.curve_hash(resolved(**changes)) != table.curve_hash(resolved())
    path = tmp_path / "t.jsonl"
    table.Writer(path, header()).add(row(0))
    before = path.read_bytes()
    with pytest.raises(TableError, match="curve_hash") as error:
        table.Writer(path, header(**changes))
    assert str(path) in str(error.value)
    assert path.read_bytes() == before  # a refused rerun leaves the file alone


def test_a_different_seed_is_refused_naming_the_key(tmp_path):
    path = tmp_path / "t.jsonl"
    table.Writer(path, header(seed=0)).add(row(0))
    before = path.read_bytes()
    with pytest.raises(TableError, match=r"sampler_seed 0, not 1"):
        table.Writer(path, header(seed=1))
    assert path.read_bytes() == before


def test_curve_hash_ignores_key_order():
    spec = resolved()
    shuffled = {key: spec[key] for key in reversed(list(spec))}
    shuffled["space"] = {k: spec["space"][k] for k in reversed(list(spec["space"]))}
    assert table.curve_hash(shuffled) == table.curve_hash(spec)


def test_an_empty_file_is_started_afresh(tmp_path):
    path = tmp_path / "t.jsonl"
    path.touch()  # e.g. created by the shell before the recording began
    table.Writer(path, header()).add(row(0))
    assert [r.index for r in table.read(path).rows] == [0]


# ---- a killed writer, and real damage ----

def cut(path, index: int) -> str:
    """Append the first half of row `index`'s line, as a writer killed mid-line leaves it."""
    text = json.dumps(row(index).as_json(), separators=(",", ":"))
    with path.open("a") as out:
        out.write(text[:len(text) // 2])
    return text


def test_last_line_cut_short_is_ignored_by_read(tmp_path):
    path = tmp_path / "t.jsonl"
    writer = table.Writer(path, header())
    writer.add(row(0))
    writer.add(row(1))
    cut(path, 2)
    assert [r.index for r in table.read(path).rows] == [0, 1]


def test_resuming_writer_removes_the_cut_line_and_reruns_its_trial(tmp_path):
    path = tmp_path / "t.jsonl"
    writer = table.Writer(path, header())
    writer.add(row(0))
    cut(path, 1)

    again = table.Writer(path, header())
    assert again.done == {0}
    assert path.read_text().endswith("\n") and len(lines(path)) == 2
    again.add(row(1))
    assert table.read(path).rows == [row(0), row(1)]


def test_complete_row_missing_only_its_newline_is_not_lost(tmp_path):
    # The writer was killed after the row's text reached the file but before its newline:
    # whatever the resuming writer does with the line, the trials it counts as done must be
    # the trials the file holds.
    path = tmp_path / "t.jsonl"
    writer = table.Writer(path, header())
    writer.add(row(0))
    with path.open("a") as out:
        out.write(json.dumps(row(1).as_json()))

    again = table.Writer(path, header())
    assert again.done == {r.index for r in table.read(path).rows}
    for index in table.missing(3, again.done):
        again.add(row(index))
    assert [r.index for r in table.read(path).rows] == [0, 1, 2]


@pytest.mark.parametrize("bad", [
    "{not json", "[1, 2]", '"text"',
    '{"index": 1, "params": {}}',  # JSON, but not a trial row
    '{"index": "one", "params": {}, "epochs": [], "outcome": "completed"}',
])
def test_damage_in_a_middle_line_names_the_line(tmp_path, bad):
    path = tmp_path / "t.jsonl"
    writer = table.Writer(path, header())
    for index in range(3):
        writer.add(row(index))
    text = lines(path)
    text[2] = bad  # the second row, line 3 of the file
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(TableError, match=rf"{path}:3: "):
        table.read(path)
    with pytest.raises(TableError, match=rf"{path}:3: "):
        table.Writer(path, header())  # and a rerun does not write past it


def test_damaged_last_line_with_its_newline_is_damage_not_a_cut(tmp_path):
    # A line that ends in a newline was written whole; were it skipped, a resuming writer
    # would append after it and turn it into a middle line no reader can get past.
    path = tmp_path / "t.jsonl"
    table.Writer(path, header()).add(row(0))
    with path.open("a") as out:
        out.write("{garbage\n")
    with pytest.raises(TableError, match=rf"{path}:3: not JSON"):
        table.read(path)


def test_blank_lines_are_skipped(tmp_path):
    path = tmp_path / "t.jsonl"
    table.Writer(path, header()).add(row(0))
    with path.open("a") as out:
        out.write("\n  \n")
    table.Writer(path, header()).add(row(1))
    assert [r.index for r in table.read(path).rows] == [0, 1]


@pytest.mark.parametrize("first, message", [
    ('{"kind": "mlflow export", "version": 1}', "kind 'mlflow export'"),
    ('{"version": 1}', "kind None"),
    ("[]", "a JSON object was expected"),
    ("not json", "not JSON"),
])
def test_a_file_that_is_not_a_table_is_refused(tmp_path, first, message):
    path = tmp_path / "other.jsonl"
    path.write_text(first + "\n" + json.dumps(row(0).as_json()) + "\n")
    with pytest.raises(TableError, match=f"{path}:1") as error:
        table.read(path)
    assert message in str(error.value)
    before = path.read_bytes()
    with pytest.raises(TableError):
        table.Writer(path, header())
    assert path.read_bytes() == before


def test_an_empty_file_is_not_a_table(tmp_path):
    path = tmp_path / "t.jsonl"
    path.touch()
    with pytest.raises(TableError, match="empty"):
        table.read(path)


def test_non_finite_metrics_round_trip(tmp_path):
    # A diverged epoch's loss is inf/NaN; the table keeps it as recorded.
    path = tmp_path / "t.jsonl"
    diverged = Row(index=0, params={"lr": 0.1}, outcome="diverged",
                   epochs=[{"epoch": 1, "val_acc": 0.1, "val_loss": math.inf},
                           {"epoch": 2, "val_acc": 0.1, "val_loss": math.nan}])
    table.Writer(path, header()).add(diverged)
    loss = table.read(path).rows[0].curve("val_loss")
    assert loss[0] == math.inf and math.isnan(loss[1])


# ---- pure rules ----

@pytest.mark.parametrize("count, done, todo", [
    (4, [], [0, 1, 2, 3]),
    (4, [0, 1, 2, 3], []),
    (5, {3, 1}, [0, 2, 4]),
    (3, [0, 7, 9], [1, 2]),  # rows past the count (a longer earlier recording) are not todo
    (0, [0], []),
])
def test_missing(count, done, todo):
    assert table.missing(count, done) == todo


def test_completed_drops_rows_without_epochs():
    found = table.Table(header=header(), rows=[
        row(0), row(1, epochs=0, outcome="invalid"), row(2, epochs=1, outcome="diverged"),
        row(3)])
    assert [r.index for r in table.completed(found)] == [0, 2, 3]
    assert [r.index for r in table.completed(found, min_epochs=2)] == [0, 3]
    assert [r.index for r in table.completed(found, min_epochs=0)] == [0, 1, 2, 3]
