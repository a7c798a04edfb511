"""Diagnoses in plain words: pure functions from measurement results to :class:`Diagnosis`.

Every diagnosis names the rule that fired (a named threshold below), the block where it
first holds, and one line of signalprop code that applies the fix. Nothing here measures
or draws: the functions read result objects only, so they can be tested on hand-made ones.

Thresholds (module constants, so a test or a caller can read them):

* ``MEAN_SHIFT_RATIO`` = 1: a *mean shift* when the average squared channel mean exceeds
  ``MEAN_SHIFT_RATIO`` times the average channel variance at some block and at every
  block after it (Brock, De & Smith 2021: in unnormalized ReLU ResNets the mean grows
  until it dominates the signal; Scaled Weight Standardization removes it).
* ``VARIANCE_GROWTH_LIMIT`` = 4: *variance growing with depth* when a block's average
  channel variance exceeds this multiple of the first block's (unnormalized residual
  branches add their variance at every block: about 2**depth for He-initialized ReLU).
* ``GRADIENT_RATIO_LIMIT`` = 10 and ``GRADIENT_CHI_LIMIT`` = 1.5: *exploding (vanishing)
  gradients* when the per-example squared gradient norm at the first block is more than
  ``GRADIENT_RATIO_LIMIT`` times (less than 1 / that) the last block's, and the growth per
  block, chi = ratio ** (1 / (blocks - 1)), lies outside [1 / GRADIENT_CHI_LIMIT,
  GRADIENT_CHI_LIMIT]. chi estimates chi_1 of mean-field theory (Schoenholz et al. 2017),
  which is 1 at criticality.
* non-finite values: any NaN/Inf in a block output or its gradient.
* batch dependence: the batch-independence leak exceeds its tolerance.

Whether the model is *residual* comes from what its forward showed (``SPPResult.skips``:
the blocks that add a skip connection), never from how its modules are named or wrapped;
the explanation of a gradient problem looks at where the change happens (see
:mod:`signalprop.report._causes`). A fix line is shown only when it applies to the model
(``fixes``, from :func:`signalprop.report._fixes.applicable_fixes`: each fix is tried on a
copy); otherwise the diagnosis says why none does.

Examples:
    >>> from signalprop.results import BlockStats, SPPResult
    >>> res = SPPResult("toy", [BlockStats("b0", 0, 0.1, 1.0), BlockStats("b1", 1, 3.0, 2.0),
    ...                         BlockStats("b2", 2, 9.0, 4.0)])
    >>> d = diagnose_mean_shift(res)
    >>> d.kind, d.block
    ('mean_shift', 'b1')
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

from signalprop.report._causes import (
    BRANCH_ADVICE,
    CRITICAL,
    FIX_NORMFREE,
    NORMFREE,
    choose_fix,
    fix_critical,
    is_residual,
)
from signalprop.report._finding import (
    GRADIENT_CHI_LIMIT,
    GRADIENT_RATIO_LIMIT,
    MEAN_SHIFT_RATIO,
    VARIANCE_GROWTH_LIMIT,
    Diagnosis,
)
from signalprop.report._gradient_diagnosis import diagnose_gradients, gradient_norms
from signalprop.results import BatchIndependenceResult, GradSPPResult, SPPResult

__all__ = [
    "FIX_NORMFREE",
    "GRADIENT_CHI_LIMIT",
    "GRADIENT_RATIO_LIMIT",
    "MEAN_SHIFT_RATIO",
    "VARIANCE_GROWTH_LIMIT",
    "Diagnosis",
    "diagnose",
    "diagnose_batch_dependence",
    "diagnose_gradients",
    "diagnose_mean_shift",
    "diagnose_nonfinite",
    "diagnose_variance_growth",
    "fix_critical",
    "gradient_norms",
]

Fixes = Mapping[str, str | None] | None

def _persistent_from(flags: Sequence[bool]) -> int | None:
    """The first index from which every flag is True, or None when the last is False."""
    start = None
    for i, f in enumerate(flags):
        if f and start is None:
            start = i
        elif not f:
            start = None
    return start


def _finite(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


def diagnose_mean_shift(res: SPPResult, fixes: Fixes = None) -> Diagnosis | None:
    """Mean shift: avg_sq_mean > ``MEAN_SHIFT_RATIO`` * avg_var from some block to the end.

    Blocks whose channel variance is exactly 0 cannot show a mean shift (one value per
    channel: a batch of one example with (N, C) outputs), and a batch of one example
    gives a warning: its channel statistics are one example's, not the batch's.

    Args:
        res: a measured forward SPP.
        fixes: which fixes apply (see the module docstring); None: not checked.

    Returns:
        A ``"mean_shift"`` :class:`Diagnosis` naming the first block of that run, or None.

    Examples:
        >>> from signalprop.results import BlockStats, SPPResult
        >>> ok = SPPResult("ok", [BlockStats("b0", 0, 0.5, 1.0), BlockStats("b1", 1, 0.9, 1.0)])
        >>> diagnose_mean_shift(ok) is None
        True
    """
    if res.input_shape and res.input_shape[0] == 1:
        warnings.warn("the SPP was measured on a batch of one example: channel statistics "
                      "of (N, C) outputs have variance 0 by construction; measure a batch "
                      "of several examples for the mean-shift diagnosis", stacklevel=2)
    recs = [r for r in res.records if r.finite and r.avg_var > 0]
    flags = [r.avg_sq_mean > MEAN_SHIFT_RATIO * r.avg_var for r in recs]
    start = _persistent_from(flags)
    if start is None:
        return None
    first, last = recs[start], recs[-1]
    fix, why = choose_fix([NORMFREE], fixes, None)
    shared = ("every example's and every position's features share a growing offset: the "
              "representations become alike (in transformers: rank collapse)"
              if res.channel_dim == -1 else "every example's features share a growing offset")
    if fix:
        cure = "Scaled Weight Standardization removes it (NF conversion)."
    elif is_residual(res):
        cure = (f"No automatic fix applies ({why}); smaller residual branches keep every "
                f"block closer to the identity, so the offset grows more slowly: "
                f"{BRANCH_ADVICE}.")
    else:
        cure = f"No automatic fix applies ({why})."
    return Diagnosis(
        "mean_shift", "mean shift",
        f"the squared channel mean exceeds the channel variance from block {first.index} "
        f"('{first.name}': {first.avg_sq_mean:.4g} > {first.avg_var:.4g}) to the last block "
        f"({last.avg_sq_mean:.4g} vs {last.avg_var:.4g}); {shared}. {cure}",
        f"avg_sq_mean > {MEAN_SHIFT_RATIO:g} x avg_var (MEAN_SHIFT_RATIO) from a block onward",
        first.name, fix)


def diagnose_variance_growth(res: SPPResult, activation: str | None = None,
                             fixes: Fixes = None) -> Diagnosis | None:
    """Variance growing with depth: avg_var > ``VARIANCE_GROWTH_LIMIT`` x the first block's.

    Args:
        res: a measured forward SPP (blocks with a residual branch have ``res_var``).
        activation: the model's activation: a plain network's fix is its critical init.
        fixes: which fixes apply (see the module docstring); None: not checked.

    Returns:
        A ``"variance_growth"`` :class:`Diagnosis` naming the first block past the limit,
        or None.

    Examples:
        >>> from signalprop.results import BlockStats, SPPResult
        >>> r = SPPResult("r", [BlockStats(f"b{i}", i, 0.0, 2.0 ** i) for i in range(4)])
        >>> diagnose_variance_growth(r).block
        'b3'
    """
    recs = [r for r in res.records if r.finite and _finite(r.avg_var)]
    if len(recs) < 2 or recs[0].avg_var <= 0:
        return None
    base = recs[0].avg_var
    over = next((r for r in recs[1:] if r.avg_var > VARIANCE_GROWTH_LIMIT * base), None)
    if over is None:
        return None
    residual = is_residual(res)
    fix, why = choose_fix([NORMFREE] if residual or not activation else [CRITICAL, NORMFREE],
                          fixes, activation)
    if residual:
        cause = ("the residual branches add their variance at every block (the forward "
                 "showed skip connections in " + _count(res.skips, res) + "): "
                 + ("use NF scaling (beta, alpha) and SkipInit gains" if fix else
                    f"no automatic fix applies ({why}); {BRANCH_ADVICE}"))
    else:
        cause = ("each layer multiplies the variance (the forward showed no skip "
                 "connection): " + ("use a critical initialization" if fix else
                                    f"no automatic fix applies ({why})"))
    return Diagnosis(
        "variance_growth", "variance growing with depth",
        f"the average channel variance grows from {base:.3g} at '{recs[0].name}' to "
        f"{over.avg_var:.3g} at block {over.index} ('{over.name}') and "
        f"{recs[-1].avg_var:.3g} at the last block; {cause}.",
        f"avg_var > {VARIANCE_GROWTH_LIMIT:g} x the first block's (VARIANCE_GROWTH_LIMIT)",
        over.name, fix)


def _count(skips: Mapping[str, str] | None, res: SPPResult) -> str:
    if skips is None:
        return "some blocks"
    return f"{len(skips)} of the {len({r.name.split('#')[0] for r in res.records})} blocks"


def diagnose_nonfinite(res: SPPResult, grad: GradSPPResult | None = None, *,
                       fix_code: str = FIX_NORMFREE) -> Diagnosis | None:
    """NaN/Inf in a block output (forward) or, failing that, in a gradient (backward).

    Args:
        res: a measured forward SPP.
        grad: the gradient SPP, if measured.
        fix_code: the line to show (NF conversion by default; a critical init for plain
            networks).

    Returns:
        A ``"nonfinite"`` :class:`Diagnosis` naming the first such block, or None.

    Examples:
        >>> from signalprop.results import BlockStats, SPPResult
        >>> r = SPPResult("r", [BlockStats("a", 0, 0.0, 1.0),
        ...                     BlockStats("b", 1, 0.0, 1.0, None, 3)])
        >>> diagnose_nonfinite(r).block
        'b'
    """
    bad = res.first_nonfinite
    where = "forward"
    if bad is None and grad is not None:
        # the gradient flows backwards: the block nearest the output is where it started
        bad = next((r for r in reversed(grad.records) if r.nonfinite), None)
        where = "gradient"
    if bad is None:
        return None
    return Diagnosis(
        "nonfinite", "non-finite values",
        f"{bad.nonfinite} NaN/Inf values in the {where} at block {bad.index} ('{bad.name}'); "
        "later blocks are meaningless.",
        "any NaN/Inf value", bad.name, fix_code)


def diagnose_batch_dependence(ind: BatchIndependenceResult, fixes: Fixes = None
                              ) -> Diagnosis | None:
    """Batch dependence: one example's input changes the others' outputs.

    The module type where the leak starts is read from ``ind.meta["first_leak_type"]``
    (mode -> class name) when the caller recorded it.

    Args:
        ind: a batch-independence result.
        fixes: which fixes apply (see the module docstring); None: not checked.

    Returns:
        A ``"batch_dependence"`` :class:`Diagnosis`, or None when independent.

    Examples:
        >>> from signalprop.results import BatchIndependenceResult
        >>> r = BatchIndependenceResult({"train": 0.01}, {"train": 1.0}, {"train": "bn"},
        ...                             {"train": None}, 1e-5, 0, 4,
        ...                             meta={"first_leak_type": {"train": "BatchNorm2d"}})
        >>> diagnose_batch_dependence(r).title
        'batch dependence through BatchNorm2d'
    """
    if ind.independent:
        return None
    modes = [m for m, v in ind.leak.items() if not (math.isfinite(v) and v <= ind.tolerance)]
    mode = modes[0]
    module = ind.first_leak.get(mode) or ind.nonfinite.get(mode)
    kind_of = (ind.meta.get("first_leak_type") or {}).get(mode)
    title = f"batch dependence through {kind_of}" if kind_of else "batch dependence"
    leaks = ", ".join(f"{m} mode {ind.leak[m]:.3g}" for m in modes)
    fix, why = choose_fix([NORMFREE], fixes, None)
    return Diagnosis(
        "batch_dependence", title,
        f"perturbing one example moves the others' outputs (leak {leaks})"
        + (f", first in '{module}'" if module else "")
        + "; the model's output for one example depends on the rest of the batch. "
        "Normalizer-free networks (or GroupNorm + WS) are batch-independent."
        + ("" if fix else f" No automatic fix applies: {why}."),
        f"leak > tolerance {ind.tolerance:g}", module, fix)


def diagnose(
    spp: SPPResult,
    grad: GradSPPResult | None = None,
    independence: BatchIndependenceResult | None = None,
    *,
    numel: Sequence[int] | None = None,
    activation: str | None = None,
    critical_sigma_w2: float | None = None,
    theory_chi_1: float | None = None,
    shapes: Sequence[tuple[int, ...]] | None = None,
    fixes: Fixes = None,
) -> list[Diagnosis]:
    """Every diagnosis that fires, in the order: non-finite, mean shift, variance growth,
    gradients, batch dependence.

    Args:
        spp: the forward SPP.
        grad: the gradient SPP (gradient diagnoses need it).
        independence: the batch-independence result.
        numel: elements per example of each gradient block (see :func:`diagnose_gradients`).
        activation: the model's activation name, if known.
        critical_sigma_w2: its critical sigma_w^2, if known.
        theory_chi_1: mean-field chi_1 of the model's initialization, if known.
        shapes: per-example output shape of each forward block, if known.
        fixes: which fixes apply (fix name -> None or the reason it does not; see
            :func:`signalprop.report._fixes.applicable_fixes`); None: not checked.

    Returns:
        A list of :class:`Diagnosis` (empty: nothing found).

    Examples:
        >>> from signalprop.results import BlockStats, SPPResult
        >>> diagnose(SPPResult("ok", [BlockStats("a", 0, 0.0, 1.0), BlockStats("b", 1, 0.0, 1.0)]))
        []
    """
    residual = is_residual(spp)
    plain_fix, _ = choose_fix([CRITICAL, NORMFREE] if activation and not residual
                              else [NORMFREE], fixes, activation)
    found = [
        diagnose_nonfinite(spp, grad, fix_code=plain_fix),
        diagnose_mean_shift(spp, fixes),
        diagnose_variance_growth(spp, activation, fixes),
        diagnose_gradients(grad, numel, activation=activation,
                           critical_sigma_w2=critical_sigma_w2, theory_chi_1=theory_chi_1,
                           spp=spp, shapes=shapes, fixes=fixes) if grad is not None else None,
        diagnose_batch_dependence(independence, fixes) if independence is not None else None,
    ]
    return [d for d in found if d is not None]
