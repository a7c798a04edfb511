"""Representation collapse: do a model's embeddings of a batch still spread out?

Self-supervised objectives without negatives (BYOL, SimSiam) have a trivial minimum: every
input mapped to one vector. Collapse shows as l2-normalized embeddings whose per-dimension
standard deviation drops from 1/sqrt(d) towards 0 (Chen & He, "Exploring simple Siamese
representation learning", CVPR 2021), as a low effective rank (Garrido et al., "RankMe",
ICML 2023), as cosines near 1 across examples, and as dead dimensions.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
from torch import Tensor

from signalprop._forward import (
    ModelInput,
    buffers_restored,
    first_tensor,
    forward_or_locate,
    hooks_removed_after,
)
from signalprop.measure._per_example import batchnorm_policy
from signalprop.results.collapse import CollapseResult


def _embed(model: nn.Module, x: ModelInput, batchnorm: str) -> Tensor:
    """The model's output for ``x`` as (B, d) float64 (no grad, nothing left changed)."""
    with torch.no_grad(), batchnorm_policy(model, batchnorm, False), buffers_restored(model), \
            hooks_removed_after() as handles:
        out = forward_or_locate(model, x, handles)
    z = first_tensor(out)
    if z is None or z.dim() < 1:
        raise ValueError(f"the model's output holds no floating-point tensor with a batch "
                         f"axis, got {type(out).__name__}")
    return z.detach().reshape(z.shape[0], -1).double()


def _cosines(u: Tensor) -> float:
    """Mean cosine between different rows of the unit-norm rows ``u``."""
    b = u.shape[0]
    if b < 2:
        return math.nan
    s = u.sum(dim=0)
    return float((s @ s - (u * u).sum()) / (b * (b - 1)))


def _unit(z: Tensor) -> Tensor:
    return z / torch.linalg.vector_norm(z, dim=1, keepdim=True).clamp_min(1e-300)


def _effective_rank(z: Tensor) -> float:
    s = torch.linalg.svdvals(z)
    total = s.sum()
    if total <= 0:
        return 0.0
    p = s / total
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def collapse(
    model: nn.Module,
    x: ModelInput,
    *,
    x2: ModelInput | None = None,
    dead_tol: float = 1e-3,
    batchnorm: str = "auto",
    label: str | None = None,
) -> CollapseResult:
    """Collapse statistics of ``model``'s embeddings of a batch (and of a second view).

    The output for ``x`` (flattened to (B, d)) is the embedding z. Reported: the mean
    per-dimension std of z / ||z|| (1 / sqrt(d) without collapse), the effective rank
    exp(H(s / sum s)) of z's singular values, the mean cosine between examples, the dead
    dimensions, and with ``x2`` (the same examples under another augmentation) the mean
    cosine between the two views of each example.

    Args:
        model: any module; its output (or first floating tensor of it) is the embedding.
        x: a batch (tensor, tuple of positional inputs or dict of keyword inputs).
        x2: the second view of the same batch (optional).
        dead_tol: a dimension is dead when its std over the batch is at most this times
            the root mean square of all entries of z.
        batchnorm: ``"auto"`` keeps the model's mode (train-mode BatchNorm uses the batch's
            statistics), ``"eval"`` uses running statistics, ``"error"`` refuses
            train-mode BatchNorm.
        label: the result's label (default: the model's class name).

    Returns:
        :class:`~signalprop.results.CollapseResult` (statistics NaN if z held NaN/Inf).

    Examples:
        >>> import torch, signalprop as sp
        >>> z = torch.randn(512, 16)  # isotropic embeddings: no collapse
        >>> r = sp.collapse(torch.nn.Identity(), z, x2=z + 0.1 * torch.randn(512, 16))
        >>> round(r.std_ratio, 1), r.effective_rank > 14, r.dead_dims, r.cos_views > 0.9
        (1.0, True, 0, True)
    """
    if not (math.isfinite(dead_tol) and dead_tol >= 0):
        raise ValueError(f"dead_tol must be finite and >= 0, got {dead_tol!r}")
    z = _embed(model, x, batchnorm)
    z2 = _embed(model, x2, batchnorm) if x2 is not None else None
    if z2 is not None and z2.shape != z.shape:
        raise ValueError(f"x2 gives embeddings of shape {tuple(z2.shape)}, x gives "
                         f"{tuple(z.shape)}: pass the same examples under another view")
    b, d = z.shape
    bad = int((~torch.isfinite(z)).sum()) + (int((~torch.isfinite(z2)).sum()) if z2 is not None
                                            else 0)
    nan = math.nan
    if bad:
        std = rank = cos_ex = nan
        cos_v: float | None = nan if z2 is not None else None
        dead = 0
    else:
        u = _unit(z)
        std = float(u.std(dim=0).mean()) if b > 1 else nan
        rank, cos_ex = _effective_rank(z), _cosines(u)
        cos_v = float((u * _unit(z2)).sum(dim=1).mean()) if z2 is not None else None
        rms = float(z.square().mean().sqrt())
        dead = int((z.std(dim=0) <= dead_tol * rms).sum()) if b > 1 else 0
    return CollapseResult(std, rank, cos_v, cos_ex, dead, d, b, float(dead_tol), bad,
                          label or type(model).__name__)
