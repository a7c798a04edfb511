"""Quantized Linear and convolution layers (binary / ternary / k-bit weights, binary inputs).

Each layer keeps float weights (BinaryConnect's buffer) and uses Q(w) in its forward pass;
with ``act_levels="binary"`` it also replaces its input x by sign(x) (a 1W/1A layer, the
binarization placed at the layer input as in XNOR-Net and the ReSTE reference). What this
does to signal propagation at initialization (``signalprop.theory``):

* weights: the output variance is multiplied by G = ``quantized_variance_gain(levels,
  scale)`` relative to the float layer (2/pi for sign weights with mean-|w| scaling,
  1 with ``scale="rms"``); the mean stays 0 (the codes are symmetric);
* binary inputs: E[sign(x)^2] = 1 whatever Var(x), so the variance is reset at every such
  layer, and the backward pass multiplies the gradient's second moment by
  ``surrogate_gain(estimator, Var(x))``.

Training with stochastic rounding keeps only grid values: ``signalprop.optim.
QuantizedTraining(mode="sr")`` snaps the weights onto a fixed grid and switches the layer
to use them as they are (``grid_unit`` set).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from signalprop.nn.quantized._quantizer import TERNARY_THRESHOLD, WeightQuantizer
from signalprop.nn.quantized._rounding import round_to_grid
from signalprop.nn.quantized._surrogate import _SignSurrogate, resolve
from signalprop.theory.quantized import check_estimator

ACT_LEVELS = (None, "binary")


class _QuantMixin:
    """The quantization state shared by QuantLinear and QuantConv{1,2}d."""

    weight: nn.Parameter
    bias: nn.Parameter | None

    def _setup_quant(self, weight_levels: str | int, scale: str | None,
                     act_levels: str | None, estimator: str,
                     estimator_params: Mapping[str, Any] | None,
                     act_estimator: str | None, act_estimator_params: Mapping[str, Any] | None,
                     threshold: float, per_channel: bool) -> None:
        self.weight_quantizer = WeightQuantizer(weight_levels, scale, estimator,
                                                dict(estimator_params or {}), threshold,
                                                per_channel)
        if act_levels not in ACT_LEVELS:
            raise ValueError(f"act_levels must be None or 'binary', got {act_levels!r}")
        self.act_levels = act_levels
        self.act_estimator = check_estimator(act_estimator or estimator)
        if act_estimator is None and act_estimator_params is None:
            act_estimator_params = estimator_params
        self.act_estimator_params = dict(act_estimator_params or {})
        resolve(self.act_estimator, self.act_estimator_params)
        #: set by QuantizedTraining ("sr" / "r"): weights are stored on unit * codes
        self.grid_unit: Tensor | None = None
        #: the training scheme that owns this layer ("bc", "sr", "r") or None
        self.training_scheme: str | None = None

    @property
    def weight_levels(self) -> str | int:
        return self.weight_quantizer.levels

    def quantized_weight(self) -> Tensor:
        """Q(w) as the forward pass uses it (with the estimator's gradient rule)."""
        if self.grid_unit is not None:  # SR / R: the stored weights are the grid values
            return self.weight
        return self.weight_quantizer(self.weight)

    def quantize_input(self, x: Tensor) -> Tensor:
        """sign(x) with the activation estimator for binary inputs, else x."""
        if self.act_levels is None:
            return x
        return _SignSurrogate.apply(x, self.act_estimator,
                                    resolve(self.act_estimator, self.act_estimator_params))

    @torch.no_grad()
    def quantized_state(self) -> dict[str, Any]:
        """The deployable weights: integer codes and their scale, Q(w) = scale * codes.

        Returns:
            ``{"levels", "codes"`` (int8 up to 8 bits, else int16) ``, "scale"`` (float,
            broadcastable against codes) ``, "bias"`` (float or None) ``, "act_levels"}``.
        """
        q = self.weight_quantizer
        if self.grid_unit is not None:
            grid = round_to_grid(self.weight, self.grid_unit, q.levels, stochastic=False)
            codes, scale = torch.round(grid / self.grid_unit.clamp_min(1e-38)), self.grid_unit
        else:
            codes, scale = q.codes(self.weight)
        small = q.levels in ("binary", "ternary") or int(q.levels) <= 8
        return {"levels": q.levels,
                "codes": codes.to(torch.int8 if small else torch.int16),
                "scale": scale.detach().clone(),
                "bias": None if self.bias is None else self.bias.detach().clone(),
                "act_levels": self.act_levels}

    def _quant_repr(self) -> str:
        q = self.weight_quantizer
        text = f"weight_levels={q.levels!r}, scale={q.scale!r}, estimator={q.estimator!r}"
        if self.act_levels is not None:
            text += f", act_levels={self.act_levels!r}, act_estimator={self.act_estimator!r}"
        if self.grid_unit is not None:
            text += ", on_grid=True"
        return text


_QUANT_DEFAULTS: dict[str, Any] = {
    "weight_levels": "binary", "scale": "mean_abs", "act_levels": None, "estimator": "ste",
    "estimator_params": None, "act_estimator": None, "act_estimator_params": None,
    "threshold": TERNARY_THRESHOLD, "per_channel": False}


def _quant_kwargs(**quant: Any) -> dict[str, Any]:
    """The quantization arguments with defaults; unknown names are a ValueError."""
    unknown = sorted(set(quant) - set(_QUANT_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown quantization argument(s) {unknown}; valid: "
                         f"{', '.join(_QUANT_DEFAULTS)}")
    return {**_QUANT_DEFAULTS, **quant}


_QUANT_DOC = """    Quantization arguments (keyword-only):
        weight_levels: ``"binary"`` ({-1, +1}), ``"ternary"`` ({-1, 0, +1}, threshold
            rule) or a bit width 2..16 (symmetric uniform grid).
        scale: ``"mean_abs"`` (least-squares alpha: mean |w| for sign codes), ``"rms"``
            (alpha keeps mean Q(w)^2 = mean w^2) or ``None``.
        act_levels: ``None`` or ``"binary"`` (sign of the layer input: 1W/1A).
        estimator: backward rule of the quantizers: ``"ste"``, ``"clipped"``, ``"tanh"``,
            ``"reste"`` (the last two for sign only).
        estimator_params: its parameters, e.g. ``{"o": ReSTESchedule(...)}``.
        act_estimator, act_estimator_params: the input quantizer's rule (default: the
            weights').
        threshold: ternary threshold in units of mean |w| (0.7, TWN).
        per_channel: one scale per output channel instead of one per tensor.
"""


def _doc(text: str) -> str:
    """``text`` with the quantization arguments inserted before its Examples section."""
    head, sep, tail = text.partition("    Examples:")
    return head + _QUANT_DOC + "\n" + sep + tail


class QuantLinear(_QuantMixin, nn.Linear):
    __doc__ = _doc("""``nn.Linear`` with quantized weights (and optionally binary inputs).

    y = Q(W) x' + b, Q(W) = alpha c(W), x' = sign(x) for ``act_levels="binary"``, else x.
    At initialization Var(y) = G Var(y_float) with G = ``signalprop.theory.
    quantized_variance_gain(weight_levels, scale)`` (2/pi for binary mean-|w| weights on
    Gaussian weights, 3/4 on torch's uniform init, 1 for ``scale="rms"``).

    Examples:
        >>> layer = QuantLinear(64, 32, weight_levels="binary", scale="mean_abs")
        >>> y = layer(torch.randn(8, 64)); y.shape
        torch.Size([8, 32])
        >>> state = layer.quantized_state()
        >>> torch.allclose(state["scale"] * state["codes"], layer.quantized_weight())
        True

    References:
        Courbariaux, Bengio & David, "BinaryConnect", NeurIPS 2015; Rastegari et al.,
        "XNOR-Net", ECCV 2016; Li, De, Xu, Studer, Samet & Goldstein, "Training quantized
        nets: a deeper understanding", NeurIPS 2017.
    """)

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 device: Any = None, dtype: Any = None, **quant: Any) -> None:
        super().__init__(in_features, out_features, bias, device=device, dtype=dtype)
        self._setup_quant(**_quant_kwargs(**quant))

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(self.quantize_input(x), self.quantized_weight(), self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, {self._quant_repr()}"

    @classmethod
    def from_float(cls, module: nn.Linear, **quant: Any) -> QuantLinear:
        """A QuantLinear with ``module``'s shape, weights and bias.

        Examples:
            >>> QuantLinear.from_float(nn.Linear(4, 2), weight_levels=4).weight.shape
            torch.Size([2, 4])
        """
        new = cls(module.in_features, module.out_features, module.bias is not None,
                  device=module.weight.device, dtype=module.weight.dtype, **quant)
        _copy_params(new, module)
        return new


class _QuantConvNd(_QuantMixin):
    _conv_forward: Any

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(self.quantize_input(x), self.quantized_weight(), self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, {self._quant_repr()}"  # type: ignore[misc]

    @classmethod
    def from_float(cls, module: nn.Module, **quant: Any) -> Any:
        """A quantized convolution with ``module``'s geometry, weights and bias."""
        m: Any = module
        new = cls(m.in_channels, m.out_channels, m.kernel_size, stride=m.stride,  # type: ignore[call-arg]
                  padding=m.padding, dilation=m.dilation, groups=m.groups,
                  bias=m.bias is not None, padding_mode=m.padding_mode,
                  device=m.weight.device, dtype=m.weight.dtype, **quant)
        _copy_params(new, module)
        return new


class QuantConv1d(_QuantConvNd, nn.Conv1d):
    __doc__ = _doc("""``nn.Conv1d`` with quantized weights (and optionally binary inputs); see
    :class:`QuantLinear` for the effect on mean and variance (fan-in = C_in * k).

    Examples:
        >>> conv = QuantConv1d(4, 8, 3, padding=1, weight_levels="ternary")
        >>> conv(torch.randn(2, 4, 16)).shape
        torch.Size([2, 8, 16])
    """)

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, dilation: Any = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", device: Any = None, dtype: Any = None,
                 **quant: Any) -> None:
        nn.Conv1d.__init__(self, in_channels, out_channels, kernel_size, stride, padding,
                           dilation, groups, bias, padding_mode, device=device, dtype=dtype)
        self._setup_quant(**_quant_kwargs(**quant))


class QuantConv2d(_QuantConvNd, nn.Conv2d):
    __doc__ = _doc("""``nn.Conv2d`` with quantized weights (and optionally binary inputs); see
    :class:`QuantLinear` for the effect on mean and variance (fan-in = C_in * kh * kw).

    Examples:
        >>> conv = QuantConv2d(3, 8, 3, padding=1, act_levels="binary", estimator="reste")
        >>> conv(torch.randn(2, 3, 8, 8)).shape
        torch.Size([2, 8, 8, 8])
    """)

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, dilation: Any = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", device: Any = None, dtype: Any = None,
                 **quant: Any) -> None:
        nn.Conv2d.__init__(self, in_channels, out_channels, kernel_size, stride, padding,
                           dilation, groups, bias, padding_mode, device=device, dtype=dtype)
        self._setup_quant(**_quant_kwargs(**quant))


QUANT_LAYERS = (QuantLinear, QuantConv1d, QuantConv2d)
_FLOAT_TO_QUANT: dict[type, type] = {nn.Linear: QuantLinear, nn.Conv1d: QuantConv1d,
                                     nn.Conv2d: QuantConv2d}


def _copy_params(new: nn.Module, old: nn.Module) -> None:
    with torch.no_grad():
        new.weight.copy_(old.weight)  # type: ignore[operator]
        if old.bias is not None:  # type: ignore[union-attr]
            new.bias.copy_(old.bias)  # type: ignore[union-attr, operator]


def quantized_layers(model: nn.Module) -> list[tuple[str, _QuantMixin]]:
    """``(name, layer)`` for every quantized layer of ``model``, in registration order.

    Examples:
        >>> net = nn.Sequential(QuantLinear(4, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> [name for name, _ in quantized_layers(net)]
        ['0']
    """
    return [(n, m) for n, m in model.named_modules() if isinstance(m, _QuantMixin)]


def quantize_modules(model: nn.Module, *, exclude: Iterable[str] = (), **quant: Any) -> nn.Module:
    """Replace every ``nn.Linear``, ``nn.Conv1d`` and ``nn.Conv2d`` of ``model`` (exact
    types, not subclasses such as Scaled WS convolutions) by its quantized counterpart with
    the same weights, in place.

    Args:
        model: any module.
        exclude: qualified names of modules to keep in float (e.g. the stem and the
            classifier).
        **quant: the layers' quantization arguments (see :class:`QuantLinear`).

    Returns:
        ``model`` (for chaining).

    Raises:
        ValueError: a name in ``exclude`` that ``model`` lacks, or bad quantization
            arguments.

    Examples:
        >>> net = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> [type(m).__name__ for m in quantize_modules(net, exclude=["2"])]
        ['QuantLinear', 'ReLU', 'Linear']
    """
    exclude = set(exclude)
    names = dict(model.named_modules())
    missing = sorted(exclude - set(names))
    if missing:
        raise ValueError(f"exclude names modules the model lacks: {missing}")
    QuantLinear(1, 1, **quant)  # bad arguments fail before anything changes
    for name, module in list(names.items()):
        cls = _FLOAT_TO_QUANT.get(type(module))
        if cls is None or name in exclude or not name:
            continue
        parent_name, _, child = name.rpartition(".")
        setattr(names[parent_name], child, cls.from_float(module, **quant))  # type: ignore[attr-defined]
    return model
