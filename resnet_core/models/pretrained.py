"""Start a model from a local state_dict file (transfer learning, article 002)."""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Mapping

import torch
from torch import nn
from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present

log = logging.getLogger(__name__)

# Wrappers that prefix every key: DistributedDataParallel/DataParallel and torch.compile.
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def load_pretrained(model: nn.Module, path: str) -> list[str]:
    """Load every tensor of the file at `path` whose name and shape match `model`; return the
    names dropped (e.g. the `fc` of a different class count). ValueError if none matched."""
    file = os.path.expanduser(path)
    if not os.path.isfile(file):
        raise ValueError(f"pretrained is {path!r} but no such file exists")
    # weights_only: a checkpoint is data, never code (a crafted pickle must not execute).
    state = torch.load(file, map_location="cpu", weights_only=True)
    if not isinstance(state, Mapping):
        raise ValueError(f"pretrained is {path!r} but it holds a {type(state).__name__}, "
                         f"not a state_dict (a mapping of names to tensors)")
    state = OrderedDict(state)
    for prefix in _WRAPPER_PREFIXES:
        consume_prefix_in_state_dict_if_present(state, prefix)
    own = model.state_dict()
    matched = {k: v for k, v in state.items()
               if k in own and isinstance(v, torch.Tensor) and v.shape == own[k].shape}
    if not matched:
        raise ValueError(f"pretrained is {path!r} but none of its {len(state)} entries match "
                         f"a parameter or buffer of the model by name and shape")
    model.load_state_dict(matched, strict=False)
    dropped = sorted(set(state) - set(matched))
    if dropped:
        log.info("pretrained %s: loaded %d tensors, dropped %d (name or shape mismatch): %s",
                 path, len(matched), len(dropped), ", ".join(dropped[:10]))
    return dropped
