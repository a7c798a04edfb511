"""What the converters know about layers and ops, shared by the torch.fx analysis and the
runtime one: which modules carry weights, which are activations (and with what parameters),
which ops pass an activation's output through unchanged in kind, which commute with a
scalar gain."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from signalprop.nn import ScaledStdConv1d, ScaledStdConv2d, ScaledStdConv3d, WSLinear

Act = tuple[str, dict[str, float]]  # (name in signalprop.theory's registry, parameters)

WS_LAYERS = (ScaledStdConv1d, ScaledStdConv2d, ScaledStdConv3d, WSLinear)
WEIGHT_LAYERS = (nn.Linear, nn.modules.conv._ConvNd)
BATCHNORMS = (nn.modules.batchnorm._BatchNorm,)
PER_EXAMPLE_NORMS = (nn.GroupNorm, nn.LayerNorm, nn.modules.instancenorm._InstanceNorm)


def is_hf_conv1d(m: nn.Module) -> bool:
    """HuggingFace's ``transformers.pytorch_utils.Conv1D`` (GPT-2): a linear layer whose
    weight is laid out (in, out), recognised without importing transformers."""
    w = getattr(m, "weight", None)
    return (type(m).__name__ == "Conv1D" and type(m).__module__.startswith("transformers")
            and isinstance(w, torch.Tensor) and w.dim() == 2 and w.shape[1] == getattr(m, "nf", -1))


def is_weight_layer(m: nn.Module) -> bool:
    """A layer that multiplies its input by a weight matrix (what the residual analysis
    counts to tell a branch from its shortcut); embeddings are lookups, not counted."""
    return isinstance(m, (*WEIGHT_LAYERS, nn.MultiheadAttention, nn.RNNBase)) or is_hf_conv1d(m)


# ---- activations: name and parameters in signalprop.theory's registry -------------------
_MODULE_ACTS: list[tuple[type, Callable[[Any], Act | None]]] = [
    (nn.ReLU, lambda m: ("relu", {})),
    (nn.ReLU6, lambda m: ("relu6", {})),
    (nn.LeakyReLU, lambda m: ("leaky_relu", {"negative_slope": m.negative_slope})),
    (nn.GELU, lambda m: ("gelu", {})),  # NOTE: the tanh approximation taken as GELU
    (nn.SiLU, lambda m: ("silu", {})),
    (nn.Tanh, lambda m: ("tanh", {})),
    (nn.Sigmoid, lambda m: ("sigmoid", {})),
    (nn.ELU, lambda m: ("elu", {"alpha": m.alpha})),
    (nn.CELU, lambda m: ("celu", {"alpha": m.alpha})),
    (nn.SELU, lambda m: ("selu", {})),
    (nn.Softplus, lambda m: ("softplus", {"beta": m.beta})),
    (nn.Mish, lambda m: ("mish", {})),
]


# transformers' activation classes (ACT2FN), by class name: no import of transformers.
# NOTE: the tanh approximations of GELU are taken as GELU: their gamma differs by < 1e-3.
_HF_ACTS = {"GELUActivation": "gelu", "NewGELUActivation": "gelu", "GELUTanh": "gelu",
            "FastGELUActivation": "gelu", "PytorchGELUTanh": "gelu", "SiLUActivation": "silu",
            "MishActivation": "mish"}


def module_activation(m: nn.Module) -> Act | None:
    """The registered activation a module computes, if it is one (exact types only)."""
    for cls, fn in _MODULE_ACTS:
        if type(m) is cls:
            return fn(m)
    if type(m).__module__.startswith("transformers") and type(m).__name__ in _HF_ACTS:
        return _HF_ACTS[type(m).__name__], {}
    return None


FUNCTION_ACTS: dict[Any, str] = {
    F.relu: "relu", torch.relu: "relu", F.relu6: "relu6", F.gelu: "gelu", F.silu: "silu",
    torch.tanh: "tanh", F.tanh: "tanh", torch.sigmoid: "sigmoid", F.sigmoid: "sigmoid",
    F.elu: "elu", F.selu: "selu", torch.selu: "selu", F.celu: "celu", F.softplus: "softplus",
    F.mish: "mish", F.leaky_relu: "leaky_relu",
}
METHOD_ACTS = {"relu": "relu", "relu_": "relu", "tanh": "tanh", "sigmoid": "sigmoid"}


def _arg(args: tuple, kwargs: dict, pos: int, key: str, default: Any) -> Any:
    if key in kwargs:
        return kwargs[key]
    return args[pos] if len(args) > pos else default


def call_activation(target: Any, args: tuple, kwargs: dict, *, method: bool = False
                    ) -> Act | None:
    """The registered activation computed by calling ``target`` (a function, or with
    ``method=True`` a Tensor method name) on ``args``/``kwargs``, if it is one."""
    if method:
        return (METHOD_ACTS[target], {}) if target in METHOD_ACTS else None
    name = FUNCTION_ACTS.get(target)
    if name is None:
        return None
    params: dict[str, float] = {}
    if name == "leaky_relu":
        params["negative_slope"] = float(_arg(args, kwargs, 1, "negative_slope", 0.01))
    elif name in ("elu", "celu"):
        params["alpha"] = float(_arg(args, kwargs, 1, "alpha", 1.0))
    elif name == "softplus":
        params["beta"] = float(_arg(args, kwargs, 1, "beta", 1.0))
    return name, params


# ---- ops that keep "which activation produced this" (they neither compute nor mix units) --
TRANSPARENT_MODULES = (
    nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.Flatten, nn.Unflatten,
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool2d,
    nn.ZeroPad2d, nn.ConstantPad2d, *BATCHNORMS,
)
TRANSPARENT_FUNCTIONS = {F.dropout, torch.flatten, torch.reshape, torch.transpose,
                         torch.permute, F.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d}
TRANSPARENT_METHODS = {"view", "reshape", "flatten", "permute", "transpose", "contiguous"}

def is_pass_through(m: nn.Module) -> bool:
    """An identity, dropout or stochastic-depth module: identity in eval mode, and a scalar
    gain commutes with it in train mode."""
    name = type(m).__name__
    return isinstance(m, (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)) \
        or "DropPath" in name or "StochasticDepth" in name


# Linear ops a scalar gain of either sign commutes with (max-pooling does not, for a < 0).
COMMUTING_FUNCTIONS = {F.dropout, torch.flatten, torch.reshape, torch.transpose,
                       torch.permute, F.avg_pool2d, F.adaptive_avg_pool2d}
COMMUTING_METHODS = {"view", "reshape", "flatten", "permute", "transpose", "contiguous"}

ADD_FUNCTIONS = {torch.add}
ADD_METHODS = {"add", "add_", "__add__", "__radd__", "__iadd__"}
BATCHNORM_FUNCTIONS = {F.batch_norm, torch.batch_norm}

# Parameters that scale a residual branch per channel (LayerScale: CaiT, ConvNeXt, DINOv2),
# by the names transformers and timm give them.
LAYER_SCALE_NAMES = ("layer_scale", "layerscale", "gamma", "lambda1", "lambda2", "ls1", "ls2")


def tensor_method(func: Any) -> str | None:
    """The name of a ``torch.Tensor`` method (as a torch-function mode receives it)."""
    name = getattr(func, "__name__", None)
    if isinstance(name, str) and getattr(torch.Tensor, name, None) is func:
        return name
    return None
