"""Quantized MLPs and ResNets whose signal propagation the theory predicts.

``quant_mlp`` and ``quant_resnetv2`` build the float model of the same family and replace
its hidden layers (every Linear of an MLP but the head; every convolution inside a ResNet
stage, projections included, but not the stem or the classifier) by quantized layers with
the same weights. Their ``predicted_spp`` is the float network's mean-field prediction
with each quantized layer's variance gain G = ``theory.quantized_variance_gain(levels,
scale, weights=...)`` folded into the weight variance (sigma_w^2 -> G sigma_w^2), so an
unnormalized binary network with mean-|w| scaling loses a factor 2/pi per layer while
``scale="rms"`` keeps the float network's propagation.

With binary inputs (``act_levels="binary"``, a 1W/1A MLP with ``activation="identity"``)
every hidden layer after the first sees +-1 inputs: q_{l+1} = G sigma_w^2 + sigma_b^2 and
c_{l+1} = (G sigma_w^2 (2/pi) arcsin(c_l) + sigma_b^2) / q_{l+1}; gradients scale per
layer by G sigma_w^2 ``surrogate_gain(estimator, q_l)``.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import torch.nn as nn

from signalprop import theory
from signalprop.models._registry import register_model
from signalprop.models.mlp import MLP, mlp
from signalprop.models.resnetv2 import ResNetV2, resnetv2
from signalprop.nn.quantized import QuantLinear, quantize_modules, quantized_layers
from signalprop.nn.quantized._layers import _quant_kwargs
from signalprop.results import BlockStats, SPPResult


def _gain(model: Any) -> float:
    q = model.quant_args
    return theory.quantized_variance_gain(q["weight_levels"], q["scale"],
                                          weights=model.weight_dist,
                                          threshold=q["threshold"])


class QuantMLP(MLP):
    """An :class:`~signalprop.models.MLP` whose hidden Linear layers are quantized; see
    :func:`quant_mlp`.

    Examples:
        >>> net = quant_mlp(2, 16, weight_levels=3)
        >>> isinstance(net, QuantMLP), [type(net.fc0).__name__, type(net.fc1).__name__]
        (True, ['QuantLinear', 'QuantLinear'])
    """

    quant_args: dict[str, Any]
    weight_dist: str

    def _quant_theory(self, input_var: float, input_sq_mean: float) -> tuple[Any, float, float]:
        if self.sigma_w2 is None:
            raise ValueError(f"no prediction for init={self.init!r}: the weight variance is not "
                             "sigma_w^2 / fan_in (use init='he', 'lecun' or 'critical')")
        act = self.get_submodule("act0")
        activation = theory.get_activation(act.name, **act.params)
        g = _gain(self)
        return activation, g, g * self.sigma_w2 * (input_var + input_sq_mean) + self.sigma_b2

    def predicted_spp(self, input_var: float = 1.0, input_sq_mean: float = 0.0,
                      batch_size: int | None = None, label: str | None = None) -> SPPResult:
        """Mean-field SPP of the pre-activations (``fc{l}`` outputs) with the quantized
        weights' variance gain (see the module docstring; arguments as
        :meth:`signalprop.models.MLP.predicted_spp`).

        Examples:
            >>> net = quant_mlp(4, 256, "relu", init="he", weight_levels="binary")
            >>> [round(r.avg_var + r.avg_sq_mean, 3) for r in net.predicted_spp().records]
            [1.273, 0.811, 0.516, 0.329]

            q_l = E[h_l^2] shrinks by G = 2/pi per layer (the He init keeps it at 2 in float).
        """
        act, g, q0 = self._quant_theory(input_var, input_sq_mean)
        depth = len(self.signal_blocks())
        sw, sb = g * self.sigma_w2, self.sigma_b2
        c0 = (g * self.sigma_w2 * input_sq_mean + sb) / q0 if q0 > 0 else 0.0
        if self.quant_args["act_levels"] is None:
            prop = theory.propagate(act, depth - 1, sw, sb, q0=q0, c0=c0)
            q, c = list(prop.q), list(prop.c)
        else:
            self._check_sign_inputs(act)
            q, c = [q0], [c0]
            for _ in range(depth - 1):  # +-1 inputs: E[sign^2] = 1, E[sign sign'] = 2/pi asin
                q.append(sw + sb)
                c.append((sw * 2 / math.pi * math.asin(min(1.0, c[-1])) + sb) / q[-1])
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        inv_b = 0.0 if batch_size is None else 1.0 / batch_size
        records = []
        for i, (name, _) in enumerate(self.signal_blocks()):
            var = float(q[i] * (1.0 - c[i]))
            records.append(BlockStats(name, i, float(q[i] * c[i]) + var * inv_b,
                                      var * (1.0 - inv_b)))
        return SPPResult(label or f"{self.quant_args['weight_levels']} {act.name} MLP "
                         "(predicted)", records, kind="predicted",
                         meta={"weight_gain": g, "quant": dict(self.quant_args)})

    def predicted_gradient_chi(self, input_var: float = 1.0, input_sq_mean: float = 0.0
                               ) -> list[float]:
        """Per-gap gradient factors chi_l, l = 0..depth-2: G sigma_w^2 E[phi'^2] at q_l, or
        G sigma_w^2 ``surrogate_gain(act_estimator, q_l)`` with binary inputs; pass them
        to ``signalprop.results.chi_prediction`` to overlay a gradient SPP.

        Examples:
            >>> net = quant_mlp(3, 64, "identity", init="lecun", act_levels="binary",
            ...                 estimator="clipped")
            >>> [round(c, 3) for c in net.predicted_gradient_chi()]
            [0.503, 0.503]
        """
        act, g, q0 = self._quant_theory(input_var, input_sq_mean)
        depth = len(self.signal_blocks())
        if depth < 2:
            return []
        sw, sb = g * self.sigma_w2, self.sigma_b2
        if self.quant_args["act_levels"] is None:
            return [float(c) for c in theory.propagate(act, depth - 1, sw, sb, q0=q0).chi]
        self._check_sign_inputs(act)
        layer = self.get_submodule("fc1")
        est = layer.act_estimator
        params = {k: float(v) for k, v in layer.act_estimator_params.items()}
        qs = [q0] + [sw + sb] * (depth - 2)
        return [float(sw * theory.surrogate_gain(est, q, **params)) for q in qs]

    @staticmethod
    def _check_sign_inputs(act: Any) -> None:
        if act.name not in ("identity", "linear"):
            raise ValueError("predictions with binary inputs need activation='identity' "
                             f"(sign is the nonlinearity), got {act.name!r}")


def quant_mlp(depth: int, width: int, activation: str = "relu", init: str = "he", *,
              in_features: int | None = None, out_features: int | None = None,
              sigma_b2: float = 0.0, bias: bool = True, device: Any = None, dtype: Any = None,
              **quant: Any) -> QuantMLP:
    """A deep MLP (:func:`signalprop.models.mlp`) with quantized hidden layers.

    Every ``fc{l}`` becomes a :class:`~signalprop.nn.QuantLinear`; the ``head`` stays float.
    With ``act_levels="binary"`` the first layer keeps its float input (the data) and the
    others binarize theirs (a 1W/1A network).

    Args:
        depth: hidden layers, as for :func:`signalprop.models.mlp` (so are the next ones).
        width: hidden width.
        activation: registered activation name.
        init: ``"he"``, ``"lecun"``, ``"critical"`` or ``"torch"`` (uniform weights).
        in_features: input size (default: ``width``).
        out_features: size of the float ``head`` (default: none).
        sigma_b2: bias variance for ``init="critical"``.
        bias: whether the layers have biases.
        device: where to create the parameters.
        dtype: their precision.
        **quant: quantization arguments of :class:`~signalprop.nn.QuantLinear`
            (``weight_levels``, ``scale``, ``act_levels``, ``estimator``, ...).

    Returns:
        A :class:`QuantMLP`.

    Examples:
        >>> import torch
        >>> net = quant_mlp(3, 32, in_features=10, out_features=4, weight_levels="ternary")
        >>> net(torch.randn(2, 10)).shape, type(net.fc1).__name__, type(net.head).__name__
        (torch.Size([2, 4]), 'QuantLinear', 'Linear')
    """
    args = _quant_kwargs(**quant)
    QuantLinear(1, 1, **args)  # bad arguments fail before the model is built
    model = mlp(depth, width, activation, init, in_features=in_features,
                out_features=out_features, sigma_b2=sigma_b2, bias=bias, device=device,
                dtype=dtype)
    model.__class__ = QuantMLP  # the same modules; QuantMLP only adds the predictions
    for name, module in list(model.named_children()):
        if name.startswith("fc"):
            layer_args = dict(args, act_levels=None if name == "fc0" else args["act_levels"])
            setattr(model, name, QuantLinear.from_float(module, **layer_args))
    model.quant_args = args
    model.weight_dist = "uniform" if init == "torch" else "gaussian"
    return model  # type: ignore[return-value]


class QuantResNetV2(ResNetV2):
    """A :class:`~signalprop.models.ResNetV2` whose stage convolutions are quantized; see
    :func:`quant_resnetv2`.

    Examples:
        >>> m = quant_resnetv2([1], norm="none", stem="cifar", width=0.25)
        >>> isinstance(m, QuantResNetV2), m.quant_args["weight_levels"]
        (True, 'binary')
    """

    quant_args: dict[str, Any]
    weight_dist: str = "gaussian"

    def predicted_spp(self, input_hw: tuple[int, int] | None = None, stem_var: float = 1.0,
                      stem_sq_mean: float = 0.0, label: str | None = None) -> SPPResult:
        """The float network's prediction (``theory.residual_schedule``) with every block
        convolution's variance multiplied by the quantized weights' gain G.

        Examples:
            >>> m = quant_resnetv2([1, 1], norm="none", stem="cifar", width=0.25)
            >>> f = m.predicted_spp().avg_var
            >>> [round(v, 2) for v in f]
            [1.0, 0.54, 0.33]
        """
        if self.quant_args["act_levels"] is not None:
            raise ValueError("no prediction for binary inputs in a ResNet (act_levels must "
                             "be None)")
        cfg = self.cfg
        spatial = self.stem_output_size(*input_hw) if input_hw is not None else None
        gain = (cfg.skipinit_init if cfg.skipinit or cfg.norm == "skipinit" else 1.0)
        return theory.residual_schedule(
            cfg.norm, cfg.depths, activation=cfg.activation, alpha=cfg.alpha, gain=gain,
            stem_var=stem_var, stem_sq_mean=stem_sq_mean, spatial=spatial,
            label=label or f"{self.quant_args['weight_levels']} {cfg.norm} (predicted)",
            weight_gain=_gain(self))


QUANT_RESNET_NORMS = ("bn", "none", "skipinit")


def quant_resnetv2(name_or_depths: Any = "resnetv2_50", *, norm: str = "bn",
                   **kwargs: Any) -> QuantResNetV2:
    """A pre-activation ResNet-V2 (:func:`signalprop.models.resnetv2`) whose convolutions
    inside the stages (branches and projection shortcuts) are quantized; the stem and the
    classifier stay float.

    Args:
        name_or_depths: a preset or blocks per stage, as for ``resnetv2``.
        norm: ``"bn"``, ``"none"`` or ``"skipinit"`` (the NF and Fixup variants' Scaled WS /
            Fixup convolutions are not plain convolutions and are refused).
        **kwargs: ``resnetv2``'s keywords and the quantization arguments of
            :class:`~signalprop.nn.QuantConv2d`.

    Returns:
        A :class:`QuantResNetV2`.

    Examples:
        >>> import torch
        >>> m = quant_resnetv2([1, 1], norm="bn", stem="cifar", width=0.25, num_classes=3,
        ...                    weight_levels=2)
        >>> m(torch.randn(2, 3, 16, 16)).shape, type(m.stem.conv).__name__
        (torch.Size([2, 3]), 'Conv2d')
    """
    if norm not in QUANT_RESNET_NORMS:
        raise ValueError(f"quant_resnetv2 supports norm in {QUANT_RESNET_NORMS}, got {norm!r} "
                         "(NF / Fixup convolutions are not plain convolutions)")
    quant = {k: kwargs.pop(k) for k in list(kwargs) if k in _quant_kwargs()}
    args = _quant_kwargs(**quant)
    QuantLinear(1, 1, **args)
    model = resnetv2(name_or_depths, norm=norm, **kwargs)
    model.__class__ = QuantResNetV2  # the same modules; the subclass adds the prediction
    stages = OrderedDict((f"stages.{n}", m) for n, m in model.stages.named_modules() if n)
    keep = [n for n, m in model.named_modules()
            if isinstance(m, (nn.Conv2d, nn.Linear)) and n not in stages]
    quantize_modules(model, exclude=keep, **args)
    model.quant_args = args
    assert quantized_layers(model), "a ResNetV2 stage holds convolutions"
    return model  # type: ignore[return-value]


register_model("quant_mlp", quant_mlp, "MLP with quantized hidden layers (binary by default); "
               "model_args: depth, width, weight_levels, scale, act_levels, estimator, ...")
register_model("quant_resnetv2", quant_resnetv2, "ResNet-V2 with quantized stage convolutions "
               "(binary by default); model_args: name_or_depths, norm, weight_levels, ...")
