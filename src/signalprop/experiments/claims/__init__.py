"""Claim modules, one per paper claim; importing this package registers them.

Modules are imported in the issue's order; a name listed here whose module does not
exist (yet) is skipped, so claims can be added in any order.
"""

import importlib
import importlib.util

_MODULES = ("nf_spp", "skipinit_depth", "bn_batchsize", "nf_vs_bn", "snn_depth",
            "confusion_width_depth", "sgd_noise", "criticality_depth", "adam_nag",
            "orthogonal")

for _name in _MODULES:
    if importlib.util.find_spec(f"{__name__}.{_name}") is not None:
        importlib.import_module(f"{__name__}.{_name}")
