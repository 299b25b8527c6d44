"""The model card saved next to retrained weights: what they are, how they were made and scored,
and how to load them. `model_card.json` for programs, `model_card.md` (rendered from the same
dict) for people. Pure: a dict in, text out.
"""

from __future__ import annotations

import json
from typing import Any, Optional

MODEL_FILE = "model.pt"
CARD_JSON = "model_card.json"
CARD_MD = "model_card.md"

LOADING = '''```python
import json, torch
from resnet_core.config import TrainConfig
from resnet_core.models import build_model

card = json.load(open("{card}"))
model = build_model(TrainConfig(**card["config"]), card["data"]["num_classes"],
                    in_channels=card["data"]["in_channels"])
model.load_state_dict(torch.load("{model}", weights_only=True))
model.eval()  # inputs: uint8 images / 255, normalised by card["data"]["mean"] and ["std"]
```'''


def card_json(card: dict) -> str:
    return json.dumps(card, indent=2, sort_keys=False, default=str) + "\n"


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return "-" if value is None else str(value)


def _table(rows: dict) -> list[str]:
    lines = ["| | |", "|---|---|"]
    lines += [f"| {key} | {_value(value).replace('|', '/')} |" for key, value in rows.items()]
    return lines


def _source_line(source: Optional[dict]) -> str:
    if not source:
        return "A spec without provenance (not exported by `export-best`)."
    objective = source.get("objective") or {}
    scored = (f", {objective.get('metric')} {_value(objective.get('value'))} after "
              f"{source.get('epochs')} epochs" if objective.get("value") is not None else "")
    if source.get("objectives"):  # several: every one at its last epoch, and how it was picked
        scored = (", " + ", ".join(f"{m} {_value(v)}" for m, v in source["objectives"].items())
                  + f" after {source.get('epochs')} epochs, picked by {source.get('picked_by')}")
    line = (f"Trial `{source.get('trial_id')}` of search `{source.get('experiment')}`{scored} "
            f"(experiment directory `{source.get('directory')}`, MLflow parent run "
            f"`{(source.get('mlflow') or {}).get('parent_run_id')}`).")
    if source.get("checkpoint_verified") is False:
        line += (f" **Unverified**: the checkpoint the spec's header names "
                 f"(`{source.get('checkpoint')}`) did not exist when it was retrained.")
    return line


def card_markdown(card: dict) -> str:
    """The card for people: the score first, then where it came from, the data, the config and
    the environment, and the lines that load the weights."""
    metrics, data = card["metrics"], card["data"]
    lines = [f"# {card['name']}", "",
             f"ResNet weights retrained on the train+validation data of `{data['dataset']}` for "
             f"{card['config']['epochs']} epochs, then tested once on its test split: "
             f"**test_acc {_value(metrics.get('test_acc'))}** "
             f"(test_loss {_value(metrics.get('test_loss'))}, "
             f"{data['test_examples']} test images).", "",
             "## Source", "", _source_line(card.get("source")), "",
             "## Metrics", "", *_table(metrics), "",
             "## Data", "", *_table(data), "",
             "## Config", "", *_table(card["config"]), "",
             "## Environment", "", *_table({**card["versions"], **card["hardware"]}), "",
             "## MLflow", "", *_table(card["mlflow"]), "",
             "## Loading the weights", "",
             LOADING.format(card=CARD_JSON, model=MODEL_FILE), "",
             f"Created {card['created_at']}.", ""]
    return "\n".join(lines)
