"""Where the test suite's time goes, from one run's pytest JUnit XML (issue 19: a suite that says
what it costs).

    python bench/suite_durations.py bench/results/busy_suite.xml [--name suite_durations] [--top 25]

Reads the XML `pytest --junitxml=PATH` writes (bench/busy_suite.py writes one per run) and
writes bench/results/NAME.json, with a Markdown table of the same on stdout: the seconds and
share of the suite's test time per top-level folder (tests/e2e, tests/search, ...), per folder,
per file, and the slowest tests.

A test's seconds are what pytest records for it: its setup, call and teardown. A fixture shared
by many tests (a session's finished search, a module's cluster) is counted in the first test
that needs it. With `-n 3` three files run at a time, so the total of the tests' seconds is
about three times the run's wall time: shares, not sums, compare runs.
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import RESULTS, write_result  # noqa: E402

TOP = 25


def file_of(classname: str) -> str:
    """The test file of a JUnit `classname` (`tests.e2e.test_faults` or, for a test in a class,
    `tests.e2e.test_faults.TestX`): the dotted path up to its first `test_*`/`conftest` module."""
    parts = classname.split(".")
    for index, part in enumerate(parts):
        if part.startswith("test_") or part == "conftest":
            return "/".join(parts[:index + 1]) + ".py"
    return "/".join(parts) + ".py"


def cases(xml: Path) -> list[dict[str, Any]]:
    """Every test case of the run: its test id, file, seconds and outcome."""
    found = []
    for case in ET.parse(xml).getroot().iter("testcase"):
        outcome = "passed"
        for kind in ("failure", "error", "skipped"):
            if case.find(kind) is not None:
                outcome = {"failure": "failed"}.get(kind, kind)
                break
        path = file_of(case.get("classname") or "")
        found.append({"test": f"{path}::{case.get('name')}", "file": path,
                      "seconds": float(case.get("time") or 0.0), "outcome": outcome})
    return found


def grouped(found: Iterable[dict[str, Any]], key, total: float) -> list[dict[str, Any]]:
    """Seconds, share of `total` and test count per `key(case)`, most seconds first."""
    seconds: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    for case in found:
        seconds[key(case)] += case["seconds"]
        count[key(case)] += 1
    return [{"name": name, "seconds": round(value, 1),
             "share": round(value / total, 4) if total else 0.0, "tests": count[name]}
            for name, value in sorted(seconds.items(), key=lambda item: (-item[1], item[0]))]


def top_folder(path: str) -> str:
    """tests/e2e/test_x.py -> tests/e2e; tests/test_x.py -> tests."""
    parts = PurePosixPath(path).parts
    return "/".join(parts[:2]) if len(parts) > 2 else "/".join(parts[:1])


def durations(found: list[dict[str, Any]], top: int = TOP) -> dict[str, Any]:
    """The table of a run's cases (pure)."""
    total = sum(case["seconds"] for case in found)
    outcomes = defaultdict(int)
    for case in found:
        outcomes[case["outcome"]] += 1
    return {
        "tests": len(found), "outcomes": dict(sorted(outcomes.items())),
        "total_test_s": round(total, 1),
        "by_top_folder": grouped(found, lambda case: top_folder(case["file"]), total),
        "by_folder": grouped(found, lambda case: str(PurePosixPath(case["file"]).parent), total),
        "by_file": grouped(found, lambda case: case["file"], total),
        "slowest": [{"test": case["test"], "seconds": round(case["seconds"], 1),
                     "share": round(case["seconds"] / total, 4) if total else 0.0,
                     "outcome": case["outcome"]}
                    for case in sorted(found, key=lambda case: (-case["seconds"],
                                                                case["test"]))[:top]],
    }


def _rows(title: str, head: str, rows: list[dict[str, Any]], limit: Optional[int] = None
          ) -> list[str]:
    lines = [f"### {title}", "", f"| {head} | seconds | share | tests |", "|---|---:|---:|---:|"]
    for row in rows[:limit]:
        lines.append(f"| `{row['name']}` | {row['seconds']:.1f} | {100 * row['share']:.1f}% | "
                     f"{row['tests']} |")
    return lines + [""]


def markdown(table: dict[str, Any], source: str = "") -> str:
    """The table as Markdown (what the script prints)."""
    lines = [f"## Where the suite's time goes{f' ({source})' if source else ''}", "",
             f"{table['tests']} tests, {table['total_test_s']:.1f} s of test time "
             f"({', '.join(f'{n} {k}' for k, n in table['outcomes'].items())}).", ""]
    lines += _rows("By top-level folder", "folder", table["by_top_folder"])
    lines += _rows("By folder", "folder", table["by_folder"])
    lines += _rows("By file", "file", table["by_file"])
    lines += [f"### The {len(table['slowest'])} slowest tests", "",
              "| test | seconds | share | outcome |", "|---|---:|---:|---|"]
    lines += [f"| `{row['test']}` | {row['seconds']:.1f} | {100 * row['share']:.1f}% | "
              f"{row['outcome']} |" for row in table["slowest"]]
    return "\n".join(lines) + "\n"


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("xml", type=Path, help="pytest's JUnit XML of one run")
    parser.add_argument("--name", default="suite_durations", help="bench/results/NAME.json")
    parser.add_argument("--top", type=int, default=TOP, help="how many slowest tests to list")
    parser.add_argument("--results", type=Path, default=RESULTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.xml.is_file():
        print(f"suite_durations: no such file: {args.xml}", file=sys.stderr)
        return 2
    table = durations(cases(args.xml), args.top)
    write_result(args.name, {"junit_xml": str(args.xml), **table}, args.results)
    print(markdown(table, str(args.xml)), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
