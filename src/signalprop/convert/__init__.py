"""Model surgery: normalizer-free conversion, GroupNorm + WS, folding WS for inference,
depth compression (merging convolutions), parameterized hypercomplex layers."""

from signalprop.convert._gate import GatedBranch
from signalprop.convert.compress import (
    MergeError,
    apply_plan,
    depth_compress,
    latency_table,
    measure_plan,
    merge_convs,
)
from signalprop.convert.fold import fold_ws
from signalprop.convert.gn_ws import bn_to_gn_ws
from signalprop.convert.normfree import to_normfree
from signalprop.convert.phm import to_phm
from signalprop.convert.report import Change, ConversionError, ConversionReport

__all__ = [
    "Change",
    "ConversionError",
    "ConversionReport",
    "GatedBranch",
    "MergeError",
    "apply_plan",
    "bn_to_gn_ws",
    "depth_compress",
    "fold_ws",
    "latency_table",
    "measure_plan",
    "merge_convs",
    "to_normfree",
    "to_phm",
]
