"""The provenance header: comments YAML ignores, read back exactly as written."""

from __future__ import annotations

import pytest

from search.spec.yaml_io import parse_yaml
from search.winner.header import header, read_provenance

PROVENANCE = {
    "experiment": "cifar10-resnet",
    "directory": "/mnt/shared/runs/cifar10-resnet: a path with ': ' and # in it",
    "trial_id": "a1b2c3d4",
    "objective": {"metric": "val_acc", "mode": "max", "value": 0.9412345678901234},
    "epochs": 30,
    "params": {"lr": 1e-05, "milestones": [0.3, 0.6], "residual": "scaled"},
    "checkpoint": None,
    "long": "x" * 300,  # never folded onto a second line
    "exported_at": "2030-01-02T03:04:05+00:00",
    "unicode": "données",
}
BODY = "name: x\ndata: {dataset: digits}\nbudget: {trials: 1, max_epochs: 3}\n"


def test_round_trip_and_the_yaml_body_is_untouched():
    text = header(["The winner of 'x'.", "Check it: resnet-search validate best.yaml"],
                  PROVENANCE) + "\n" + BODY
    assert read_provenance(text) == PROVENANCE
    assert parse_yaml(text) == parse_yaml(BODY)  # the strict spec loader sees only the spec
    lines = text.split("\nname:")[0].splitlines()
    assert all(line.startswith("#") for line in lines)
    assert max(map(len, lines)) > 300  # the long value stayed on its line


@pytest.mark.parametrize("text", [
    BODY,  # a spec written by hand
    "# just a comment\n# provenance is mentioned in prose\n" + BODY,
    "# provenance:\n#   - a list, not a mapping\n" + BODY,
    "# provenance:\n#   broken: [unclosed\n" + BODY,
    "name: x  # provenance:\n",
])
def test_no_provenance_is_none(text):
    assert read_provenance(text) is None


def test_the_block_ends_where_its_indentation_does():
    text = ("# intro\n#\n# provenance:\n#   trial_id: t1\n#   epochs: 3\n# a note after it\n"
            "#   not: part of it\n" + BODY)
    assert read_provenance(text) == {"trial_id": "t1", "epochs": 3}


def test_a_comment_after_the_yaml_starts_is_not_read():
    assert read_provenance(BODY + "# provenance:\n#   trial_id: t1\n") is None
