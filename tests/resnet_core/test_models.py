"""The model zoo, driven by its registries: every block x merge x shortcut builds and trains one
step; merges do their math; torchvision parity; pretrained loading; the articles' traps."""

from __future__ import annotations

import dataclasses
import itertools
import pickle

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from resnet_core.config import TrainConfig
from resnet_core.models import BLOCKS, MERGES, PRESETS, SHORTCUTS, STEMS, build_model
from resnet_core.models.blocks import Block, Bottleneck, PreActBlock
from resnet_core.models.dynamic_conv import DynamicConv2d, annealed_temperature, set_temperature
from resnet_core.models.merges import Add, Fusion, Normalized, Scaled
from resnet_core.models.pretrained import load_pretrained
from resnet_core.models.shortcuts import ZeroPad

SMALL = dict(depth=20, width=0.25, residual_scale=0.5)


def cfg(**fields) -> TrainConfig:
    return TrainConfig(**{**SMALL, **fields})


def train_step(model: nn.Module, size: int = 32, classes: int = 10) -> torch.Tensor:
    x = torch.randn(2, 3, size, size)
    out = model(x)
    F.cross_entropy(out, torch.tensor([0, classes - 1])).backward()
    return out


def blocks_of(model: nn.Module) -> list[Block]:
    return [m for m in model.modules() if isinstance(m, Block)]


@pytest.mark.parametrize("block,residual,shortcut",
                         list(itertools.product(BLOCKS, MERGES, SHORTCUTS)))
def test_every_combination_builds_and_trains(block, residual, shortcut):
    torch.manual_seed(0)
    model = build_model(cfg(block=block, residual=residual, shortcut=shortcut), num_classes=10)
    out = train_step(model)
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert missing == []
    for b in blocks_of(model):
        assert torch.count_nonzero(b.zero_init_layer().weight) == 0


@pytest.mark.parametrize("stem,block", list(itertools.product(STEMS, BLOCKS)))
def test_every_stem_builds_with_zeropad_fusion_and_half_width(stem, block):
    model = build_model(cfg(stem=stem, block=block, shortcut="zeropad", residual="fusion",
                            width=0.5), num_classes=7)
    out = train_step(model, classes=7)
    assert out.shape == (2, 7) and torch.isfinite(out).all()
    assert all(p.grad is not None for p in model.parameters())


# A fixed zero scale on the branch is rejected instead (see the invalid-config table).
SCALED = [c for c in itertools.product([False, True], ["branch", "identity"], [0.0, 0.3])
          if c != (False, "branch", 0.0)]


@pytest.mark.parametrize("learnable,target,scale", SCALED)
def test_scaled_merge_variants_build_and_get_gradients(learnable, target, scale):
    model = build_model(cfg(residual="scaled", residual_scale=scale, residual_learnable=learnable,
                            residual_target=target), num_classes=10)
    train_step(model)
    merges = [m for m in model.modules() if isinstance(m, Scaled)]
    assert len(merges) == 9
    for m in merges:
        assert isinstance(m.scale, nn.Parameter) == learnable
        assert float(m.scale.detach()) == pytest.approx(scale)
        if learnable:
            assert m.scale.grad is not None


@pytest.mark.parametrize("block", list(BLOCKS))
def test_every_block_runs_channels_last_with_the_same_result(block):
    # The trainer converts models to channels_last on CUDA; every parameter must allow it.
    model = build_model(cfg(block=block), num_classes=10).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)
        model.to(memory_format=torch.channels_last)
        out = model(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-4)


# ---------------------------------------------------------------- merge math (table-driven)

B, I = torch.randn(2, 4, 5, 5), torch.randn(2, 4, 5, 5)

MERGE_MATH = [
    ("add", Add(4), lambda b, i: b + i),
    ("scaled branch fixed", Scaled(4, scale=0.2), lambda b, i: 0.2 * b + i),
    ("scaled identity fixed", Scaled(4, scale=0.3, target="identity"), lambda b, i: b + 0.3 * i),
    ("scaled branch learnable 0 (ReZero)", Scaled(4, scale=0.0, learnable=True),
     lambda b, i: i),
    ("normalized", Normalized(4),
     lambda b, i: i + F.batch_norm(b, None, None, training=True)),
]


@pytest.mark.parametrize("name,merge,expected", MERGE_MATH, ids=[r[0] for r in MERGE_MATH])
def test_merge_math(name, merge, expected):
    torch.testing.assert_close(merge.train()(B, I), expected(B, I))


def test_fixed_scale_is_a_buffer_outside_the_state_dict_and_learnable_is_a_parameter():
    fixed, learnable = Scaled(4, scale=0.3, target="identity"), Scaled(4, learnable=True)
    assert list(fixed.parameters()) == [] and "scale" not in fixed.state_dict()
    assert [n for n, _ in learnable.named_parameters()] == ["scale"]


def test_fusion_concatenates_and_fuses_back_to_c_channels():
    fusion = Fusion(4)
    assert fusion.fuse[0].weight.shape == (4, 8, 1, 1)
    assert fusion(B, I).shape == I.shape
    nn.init.zeros_(fusion.zero_init_layer(None).weight)
    torch.testing.assert_close(fusion(B, I), I)


@pytest.mark.parametrize("block,activation", [("basic", F.relu), ("bottleneck", F.relu),
                                              ("dynamic", F.relu), ("preact", lambda x: x)])
def test_rezero_block_is_its_activated_identity_at_step_0(block, activation):
    model = build_model(cfg(block=block, residual="scaled", residual_scale=0.0,
                            residual_learnable=True, zero_init_residual=False), num_classes=10)
    plain, downsampling = model.layer2[1], model.layer2[0]
    y = torch.randn(2, plain.conv1.in_channels, 8, 8)
    torch.testing.assert_close(plain(y), activation(y))
    x = torch.randn(2, downsampling.conv1.in_channels, 8, 8)
    # A pre-activation block's projection sees BN-ReLU(x), not x.
    pre = F.relu(downsampling.bn1(x)) if block == "preact" else x
    torch.testing.assert_close(downsampling(x), activation(downsampling.downsample(pre)))


# ---------------------------------------------------------------- zero-init

ZERO_INIT = [
    ("basic", "add", "bn2"), ("bottleneck", "add", "bn3"), ("dynamic", "add", "bn2"),
    ("preact", "add", "conv2"), ("basic", "normalized", "merge.norm"),
    ("bottleneck", "fusion", "merge.fuse.1"), ("preact", "fusion", "merge.fuse.1"),
]


@pytest.mark.parametrize("block,residual,layer", ZERO_INIT)
def test_zero_init_silences_the_branch_so_blocks_start_as_identity(block, residual, layer):
    model = build_model(cfg(block=block, residual=residual), num_classes=10)
    for b in blocks_of(model):
        assert b.zero_init_layer() is b.get_submodule(layer)
        assert torch.count_nonzero(b.get_submodule(layer).weight) == 0
    second = model.layer1[1]
    y = torch.randn(2, second.conv1.in_channels, 8, 8)
    expected = y if block == "preact" else F.relu(y)
    torch.testing.assert_close(second(y), expected)


def test_zero_init_off_keeps_every_layer_initialised():
    model = build_model(cfg(zero_init_residual=False), num_classes=10)
    assert all(torch.count_nonzero(b.bn2.weight) > 0 for b in blocks_of(model))


def test_rezero_with_zero_init_keeps_the_last_bn_alive():
    # Zeroing both the ReZero scale and the BN would leave both with zero gradient forever.
    model = build_model(cfg(residual="scaled", residual_scale=0.0, residual_learnable=True,
                            zero_init_residual=True), num_classes=10)
    assert all(b.zero_init_layer() is None for b in blocks_of(model))
    assert all(torch.all(b.bn2.weight == 1) for b in blocks_of(model))


def test_kaiming_fan_out_init_of_convs():
    torch.manual_seed(0)
    model = build_model(TrainConfig(depth=20, width=4.0), num_classes=10)
    w = model.layer3[1].conv1.weight
    fan_out = w.shape[0] * w.shape[2] * w.shape[3]
    assert abs(w.std().item() - (2 / fan_out) ** 0.5) < 0.05 * (2 / fan_out) ** 0.5
    assert torch.all(model.layer3[1].bn1.weight == 1) and torch.all(model.bn1.bias == 0)


# ---------------------------------------------------------------- dynamic convolution

K1_CASES = [(1, 0, False, 3), (1, 1, True, 3), (2, 1, False, 3), (2, 0, True, 1)]


@pytest.mark.parametrize("stride,padding,bias,kernel", K1_CASES)
def test_dynamic_conv_with_one_kernel_is_exactly_a_plain_conv(stride, padding, bias, kernel):
    torch.manual_seed(0)
    dyn = DynamicConv2d(6, 5, kernel, stride=stride, padding=padding, K=1, bias=bias)
    plain = nn.Conv2d(6, 5, kernel, stride=stride, padding=padding, bias=bias)
    with torch.no_grad():
        dyn.weight.copy_(plain.weight)
        if bias:
            dyn.bias[0].copy_(plain.bias)
    x = torch.randn(3, 6, 9, 9)
    assert torch.allclose(dyn(x), plain(x), atol=1e-5)


def test_dynamic_conv_gives_each_sample_its_own_kernel():
    torch.manual_seed(0)
    dyn = DynamicConv2d(4, 6, 3, padding=1, K=4, temperature=1.0, bias=True)
    x = torch.randn(2, 4, 7, 7)
    x[1] *= 3
    weight, bias = dyn.kernels(dyn.attend(x))
    assert not torch.allclose(weight[0], weight[1])
    out = dyn(x)
    for i in range(2):
        own = F.conv2d(x[i:i + 1], weight[i], bias[i], padding=1)
        other = F.conv2d(x[i:i + 1], weight[1 - i], bias[1 - i], padding=1)
        torch.testing.assert_close(out[i:i + 1], own)
        assert not torch.allclose(out[i:i + 1], other, atol=1e-4)
        torch.testing.assert_close(out[i:i + 1], dyn(x[i:i + 1]))


def test_dynamic_conv_attention_is_a_tempered_softmax():
    dyn, other = DynamicConv2d(4, 4, 3, K=3, temperature=1.0), DynamicConv2d(4, 4, 3, K=3)
    x = torch.randn(5, 4, 6, 6)
    attn = dyn.attend(x)
    torch.testing.assert_close(attn.sum(1), torch.ones(5))
    assert not torch.allclose(attn, torch.full((5, 3), 1 / 3), atol=1e-3)
    assert set_temperature(nn.Sequential(dyn, other), 1e6) == 2 and other.temperature == 1e6
    torch.testing.assert_close(dyn.attend(x), torch.full((5, 3), 1 / 3), atol=1e-4, rtol=0)


@pytest.mark.parametrize("epoch,expected", [(0, 30.0), (5, 15.5), (10, 1.0), (50, 1.0)])
def test_annealed_temperature(epoch, expected):
    assert annealed_temperature(epoch) == pytest.approx(expected)


@pytest.mark.parametrize("kwargs,message", [
    (dict(K=0), "K is 0 but must be >= 1"), (dict(temperature=0.0), "temperature is 0.0"),
])
def test_dynamic_conv_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DynamicConv2d(4, 4, 3, **kwargs)


# ---------------------------------------------------------------- torchvision parity

@pytest.mark.parametrize("depth", [18, 34, 50])
def test_parameter_count_matches_torchvision(depth):
    ours = build_model(TrainConfig(depth=depth, stem="imagenet"), num_classes=1000)
    theirs = getattr(torchvision.models, f"resnet{depth}")(weights=None)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters())
    assert ours.state_dict().keys() == theirs.state_dict().keys()


def test_resnet18_loads_torchvision_state_dict_and_computes_the_same():
    torch.manual_seed(0)
    theirs = torchvision.models.resnet18(weights=None).eval()
    ours = build_model(TrainConfig(depth=18, stem="imagenet"), num_classes=1000).eval()
    assert sum(p.numel() for p in ours.parameters()) == 11_689_512
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x))


# ---------------------------------------------------------------- pretrained

def test_pretrained_loads_matching_tensors_and_drops_the_mismatched_fc(tmp_path):
    source = build_model(cfg(), num_classes=10)
    path = tmp_path / "weights.pt"
    torch.save({f"module.{k}": v for k, v in source.state_dict().items()}, path)
    model = build_model(cfg(pretrained=str(path)), num_classes=5)
    torch.testing.assert_close(model.layer2[0].conv1.weight, source.layer2[0].conv1.weight)
    assert model.fc.weight.shape == (5, 16)
    fresh = build_model(cfg(), num_classes=5)
    assert load_pretrained(fresh, str(path)) == ["fc.bias", "fc.weight"]


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("content,message", [
    ({"unrelated": torch.zeros(3)}, "none of its 1 entries match"),
    (torch.zeros(3), "holds a Tensor, not a state_dict"),
    (None, "no such file"),
])
def test_pretrained_rejects_files_that_give_no_weights(tmp_path, content, message):
    path = tmp_path / "weights.pt"
    if content is not None:
        torch.save(content, path)
    with pytest.raises(ValueError, match=message):
        build_model(cfg(pretrained=str(path)), num_classes=10)


def test_pretrained_never_unpickles_code(tmp_path):
    marker, path = tmp_path / "pwned", tmp_path / "evil.pt"
    torch.save({"conv1.weight": _Exploit(marker)}, path)
    with pytest.raises(pickle.UnpicklingError):
        build_model(cfg(pretrained=str(path)), num_classes=10)
    assert not marker.exists()


# ---------------------------------------------------------------- shortcuts (article 000)

@pytest.mark.parametrize("block", list(BLOCKS))
def test_projection_shortcuts_own_their_weights(block):
    model = build_model(cfg(block=block, shortcut="projection"), num_classes=10)
    params = list(model.named_parameters(remove_duplicate=False))
    assert len({p.data_ptr() for _, p in params}) == len(params)
    projections = [b for b in blocks_of(model) if not isinstance(b.downsample, nn.Identity)]
    assert len(projections) == (3 if block == "bottleneck" else 2)
    for b in projections:
        assert b.downsample[0].kernel_size == (1, 1)
        assert b.downsample[0].weight is not getattr(b.conv1, "weight", None)


def test_zeropad_subsamples_and_pads_channels_without_parameters():
    x = torch.randn(2, 3, 5, 5)
    pad = ZeroPad(3, 8, stride=2)
    out = pad(x)
    assert list(pad.parameters()) == [] and out.shape == (2, 8, 3, 3)
    torch.testing.assert_close(out[:, :3], x[:, :, ::2, ::2])
    assert torch.count_nonzero(out[:, 3:]) == 0


# ---------------------------------------------------------------- presets and widths

@pytest.mark.parametrize("depth", sorted(PRESETS))
def test_preset_depth_counts_its_weighted_layers(depth):
    model = build_model(TrainConfig(depth=depth, width=0.125), num_classes=10)
    weighted = [n for n, m in model.named_modules()
                if isinstance(m, (nn.Conv2d, nn.Linear)) and "downsample" not in n]
    assert len(weighted) == depth
    if len(PRESETS[depth].layers) == 3:
        n = (depth - 2) // 6
        assert PRESETS[depth].layers == (n, n, n) and 6 * n + 2 == depth


def test_block_overrides_preset_and_width_keeps_bottleneck_expansion():
    model = build_model(cfg(depth=20, block="bottleneck", width=0.5), num_classes=10)
    assert isinstance(model.layer1[0], Bottleneck) and model.conv1.out_channels == 8
    assert model.layer3[0].conv3.out_channels == 4 * 32 == model.fc.in_features
    assert isinstance(build_model(cfg(depth=50, block="preact"), 10).layer4[0], PreActBlock)


def test_preact_adds_a_final_norm_before_pooling_and_others_do_not():
    names = dict(build_model(cfg(block="preact"), 10).named_children())
    assert list(names)[-5:] == ["final_bn", "final_relu", "avgpool", "flatten", "fc"]
    assert "final_bn" not in dict(build_model(cfg(), 10).named_children())


def test_tiny_width_and_one_input_channel_build():
    model = build_model(cfg(width=0.01), num_classes=3, in_channels=1)
    assert model.conv1.out_channels == 1
    assert model(torch.randn(2, 1, 16, 16)).shape == (2, 3)


@pytest.mark.parametrize("fields,num_classes,message", [
    (dict(depth=21), 10, "depth is 21 but must be one of"),
    (dict(block="botleneck"), 10, "block is 'botleneck' but must be one of"),
    (dict(width=0.0), 10, "width is 0.0 but must be > 0"),
    (dict(residual="sum"), 10, "residual is 'sum' but must be one of"),
    (dict(dynamic_kernels=0), 10, "dynamic_kernels is 0 but must be >= 1"),
    (dict(residual="scaled", residual_scale=0.0), 10, "residual_scale is 0.0 but must be > 0"),
    (dict(), 0, "num_classes is 0 but must be an int >= 1"),
])
def test_invalid_configs_name_field_value_and_rule(fields, num_classes, message):
    with pytest.raises(ValueError, match=message):
        build_model(cfg(**fields), num_classes=num_classes)


def test_model_fields_are_exactly_the_config_model_section():
    from resnet_core.models.resnet import MODEL_FIELDS
    names = [f.name for f in dataclasses.fields(TrainConfig)]
    assert names[:len(MODEL_FIELDS)] == list(MODEL_FIELDS)
