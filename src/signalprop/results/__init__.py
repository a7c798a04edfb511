"""Plain result objects shared by measurement and theory.

Every result is a dataclass inheriting :class:`Result`, which gives it ``to_json()`` /
``from_json(text)``, ``save(path)`` / ``load(path)`` and a CSV table (:func:`write_csv` for
several results of one class). This package imports nothing beyond the standard library,
so every layer (theory included) can build the same objects; a plot can then overlay a
prediction on a measurement without glue code.
"""

from signalprop.results._base import Result, write_csv
from signalprop.results.collapse import CollapseResult
from signalprop.results.compression import CompressionPlan, LatencyTable
from signalprop.results.confusion import ConfusionResult
from signalprop.results.conv_spectra import (
    ConvLayerSpectrum,
    ConvSpectraResult,
    ConvSpectrumResult,
    Existence,
)
from signalprop.results.effective_lr import EffectiveLRResult, ParamLR
from signalprop.results.grad_spp import GradBlockStats, GradSPPResult, chi_prediction
from signalprop.results.gram import GramResult
from signalprop.results.independence import BatchIndependenceResult
from signalprop.results.quantized import (
    EstimatorIndicatorsResult,
    LayerIndicators,
    RoundingChainResult,
)
from signalprop.results.regions import (
    PlaneRegionsResult,
    RegionBoundsResult,
    RegionDensityResult,
    RegionsResult,
)
from signalprop.results.sequence import LengthBlockStats, LengthSPPResult, SpatialJacobianResult
from signalprop.results.spectra import HessianExtremesResult, JacobianSpectrumResult
from signalprop.results.spp import BlockStats, SPPResult

__all__ = [
    "BatchIndependenceResult",
    "BlockStats",
    "CollapseResult",
    "ConfusionResult",
    "EffectiveLRResult",
    "CompressionPlan",
    "ConfusionResult",
    "EstimatorIndicatorsResult",
    "ConvLayerSpectrum",
    "ConvSpectraResult",
    "ConvSpectrumResult",
    "Existence",
    "GradBlockStats",
    "GradSPPResult",
    "GramResult",
    "HessianExtremesResult",
    "JacobianSpectrumResult",
    "ParamLR",
    "LatencyTable",
    "LengthBlockStats",
    "LengthSPPResult",
    "LayerIndicators",
    "PlaneRegionsResult",
    "RegionBoundsResult",
    "RegionDensityResult",
    "RegionsResult",
    "Result",
    "RoundingChainResult",
    "SPPResult",
    "SpatialJacobianResult",
    "chi_prediction",
    "write_csv",
]
