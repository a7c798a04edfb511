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
from collections.abc import Sequence
from dataclasses import dataclass

from signalprop.results import BatchIndependenceResult, GradSPPResult, SPPResult

MEAN_SHIFT_RATIO = 1.0
VARIANCE_GROWTH_LIMIT = 4.0
GRADIENT_RATIO_LIMIT = 10.0
GRADIENT_CHI_LIMIT = 1.5

#: The one-line fixes, by what they change.
#: NF conversion: Scaled WS convolutions, NF scaling (alpha, beta) and SkipInit gains at 0.
FIX_NORMFREE = "model, conversion = sp.convert.to_normfree(model)"


def fix_critical(activation: str) -> str:
    """The one-line critical initialization for ``activation``.

    Examples:
        >>> fix_critical("tanh")
        'sp.nn.init.critical_(model, "tanh")'
    """
    return f'sp.nn.init.critical_(model, "{activation}")'


@dataclass(frozen=True)
class Diagnosis:
    """One finding of the report.

    Attributes:
        kind: ``"mean_shift"``, ``"variance_growth"``, ``"exploding_gradients"``,
            ``"vanishing_gradients"``, ``"nonfinite"`` or ``"batch_dependence"``.
        title: a few plain words, e.g. ``"mean shift"``.
        message: what was seen, with the numbers.
        threshold: the rule that fired, with its value.
        block: where it starts (a module name), or ``None`` for the whole model.
        fix_code: one line of signalprop code that applies the fix.

    Examples:
        >>> from signalprop.results import BlockStats, SPPResult
        >>> res = SPPResult("r", [BlockStats(f"b{i}", i, 0.0, 2.0**i) for i in range(4)])
        >>> d = diagnose(res, activation="tanh")[0]  # a plain tanh network
        >>> d.kind, d.block, d.fix_code
        ('variance_growth', 'b3', 'sp.nn.init.critical_(model, "tanh")')
        >>> d.threshold
        "avg_var > 4 x the first block's (VARIANCE_GROWTH_LIMIT)"
    """

    kind: str
    title: str
    message: str
    threshold: str
    block: str | None
    fix_code: str

    def __str__(self) -> str:
        where = f" from block '{self.block}'" if self.block else ""
        return (f"{self.title}{where}: {self.message} [{self.threshold}]\n"
                f"    fix: {self.fix_code}")


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


def diagnose_mean_shift(res: SPPResult) -> Diagnosis | None:
    """Mean shift: avg_sq_mean > ``MEAN_SHIFT_RATIO`` * avg_var from some block to the end.

    Args:
        res: a measured forward SPP.

    Returns:
        A ``"mean_shift"`` :class:`Diagnosis` naming the first block of that run, or None.

    Examples:
        >>> from signalprop.results import BlockStats, SPPResult
        >>> ok = SPPResult("ok", [BlockStats("b0", 0, 0.5, 1.0), BlockStats("b1", 1, 0.9, 1.0)])
        >>> diagnose_mean_shift(ok) is None
        True
    """
    recs = [r for r in res.records if r.finite]
    flags = [r.avg_sq_mean > MEAN_SHIFT_RATIO * r.avg_var for r in recs]
    start = _persistent_from(flags)
    if start is None:
        return None
    first, last = recs[start], recs[-1]
    return Diagnosis(
        "mean_shift", "mean shift",
        f"the squared channel mean exceeds the channel variance from block {first.index} "
        f"('{first.name}': {first.avg_sq_mean:.3g} > {first.avg_var:.3g}) to the last block "
        f"({last.avg_sq_mean:.3g} vs {last.avg_var:.3g}); every example's features share a "
        "growing offset. Use Scaled Weight Standardization (NF conversion).",
        f"avg_sq_mean > {MEAN_SHIFT_RATIO:g} x avg_var (MEAN_SHIFT_RATIO) from a block onward",
        first.name, FIX_NORMFREE)


def diagnose_variance_growth(res: SPPResult, activation: str | None = None) -> Diagnosis | None:
    """Variance growing with depth: avg_var > ``VARIANCE_GROWTH_LIMIT`` x the first block's.

    Args:
        res: a measured forward SPP (blocks with a residual branch have ``res_var``).
        activation: the model's activation: a plain network's fix is its critical init.

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
    residual = any(r.res_var is not None for r in res.records)
    cause = ("unnormalized residual branches add their variance at every block: use NF "
             "scaling (beta, alpha) or SkipInit" if residual else
             "each layer multiplies the variance: use a critical initialization")
    return Diagnosis(
        "variance_growth", "variance growing with depth",
        f"the average channel variance grows from {base:.3g} at '{recs[0].name}' to "
        f"{over.avg_var:.3g} at block {over.index} ('{over.name}') and "
        f"{recs[-1].avg_var:.3g} at the last block; {cause}.",
        f"avg_var > {VARIANCE_GROWTH_LIMIT:g} x the first block's (VARIANCE_GROWTH_LIMIT)",
        over.name, FIX_NORMFREE if residual or not activation else fix_critical(activation))


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
        residual: the model has residual blocks (the fix is NF conversion, not an init).

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
    if residual:
        crit = (" Residual branches that are not scaled down multiply the gradient at "
                "every block.")
    elif activation and critical_sigma_w2 is not None:
        crit = (f" Critical initialization for {activation} is sigma_w^2 = "
                f"{critical_sigma_w2:.4g} (chi_1 = 1).")
    else:
        crit = ""
    fix = FIX_NORMFREE if residual or not activation else fix_critical(activation)
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


def diagnose_batch_dependence(ind: BatchIndependenceResult) -> Diagnosis | None:
    """Batch dependence: one example's input changes the others' outputs.

    The module type where the leak starts is read from ``ind.meta["first_leak_type"]``
    (mode -> class name) when the caller recorded it.

    Args:
        ind: a batch-independence result.

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
    return Diagnosis(
        "batch_dependence", title,
        f"perturbing one example moves the others' outputs (leak {leaks})"
        + (f", first in '{module}'" if module else "")
        + "; the model's output for one example depends on the rest of the batch. "
        "Normalizer-free networks (or GroupNorm + WS) are batch-independent.",
        f"leak > tolerance {ind.tolerance:g}", module, FIX_NORMFREE)


def diagnose(
    spp: SPPResult,
    grad: GradSPPResult | None = None,
    independence: BatchIndependenceResult | None = None,
    *,
    numel: Sequence[int] | None = None,
    activation: str | None = None,
    critical_sigma_w2: float | None = None,
    theory_chi_1: float | None = None,
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

    Returns:
        A list of :class:`Diagnosis` (empty: nothing found).

    Examples:
        >>> from signalprop.results import BlockStats, SPPResult
        >>> diagnose(SPPResult("ok", [BlockStats("a", 0, 0.0, 1.0), BlockStats("b", 1, 0.0, 1.0)]))
        []
    """
    residual = any(r.res_var is not None for r in spp.records)
    plain_fix = fix_critical(activation) if activation and not residual else FIX_NORMFREE
    found = [
        diagnose_nonfinite(spp, grad, fix_code=plain_fix),
        diagnose_mean_shift(spp),
        diagnose_variance_growth(spp, activation),
        diagnose_gradients(grad, numel, activation=activation,
                           critical_sigma_w2=critical_sigma_w2, theory_chi_1=theory_chi_1,
                           residual=residual) if grad is not None else None,
        diagnose_batch_dependence(independence) if independence is not None else None,
    ]
    return [d for d in found if d is not None]
