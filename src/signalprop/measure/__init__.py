"""Measurements that work on any nn.Module.

Every measurement has one signature, ``f(model, x, y=None, *, loss_fn=None, <options>)
-> <Name>Result`` (see ``docs/api-conventions.md``), and returns a result object from
:mod:`signalprop.results`. The implementations live in subpackages by what they measure:

* ``forward/``: Signal Propagation Plots and their C kernels (``spp``);
* ``gradients/``: gradient propagation and per-example gradient geometry
  (``gradient_spp``, ``gradient_gram``, ``gradient_confusion``);
* ``spectra/``: Jacobian and Hessian spectra (``jacobian_spectrum``, ``hessian_extremes``)
  and convolution spectra (``conv_spectra``; ``conv_spectrum`` for one layer);
* ``independence/``: ``batch_independence``;
* ``quantized/``: low-precision networks (``estimator_indicators``);
* ``regions/``: linear regions counted exactly (``linear_regions``, ``plane_regions``,
  ``region_density``);
* ``sequence/``: propagation along the sequence and across grids (``spatial_jacobian``;
  ``length_spp``, which takes an input *maker* rather than an input);
* ``representations/``: whether embeddings collapse (``collapse``);
* ``dynamics/``: quantities read from the optimizer (``effective_lr(model, optimizer)``,
  not a ``(model, x)`` measurement);

and the helpers they share (block discovery, per-example losses, non-finite checks) sit
here as private modules. Public names are flat: ``sp.measure.spp``, ``sp.spp``.
"""

from signalprop._forward import ForwardError
from signalprop.measure._discovery import Block, BlockPlan, discover_blocks, resolve_blocks
from signalprop.measure._nonfinite import NonFiniteError
from signalprop.measure.dynamics import effective_lr
from signalprop.measure.forward import (
    ChannelMoments,
    channel_moments,
    fused_add_available,
    residual_add_moments,
    spp,
)
from signalprop.measure.gradients import (
    confusion_from_gram,
    gradient_confusion,
    gradient_gram,
    gradient_spp,
)
from signalprop.measure.independence import batch_independence
from signalprop.measure.quantized import estimator_indicators
from signalprop.measure.regions import (
    NotAffineError,
    linear_regions,
    plane_regions,
    region_density,
)
from signalprop.measure.representations import collapse
from signalprop.measure.sequence import length_spp, spatial_jacobian
from signalprop.measure.spectra import (
    conv_spectra,
    conv_spectrum,
    hessian_extremes,
    jacobian_spectrum,
    lanczos,
)

#: The measurements (``f(model, x, y=None, *, loss_fn=None, ...) -> ...Result``).
MEASUREMENTS = (
    "spp",
    "gradient_spp",
    "gradient_gram",
    "gradient_confusion",
    "jacobian_spectrum",
    "hessian_extremes",
    "batch_independence",
    "conv_spectra",
    "estimator_indicators",
    "linear_regions",
    "plane_regions",
    "region_density",
    "spatial_jacobian",
    "collapse",
)

__all__ = [
    "MEASUREMENTS",
    "Block",
    "BlockPlan",
    "ChannelMoments",
    "ForwardError",
    "NonFiniteError",
    "NotAffineError",
    "batch_independence",
    "channel_moments",
    "collapse",
    "confusion_from_gram",
    "conv_spectra",
    "conv_spectrum",
    "discover_blocks",
    "effective_lr",
    "estimator_indicators",
    "fused_add_available",
    "gradient_confusion",
    "gradient_gram",
    "gradient_spp",
    "hessian_extremes",
    "jacobian_spectrum",
    "lanczos",
    "length_spp",
    "linear_regions",
    "plane_regions",
    "region_density",
    "residual_add_moments",
    "resolve_blocks",
    "spatial_jacobian",
    "spp",
]
