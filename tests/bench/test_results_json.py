"""The JSON every benchmark writes (bench/common.py `write_result`): what `json.dumps(indent=2)`
writes, read back unchanged, except that a list of scalars stays on one line."""

from __future__ import annotations

import json

import pytest

from bench.common import dumps, write_result


@pytest.mark.parametrize("value, text", [
    ({"a": [1, 2.5, None, "x"]}, '{\n  "a": [1, 2.5, null, "x"]\n}'),
    ({"a": {"b": []}, "c": {}}, '{\n  "a": {\n    "b": []\n  },\n  "c": {}\n}'),
    ([{"a": 1}, [2, 3]], '[\n  {\n    "a": 1\n  },\n  [2, 3]\n]'),
    ({"t": (1, 2)}, '{\n  "t": [1, 2]\n}'),
    ({1: True}, '{\n  "1": true\n}'),  # keys as json.dumps makes them
    ("é", '"\\u00e9"'),
])
def test_a_list_of_scalars_stays_on_one_line(value, text):
    assert dumps(value) == text
    assert json.loads(dumps(value)) == json.loads(json.dumps(value))


def test_a_result_file_reads_back_as_written(tmp_path):
    payload = {"curves": [[0.1, 0.2], [0.3]], "per_seed": {"x": [1, None]}, "when": object}
    path = write_result("r", payload, results=tmp_path)
    read = json.loads(path.read_text())
    assert read["curves"] == [[0.1, 0.2], [0.3]] and read["per_seed"] == {"x": [1, None]}
    assert read["benchmark"] == "r" and "provenance" in read
    assert read["when"] == str(object)  # what json.dumps(default=str) made of it
    assert path.read_text().count("\n") < 30
