"""The `ray` marker is true both ways: `pytest -m "not ray"` (the inner loop the README names)
leaves out every test that starts Ray, by its fixtures or in its own body, and keeps the tests
that only validate, read records or refuse a launch before Ray starts."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from ray_marker import RAY_FIXTURES, starts_ray

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("test_file, fixtures, marked", [
    ("tests/e2e/test_report.py", ["finished", "cli", "tmp_path"], True),
    # through another fixture: pytest's fixturenames hold the closure (exported -> finished)
    ("tests/e2e/test_winner.py", ["retrained", "exported", "finished", "work"], True),
    ("tests/e2e/test_commands.py", ["tmp_path", "cli", "reaper", "storage"], True),
    ("tests/e2e/test_commands.py", ["tmp_path", "cli"], False),
    ("tests/search/experiment/test_results.py", ["ray_experiment", "tmp_path"], True),
    ("tests/search/experiment/test_results.py", ["tmp_path"], False),
    ("tests/e2e/test_jobs.py", ["cluster", "tmp_path"], True),
    # a fixture of a test module reaches that module only; a conftest's, its folder only
    ("tests/search/remote/test_cluster.py", ["cluster"], False),
    ("tests/search/tracking/test_mirror.py", ["finished"], False),
])
def test_a_test_is_marked_by_the_fixtures_that_start_ray(test_file, fixtures, marked):
    assert starts_ray(test_file, fixtures) is marked


def fixtures_of(path: Path) -> set[str]:
    """The names of the fixtures a file defines (`@pytest.fixture` or `@pytest.fixture(...)`)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef):
            for decorator in node.decorator_list:
                call = decorator.func if isinstance(decorator, ast.Call) else decorator
                if isinstance(call, ast.Attribute) and call.attr == "fixture":
                    found.add(node.name)
    return found


@pytest.mark.parametrize("name", sorted(RAY_FIXTURES))
def test_every_ray_fixture_is_defined_where_the_table_says(name):
    """A renamed or moved fixture would silently stop marking its tests."""
    assert name in fixtures_of(ROOT / RAY_FIXTURES[name]), RAY_FIXTURES[name]


# Known cases, collected as `pytest -m "not ray"` collects them.
STARTS_RAY = [
    # by the fixtures: a test's own launch (reaper), the shared finished search
    "tests/e2e/test_commands.py::test_a_running_search_is_seen_stopped_from_another_shell_and_"
    "resumed[directory]",
    "tests/e2e/test_progress_output.py::test_in_a_terminal_a_live_footer_shows_budget_best_and_eta",
    "tests/e2e/test_progress_output.py::test_in_a_pipe_the_lines_are_plain_with_timestamps_and_"
    "status_lines",
    "tests/e2e/test_winner.py::test_validate_accepts_the_export",  # finished, through `exported`
    "tests/search/experiment/test_results.py::test_each_ending",
    "tests/search/remote/test_node_checks.py::test_each_node_answers_from_itself",
    # by hand: a launch in the test's own body
    "tests/e2e/test_faults.py::test_a_diverging_trial_is_recorded_as_diverged_and_never_retried",
    "tests/e2e/test_preflight.py::test_a_list_valued_choice_reaches_each_trial_and_mlflow_as_the_"
    "list",
]
NO_RAY = [
    "tests/e2e/test_commands.py::test_status_of_nothing_says_so",
    "tests/e2e/test_faults.py::test_an_unreachable_tracking_server_fails_the_launch_in_seconds",
    "tests/e2e/test_launch_checks.py::test_every_shipped_space_validates[digits.yaml]",
    "tests/e2e/test_preflight.py::test_all_problems_are_reported_at_once",
    "tests/search/experiment/test_results.py::test_empty_or_absent_directory",
    "tests/search/remote/test_node_checks.py::test_only_nodes_that_can_run_a_trial_are_asked",
]

# pytest collecting with `-m "not ray"` in a fresh process, recording what it kept and what `-m`
# deselected: the marks must be on the items before `-m` looks at them.
COLLECT = """
import json, sys
import pytest

class Seen:
    kept, dropped = [], []
    def pytest_deselected(self, items):
        self.dropped += [item.nodeid for item in items]
    def pytest_collection_finish(self, session):
        self.kept += [item.nodeid for item in session.items]

seen = Seen()
code = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "-m", "not ray",
                    *sys.argv[1:]], plugins=[seen])
print("SEEN " + json.dumps({"code": int(code), "kept": seen.kept, "dropped": seen.dropped}))
"""


def test_not_ray_leaves_out_the_tests_that_start_ray_and_keeps_the_others():
    files = sorted({case.split("::")[0] for case in STARTS_RAY + NO_RAY})
    done = subprocess.run([sys.executable, "-c", COLLECT, *files], cwd=ROOT, capture_output=True,
                          text=True, timeout=900)
    lines = [line for line in done.stdout.splitlines() if line.startswith("SEEN ")]
    assert lines, done.stdout[-3000:] + done.stderr[-3000:]
    seen = json.loads(lines[-1][len("SEEN "):])
    assert seen["code"] == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert [case for case in STARTS_RAY if case not in seen["dropped"]] == []
    assert [case for case in NO_RAY if case not in seen["kept"]] == []
