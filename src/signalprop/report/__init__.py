"""One-page diagnosis of a model: measurements, plain-words diagnoses and their fixes.

``build_report(model, x, out)`` measures (``build``), diagnoses (``diagnose``: pure
functions of the result objects) and renders one self-contained HTML page (``html``).
"""

from signalprop.report._predict import predicted_spp
from signalprop.report._types import Measurements, ReportResult
from signalprop.report.build import apply_fix, build_report, measure_all
from signalprop.report.diagnosis import (
    GRADIENT_CHI_LIMIT,
    GRADIENT_RATIO_LIMIT,
    MEAN_SHIFT_RATIO,
    VARIANCE_GROWTH_LIMIT,
    Diagnosis,
    diagnose,
)

__all__ = [
    "GRADIENT_CHI_LIMIT",
    "GRADIENT_RATIO_LIMIT",
    "MEAN_SHIFT_RATIO",
    "VARIANCE_GROWTH_LIMIT",
    "Diagnosis",
    "Measurements",
    "ReportResult",
    "apply_fix",
    "build_report",
    "diagnose",
    "measure_all",
    "predicted_spp",
]
