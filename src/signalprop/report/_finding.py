"""A diagnosis of the report and the thresholds that make one fire (documented in
:mod:`signalprop.report.diagnosis`, which re-exports them)."""

from __future__ import annotations

from dataclasses import dataclass

MEAN_SHIFT_RATIO = 1.0
VARIANCE_GROWTH_LIMIT = 4.0
GRADIENT_RATIO_LIMIT = 10.0
GRADIENT_CHI_LIMIT = 1.5

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
        fix_code: one line of signalprop code that applies the fix, or ``""`` when no
            automatic fix applies to the model (the message says why).

    Examples:
        >>> from signalprop.report.diagnosis import diagnose
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
                f"    fix: {self.fix_code or 'none applies (see above)'}")
