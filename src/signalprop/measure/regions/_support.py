"""Which models the region counter accepts: torch.nn layers by name, and torch functions.

A model is followed through its torch calls (a ``TorchFunctionMode``), so the functional
forms count too (``F.relu``, ``x.clamp(0, 1)``, ``torch.maximum``). Three kinds of call:

* piecewise-linear units (``PIECEWISE``): each call is one *stage* whose states define
  the regions;
* calls refused by name (``REFUSED``): smooth or data-coupling functions;
* everything else is taken to be affine (Linear, Conv, eval BatchNorm, additions,
  reshapes, ...); the counter then checks on every piece that the model really is affine
  there, so a hidden nonlinearity (``x * x``) is reported, not silently miscounted.
"""

from __future__ import annotations

import torch.nn as nn

# torch.nn layers accepted (subclasses too); containers are always fine.
AFFINE_MODULES: tuple[type[nn.Module], ...] = (
    nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
    nn.ConvTranspose3d, nn.modules.batchnorm._BatchNorm, nn.Identity, nn.Flatten,
    nn.Unflatten, nn.modules.dropout._DropoutNd, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
    nn.modules.padding._ConstantPadNd, nn.ZeroPad2d,
)
PIECEWISE_MODULES: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.ReLU6, nn.Hardtanh, nn.MaxPool1d, nn.MaxPool2d,
    nn.MaxPool3d,
)
CONTAINERS: tuple[type[nn.Module], ...] = (nn.Sequential, nn.ModuleList, nn.ModuleDict)

# torch function name -> unit kind (see _units.py)
PIECEWISE: dict[str, str] = {
    **dict.fromkeys(("relu", "relu_"), "relu"),
    **dict.fromkeys(("leaky_relu", "leaky_relu_"), "leaky_relu"),
    "prelu": "prelu",
    **dict.fromkeys(("abs", "abs_", "absolute"), "abs"),
    **dict.fromkeys(("hardtanh", "hardtanh_", "relu6", "clamp", "clamp_", "clip", "clip_",
                     "clamp_min", "clamp_min_", "clamp_max", "clamp_max_"), "clamp"),
    **dict.fromkeys(("maximum", "fmax", "minimum", "fmin", "max", "min"), "maximum"),
    **dict.fromkeys(("max_pool1d", "max_pool2d", "max_pool3d", "_max_pool1d", "_max_pool2d",
                     "_max_pool3d", "max_pool1d_with_indices", "max_pool2d_with_indices",
                     "max_pool3d_with_indices"), "max_pool"),
    **dict.fromkeys(("round", "round_", "floor", "floor_", "ceil", "ceil_", "trunc",
                     "trunc_", "fix", "sign", "sign_"), "step"),
}

# functions that are not piecewise linear (or that couple the examples of a batch)
REFUSED = frozenset({
    "tanh", "tanh_", "sigmoid", "sigmoid_", "gelu", "silu", "silu_", "mish", "softplus",
    "elu", "elu_", "selu", "selu_", "celu", "celu_", "rrelu", "rrelu_", "glu", "logsigmoid",
    "hardswish", "hardsigmoid", "softsign", "tanhshrink", "softshrink", "hardshrink",
    "threshold", "threshold_", "softmax", "log_softmax", "softmin", "exp", "exp_", "exp2",
    "expm1", "log", "log_", "log1p", "log2", "log10", "sqrt", "rsqrt", "pow", "__pow__",
    "square", "reciprocal", "sin", "cos", "erf", "erfc", "layer_norm", "group_norm",
    "instance_norm", "local_response_norm", "rms_norm", "normalize", "cosine_similarity",
    "cdist", "scaled_dot_product_attention", "multi_head_attention_forward", "amax", "amin",
    "median", "sort", "topk", "argmax", "argmin", "adaptive_max_pool1d",
    "adaptive_max_pool2d", "adaptive_max_pool3d", "lp_pool1d", "lp_pool2d", "fractional_max_pool2d",
})


def supported_names() -> str:
    """The supported layers and functions, for error messages.

    Examples:
        >>> "ReLU" in supported_names() and "torch.abs" in supported_names()
        True
    """
    mods = sorted({c.__name__.lstrip("_") for c in AFFINE_MODULES + PIECEWISE_MODULES})
    return (f"layers {', '.join(mods)} (BatchNorm and Dropout in eval mode), residual "
            "additions, flatten and reshapes; functions relu, leaky_relu, prelu, relu6, "
            "hardtanh, clamp/clip, torch.abs, torch.maximum/minimum, max_pool1d/2d/3d, and "
            "the step functions round, floor, ceil, trunc, sign (counted as jumps)")


def _refused(m: nn.Module) -> bool:
    """A torch.nn layer (not a container) that is neither affine nor piecewise linear."""
    return type(m).__module__.startswith("torch.nn") and not isinstance(m, CONTAINERS) \
        and not isinstance(m, AFFINE_MODULES + PIECEWISE_MODULES)


def check_modules(model: nn.Module, batchnorm: str) -> None:
    """Refuse torch.nn layers that are not piecewise linear, by name (the innermost one:
    a ``TransformerEncoder`` is refused for the LayerNorm or attention inside it); refuse
    train-mode BatchNorm (unless ``batchnorm="eval"``) and train-mode Dropout.

    Raises:
        ValueError: naming the first offending module and listing what is supported.
    """
    refused = []
    for name, m in model.named_modules():
        label = f"module '{name or '<model>'}' ({type(m).__name__})"
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training \
                and batchnorm != "eval":
            raise ValueError(f"{label} is a BatchNorm in train mode: its output depends on "
                             "the whole batch, so regions are not defined; call model.eval() "
                             "or pass batchnorm='eval'")
        if isinstance(m, nn.modules.dropout._DropoutNd) and m.training and m.p > 0:
            raise ValueError(f"{label} is a Dropout in train mode (random); call "
                             "model.eval()")
        if _refused(m):  # user modules are followed into their torch calls instead
            refused.append((label, m))
    inner = [label for label, m in refused
             if not any(_refused(c) for c in m.modules() if c is not m)]
    if inner:
        raise ValueError(f"{inner[0]} is not piecewise linear; linear regions are counted "
                         f"for {supported_names()}")
