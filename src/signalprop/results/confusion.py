"""Gradient confusion statistics (Sankararaman et al., ICML 2020): :class:`ConfusionResult`.

For per-example gradients g_1..g_B of one batch:

* ``eta`` = max(0, -min_{i != j} <g_i, g_j>), the gradient confusion bound
  (<g_i, g_j> >= -eta for every pair);
* the pairwise cosine similarities cos_ij = <g_i, g_j> / (|g_i| |g_j|), i < j: their
  minimum, mean, standard deviation, quantiles and a histogram over [-1, 1]. Pairs with a
  zero gradient have no cosine and are left out (``zero_gradient_examples`` counts them).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from signalprop.results._serial import decode_float, encode_float

CSV_COLUMNS = ("label", "batch_size", "n_pairs", "eta", "min_cosine", "mean_cosine",
               "std_cosine", "mean_sq_norm", "zero_gradient_examples", "quantiles")
_FLOATS = ("eta", "min_cosine", "mean_cosine", "std_cosine", "mean_sq_norm")


@dataclass
class ConfusionResult:
    """Pairwise geometry of the per-example gradients of one batch.

    Attributes:
        label: name of the model / setting.
        batch_size: B.
        n_pairs: pairs with a defined cosine (B (B - 1) / 2 without zero gradients).
        eta: max(0, -min_{i != j} <g_i, g_j>).
        min_cosine, mean_cosine, std_cosine: over the pairs (NaN without pairs).
        quantiles: {q: cosine quantile q}.
        mean_sq_norm: mean_i |g_i|^2.
        zero_gradient_examples: examples whose gradient is exactly zero.
        hist_edges, hist_counts: histogram of the cosines (len(edges) = len(counts) + 1).

    Examples:
        >>> r = ConfusionResult("toy", 3, 3, 0.5, -0.5, 0.1, 0.4, {0.5: 0.2}, 2.0, 0,
        ...                     [-1.0, 0.0, 1.0], [1, 2])
        >>> ConfusionResult.from_json(r.to_json()).quantiles
        {0.5: 0.2}
    """

    label: str
    batch_size: int
    n_pairs: int
    eta: float
    min_cosine: float
    mean_cosine: float
    std_cosine: float
    quantiles: dict[float, float]
    mean_sq_norm: float
    zero_gradient_examples: int
    hist_edges: list[float]
    hist_counts: list[int]
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.hist_edges) != len(self.hist_counts) + 1:
            raise ValueError(f"hist_edges must have len(hist_counts) + 1 = "
                             f"{len(self.hist_counts) + 1} entries, got {len(self.hist_edges)}")

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {k: getattr(self, k) for k in ("label", "batch_size", "n_pairs",
                                                          "zero_gradient_examples")}
        d.update({k: encode_float(getattr(self, k)) for k in _FLOATS})
        d["quantiles"] = [[q, encode_float(v)] for q, v in self.quantiles.items()]
        d["hist_edges"] = list(self.hist_edges)
        d["hist_counts"] = list(self.hist_counts)
        d["meta"] = self.meta
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ConfusionResult:
        return cls(
            label=d["label"], batch_size=int(d["batch_size"]), n_pairs=int(d["n_pairs"]),
            **{k: decode_float(d[k]) for k in _FLOATS},  # type: ignore[arg-type]
            quantiles={float(q): decode_float(v) for q, v in d["quantiles"]},  # type: ignore[misc]
            zero_gradient_examples=int(d["zero_gradient_examples"]),
            hist_edges=[float(e) for e in d["hist_edges"]],
            hist_counts=[int(c) for c in d["hist_counts"]],
            meta=d.get("meta", {}),
        )

    def to_json(self, path: str | Path | None = None, indent: int | None = 1) -> str:
        """Serialise to strict JSON (non-finite floats as strings); also write ``path``."""
        text = json.dumps(self.to_dict(), indent=indent, allow_nan=False)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> ConfusionResult:
        """Load from a JSON string or a path written by :meth:`to_json`."""
        text = str(text_or_path)
        if not text.lstrip().startswith("{"):
            text = Path(text_or_path).read_text()
        return cls.from_dict(json.loads(text))

    def to_csv(self, path: str | Path | None = None) -> str:
        """One summary row; see :func:`write_confusion_csv` for several results."""
        return write_confusion_csv([self], path)


def write_confusion_csv(results: Iterable[ConfusionResult], path: str | Path | None = None) -> str:
    """One row per result (columns ``CSV_COLUMNS``; quantiles as ``q=value`` pairs)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in results:
        qs = " ".join(f"{q:g}={v!r}" for q, v in r.quantiles.items())
        w.writerow([r.label, r.batch_size, r.n_pairs, *(repr(getattr(r, k)) for k in _FLOATS[:4]),
                    repr(r.mean_sq_norm), r.zero_gradient_examples, qs])
    text = buf.getvalue()
    if path is not None:
        Path(path).write_text(text)
    return text
