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
from signalprop.models.mobilenet import (
    ConvNet,
    InvertedResidual,
    mobilenetv2,
    plain_cnn,
)
from signalprop.models.ph_mixer import PHMixer, PHMixerBranch, ph_mixer
from signalprop.models.ph_resnet import PHBasicBlock1d, PHResNet1d, ph_resnet1d, phm_convs_
from signalprop.models.quantized import QuantMLP, QuantResNetV2, quant_mlp, quant_resnetv2
from signalprop.models.region_nets import (
    RegionNet,
    relu_region_net,
    ternary_mlp,
    ternary_region_net,
)
from signalprop.models.resnetv2 import (
    NORMS,
    PRESETS,
    NFBottleneck,
    PreActBottleneck,
    ResNetV2,
    ResNetV2Config,
    resnetv2,
)
from signalprop.models.transformer import (
    EncoderLayer,
    FeedForward,
    Transformer,
    TransformerConfig,
    transformer,
)

__all__ = [
    "MLP",
    "ConvNet",
    "InvertedResidual",
    "NORMS",
    "PRESETS",
    "EncoderLayer",
    "FeedForward",
    "FixupBottleneck",
    "NFBottleneck",
    "PHBasicBlock1d",
    "PHMixer",
    "PHMixerBranch",
    "PHResNet1d",
    "PreActBottleneck",
    "QuantMLP",
    "QuantResNetV2",
    "ResNetV2",
    "RegionNet",
    "ResNetV2Config",
    "Transformer",
    "TransformerConfig",
    "create_model",
    "list_models",
    "load_model",
    "mlp",
    "ph_mixer",
    "ph_resnet1d",
    "phm_convs_",
    "mobilenetv2",
    "model_entry",
    "plain_cnn",
    "quant_mlp",
    "quant_resnetv2",
    "register_model",
    "relu_region_net",
    "resnetv2",
    "ternary_mlp",
    "ternary_region_net",
    "transformer",
]
