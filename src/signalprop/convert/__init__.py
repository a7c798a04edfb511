"""Model surgery: normalizer-free conversion, GroupNorm + WS, folding WS for inference,
parameterized hypercomplex layers."""

from signalprop.convert._gate import GatedBranch
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
    "bn_to_gn_ws",
    "fold_ws",
    "to_normfree",
    "to_phm",
]
