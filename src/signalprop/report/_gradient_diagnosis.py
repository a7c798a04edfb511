"""Exploding and vanishing gradients from a gradient SPP (see
:mod:`signalprop.report.diagnosis` for the thresholds)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from signalprop.report._causes import (
    BRANCH_ADVICE,
    CRITICAL,
    NORMFREE,
    choose_fix,
    gradient_cause,
    is_residual,
)
from signalprop.report._finding import GRADIENT_CHI_LIMIT, GRADIENT_RATIO_LIMIT, Diagnosis
from signalprop.results import GradSPPResult, SPPResult

Fixes = Mapping[str, str | None] | None


def _finite(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


def gradient_norms(res: GradSPPResult, numel: Sequence[int] | None = None) -> list[float | None]:
    """Per-example squared gradient norm at each block: (var + sq_mean) x elements per
    example (per element when ``numel`` is None), ``None`` where not finite.

    Examples:
        >>> from signalprop.results import GradBlockStats, GradSPPResult
        >>> g = GradSPPResult("g", [GradBlockStats("a", 0, 0.5, 1.5)])
        >>> gradient_norms(g, [10])
        [20.0]
    """
    out: list[float | None] = []
    for i, r in enumerate(res.records):
        v, m = r.grad_avg_var, r.grad_avg_sq_mean
        if r.nonfinite or not (_finite(v) and _finite(m)):
            out.append(None)
        else:
            out.append((v + m) * (numel[i] if numel is not None else 1))
    return out


def diagnose_gradients(
    res: GradSPPResult,
    numel: Sequence[int] | None = None,
    *,
    activation: str | None = None,
    critical_sigma_w2: float | None = None,
    theory_chi_1: float | None = None,
    residual: bool = False,
    spp: SPPResult | None = None,
    shapes: Sequence[tuple[int, ...]] | None = None,
    fixes: Fixes = None,
) -> Diagnosis | None:
    """Exploding or vanishing gradients between the last block and the first.

    ratio = |g_first|^2 / |g_last|^2 (per-example squared norms, see
    :func:`gradient_norms`) and chi = ratio ** (1 / (n - 1)) over n blocks; fires when
    ratio > ``GRADIENT_RATIO_LIMIT`` and chi > ``GRADIENT_CHI_LIMIT`` (exploding toward
    the input), or the reciprocal conditions (vanishing).

    Args:
        res: a measured gradient SPP.
        numel: elements per example of each block's output (for blocks of different sizes).
        activation: the model's activation, named in the message and the fix.
        critical_sigma_w2: the critical sigma_w^2 of that activation, for the message.
        theory_chi_1: mean-field chi_1 of the model's initialization, for the message.
        residual: the model has residual blocks (the fix is NF conversion, not an init);
            read from ``spp`` when given.
        spp: the forward SPP: which blocks add a skip and how large their branches are
            tell whether the branches or the layers between blocks change the gradient.
        shapes: per-example output shape of each forward block (where sizes change).
        fixes: which fixes apply (see the module docstring); None: not checked.

    Returns:
        An ``"exploding_gradients"`` or ``"vanishing_gradients"`` :class:`Diagnosis`, or None.

    Examples:
        >>> from signalprop.results import GradBlockStats, GradSPPResult
        >>> g = GradSPPResult("g", [GradBlockStats(f"fc{i}", i, 0.0, 4.0 ** (3 - i))
        ...                         for i in range(4)])
        >>> diagnose_gradients(g, activation="relu").kind
        'exploding_gradients'
    """
    norms = gradient_norms(res, numel)
    pairs = [(r, n) for r, n in zip(res.records, norms) if n is not None]
    if len(pairs) < 2 or pairs[-1][1] <= 0 or pairs[0][1] <= 0:
        return None
    (first, g0), (last, g1) = pairs[0], pairs[-1]
    ratio = g0 / g1
    chi = ratio ** (1.0 / (len(pairs) - 1))
    if ratio > GRADIENT_RATIO_LIMIT and chi > GRADIENT_CHI_LIMIT:
        kind, title = "exploding_gradients", "exploding gradients"
        past = [r for r, n in pairs if n / g1 > GRADIENT_RATIO_LIMIT]
    elif ratio < 1 / GRADIENT_RATIO_LIMIT and chi < 1 / GRADIENT_CHI_LIMIT:
        kind, title = "vanishing_gradients", "vanishing gradients"
        past = [r for r, n in pairs if n / g1 < 1 / GRADIENT_RATIO_LIMIT]
    else:
        return None
    # where it happens: going back from the output, the first block past the limit
    worst = past[-1]
    theory = f" Mean-field chi_1 of this initialization is {theory_chi_1:.3g}." \
        if theory_chi_1 is not None else ""
    if spp is not None:
        residual = is_residual(spp)
        crit, branches = gradient_cause(pairs, spp, shapes)
    else:
        branches = residual
        crit = (" Residual branches that are not scaled down multiply the gradient at "
                "every block." if residual else "")
    if not residual and activation and critical_sigma_w2 is not None:
        crit += (f" Critical initialization for {activation} is sigma_w^2 = "
                 f"{critical_sigma_w2:.4g} (chi_1 = 1).")
    fix, why = choose_fix([NORMFREE] if residual or not activation else [CRITICAL, NORMFREE],
                          fixes, activation)
    if not fix:
        crit += f" No automatic fix applies: {why}" + (f"; {BRANCH_ADVICE}." if branches
                                                        else ".")
    return Diagnosis(
        kind, title,
        f"the per-example squared gradient norm changes by a factor {ratio:.3g} from the "
        f"last block ('{last.name}') back to the first ('{first.name}'), by more than "
        f"{GRADIENT_RATIO_LIMIT:g}x already at block {worst.index} ('{worst.name}'): about "
        f"{chi:.3g} per block, chi_1 far from 1.{theory}{crit}",
        f"ratio outside [1/{GRADIENT_RATIO_LIMIT:g}, {GRADIENT_RATIO_LIMIT:g}] "
        f"(GRADIENT_RATIO_LIMIT) and per-block chi outside [1/{GRADIENT_CHI_LIMIT:g}, "
        f"{GRADIENT_CHI_LIMIT:g}] (GRADIENT_CHI_LIMIT)",
        worst.name, fix)
