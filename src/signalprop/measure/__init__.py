"""Measurements that work on any nn.Module: hooks stream statistics, keep no activations."""

from signalprop.measure._discovery import Block, BlockPlan, discover_blocks, resolve_blocks
from signalprop.measure._forward import ForwardError
from signalprop.measure._moments import ChannelMoments, channel_moments
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
    "resolve_blocks",
    "spp",
]
