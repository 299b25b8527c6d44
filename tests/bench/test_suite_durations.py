"""bench/suite_durations.py on a hand-written JUnit XML: the seconds and shares per top-level
folder, folder and file, the slowest tests, the JSON it writes and the Markdown it prints."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench import suite_durations  # noqa: E402

# 100 s of test time: e2e 60 (one file), search 30 (two folders), the root's own test 10.
XML = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="6">
<testcase classname="tests.e2e.test_faults" name="test_launch[directory]" time="45.0"/>
<testcase classname="tests.e2e.test_faults" name="test_bad_config" time="15.0">
  <failure message="assert 1 == 2">trace</failure></testcase>
<testcase classname="tests.search.tracking.test_store" name="test_summary" time="20.0"/>
<testcase classname="tests.search.tracking.test_store.TestRace" name="test_four" time="5.0"/>
<testcase classname="tests.search.spec.test_points" name="test_grid" time="5.0">
  <skipped message="why"/></testcase>
<testcase classname="tests.test_markers" name="test_not_ray" time="10.0"/>
</testsuite></testsuites>
"""


@pytest.mark.parametrize("classname, path", [
    ("tests.e2e.test_faults", "tests/e2e/test_faults.py"),
    ("tests.search.tracking.test_store.TestRace", "tests/search/tracking/test_store.py"),
    ("tests.test_markers", "tests/test_markers.py"),
    ("tests.e2e.conftest", "tests/e2e/conftest.py"),
])
def test_the_file_of_a_junit_classname(classname, path):
    assert suite_durations.file_of(classname) == path


def test_the_table_of_a_run(tmp_path, capsys):
    xml = tmp_path / "run.xml"
    xml.write_text(XML)
    assert suite_durations.main([str(xml), "--results", str(tmp_path), "--top", "3"]) == 0
    table = json.loads((tmp_path / "suite_durations.json").read_text())
    assert (table["tests"], table["total_test_s"]) == (6, 100.0)
    assert table["outcomes"] == {"failed": 1, "passed": 4, "skipped": 1}
    assert table["by_top_folder"] == [
        {"name": "tests/e2e", "seconds": 60.0, "share": 0.6, "tests": 2},
        {"name": "tests/search", "seconds": 30.0, "share": 0.3, "tests": 3},
        {"name": "tests", "seconds": 10.0, "share": 0.1, "tests": 1}]
    assert [(r["name"], r["seconds"]) for r in table["by_folder"]] == [
        ("tests/e2e", 60.0), ("tests/search/tracking", 25.0), ("tests", 10.0),
        ("tests/search/spec", 5.0)]
    assert table["by_file"][1] == {"name": "tests/search/tracking/test_store.py",
                                   "seconds": 25.0, "share": 0.25, "tests": 2}
    assert table["slowest"] == [
        {"test": "tests/e2e/test_faults.py::test_launch[directory]", "seconds": 45.0,
         "share": 0.45, "outcome": "passed"},
        {"test": "tests/search/tracking/test_store.py::test_summary", "seconds": 20.0,
         "share": 0.2, "outcome": "passed"},
        {"test": "tests/e2e/test_faults.py::test_bad_config", "seconds": 15.0, "share": 0.15,
         "outcome": "failed"}]
    assert table["junit_xml"] == str(xml) and "provenance" in table

    printed = capsys.readouterr().out
    assert "| `tests/e2e` | 60.0 | 60.0% | 2 |" in printed
    assert "| `tests/search/tracking/test_store.py` | 25.0 | 25.0% | 2 |" in printed
    assert "| `tests/e2e/test_faults.py::test_bad_config` | 15.0 | 15.0% | failed |" in printed
    assert "6 tests, 100.0 s of test time (1 failed, 4 passed, 1 skipped)." in printed


def test_a_missing_file_is_one_line_and_exit_2(tmp_path, capsys):
    assert suite_durations.main([str(tmp_path / "nope.xml"), "--results", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"suite_durations: no such file: {tmp_path / 'nope.xml'}\n"
    assert not (tmp_path / "suite_durations.json").exists()
