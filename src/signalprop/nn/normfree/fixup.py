"""Fixup initialization for residual networks without normalization (Zhang et al. 2019).

For a network of L residual branches with m weight layers each:

* the last weight layer of every branch starts at 0 (weight and bias), so every block is
  its shortcut at initialisation;
* the other branch layers are He-initialised and rescaled by L^(-1/(2m-2)):
  W ~ N(0, (g^2 / fan_in) * L^(-2/(2m-2))), g^2 = 1 / E[phi(z)^2] (2 for ReLU);
* the classifier's weight and bias start at 0.

The scalar biases (before every convolution and activation) and the scalar multiplier
after each branch are modules of the model (:class:`ScalarBias`, :class:`SkipInit` with
init 1); their own ``reset_parameters`` sets them to 0 and 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn

from signalprop import theory

_WEIGHTED = (nn.Linear, nn.modules.conv._ConvNd)


def he_gain(activation: str = "relu") -> float:
    """He gain g = 1 / sqrt(E[phi(z)^2]), z ~ N(0, 1): Var(w) = g^2 / fan_in keeps E[x^2].

    Examples:
        >>> round(he_gain("relu") ** 2, 6)
        2.0
    """
    act = theory.get_activation(activation)
    return 1.0 / math.sqrt(theory.gauss_expect(lambda u: act.fn(u) ** 2, 1.0, act.kinks))


def fixup_scale(num_branches: int, layers_per_branch: int) -> float:
    """The Fixup factor L^(-1/(2m-2)) on the He standard deviation (1 when m = 1).

    Examples:
        >>> fixup_scale(16, 3)
        0.5
    """
    if num_branches < 1 or layers_per_branch < 1:
        raise ValueError(
            f"num_branches and layers_per_branch must be >= 1, got {num_branches}, "
            f"{layers_per_branch}"
        )
    if layers_per_branch == 1:
        return 1.0
    return float(num_branches) ** (-1.0 / (2 * layers_per_branch - 2))


def _fan_in(m: nn.Module) -> int:
    if isinstance(m, nn.modules.conv._ConvTransposeNd):
        raise ValueError(f"Fixup needs forward convolutions or linears, got {type(m).__name__}")
    return m.weight[0].numel()


@torch.no_grad()
def fixup_init_(
    branches: Sequence[Sequence[nn.Module]],
    classifier: nn.Linear | None = None,
    *,
    activation: str = "relu",
) -> None:
    """Initialise residual branches and the classifier by the Fixup rule (in place).

    Args:
        branches: one sequence per residual branch: its weight layers (``nn.Linear`` or
            ``nn.ConvNd``) in the order the branch applies them.
            L = ``len(branches)``; m = the number of layers of each branch.
        classifier: the final linear layer (weight and bias set to 0), or None.
        activation: the branch activation (sets the He gain).

    Examples:
        >>> branches = [[nn.Conv2d(8, 8, 3), nn.Conv2d(8, 8, 3)] for _ in range(4)]
        >>> fixup_init_(branches, nn.Linear(8, 2))
        >>> branches[0][1].weight.abs().max().item()
        0.0

    References:
        Zhang, Dauphin & Ma, "Fixup initialization: residual learning without
        normalization", ICLR 2019 (arXiv 1901.09321).
    """
    if not branches:
        raise ValueError("branches must hold at least one residual branch, got none")
    for i, branch in enumerate(branches):
        if not branch:
            raise ValueError(f"branches[{i}] holds no layer")
        bad = [type(m).__name__ for m in branch if not isinstance(m, _WEIGHTED)]
        if bad:
            raise ValueError(f"branches[{i}] holds {bad}; expected nn.Linear / nn.ConvNd layers")
    if classifier is not None and not isinstance(classifier, nn.Linear):
        raise ValueError(f"classifier must be an nn.Linear, got {type(classifier).__name__}")
    gain = he_gain(activation)
    n = len(branches)
    for branch in branches:
        scale = fixup_scale(n, len(branch))
        for m in branch[:-1]:
            nn.init.normal_(m.weight, std=gain * scale / math.sqrt(_fan_in(m)))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        nn.init.zeros_(branch[-1].weight)
        if branch[-1].bias is not None:
            nn.init.zeros_(branch[-1].bias)
    if classifier is not None:
        nn.init.zeros_(classifier.weight)
        if classifier.bias is not None:
            nn.init.zeros_(classifier.bias)
