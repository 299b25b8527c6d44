"""`logs --json`: JSON lines, one object per line of the driver's log (as the README says), the
text of each without its newline; a line that arrives in pieces is still one object."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from search.cli import app
from search.cli.lifecycle_commands import JsonLines
from search.run.driverlog import LOG_FILE
from warm_records import record, search_spec

LOG = "=== launch on host at 2026-12-06 ===\nstart t1 lr=0.05\n\nt1 epoch 1 val_acc 0.4\nunended"


def test_one_object_per_line_of_the_log(tmp_path):
    directory = record(tmp_path, search_spec("logged"))
    (directory / LOG_FILE).write_text(LOG)
    plain = CliRunner().invoke(app, ["logs", str(directory)])
    assert plain.exit_code == 0 and plain.output == LOG
    done = CliRunner().invoke(app, ["logs", str(directory), "--json"])
    assert done.exit_code == 0, done.output
    objects = [json.loads(line) for line in done.output.splitlines()]
    assert objects == [{"source": str(directory), "text": line} for line in LOG.split("\n")]


def test_a_line_written_in_pieces_is_one_object(capsys):
    sink = JsonLines("job-1")
    for piece in ("first li", "ne\nsecond\nthi", "", "rd\n", "last, unended"):
        sink.write(piece)
        sink.flush()
    assert capsys.readouterr().out.splitlines() == [
        json.dumps({"source": "job-1", "text": text}) for text in ("first line", "second",
                                                                   "third")]
    sink.end()  # the output has ended: its unended last line is a line too
    assert json.loads(capsys.readouterr().out) == {"source": "job-1", "text": "last, unended"}
