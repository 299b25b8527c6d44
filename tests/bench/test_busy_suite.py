"""bench/busy_suite.py on a tiny selection: pytest runs beside busy processes at the nice asked
for, its JUnit XML and a JSON summary are written, and no busy process outlives the run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench import busy_suite  # noqa: E402


def test_the_suite_runs_beside_busy_processes_that_end_with_it(tmp_path):
    code = busy_suite.main(["--busy", "1", "--nice", "19", "--results", str(tmp_path),
                            "--name", "tiny", "--", "tests/search/wait/test_rules.py", "-q",
                            "-p", "no:cacheprovider"])
    assert code == 0
    summary = json.loads((tmp_path / "tiny.json").read_text())
    assert summary["exit_code"] == 0 and summary["busy_nice"] == 19
    assert summary["tests"] == summary["passed"] > 10 and summary["failed"] == 0
    assert summary["slowest"] and summary["not_passed"] == []
    assert (tmp_path / "tiny.xml").is_file() and summary["load"]["samples"]
    for pid in summary["busy_pids"]:  # ended and reaped: nothing left burning
        assert not Path(f"/proc/{pid}").exists() or "Z" in (
            Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][:1])


def test_failures_are_named_with_their_first_line(tmp_path):
    junit = tmp_path / "j.xml"
    junit.write_text(
        '<testsuites><testsuite><testcase classname="a" name="ok" time="1.5"/>'
        '<testcase classname="a" name="bad" time="9"><failure message="assert 1 == 2&#10;more">'
        'trace</failure></testcase><testcase classname="b" name="skip" time="0">'
        '<skipped message="why"/></testcase></testsuite></testsuites>')
    found = busy_suite.junit_summary(junit)
    assert (found["tests"], found["passed"], found["failed"], found["skipped"]) == (3, 1, 1, 1)
    assert found["slowest"][0] == {"test": "a::bad", "seconds": 9.0, "outcome": "failed"}
    assert found["not_passed"] == [{"test": "a::bad", "seconds": 9.0, "outcome": "failed",
                                    "message": "assert 1 == 2"}]
