"""Depth compression: merge consecutive convolutions exactly, choose which activations
to drop by two-stage dynamic programming under a measured latency budget (Kim, Jeong,
Lee & Song, ICML 2023)."""

from signalprop.convert.compress._compress import apply_plan, depth_compress, measure_plan
from signalprop.convert.compress._merge import merge_convs
from signalprop.convert.compress._plan import latency_table
from signalprop.convert.compress._spec import MergeError

__all__ = ["MergeError", "apply_plan", "depth_compress", "latency_table", "measure_plan",
           "merge_convs"]
