"""What a trial costs: parameters and FLOPs against hand counts, latency measured as documented,
training seconds cumulative across epochs and resumes, and measuring never changes training."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from resnet_core.names import COST_METRICS
from resnet_core.train import Trainer
from resnet_core.train.cost import (LATENCY_BATCH, LATENCY_REPEATS, LATENCY_WARMUP, STATIC_KEYS,
                                    forward_flops, latency_ms, param_count, static_costs)
from resnet_core.train.trainer import METRIC_KEYS

import tiny_training
from tiny_training import tiny_cfg

TIMING = {"epoch_seconds", "images_per_s", "peak_mem_mb", "train_seconds"}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()  # as tests/resnet_core/test_trainer.py: a shared 2-core box
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# FLOPs by hand: a multiply-add is 2 FLOPs; a conv output element costs (C_in/groups)*kh*kw
# multiply-adds, a Linear output (in_features); bias, BatchNorm and activations count 0.
@pytest.mark.parametrize("name, model, shape, params, flops", [
    # conv 1->2, 3x3, pad 1 on 4x4: 2*4*4 outputs x 9 MACs = 288 MACs; linear 32->3: 96 MACs
    ("conv+linear", lambda: nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, bias=False),
                                          nn.Flatten(), nn.Linear(32, 3)),
     (1, 4, 4), 2 * 9 + 32 * 3 + 3, 2 * (288 + 96)),
    ("linear", lambda: nn.Sequential(nn.Flatten(), nn.Linear(4, 2)),
     (1, 2, 2), 4 * 2 + 2, 2 * 8),
    # grouped conv 2->2, groups 2, 3x3, no pad on 3x3: 2 outputs x 1*9 MACs; bias not counted
    ("grouped-conv", lambda: nn.Sequential(nn.Conv2d(2, 2, 3, groups=2), nn.Flatten()),
     (2, 3, 3), 2 * 9 + 2, 2 * 18),
    # 1x1 conv on 2x2: 4 MACs; BatchNorm's weight and bias are parameters but no FLOPs
    ("conv+bn+relu", lambda: nn.Sequential(nn.Conv2d(1, 1, 1, bias=False), nn.BatchNorm2d(1),
                                           nn.ReLU()),
     (1, 2, 2), 1 + 2, 2 * 4),
    ("no-parameters", lambda: nn.Sequential(nn.ReLU(), nn.Flatten()), (1, 2, 2), 0, 0),
])
def test_params_and_flops_of_one_image_match_the_hand_count(name, model, shape, params, flops):
    net = model()
    assert param_count(net) == params
    assert forward_flops(net, shape, torch.device("cpu")) == flops


def test_flops_are_of_one_image_in_eval_mode_and_leave_the_mode_as_it_was():
    net = nn.Sequential(nn.Conv2d(1, 1, 1, bias=False), nn.Dropout(0.5), nn.Flatten())
    net.train()
    assert forward_flops(net, (1, 3, 3)) == 2 * 9
    assert net.training


class Recorder(nn.Module):
    """A tiny model that remembers the batch size, grad mode and train flag of each forward."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.seen: list[tuple[int, bool, bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append((x.shape[0], torch.is_grad_enabled(), self.training))
        return self.conv(x)


def test_latency_is_the_median_over_the_documented_batch_after_warm_up():
    net = Recorder()
    before = torch.get_rng_state()
    ms = latency_ms(net, (3, 8, 8), torch.device("cpu"))
    assert ms > 0
    # batch 64, 3 warm-up passes, 10 timed ones; no autograd, eval mode; the model's mode back
    assert (LATENCY_BATCH, LATENCY_WARMUP, LATENCY_REPEATS) == (64, 3, 10)
    assert net.seen == [(64, False, False)] * (3 + 10)
    assert net.training
    # its input comes from a private generator: torch's global RNG is where it was
    assert torch.equal(torch.get_rng_state(), before)


@pytest.mark.parametrize("kw", [{"batch": 0}, {"repeats": 0}, {"warmup": -1}])
def test_latency_refuses_an_empty_measurement(kw):
    with pytest.raises(ValueError, match="latency needs"):
        latency_ms(Recorder(), (3, 4, 4), torch.device("cpu"), **kw)


def test_static_costs_are_every_cost_but_the_trainers_own_seconds():
    assert STATIC_KEYS + ("train_seconds",) == COST_METRICS
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    costs = static_costs(net, (1, 2, 2), torch.device("cpu"))
    assert tuple(costs) == STATIC_KEYS
    assert (costs["params"], costs["flops"]) == (10, 16) and costs["latency_ms"] > 0


# --- in a Trainer -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_data():
    return tiny_training.tiny_data()


def test_train_seconds_sum_the_epochs_and_go_on_after_a_resume(tiny_data, tmp_path):
    trainer = Trainer(tiny_cfg(), tiny_data, device="cpu")
    first = []
    for m in trainer.fit():
        assert "train_seconds" in METRIC_KEYS and type(m["train_seconds"]) is float
        first.append(m)
        if m["epoch"] == 2:
            trainer.save(tmp_path / "ckpt.pt")
            break
    seconds = [m["train_seconds"] for m in first]
    assert seconds == pytest.approx([first[0]["epoch_seconds"],
                                     first[0]["epoch_seconds"] + first[1]["epoch_seconds"]])
    assert 0 < seconds[0] < seconds[1]
    resumed = Trainer(tiny_cfg(), tiny_data, device="cpu")
    resumed.load_state_dict(Trainer.read(tmp_path / "ckpt.pt"))
    assert resumed.train_seconds == seconds[1]
    (last,) = list(resumed.fit())
    assert last["train_seconds"] == pytest.approx(seconds[1] + last["epoch_seconds"])


def test_measuring_costs_mid_run_changes_nothing_the_run_learns(tiny_data):
    plain = [{k: v for k, v in m.items() if k not in TIMING}
             for m in Trainer(tiny_cfg(epochs=2), tiny_data, device="cpu").fit()]
    trainer = Trainer(tiny_cfg(epochs=2), tiny_data, device="cpu")
    measured, costs = [], None
    for m in trainer.fit():
        costs = costs or trainer.static_costs()  # as the trainable does, after epoch 1
        measured.append({k: v for k, v in m.items() if k not in TIMING})
    assert measured == plain
    assert costs["params"] == param_count(trainer.model) > 0
    assert costs["flops"] == forward_flops(trainer.model, (3, 16, 16)) > 0
    assert costs["latency_ms"] > 0


def test_latency_is_left_out_when_not_asked_for():
    # The trainable asks for latency only when the objective is latency: timing it costs
    # seconds of every trial, most of which stop at the first rung.
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    costs = static_costs(net, (1, 2, 2), torch.device("cpu"), latency=False)
    assert costs == {"params": 10, "flops": 16}
