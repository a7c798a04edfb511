"""Signal Propagation Plot records: :class:`BlockStats` and :class:`SPPResult`.

Statistics follow Brock, De & Smith (ICLR 2021), taken per channel over every other axis
and then averaged over channels:

* ``avg_sq_mean`` = mean_c (mean x_c)^2
* ``avg_var``     = mean_c var(x_c)            (biased variance)
* ``res_var``     = mean_c var(branch_c), the residual branch output before any skip gain
  or alpha; ``None`` where the block has no known branch.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from signalprop.results._serial import decode_float, encode_float

_FLOAT_FIELDS = ("avg_sq_mean", "avg_var", "res_var")
CSV_COLUMNS = ("label", "kind", "index", "name", "avg_sq_mean", "avg_var", "res_var", "nonfinite")


@dataclass(frozen=True)
class BlockStats:
    """Statistics of one block's output.

    Attributes:
        name: qualified module name (``model.get_submodule(name)``) or a theory label.
        index: position along the trunk, 0 for the first recorded block.
        avg_sq_mean: average over channels of the squared channel mean.
        avg_var: average over channels of the (biased) channel variance.
        res_var: average channel variance of the residual branch output, or ``None``.
        nonfinite: number of NaN/Inf values in the block output (0 for predictions).
    """

    name: str
    index: int
    avg_sq_mean: float
    avg_var: float
    res_var: float | None = None
    nonfinite: int = 0

    @property
    def finite(self) -> bool:
        """True when the block output held no NaN/Inf values."""
        return self.nonfinite == 0


@dataclass
class SPPResult:
    """The per-block statistics of one model on one input (measured or predicted).

    Examples:
        >>> r = SPPResult("toy", [BlockStats("b0", 0, 0.0, 1.0, 1.0)])
        >>> SPPResult.from_json(r.to_json()).records[0].avg_var
        1.0
    """

    label: str
    records: list[BlockStats]
    kind: str = "measured"  # "measured" or "predicted"
    input_shape: tuple[int, ...] | None = None
    channel_dim: int = 1
    discovery: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in ("measured", "predicted"):
            raise ValueError(f"kind must be 'measured' or 'predicted', got {self.kind!r}")

    def __len__(self) -> int:
        return len(self.records)

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.records]

    @property
    def avg_sq_mean(self) -> list[float]:
        return [r.avg_sq_mean for r in self.records]

    @property
    def avg_var(self) -> list[float]:
        return [r.avg_var for r in self.records]

    @property
    def res_var(self) -> list[float | None]:
        return [r.res_var for r in self.records]

    @property
    def first_nonfinite(self) -> BlockStats | None:
        """The first block whose output held NaN/Inf values, or ``None``."""
        return next((r for r in self.records if r.nonfinite), None)

    # ---- serialisation -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        records = []
        for r in self.records:
            d = asdict(r)
            for k in _FLOAT_FIELDS:
                d[k] = encode_float(d[k])
            records.append(d)
        return {
            "label": self.label,
            "kind": self.kind,
            "input_shape": list(self.input_shape) if self.input_shape is not None else None,
            "channel_dim": self.channel_dim,
            "discovery": self.discovery,
            "meta": self.meta,
            "records": records,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SPPResult:
        records = []
        for r in d["records"]:
            r = dict(r)
            for k in _FLOAT_FIELDS:
                r[k] = decode_float(r.get(k))
            records.append(BlockStats(**r))
        shape = d.get("input_shape")
        return cls(
            label=d["label"],
            records=records,
            kind=d.get("kind", "measured"),
            input_shape=tuple(shape) if shape is not None else None,
            channel_dim=d.get("channel_dim", 1),
            discovery=d.get("discovery", ""),
            meta=d.get("meta", {}),
        )

    def to_json(self, path: str | Path | None = None, indent: int | None = 1) -> str:
        """Serialise to strict JSON (non-finite floats as strings); also write ``path``."""
        text = json.dumps(self.to_dict(), indent=indent, allow_nan=False)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> SPPResult:
        """Load from a JSON string or a path written by :meth:`to_json`."""
        text = str(text_or_path)
        if not text.lstrip().startswith("{"):
            text = Path(text_or_path).read_text()
        return cls.from_dict(json.loads(text))

    def to_csv(self, path: str | Path | None = None) -> str:
        """One row per block; see :func:`write_csv` for several results in one file."""
        return write_csv([self], path)


def _fmt(v: float | None) -> str:
    # float() reads back "NaN", "Infinity" and "-Infinity", so the CSV round-trips.
    if v is None:
        return ""
    return repr(float(v)) if math.isfinite(v) else str(encode_float(v))


def write_csv(results: Iterable[SPPResult], path: str | Path | None = None) -> str:
    """Write several results as one CSV table (columns: ``CSV_COLUMNS``)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for res in results:
        for r in res.records:
            w.writerow(
                [res.label, res.kind, r.index, r.name, _fmt(r.avg_sq_mean), _fmt(r.avg_var),
                 _fmt(r.res_var), r.nonfinite]
            )
    text = buf.getvalue()
    if path is not None:
        Path(path).write_text(text)
    return text


def read_csv(text_or_path: str | Path) -> list[SPPResult]:
    """Read a table written by :func:`write_csv` back into results (one per label)."""
    text = str(text_or_path)
    if not text.startswith(CSV_COLUMNS[0]):
        text = Path(text_or_path).read_text()
    out: dict[tuple[str, str], SPPResult] = {}
    for row in csv.DictReader(io.StringIO(text)):
        key = (row["label"], row["kind"])
        res = out.setdefault(key, SPPResult(row["label"], [], kind=row["kind"]))
        res.records.append(
            BlockStats(
                name=row["name"],
                index=int(row["index"]),
                avg_sq_mean=float(row["avg_sq_mean"]),
                avg_var=float(row["avg_var"]),
                res_var=float(row["res_var"]) if row["res_var"] != "" else None,
                nonfinite=int(row["nonfinite"]),
            )
        )
    return list(out.values())




def stack_labels(results: Sequence[SPPResult]) -> list[str]:
    """Labels made unique by suffixing duplicates (``a``, ``a (2)``)."""
    seen: dict[str, int] = {}
    labels = []
    for r in results:
        n = seen.get(r.label, 0) + 1
        seen[r.label] = n
        labels.append(r.label if n == 1 else f"{r.label} ({n})")
    return labels
