"""Depth compression: merge consecutive convolutions exactly, choose which activations
to drop by two-stage dynamic programming under a measured latency budget (Kim, Jeong,
Lee & Song, ICML 2023)."""

from signalprop.convert.compress._merge import merge_convs
from signalprop.convert.compress._spec import MergeError

__all__ = ["MergeError", "merge_convs"]
