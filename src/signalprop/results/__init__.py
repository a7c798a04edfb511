"""Plain result objects shared by measurement and theory.

This package imports nothing beyond the standard library, so every layer (theory included)
can build the same objects; a plot can then overlay a prediction on a measurement
without glue code.
"""

from signalprop.results.confusion import ConfusionResult, write_confusion_csv
from signalprop.results.grad_spp import (
    GradBlockStats,
    GradSPPResult,
    chi_prediction,
    write_grad_csv,
)
from signalprop.results.independence import BatchIndependenceResult
from signalprop.results.spectra import HessianExtremes, JacobianSpectrum
from signalprop.results.spp import BlockStats, SPPResult, write_csv

__all__ = ["BlockStats", "SPPResult", "write_csv"]
__all__ += ["ConfusionResult", "GradBlockStats", "GradSPPResult", "HessianExtremes",
            "JacobianSpectrum", "chi_prediction", "write_confusion_csv", "write_grad_csv"]
__all__ += ["BatchIndependenceResult"]
