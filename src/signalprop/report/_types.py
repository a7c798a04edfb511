"""The objects a report is made of, shared by build, html and plots (no import cycle)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from signalprop.report.diagnosis import Diagnosis
from signalprop.results import (
    BatchIndependenceResult,
    ConfusionResult,
    ConvSpectraResult,
    GradSPPResult,
    JacobianSpectrumResult,
    Result,
    SPPResult,
)


@dataclass
class Measurements(Result):
    """Everything measured on one model (a step that could not run leaves None and a note).

    Attributes:
        label: the model's name on the page.
        spp: forward SPP.
        prediction: the theory's SPP, or None.
        grad: gradient SPP.
        confusion: gradient confusion statistics.
        jacobian: input-output Jacobian spectrum.
        independence: batch-independence check.
        conv_spectra: singular values of every convolution (models with convolutions).
        diagnoses: what :func:`~signalprop.report.diagnosis.diagnose` found.
        summary: parameter count, depth, block types, discovery, activation, theory numbers.
        notes: why a step was skipped, and other remarks for the page.

    Examples:
        >>> from signalprop.results import BlockStats
        >>> m = Measurements("toy", SPPResult("toy", [BlockStats("b0", 0, 0.0, 1.0)]))
        >>> m.grad is None, Measurements.from_json(m.to_json()).spp.records[0].avg_var
        (True, 1.0)
    """

    label: str
    spp: SPPResult
    prediction: SPPResult | None = None
    grad: GradSPPResult | None = None
    confusion: ConfusionResult | None = None
    jacobian: JacobianSpectrumResult | None = None
    independence: BatchIndependenceResult | None = None
    conv_spectra: ConvSpectraResult | None = None
    diagnoses: list[Diagnosis] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class ReportResult(Result):
    """What :func:`build_report` wrote and found.

    Attributes:
        path: the HTML page.
        images: the PNGs written beside it (also inlined in the page).
        before: measurements of the model as given.
        after: measurements of the fixed model (``fix=True``), else None.
        fix_summary: what the fix changed (conversion report or init), else "".
        seconds: wall-clock time of the whole build.

    Examples:
        >>> from signalprop.results import BlockStats
        >>> before = Measurements("toy", SPPResult("toy", [BlockStats("b0", 0, 0.0, 1.0)]))
        >>> r = ReportResult(Path("report/report.html"), [], before)
        >>> r.save("report.json")
        PosixPath('report.json')
        >>> ReportResult.load("report.json").path, r.diagnoses
        (PosixPath('report/report.html'), [])
    """

    path: Path
    images: list[Path]
    before: Measurements
    after: Measurements | None = None
    fix_summary: str = ""
    seconds: float = 0.0

    @property
    def diagnoses(self) -> list[Diagnosis]:
        """The diagnoses of the model as given."""
        return self.before.diagnoses
