"""Which heavy modules a piece of code loads, run in a fresh interpreter (the only honest way:
this test process has loaded them all already)."""

from __future__ import annotations

import subprocess
import sys


def loaded_by(code: str, modules: tuple[str, ...]) -> list[str]:
    """The names in `modules` that are in sys.modules after `code` runs in a new interpreter
    (its failure fails the test with its stderr)."""
    probe = f"{code}\nimport sys\nprint(sorted(m for m in {modules!r} if m in sys.modules))\n"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return eval(done.stdout.strip().splitlines()[-1])  # a list of str printed just above
