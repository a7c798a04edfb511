"""Initializers that put a network where the theory wants it (torch adapters of theory/).

* :func:`critical_`: W ~ N(0, sigma_w^2 / fan_in), b ~ N(0, sigma_b^2) at the critical
  sigma_w^2 of the activation (chi_1 = 1; :func:`signalprop.theory.critical_point`).
* :func:`lecun_normal_`: W ~ N(0, 1 / fan_in), b = 0 (the SELU init, Klambauer et al. 2017).
* :func:`delta_orthogonal_`: a conv kernel that is zero except its spatial centre, which
  is a (scaled) orthogonal matrix (Xiao et al. 2018), so a CNN's input-output Jacobian can
  be exactly norm-preserving at initialization.

Each function returns what it set, so callers can log it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.nn as nn
from torch import Tensor

from signalprop import theory

_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _layers(model: nn.Module) -> Iterator[nn.Module]:
    for m in model.modules():
        if isinstance(m, _WEIGHTED) and isinstance(getattr(m, "weight", None), Tensor):
            yield m


def _fan_in(weight: Tensor) -> int:
    if weight.dim() < 2:
        raise ValueError(
            f"weight must have at least 2 dimensions (out, in, ...), got shape "
            f"{tuple(weight.shape)}"
        )
    return weight[0].numel()  # in_features, or in_channels / groups * prod(kernel)


@torch.no_grad()
def critical_(
    model: nn.Module,
    activation: str,
    sigma_b2: float = 0.0,
    *,
    q0: float = 1.0,
    generator: torch.Generator | None = None,
    **params: float,
) -> float:
    """Initialize every Linear/Conv of ``model`` at the critical point of ``activation``.

    W ~ N(0, sigma_w^2 / fan_in) with sigma_w^2 from
    ``signalprop.theory.critical_point(activation, sigma_b2)`` (chi_1 = 1: signals and
    gradients neither vanish nor explode exponentially with depth), b ~ N(0, sigma_b^2).

    Args:
        model: any module; Linear and Conv1d/2d/3d weights (and biases) are set.
        activation: a registered activation name (``signalprop.theory.activation_names()``).
        sigma_b2: bias variance (>= 0).
        q0: input pre-activation variance that selects the fixed point (see theory).
        generator: optional torch random generator.
        **params: activation parameters, e.g. ``negative_slope=0.2``.

    Returns:
        The critical sigma_w^2 used.

    Examples:
        >>> m = nn.Sequential(nn.Linear(512, 512), nn.Tanh(), nn.Linear(512, 512))
        >>> critical_(m, "tanh")
        1.0
        >>> round(m[0].weight.var().item() * 512, 1)
        1.0
    """
    act = theory.get_activation(activation, **params)
    cp = theory.critical_point(act, sigma_b2, q0=q0)
    layers = list(_layers(model))
    if not layers:
        raise ValueError(f"{type(model).__name__} has no Linear or Conv layers to initialize")
    for m in layers:
        std = math.sqrt(cp.sigma_w2 / _fan_in(m.weight))
        m.weight.normal_(0.0, std, generator=generator)
        if m.bias is not None:
            if cp.sigma_b2 > 0:
                m.bias.normal_(0.0, math.sqrt(cp.sigma_b2), generator=generator)
            else:
                m.bias.zero_()
    return cp.sigma_w2


@torch.no_grad()
def lecun_normal_(
    module_or_tensor: nn.Module | Tensor, *, generator: torch.Generator | None = None
) -> nn.Module | Tensor:
    """LeCun normal: W ~ N(0, 1 / fan_in), biases 0 (for a module: every Linear/Conv).

    With SELU this keeps the self-normalizing fixed point (mean 0, variance 1): sum w ~ 0
    and sum w^2 ~ 1 per unit (Klambauer et al. 2017).

    Args:
        module_or_tensor: a weight tensor (out, in, ...) or a module.
        generator: optional torch random generator.

    Returns:
        Its argument, initialized in place.

    Examples:
        >>> w = lecun_normal_(torch.empty(256, 1024))
        >>> round(w.var().item() * 1024, 1)
        1.0
    """
    if isinstance(module_or_tensor, Tensor):
        return module_or_tensor.normal_(
            0.0, 1.0 / math.sqrt(_fan_in(module_or_tensor)), generator=generator)
    layers = list(_layers(module_or_tensor))
    if not layers:
        raise ValueError(
            f"{type(module_or_tensor).__name__} has no Linear or Conv layers to initialize")
    for m in layers:
        lecun_normal_(m.weight, generator=generator)
        if m.bias is not None:
            m.bias.zero_()
    return module_or_tensor


@torch.no_grad()
def delta_orthogonal_(
    weight: Tensor, gain: float = 1.0, *, groups: int = 1,
    generator: torch.Generator | None = None
) -> Tensor:
    """Delta-orthogonal conv kernel (Xiao et al., ICML 2018): zero except the centre tap.

    W[:, :, centre] = gain * H with H (out x in) having orthonormal columns (out >= in) or
    rows (out < in), so the layer maps each position by an isometry (times gain). For a
    critical tanh CNN use gain = sqrt(sigma_w^2) at the critical point. A grouped
    convolution gets one such block per group (pass its ``groups``: the weight's shape
    does not tell a depthwise (C, 1, k, k) kernel from a 1 -> C one).

    Args:
        weight: conv weight (out, in / groups, k1, ...), at least 3 dimensions.
        gain: scale of the orthogonal matrix (> 0).
        groups: the layer's groups (a divisor of ``out``).
        generator: optional torch random generator.

    Returns:
        ``weight``, initialized in place.

    Examples:
        >>> w = delta_orthogonal_(torch.empty(8, 8, 3, 3))
        >>> c = w[:, :, 1, 1]
        >>> torch.allclose(c.T @ c, torch.eye(8), atol=1e-5), int((w != 0).sum())
        (True, 64)
        >>> d = delta_orthogonal_(torch.empty(4, 1, 3, 3), groups=4)  # depthwise: +-1 taps
        >>> d[:, 0, 1, 1].abs().tolist()
        [1.0, 1.0, 1.0, 1.0]
    """
    if weight.dim() < 3:
        raise ValueError(
            "delta_orthogonal_ needs a conv weight (out, in, k, ...) with >= 3 dimensions, "
            f"got shape {tuple(weight.shape)}"
        )
    if not gain > 0 or not math.isfinite(gain):
        raise ValueError(f"gain must be finite and > 0, got {gain!r}")
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1 \
            or weight.shape[0] % groups:
        raise ValueError(f"groups must be a positive divisor of the {weight.shape[0]} output "
                         f"channels, got {groups!r}")
    out_ch, in_ch = weight.shape[0] // groups, weight.shape[1]
    centre = tuple(k // 2 for k in weight.shape[2:])
    g = torch.randn(groups, max(out_ch, in_ch), min(out_ch, in_ch), generator=generator,
                    dtype=torch.float64)
    q, r = torch.linalg.qr(g)  # (groups, max, min) with orthonormal columns
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)  # Haar
    h = q if out_ch >= in_ch else q.transpose(-2, -1)  # (groups, out / g, in / g)
    weight.zero_()
    weight[(slice(None), slice(None), *centre)] = (gain * h.reshape(-1, in_ch)).to(weight.dtype)
    return weight
