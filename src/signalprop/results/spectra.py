"""Spectra of the input-output Jacobian and of the loss Hessian: :class:`JacobianSpectrum`,
:class:`HessianExtremes`.

Values from Lanczos come with residual bounds r: an exact eigenvalue lies within r of each
reported Ritz value (for the Jacobian, eigenvalues of J J^T or J^T J, i.e. squared singular
values). r = 0 where the Krylov space was the whole space (the values are exact).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from signalprop.results._serial import decode_float, encode_float


def _enc(v: Any) -> Any:
    if isinstance(v, list):
        return [_enc(u) for u in v]
    return encode_float(v) if isinstance(v, float) else v


def _dec(v: Any) -> Any:
    if isinstance(v, list):
        return [_dec(u) for u in v]
    return decode_float(v) if isinstance(v, (float, str)) else v


class _JSON:
    """to_json / from_json for dataclasses of numbers and (nested) lists of numbers."""

    _FLOATS: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)  # type: ignore[call-overload]
        return {k: (_enc(v) if k in self._FLOATS else v) for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Any:
        return cls(**{k: (_dec(v) if k in cls._FLOATS else v) for k, v in d.items()})

    def to_json(self, path: str | Path | None = None, indent: int | None = 1) -> str:
        """Serialise to strict JSON (non-finite floats as strings); also write ``path``."""
        text = json.dumps(self.to_dict(), indent=indent, allow_nan=False)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> Any:
        """Load from a JSON string or a path written by :meth:`to_json`."""
        text = str(text_or_path)
        if not text.lstrip().startswith("{"):
            text = Path(text_or_path).read_text()
        return cls.from_dict(json.loads(text))


@dataclass
class JacobianSpectrum(_JSON):
    """Singular values of each example's input-output Jacobian J_b (out_dim x in_dim).

    Attributes:
        label: model name.
        in_dim, out_dim: per-example input and output sizes; J_b has min(in, out)
            singular values.
        top: (B, k) largest singular values per example, descending.
        bottom: (B, k) smallest of the min(in, out) singular values, ascending.
        top_residual, bottom_residual: (B, k) bounds on the error of the squared values.
        mean_sq_sv: (B,) mean of sigma^2 over the min(in, out) singular values,
            tr(J J^T) / min(in, out).
        mean_sq_sv_se: (B,) its standard error (0 when computed exactly).
        trace_probes: probe vectors used for the trace (exact: one per basis vector).
        exact_trace: whether ``mean_sq_sv`` is exact rather than a Hutchinson estimate.
        steps: Lanczos steps.

    Examples:
        >>> s = JacobianSpectrum("toy", 2, 2, [[2.0]], [[1.0]], [[0.0]], [[0.0]], [2.5],
        ...                      [0.0], 2, True, 2)
        >>> JacobianSpectrum.from_json(s.to_json()).condition_number
        [2.0]
    """

    label: str
    in_dim: int
    out_dim: int
    top: list[list[float]]
    bottom: list[list[float]]
    top_residual: list[list[float]]
    bottom_residual: list[list[float]]
    mean_sq_sv: list[float]
    mean_sq_sv_se: list[float]
    trace_probes: int
    exact_trace: bool
    steps: int
    meta: dict[str, Any] = field(default_factory=dict)

    _FLOATS = ("top", "bottom", "top_residual", "bottom_residual", "mean_sq_sv",
               "mean_sq_sv_se")

    @property
    def batch_size(self) -> int:
        return len(self.top)

    @property
    def condition_number(self) -> list[float]:
        """sigma_max / sigma_min per example (inf when sigma_min is 0)."""
        return [t[0] / b[0] if b[0] > 0 else math.inf for t, b in zip(self.top, self.bottom)]


@dataclass
class HessianExtremes(_JSON):
    """Extreme eigenvalues of the Hessian of the loss with respect to all trainable
    parameters, at the given batch.

    Attributes:
        label: model name.
        dim: number of trainable parameters.
        largest: k largest eigenvalues, descending.
        smallest: k smallest (most negative) eigenvalues, ascending.
        largest_residual, smallest_residual: error bounds of each value.
        steps: Lanczos steps.
        loss: the loss at which the Hessian was taken.

    Examples:
        >>> h = HessianExtremes("toy", 3, [2.0], [-1.0], [0.0], [0.0], 3, 0.5)
        >>> HessianExtremes.from_json(h.to_json()).smallest
        [-1.0]
    """

    label: str
    dim: int
    largest: list[float]
    smallest: list[float]
    largest_residual: list[float]
    smallest_residual: list[float]
    steps: int
    loss: float
    meta: dict[str, Any] = field(default_factory=dict)

    _FLOATS = ("largest", "smallest", "largest_residual", "smallest_residual", "loss")
