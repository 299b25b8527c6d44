"""Dynamic convolution (Chen et al., CVPR 2020, "Dynamic Convolution: Attention over Convolution
Kernels"): each sample gets its own kernel, an attention-weighted sum of K learned kernels."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DynamicConv2d(nn.Module):
    """A conv whose kernel (and bias) is softmax(attention(x) / temperature) . K kernels.

    Attention is global-average-pool -> FC -> ReLU -> FC -> softmax over K, as in the paper
    (reduction 4). The per-sample kernels run as ONE grouped conv with the batch folded into
    the groups, so the cost is one conv call instead of a Python loop over samples.
    With K=1 the softmax is exactly 1 and this is exactly a plain conv with that kernel.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, K: int = 4, reduction: int = 4, temperature: float = 30.0,
                 bias: bool = False) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels),
                            ("kernel_size", kernel_size), ("K", K), ("reduction", reduction)):
            if value < 1:
                raise ValueError(f"{name} is {value} but must be >= 1")
        if temperature <= 0:
            raise ValueError(f"temperature is {temperature} but must be > 0")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.stride, self.padding, self.K = stride, padding, K
        # A plain float, not a buffer: the paper anneals it (see `set_temperature`).
        self.temperature = float(temperature)
        # At least K hidden units: a narrow layer (width multiplier 0.25 gives 4 channels)
        # otherwise gets a 1-unit ReLU bottleneck that, when dead, gives every sample the same
        # attention (seen in the per-sample-kernel test).
        hidden = max(K, in_channels // reduction)
        self.attention = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(1),
            nn.Linear(in_channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, K))
        # The K kernels stacked along the output dim (K*out, in, k, k), like a grouped conv's
        # weight: a 5-D parameter would make `model.to(memory_format=channels_last)` raise.
        self.weight = nn.Parameter(
            torch.empty(K * out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(K, out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Kaiming per kernel, as a plain conv of the network is initialised (fan_out, ReLU).
        for kernel in self.weight.view(self.K, -1, *self.weight.shape[1:]):
            nn.init.kaiming_normal_(kernel, mode="fan_out", nonlinearity="relu")
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def attend(self, x: torch.Tensor) -> torch.Tensor:
        """(N, K) mixing weights of the K kernels for each sample."""
        return torch.softmax(self.attention(x) / self.temperature, dim=1)

    def kernels(self, attn: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per-sample kernels (N, out, in, k, k) and biases (N, out) mixed by `attn`."""
        n = attn.shape[0]
        weight = attn @ self.weight.reshape(self.K, -1)
        weight = weight.view(n, self.out_channels, *self.weight.shape[1:])
        bias = attn @ self.bias if self.bias is not None else None
        return weight, bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        weight, bias = self.kernels(self.attend(x))
        out = F.conv2d(x.reshape(1, n * c, h, w), weight.flatten(0, 1),
                       None if bias is None else bias.flatten(), self.stride, self.padding,
                       groups=n)
        return out.view(n, self.out_channels, *out.shape[2:])

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.weight.shape[-1]}, "
                f"stride={self.stride}, padding={self.padding}, K={self.K}, "
                f"temperature={self.temperature}")


def annealed_temperature(epoch: float, anneal_epochs: float = 10.0, start: float = 30.0,
                         end: float = 1.0) -> float:
    """The paper's schedule: temperature falls linearly from 30 to 1 over the first 10 epochs
    (a near-uniform attention early lets all K kernels train before they specialise)."""
    if anneal_epochs <= 0 or epoch >= anneal_epochs:
        return end
    return start + (end - start) * max(0.0, epoch) / anneal_epochs


def set_temperature(model: nn.Module, temperature: float) -> int:
    """Set the softmax temperature of every DynamicConv2d in `model`; return how many."""
    convs = [m for m in model.modules() if isinstance(m, DynamicConv2d)]
    for conv in convs:
        conv.temperature = float(temperature)
    return len(convs)
