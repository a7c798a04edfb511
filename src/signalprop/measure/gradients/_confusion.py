"""Gradient confusion (Sankararaman et al., ICML 2020) from the per-example gradient Gram."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

from signalprop._forward import ModelInput
from signalprop.measure._options import check_floats, check_int, check_label
from signalprop.measure._per_example import LossFn, batch_size
from signalprop.measure.gradients._gram.engine import gradient_gram
from signalprop.results.confusion import ConfusionResult

DEFAULT_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def confusion_from_gram(
    gram: Tensor,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
    bins: int = 100,
    label: str = "",
) -> ConfusionResult:
    """Confusion statistics of per-example gradients given their (B, B) Gram matrix.

    eta = max(0, -min_{i != j} G_ij); cos_ij = G_ij / sqrt(G_ii G_jj) over pairs i < j whose
    gradients are both non-zero. Quantiles use linear interpolation (NumPy's default).

    Args:
        gram: (B, B) symmetric Gram matrix, B >= 2.
        quantiles: levels in [0, 1].
        bins: histogram bins over [-1, 1].
        label: the result's label.

    Examples:
        >>> G = torch.tensor([[1.0, -0.5], [-0.5, 1.0]], dtype=torch.float64)
        >>> r = confusion_from_gram(G)
        >>> r.eta, r.min_cosine
        (0.5, -0.5)
    """
    if gram.dim() != 2 or gram.shape[0] != gram.shape[1]:
        raise ValueError(f"gram must be a square (B, B) matrix, got shape {tuple(gram.shape)}")
    b = gram.shape[0]
    if b < 2:
        raise ValueError(f"gradient confusion needs at least 2 examples, got a batch of {b}")
    bins = check_int("bins", bins, low=1)  # type: ignore[assignment]
    qs = check_floats("quantiles", quantiles, low=0.0, high=1.0)
    g = gram.detach().to(torch.float64).cpu().numpy()
    g = 0.5 * (g + g.T)  # exact symmetry; the two halves differ by rounding only
    iu = np.triu_indices(b, k=1)
    inner = g[iu]
    eta = max(0.0, -float(inner.min()))
    sq = np.clip(np.diag(g), 0.0, None)
    norms = np.sqrt(sq)
    zero = norms == 0.0
    ok = ~zero[iu[0]] & ~zero[iu[1]]
    cos = np.clip(inner[ok] / (norms[iu[0]][ok] * norms[iu[1]][ok]), -1.0, 1.0)
    counts, edges = np.histogram(cos, bins=bins, range=(-1.0, 1.0))
    if cos.size:
        stats = (float(cos.min()), float(cos.mean()), float(cos.std()))
        qv = np.quantile(cos, qs) if qs else []
    else:
        stats = (float("nan"),) * 3
        qv = [float("nan")] * len(qs)
    return ConfusionResult(
        label=label, batch_size=b, n_pairs=int(cos.size), eta=eta,
        min_cosine=stats[0], mean_cosine=stats[1], std_cosine=stats[2],
        quantiles={q: float(v) for q, v in zip(qs, qv)}, mean_sq_norm=float(sq.mean()),
        zero_gradient_examples=int(zero.sum()), hist_edges=[float(e) for e in edges],
        hist_counts=[int(c) for c in counts],
    )


def gradient_confusion(
    model: nn.Module,
    x: ModelInput,
    y: Any = None,
    *,
    loss_fn: LossFn | None = None,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
    bins: int = 100,
    batchnorm: str = "auto",
    dropout: str = "auto",
    method: str = "auto",
    label: str | None = None,
) -> ConfusionResult:
    """Gradient confusion of one batch: eta and the distribution of pairwise cosines of the
    per-example gradients, from :func:`gradient_gram` (about one backward pass).

    eta = max(0, -min_{i != j} <grad l_i, grad l_j>) is the paper's confusion bound:
    <grad l_i, grad l_j> >= -eta for all i != j. Low confusion (cosines concentrated at 0 or
    above) lets SGD make progress on all examples at once; deeper networks without skips
    or normalization raise it, width lowers it.

    Args:
        model: the network, as for :func:`gradient_gram`.
        x: inputs with B >= 2 examples.
        y: targets, as for :func:`gradient_gram`.
        loss_fn: per-example loss, as for :func:`gradient_gram` (required).
        batchnorm: as for :func:`gradient_gram`.
        dropout: as for :func:`gradient_gram` (random draws are refused unless ``"eval"``).
        method: per-layer method, as for :func:`gradient_gram`.
        quantiles: cosine quantiles to report.
        bins: histogram bins over [-1, 1] (kept in the result for plotting).
        label: the result's label (default: the model's class name).

    Returns:
        :class:`~signalprop.results.ConfusionResult`.

    Examples:
        >>> model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 3))
        >>> r = gradient_confusion(model, torch.randn(8, 5), torch.randint(0, 3, (8,)),
        ...                        loss_fn=nn.CrossEntropyLoss())
        >>> r.n_pairs, -1.0 <= r.min_cosine <= r.mean_cosine <= 1.0
        (28, True)

    References:
        Sankararaman, De, Xu, Huang & Goldstein, "The impact of neural network
        overparameterization on gradient confusion and stochastic gradient descent",
        ICML 2020 (arXiv 1904.06963).
    """
    b = batch_size(x)
    if b < 2:
        raise ValueError(f"gradient confusion needs at least 2 examples, got x with batch {b}")
    bins = check_int("bins", bins, low=1)  # type: ignore[assignment]
    qs = check_floats("quantiles", quantiles, low=0.0, high=1.0)
    check_label(label)
    gram = gradient_gram(model, x, y, loss_fn=loss_fn, batchnorm=batchnorm, dropout=dropout,
                         method=method)
    res = confusion_from_gram(gram.matrix, qs, bins, label or type(model).__name__)
    res.meta.update(mode="train" if model.training else "eval", method=method)
    return res
