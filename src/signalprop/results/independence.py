"""Result of a batch-independence check: how much one example moves the others' outputs."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from signalprop.results._serial import decode_float, encode_float


@dataclass
class BatchIndependenceResult:
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "independent": self.independent,
            "leak": {k: encode_float(v) for k, v in self.leak.items()},
            "sensitivity": {k: encode_float(v) for k, v in self.sensitivity.items()},
            "first_leak": dict(self.first_leak),
            "nonfinite": dict(self.nonfinite),
            "tolerance": self.tolerance,
            "index": self.index,
            "batch_size": self.batch_size,
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BatchIndependenceResult:
        return cls(
            leak={k: float(decode_float(v)) for k, v in d["leak"].items()},  # type: ignore[arg-type]
            sensitivity={k: float(decode_float(v))  # type: ignore[arg-type]
                         for k, v in d["sensitivity"].items()},
            first_leak=dict(d["first_leak"]),
            nonfinite=dict(d["nonfinite"]),
            tolerance=float(d["tolerance"]),
            index=int(d["index"]),
            batch_size=int(d["batch_size"]),
            label=d.get("label", ""),
            meta=d.get("meta", {}),
        )

    def to_json(self, path: str | Path | None = None, indent: int | None = 1) -> str:
        """Strict JSON (non-finite floats as strings); also written to ``path`` if given."""
        text = json.dumps(self.to_dict(), indent=indent, allow_nan=False)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> BatchIndependenceResult:
        text = str(text_or_path)
        if not text.lstrip().startswith("{"):
            text = Path(text_or_path).read_text()
        return cls.from_dict(json.loads(text))
