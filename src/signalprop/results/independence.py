"""Result of a batch-independence check: how much one example moves the others' outputs."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from signalprop.results._base import Result


@dataclass
class BatchIndependenceResult(Result):
    """Per mode (``"train"``, ``"eval"``): the leak of one perturbed example into the others.

    Attributes:
        leak: mode -> max over unperturbed examples j of ||y'_j - y_j|| / ||y_j|| (0 for
            a batch-independent model; NaN when the output held NaN/Inf).
        sensitivity: mode -> ||y'_i - y_i|| / ||y_i|| for the perturbed example i (how much
            the perturbation moved the example itself; 0 makes the check uninformative).
        first_leak: mode -> the first module, in execution order, whose output for an
            unperturbed example moved by more than ``tolerance``; None when none did.
        nonfinite: mode -> the first module whose output held NaN/Inf, or None.
        tolerance: the largest relative leak still counted as independent.
        index: the perturbed example.
        batch_size: the batch size checked.
        label: the model's name.
        meta: anything else.

    Examples:
        >>> r = BatchIndependenceResult(
        ...     {"train": 0.2, "eval": 0.0}, {"train": 1.0, "eval": 1.0},
        ...     {"train": "bn", "eval": None}, {"train": None, "eval": None}, 1e-5, 0, 8)
        >>> r.independent, BatchIndependenceResult.from_json(r.to_json()).first_leak["train"]
        (False, 'bn')
    """

    leak: dict[str, float]
    sensitivity: dict[str, float]
    first_leak: dict[str, str | None]
    nonfinite: dict[str, str | None]
    tolerance: float
    index: int
    batch_size: int
    label: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    json_extras: ClassVar[tuple[str, ...]] = ("independent",)

    @property
    def independent(self) -> bool:
        """True when every mode's leak is finite and at most ``tolerance``."""
        return all(math.isfinite(v) and v <= self.tolerance for v in self.leak.values())

    def summary(self) -> str:
        """One line: the verdict and the leak per mode (and where it starts)."""
        parts = []
        for mode, v in self.leak.items():
            where = self.nonfinite.get(mode) or self.first_leak.get(mode)
            tag = "NaN/Inf first in" if self.nonfinite.get(mode) else "first in"
            parts.append(f"{mode} {v:.3g}" + (f" ({tag} '{where}')" if where else ""))
        verdict = "independent" if self.independent else "NOT independent"
        return f"batch {verdict} (leak {', '.join(parts)}; tolerance {self.tolerance:g})"

    def csv_rows(self) -> tuple[list[str], list[list[Any]]]:
        """One row per mode."""
        cols = ["mode", "leak", "sensitivity", "first_leak", "nonfinite", "tolerance"]
        return cols, [[m, v, self.sensitivity.get(m), self.first_leak.get(m),
                       self.nonfinite.get(m), self.tolerance] for m, v in self.leak.items()]
