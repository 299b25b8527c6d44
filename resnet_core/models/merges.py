"""How a block's residual branch and its identity path are merged (article 001's tricks).

A merge is an nn.Module `forward(branch, identity) -> tensor`, returning the value BEFORE the
block's final activation. Each class offers `factory(...)`, which picks the options it uses and
returns `channels -> module`, so the builder passes the same options to every merge.
"""

from __future__ import annotations

from functools import partial
from typing import Callable, Optional

import torch
from torch import nn

from resnet_core import names

NormLayer = Callable[[int], nn.Module]


class Merge(nn.Module):
    @classmethod
    def factory(cls, *, scale: float, learnable: bool, target: str,
                norm_layer: NormLayer) -> Callable[[int], "Merge"]:
        return partial(cls)

    def __init__(self, channels: int = 0) -> None:
        super().__init__()

    def zero_init_layer(self, default: nn.Module) -> Optional[nn.Module]:
        """The layer whose weight, zeroed, makes this merge return the identity at init
        (Goyal et al. 2017); `default` is the block's last norm of the branch."""
        return default


class Add(Merge):
    """He et al. 2016: identity + branch."""

    def forward(self, branch: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
        return branch + identity


class Scaled(Merge):
    """A scalar on one path (article 001). On the branch: Inception-ResNet's 0.1-0.3 fixed
    scaling, or SkipInit/ReZero with a learnable scale initialised at 0. On the identity: the
    article's own variant (a learnable `nn.Parameter(torch.ones(1))` times the identity)."""

    TARGETS = ("branch", "identity")

    @classmethod
    def factory(cls, *, scale: float, learnable: bool, target: str,
                norm_layer: NormLayer) -> Callable[[int], "Merge"]:
        return partial(cls, scale=scale, learnable=learnable, target=target)

    def __init__(self, channels: int = 0, *, scale: float = 1.0, learnable: bool = False,
                 target: str = "branch") -> None:
        super().__init__()
        if target not in self.TARGETS:
            raise ValueError(f"residual_target is {target!r} but must be one of "
                             f"{list(self.TARGETS)}")
        if target == "branch" and scale == 0 and not learnable:
            raise ValueError(f"residual_scale is {scale!r} but must be > 0 when "
                             "residual_learnable is False and residual_target is 'branch' (a "
                             "fixed zero scale switches every residual branch off for good)")
        self.target = target
        value = torch.tensor(float(scale))
        if learnable:
            self.scale = nn.Parameter(value)
        else:
            # Not persistent: a fixed scale comes from the config, so state_dicts of `add` and
            # fixed `scaled` models stay interchangeable (e.g. for `pretrained`).
            self.register_buffer("scale", value, persistent=False)

    def forward(self, branch: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
        if self.target == "branch":
            return self.scale * branch + identity
        return branch + self.scale * identity

    def zero_init_layer(self, default: nn.Module) -> Optional[nn.Module]:
        # ReZero already silences the branch; zeroing its last BN too would make both the
        # scale's and the BN's gradients exactly zero forever (each is the other's factor).
        if self.target == "branch" and float(self.scale.detach()) == 0.0:
            return None
        return default

    def extra_repr(self) -> str:
        kind = "learnable" if isinstance(self.scale, nn.Parameter) else "fixed"
        return f"target={self.target}, scale={float(self.scale.detach()):g} ({kind})"


class _NormedMerge(Merge):
    """A merge with a norm layer of its own."""

    @classmethod
    def factory(cls, *, scale: float, learnable: bool, target: str,
                norm_layer: NormLayer) -> Callable[[int], "Merge"]:
        return partial(cls, norm_layer=norm_layer)


class Normalized(_NormedMerge):
    """identity + norm(branch): an extra normalization of the branch before the merge.

    Article 001 writes `out += residual_norm(out - identity)` with `out` the branch output,
    i.e. branch + norm(branch - identity): the identity is never added, it only enters with a
    minus sign inside a normalization, so the block loses its skip connection (the identity is
    cancelled) and stops being residual. The sound version, implemented here, normalizes the
    branch output only and adds the untouched identity.
    """

    def __init__(self, channels: int, *, norm_layer: NormLayer = nn.BatchNorm2d) -> None:
        super().__init__()
        self.norm = norm_layer(channels)

    def forward(self, branch: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
        return identity + self.norm(branch)

    def zero_init_layer(self, default: nn.Module) -> Optional[nn.Module]:
        # Zeroing the block's own last BN would feed a constant to this norm, whose gradient
        # is then amplified by 1/sqrt(eps); zeroing this norm silences the branch soundly.
        return self.norm


class Fusion(_NormedMerge):
    """Multi-scale feature fusion (article 001): identity + fuse(cat[branch, identity]),
    where fuse is a 1x1 conv from 2C back to C channels followed by a norm. The article adds
    the fusion to the branch (`out += fusion(cat[out, identity])`), dropping the plain skip
    path; adding it to the identity keeps the block residual."""

    def __init__(self, channels: int, *, norm_layer: NormLayer = nn.BatchNorm2d) -> None:
        super().__init__()
        self.fuse = nn.Sequential(nn.Conv2d(2 * channels, channels, 1, bias=False),
                                  norm_layer(channels))

    def forward(self, branch: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
        return identity + self.fuse(torch.cat([branch, identity], dim=1))

    def zero_init_layer(self, default: nn.Module) -> Optional[nn.Module]:
        # The identity also enters the fusion, so only the fusion's norm makes the block the
        # identity at init.
        return self.fuse[1]


MERGES: dict[str, type[Merge]] = names.registry(names.MERGES, {
    "add": Add,
    "scaled": Scaled,
    "normalized": Normalized,
    "fusion": Fusion,
})
