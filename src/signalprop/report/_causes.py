"""Why a diagnosis holds, from what was measured about the model's structure (which blocks
add a skip connection, how large their branches are, where the block sizes change), and
which fix line to show (only one that applies to the model)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from signalprop.results import GradBlockStats, SPPResult

#: A residual branch whose variance is below this fraction of its block's input variance
#: barely changes the signal (ConvNeXt's layer scale starts at 1e-6).
SILENT_BRANCH = 1e-2

FIX_NORMFREE = "model, conversion = sp.convert.to_normfree(model)"
#: The same for models torch.fx cannot trace: ``x`` is the batch the report measured.
FIX_NORMFREE_INPUT = "model, conversion = sp.convert.to_normfree(model, example_input=x)"
NORMFREE, NORMFREE_INPUT, CRITICAL = "normfree", "normfree_example_input", "critical"
_LINES = {NORMFREE: FIX_NORMFREE, NORMFREE_INPUT: FIX_NORMFREE_INPUT}
#: What to do by hand for a residual stack when no automatic fix applies.
BRANCH_ADVICE = ("scale each residual branch down at initialization (its last layer by "
                 "1/sqrt(number of residual additions), as GPT-2 does, or a zero-initialized "
                 "gain at the end of each branch, as in SkipInit)")


def fix_critical(activation: str) -> str:
    """The one-line critical initialization for ``activation``.

    Examples:
        >>> fix_critical("tanh")
        'sp.nn.init.critical_(model, "tanh")'
    """
    return f'sp.nn.init.critical_(model, "{activation}")'


def is_residual(spp: SPPResult) -> bool:
    """Whether the model adds skip connections: measured on the forward (``spp.skips``)
    where available, else (older results) whether any block has a residual branch.

    Examples:
        >>> from signalprop.results import BlockStats
        >>> r = SPPResult("r", [BlockStats("a", 0, 0.0, 1.0, 0.5)], skips={})
        >>> is_residual(r)  # measured: no block adds a skip, whatever res_var says
        False
    """
    if spp.skips is not None:
        return bool(spp.skips)
    return any(r.res_var is not None for r in spp.records)


def choose_fix(preferred: Sequence[str], fixes: Mapping[str, str | None] | None,
               activation: str | None) -> tuple[str, str]:
    """``(fix line, "")`` for the first of ``preferred`` that applies, or ``("", why not)``.

    ``fixes`` maps fix names to None (applies) or the reason it does not (see
    :func:`signalprop.report._fixes.applicable_fixes`); None means not checked (every
    fix is taken to apply).

    Examples:
        >>> choose_fix(["normfree"], {"normfree": "to_normfree changes no module"}, None)
        ('', 'to_normfree changes no module')
    """
    reasons: list[str] = []
    for key in preferred:
        if key == CRITICAL and not activation:
            reasons.append("the model's activation is not known")
            continue
        keys = [key, NORMFREE_INPUT] if key == NORMFREE else [key]
        for k in keys:
            why = None if fixes is None else fixes.get(k, "not checked")
            if why is None:
                return _LINES.get(k) or fix_critical(activation or ""), ""
            if k in (fixes or {}):
                reasons.append(why)
    return "", "; ".join(dict.fromkeys(reasons))


def _branch_ratios(spp: SPPResult) -> list[float]:
    """Var(branch) / Var(block input) of every block whose branch was measured."""
    out = []
    for prev, r in zip(spp.records, spp.records[1:]):
        if r.res_var is not None and prev.avg_var > 0 and math.isfinite(r.res_var):
            out.append(r.res_var / prev.avg_var)
    return out


def gradient_cause(pairs: Sequence[tuple[GradBlockStats, float]], spp: SPPResult | None,
                   shapes: Sequence[tuple[int, ...]] | None) -> tuple[str, bool]:
    """A sentence on where the gradient's change happens and what causes it, and whether
    the residual branches are the cause.

    ``pairs`` are the gradient records with their per-example squared norms, input side
    first. The largest change between consecutive blocks is compared with the total: a
    step that carries most of it, across a change of block size or into a block without
    a skip, is put down to the layers there (a transition); a change spread over blocks
    whose branches are not silent is put down to the branches.
    """
    names = [r.name for r in spp.records] if spp is not None else []
    total = abs(math.log(pairs[0][1] / pairs[-1][1]))
    steps = [(abs(math.log(a[1] / b[1])), a[0], b[0]) for a, b in zip(pairs, pairs[1:])]
    big, before, after = max(steps, key=lambda s: s[0])
    skips = (spp.skips or {}) if spp is not None else {}
    ratios = _branch_ratios(spp) if spp is not None else []
    silent = bool(ratios) and max(ratios) < SILENT_BRANCH
    shape_of = dict(zip(names, shapes or []))
    sa, sb = shape_of.get(before.name), shape_of.get(after.name)
    transition = (sa is not None and sb is not None and sa != sb) or \
        after.name.split("#")[0] not in skips
    if total > 0 and big >= 0.5 * total and (transition or silent or not skips):
        where = (f" (block outputs {_shape(sa)} -> {_shape(sb)})" if sa and sb and sa != sb
                 else "")
        text = (f" Most of it (a factor {math.exp(big):.3g}) happens between "
                f"'{before.name}' and '{after.name}'{where}: the layers there"
                + (", not the residual branches," if skips else "")
                + " set the gradient's scale.")
        if silent:
            text += (f" The residual branches are nearly silent (at most {max(ratios):.2g} "
                     "of their input's variance).")
        return text, False
    if skips and not silent:
        return (" Residual branches that are not scaled down multiply the gradient at "
                "every block."), True
    return "", False


def _shape(s: tuple[int, ...] | None) -> str:
    return "(" + ", ".join(map(str, s or ())) + ")"
