"""signalprop: measure, predict and fix signal propagation in deep PyTorch networks.

``import signalprop as sp`` is cheap: torch-backed parts (``sp.spp``, ``sp.nn``,
``sp.models``, ``sp.plot``, ...) load on first use, and ``signalprop.theory`` never
imports torch at all.

Examples:
    >>> import signalprop as sp
    >>> round(sp.theory.gamma("relu"), 4)
    1.7129
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from signalprop import results, theory

__version__ = "0.2.0"

# public name -> (module, attribute or None for the module itself)
_LAZY: dict[str, tuple[str, str | None]] = {
    "nn": ("signalprop.nn", None),
    "models": ("signalprop.models", None),
    "measure": ("signalprop.measure", None),
    "plot": ("signalprop.plot", None),
    "data": ("signalprop.data", None),
    "train": ("signalprop.train", None),
    "sweep": ("signalprop.sweep", None),
    "spp": ("signalprop.measure", "spp"),
    "SPPResult": ("signalprop.results", "SPPResult"),
    "BlockStats": ("signalprop.results", "BlockStats"),
    "gradient_spp": ("signalprop.measure", "gradient_spp"),
    "gradient_gram": ("signalprop.measure", "gradient_gram"),
    "gradient_confusion": ("signalprop.measure", "gradient_confusion"),
    "jacobian_spectrum": ("signalprop.measure", "jacobian_spectrum"),
    "hessian_extremes": ("signalprop.measure", "hessian_extremes"),
    "GradSPPResult": ("signalprop.results", "GradSPPResult"),
    "ConfusionResult": ("signalprop.results", "ConfusionResult"),
    "GramResult": ("signalprop.results", "GramResult"),
    "JacobianSpectrumResult": ("signalprop.results", "JacobianSpectrumResult"),
    "HessianExtremesResult": ("signalprop.results", "HessianExtremesResult"),
    "batch_independence": ("signalprop.measure", "batch_independence"),
    "BatchIndependenceResult": ("signalprop.results", "BatchIndependenceResult"),
    "collapse": ("signalprop.measure", "collapse"),
    "CollapseResult": ("signalprop.results", "CollapseResult"),
    "EffectiveLRResult": ("signalprop.results", "EffectiveLRResult"),
    "estimator_indicators": ("signalprop.measure", "estimator_indicators"),
    "EstimatorIndicatorsResult": ("signalprop.results", "EstimatorIndicatorsResult"),
    "linear_regions": ("signalprop.measure", "linear_regions"),
    "plane_regions": ("signalprop.measure", "plane_regions"),
    "region_density": ("signalprop.measure", "region_density"),
    "RegionsResult": ("signalprop.results", "RegionsResult"),
    "PlaneRegionsResult": ("signalprop.results", "PlaneRegionsResult"),
    "RegionDensityResult": ("signalprop.results", "RegionDensityResult"),
    "length_spp": ("signalprop.measure", "length_spp"),
    "spatial_jacobian": ("signalprop.measure", "spatial_jacobian"),
    "LengthSPPResult": ("signalprop.results", "LengthSPPResult"),
    "SpatialJacobianResult": ("signalprop.results", "SpatialJacobianResult"),
    "conv_spectra": ("signalprop.measure", "conv_spectra"),
    "conv_spectrum": ("signalprop.measure", "conv_spectrum"),
    "ConvSpectraResult": ("signalprop.results", "ConvSpectraResult"),
    "ConvSpectrumResult": ("signalprop.results", "ConvSpectrumResult"),
    "CompressionPlan": ("signalprop.results", "CompressionPlan"),
    "LatencyTable": ("signalprop.results", "LatencyTable"),
    "optim": ("signalprop.optim", None),
    "convert": ("signalprop.convert", None),
    "report": ("signalprop.report", None),
}

if TYPE_CHECKING:
    from signalprop import convert, data, measure, models, nn, optim, plot, report, sweep, train
    from signalprop.measure import (
        batch_independence,
        collapse,
        conv_spectra,
        conv_spectrum,
        estimator_indicators,
        gradient_confusion,
        gradient_gram,
        gradient_spp,
        hessian_extremes,
        jacobian_spectrum,
        length_spp,
        linear_regions,
        plane_regions,
        region_density,
        spatial_jacobian,
        spp,
    )
    from signalprop.results import (
        BatchIndependenceResult,
        BlockStats,
        CollapseResult,
        CompressionPlan,
        ConfusionResult,
        ConvSpectraResult,
        ConvSpectrumResult,
        EffectiveLRResult,
        EstimatorIndicatorsResult,
        GradSPPResult,
        GramResult,
        HessianExtremesResult,
        JacobianSpectrumResult,
        LatencyTable,
        LengthSPPResult,
        PlaneRegionsResult,
        RegionDensityResult,
        RegionsResult,
        SpatialJacobianResult,
        SPPResult,
    )


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'signalprop' has no attribute {name!r}")
    module, attr = _LAZY[name]
    value = importlib.import_module(module)
    if attr is not None:
        value = getattr(value, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = ["__version__", "results", "theory", *_LAZY]
