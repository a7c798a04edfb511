"""Model families built from signalprop.nn, and a registry of named presets."""

from signalprop.models._registry import (
    create_model,
    list_models,
    load_model,
    model_entry,
    register_model,
)
from signalprop.models.fixup_bottleneck import FixupBottleneck
from signalprop.models.mlp import MLP, mlp
from signalprop.models.ph_mixer import PHMixer, PHMixerBranch, ph_mixer
from signalprop.models.ph_resnet import PHBasicBlock1d, PHResNet1d, ph_resnet1d, phm_convs_
from signalprop.models.resnetv2 import (
    NORMS,
    PRESETS,
    NFBottleneck,
    PreActBottleneck,
    ResNetV2,
    ResNetV2Config,
    resnetv2,
)

__all__ = [
    "MLP",
    "NORMS",
    "PRESETS",
    "FixupBottleneck",
    "NFBottleneck",
    "PHBasicBlock1d",
    "PHMixer",
    "PHMixerBranch",
    "PHResNet1d",
    "PreActBottleneck",
    "ResNetV2",
    "ResNetV2Config",
    "create_model",
    "list_models",
    "load_model",
    "mlp",
    "ph_mixer",
    "ph_resnet1d",
    "phm_convs_",
    "model_entry",
    "register_model",
    "resnetv2",
]
