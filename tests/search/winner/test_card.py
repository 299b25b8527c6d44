"""The model card: the same content for programs (JSON) and people (Markdown)."""

from __future__ import annotations

import json

from search.winner.card import CARD_JSON, MODEL_FILE, card_json, card_markdown

CARD = {
    "name": "digits-search-best retrained",
    "created_at": "2030-01-02T03:04:05+00:00",
    "metrics": {"test_loss": 0.1234567, "test_acc": 0.9610027, "train_loss": 0.2,
                "train_acc": 0.95, "epochs": 6, "train_seconds": 11.2},
    "source": {"experiment": "digits-search", "directory": "/w/runs/digits-search",
               "trial_id": "t002", "epochs": 3,
               "objective": {"metric": "val_acc", "mode": "max", "value": 0.86},
               "mlflow": {"experiment": "digits-search", "parent_run_id": "p123"}},
    "data": {"dataset": "digits", "trained_on": "train+validation", "train_examples": 1438,
             "test_examples": 359, "split_seed": 0, "num_classes": 10, "in_channels": 3,
             "mean": [0.30561, 0.30561, 0.30561]},
    "config": {"depth": 20, "block": None, "milestones": [0.5, 0.75], "epochs": 6,
               "pretrained": "/w/a|b.pt"},
    "versions": {"resnet-search": "0.1.0", "torch": "2.5.0"},
    "hardware": {"device": "cpu: x86_64", "cpus": 2},
    "mlflow": {"experiment": "digits-search", "run_id": "r456"},
}


def test_markdown_leads_with_the_test_score_and_names_the_source():
    text = card_markdown(CARD)
    assert text.startswith("# digits-search-best retrained\n")
    summary = text.split("## Source")[0]
    assert "**test_acc 0.961**" in summary and "6 epochs" in summary and "359 test" in summary
    assert ("Trial `t002` of search `digits-search`, val_acc 0.86 after 3 epochs (experiment "
            "directory `/w/runs/digits-search`, MLflow parent run `p123`)") in text


def test_markdown_tables_hold_every_value():
    text = card_markdown(CARD)
    for row in ("| depth | 20 |", "| block | - |", "| milestones | [0.5, 0.75] |",
                "| torch | 2.5.0 |", "| device | cpu: x86_64 |", "| run_id | r456 |",
                "| mean | [0.3056, 0.3056, 0.3056] |", "| train_examples | 1438 |"):
        assert row in text
    assert "| pretrained | /w/a/b.pt |" in text  # a '|' would split the table's cell


def test_markdown_says_how_to_load_the_weights():
    text = card_markdown(CARD)
    assert f'torch.load("{MODEL_FILE}", weights_only=True)' in text
    assert f'json.load(open("{CARD_JSON}"))' in text


def test_an_unverified_source_says_so():
    source = {**CARD["source"], "checkpoint": "/w/gone", "checkpoint_verified": False}
    text = card_markdown({**CARD, "source": source}).split("## Metrics")[0]
    assert "**Unverified**: the checkpoint the spec's header names (`/w/gone`) did not" in text
    verified = card_markdown({**CARD, "source": {**source, "checkpoint_verified": True}})
    assert "Unverified" not in verified


def test_a_spec_without_provenance_says_so():
    text = card_markdown({**CARD, "source": None})
    assert "A spec without provenance (not exported by `export-best`)." in text


def test_json_is_the_card():
    assert json.loads(card_json(CARD)) == CARD
