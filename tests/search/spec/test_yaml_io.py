"""Strict YAML loading: YAML 1.2 scalars, duplicate keys, refused tags, caps, clean errors."""

from __future__ import annotations

import math

import pytest
import yaml

from search.spec.problems import SpecError
from search.spec.yaml_io import MAX_BYTES, load_yaml, parse_yaml


def value_of(text: str):
    return parse_yaml(f"v: {text}")["v"]


@pytest.mark.parametrize("text, expected", [
    ("1e-3", 1e-3), ("1E5", 1e5), ("-2.5e-4", -2.5e-4), ("+1.5e2", 150.0), ("3e+2", 300.0),
    (".5", 0.5), ("1.", 1.0), ("0.1", 0.1), (".inf", math.inf), ("-.inf", -math.inf),
])
def test_yaml12_floats(text, expected):
    value = value_of(text)
    assert type(value) is float and value == expected


def test_nan_is_a_float():
    assert math.isnan(value_of(".nan"))


@pytest.mark.parametrize("text, expected", [
    ("010", 10), ("0x1F", 31), ("0o17", 15), ("-3", -3), ("+7", 7), ("0", 0),
])
def test_yaml12_ints(text, expected):
    value = value_of(text)
    assert type(value) is int and value == expected


@pytest.mark.parametrize("text, expected", [
    ("true", True), ("True", True), ("TRUE", True), ("tRuE", True), ("false", False),
    ("False", False), ("FALSE", False),
])
def test_only_true_false_are_booleans(text, expected):
    assert value_of(text) is expected


@pytest.mark.parametrize("text", [
    "yes", "no", "on", "off", "y", "n", "Yes", "ON", "Off", "1:30", "2024-01-01", "1_000",
    "'1e-3'", "0b101",
])
def test_yaml11_traps_stay_strings(text):
    assert isinstance(value_of(text), str)


@pytest.mark.parametrize("text", ["~", "null", "Null", ""])
def test_nulls(text):
    assert value_of(text) is None


def test_stock_safe_loader_is_left_alone():
    # The strict resolvers live on a subclass; PyYAML's own SafeLoader must not change.
    assert yaml.safe_load("a: yes")["a"] is True
    assert yaml.safe_load("a: 1e-3")["a"] == "1e-3"


def problem(err: pytest.ExceptionInfo, loc: str):
    found = [p for p in err.value.problems if p.loc == loc]
    assert found, f"no problem at {loc!r}: {err.value}"
    return found[0]


@pytest.mark.parametrize("text, loc, lines", [
    ("a: 1\nb: 2\na: 3\n", "a", "lines 1 and 3"),
    ("s:\n  x: 1\n  y: 2\n  x: 3\n", "s.x", "lines 2 and 4"),
    ("l:\n  - {k: 1, k: 2}\n", "l[0].k", "lines 2 and 2"),
    ("a: 1\n'a': 2\n", "a", "lines 1 and 2"),
])
def test_duplicate_keys_rejected_at_any_depth(text, loc, lines):
    with pytest.raises(SpecError) as err:
        parse_yaml(text, "dup.yaml")
    message = problem(err, loc).message
    assert "duplicate key" in message and repr(loc.split(".")[-1]) in message and lines in message


def test_every_duplicate_is_reported():
    with pytest.raises(SpecError) as err:
        parse_yaml("a: 1\na: 2\nb: {c: 1, c: 2}\n")
    assert [p.loc for p in err.value.problems] == ["a", "b.c"]


def test_merge_keys_may_be_overridden():
    data = parse_yaml("base: &b {x: 1, y: 2}\nd: {<<: *b, y: 3}\n")
    assert data["d"] == {"x": 1, "y": 3}


@pytest.mark.parametrize("text, loc", [
    ("x: !!python/object/apply:os.system ['true']\n", "x"),
    ("x: !!python/name:os.system\n", "x"),
    ("s:\n  m: !!python/module:os\n", "s.m"),
    ("x: !custom 1\n", "x"),
    ("x: !!binary aGVsbG8=\n", "x"),
    ("x: !!set {a}\n", "x"),
])
def test_tags_are_refused(text, loc):
    with pytest.raises(SpecError) as err:
        parse_yaml(text)
    assert "registry names" in problem(err, loc).message


def test_python_tag_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    with pytest.raises(SpecError):
        parse_yaml(f"x: !!python/object/apply:os.system ['touch {marker}']\n")
    assert not marker.exists()


@pytest.mark.parametrize("text, loc", [
    ("_target_: torch.nn.Linear\n", "_target_"),
    ("space:\n  block: {_target_: my.Block}\n", "space.block._target_"),
])
def test_target_keys_are_refused(text, loc):
    with pytest.raises(SpecError) as err:
        parse_yaml(text)
    assert "registry names" in problem(err, loc).message


def test_size_cap_on_text_and_file(tmp_path):
    big = "a: " + "x" * MAX_BYTES
    with pytest.raises(SpecError) as err:
        parse_yaml(big)
    assert str(len(big.encode())) in str(err.value) and "1 MiB" in str(err.value)
    path = tmp_path / "big.yaml"
    path.write_text(big)
    with pytest.raises(SpecError) as err:
        load_yaml(path)
    assert "1 MiB" in str(err.value) and str(path) in str(err.value)


@pytest.mark.parametrize("text, fragment", [
    ("", "empty"), ("# just a comment\n", "empty"), ("---\n", "empty"),
    ("- a\n- b\n", "['a', 'b'] (list) but must be a mapping"),
    ("42\n", "42 (int) but must be a mapping"),
    ("just words\n", "'just words' (str) but must be a mapping"),
])
def test_top_level_must_be_a_mapping(text, fragment):
    with pytest.raises(SpecError) as err:
        parse_yaml(text)
    assert fragment in str(err.value)


@pytest.mark.parametrize("text, where", [
    ("a: [1, 2\nb: 3\n", "line 2, column 2"),
    ("a: b: c\n", "line 1, column 5"),
    ("a:\n  - 1\n b: 2\n", "line 3, column 2"),
    ("a: 1\n---\nb: 2\n", "line 2, column 1"),
    ("a: !!int 1.5\n", "line 1, column 4"),
])
def test_syntax_errors_name_line_and_column(text, where):
    with pytest.raises(SpecError) as err:
        parse_yaml(text, "bad.yaml")
    text = str(err.value)
    assert text.startswith("bad.yaml: ") and where in text and "Traceback" not in text


def test_control_characters_are_refused():
    with pytest.raises(SpecError) as err:
        parse_yaml("a: 1\nb: \x07\n")
    assert "'\\x07'" in str(err.value) and "line 2" in str(err.value)


def test_alias_bomb_is_refused_quickly():
    rows = ["a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for prev, name in zip("abcdefgh", "bcdefghi"):
        rows.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 10)}]")
    with pytest.raises(SpecError) as err:
        parse_yaml("\n".join(rows))
    assert "aliases" in str(err.value) and "100000" in str(err.value)


def test_small_aliases_are_fine():
    data = parse_yaml("a: &a [1, 2]\nb: *a\n")
    assert data["b"] == [1, 2]


def test_recursive_alias_is_refused():
    with pytest.raises(SpecError) as err:
        parse_yaml("a: &a [1, *a]\n")
    assert problem(err, "a[1]").message.startswith("an alias refers to its own anchor")


def test_deep_nesting_is_an_error_not_a_crash():
    with pytest.raises(SpecError) as err:
        parse_yaml("a: " + "[" * 5000 + "]" * 5000)
    assert "nested too deeply" in str(err.value)


def test_load_yaml_reads_a_file(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text("name: x\nlr: 1e-3\n")
    assert load_yaml(path) == {"name": "x", "lr": 0.001}


@pytest.mark.parametrize("make, fragment", [
    (lambda p: None, "does not exist"),
    (lambda p: p.mkdir(), "is a directory"),
    (lambda p: p.write_bytes(b"a: \xff\xfe\n"), "not UTF-8"),
])
def test_file_problems_are_spec_errors(tmp_path, make, fragment):
    path = tmp_path / "spec.yaml"
    make(path)
    with pytest.raises(SpecError) as err:
        load_yaml(path)
    assert fragment in str(err.value) and err.value.source == str(path)
