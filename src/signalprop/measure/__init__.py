"""Measurements that work on any nn.Module: hooks stream statistics, keep no activations."""

from signalprop.measure._confusion import confusion_from_gram, gradient_confusion
from signalprop.measure._discovery import Block, BlockPlan, discover_blocks, resolve_blocks
from signalprop.measure._forward import ForwardError
from signalprop.measure._fused_add import fused_add_available, residual_add_moments
from signalprop.measure._gradient_spp import gradient_spp
from signalprop.measure._gram import gradient_gram
from signalprop.measure._hessian import hessian_extremes
from signalprop.measure._jacobian import jacobian_spectrum
from signalprop.measure._lanczos import lanczos
from signalprop.measure._moments import ChannelMoments, channel_moments
from signalprop.measure._nonfinite import NonFiniteError
from signalprop.measure._spp import spp
from signalprop.measure.batch_independence import batch_independence

__all__ = [
    "Block",
    "BlockPlan",
    "ChannelMoments",
    "ForwardError",
    "batch_independence",
    "channel_moments",
    "discover_blocks",
    "fused_add_available",
    "residual_add_moments",
    "resolve_blocks",
    "spp",
    "NonFiniteError",
    "confusion_from_gram",
    "gradient_confusion",
    "gradient_gram",
    "gradient_spp",
    "hessian_extremes",
    "jacobian_spectrum",
    "lanczos",
]
