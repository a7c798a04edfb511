"""Metric history as JSON lines: one record per line, appended and flushed as it happens.

A record is a flat dict such as ``{"step": 10, "epoch": 0, "split": "train", "loss": 2.1,
"acc": 0.2, "lr": 0.1, "seconds": 1.3}``; non-finite numbers are written as the strings
"NaN" / "Infinity" so every line is strict JSON. ``step`` counts updates from 1.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from signalprop.results._serial import decode_float, encode_float
from signalprop.train.checkpoint import atomic_write

METRICS = "metrics.jsonl"


def _encode(record: dict[str, Any]) -> str:
    out = {k: encode_float(v) if isinstance(v, float) else v for k, v in record.items()}
    return json.dumps(out, allow_nan=False)


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """All complete records of a metrics file (a torn last line, from a kill, is dropped).

    Examples:
        >>> read_metrics("/nonexistent/metrics.jsonl")
        []
    """
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    lines = path.read_text().splitlines()
    for number, line in enumerate(lines, 1):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            if number == len(lines):
                continue  # only the last line can be torn (by a kill): it is written last
            raise ValueError(f"{path}, line {number}: not a JSON record ({e.msg}); the file "
                             "is damaged or was edited") from None
        if not isinstance(rec, dict):
            raise ValueError(f"{path}, line {number}: a record must be a JSON object, got "
                             f"{line[:40]!r}")
        for key in ("loss", "acc", "lr"):
            if key in rec and isinstance(rec[key], str):
                rec[key] = decode_float(rec[key])
        records.append(rec)
    return records


class MetricsWriter:
    """Appends records to ``path`` (or keeps them in memory when ``path`` is None)."""

    def __init__(self, path: str | Path | None, keep_until_step: int | None = None) -> None:
        """Open ``path``; with ``keep_until_step`` (resume), first drop every record after
        that step, so a resumed run neither loses nor repeats lines."""
        self.path = Path(path) if path is not None else None
        self.records: list[dict[str, Any]] = []
        self._file = None
        if self.path is None:
            return
        if keep_until_step is not None:
            kept = [r for r in read_metrics(self.path) if r.get("step", 0) <= keep_until_step]
            text = "".join(_encode(r) + "\n" for r in kept)
            atomic_write(self.path, lambda f: f.write(text), mode="w")
            self.records = kept
        else:
            self.path.write_text("")
        self._file = self.path.open("a")

    def write(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        if self._file is not None:
            self._file.write(_encode(record) + "\n")
            self._file.flush()

    def sync(self) -> None:
        """Flush the written records to disk (``os.fsync``)."""
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
