"""``to_phm``: parameterized hypercomplex layers in place of dense Linear / Conv layers."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch.nn as nn

from signalprop.convert._surgery import set_module
from signalprop.convert.report import ConversionReport
from signalprop.nn import to_ph_layer
from signalprop.nn.hypercomplex import INITS
from signalprop.nn.hypercomplex._dense import WEIGHTS

_DENSE = (nn.Linear, nn.Conv1d, nn.Conv2d)


def to_phm(model: nn.Module, n: int = 4, *, weights: str = "init", init: str = "fan_in",
           gain: float | None = None, exclude: Sequence[str] = ()
           ) -> tuple[nn.Module, ConversionReport]:
    """A copy of ``model`` with every Linear / Conv1d / Conv2d its sizes allow made PH.

    Each converted layer is :class:`~signalprop.nn.PHMLinear` or
    :class:`~signalprop.nn.PHConv1d` / ``PHConv2d`` with the same sizes, stride, padding
    and dilation (:func:`signalprop.nn.to_ph_layer`): n^3 + (in * out * taps) / n weights
    instead of in * out * taps. Layers whose input or output size ``n`` does not divide,
    grouped convolutions and other padding modes stay dense and are reported.

    Args:
        model: any module.
        n: the hypercomplex dimension (number of Kronecker terms).
        weights: ``"init"``: fresh PH factors whose composed weight has each dense layer's
            current second moment (or ``gain`` / ``init``); ``"nearest"``: the closest
            n-term PH weight to each trained weight (its relative error is reported).
        init: the PH initialization for ``weights="init"``.
        gain: the ``"fan_in"`` gain; None keeps each layer's weight scale.
        exclude: qualified names of layers to keep dense (e.g. the classifier).

    Returns:
        ``(new_model, report)``; the report's changes say the parameter counts.

    Examples:
        >>> import torch, signalprop as sp
        >>> net = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(),
        ...                           torch.nn.Linear(32, 10))
        >>> new, report = sp.convert.to_phm(net, n=4)
        >>> type(new[0]).__name__, [c.module for c in report.not_converted]
        ('PHMLinear', ['2'])
        >>> print(report.changes[0])
        0: Linear -> PHMLinear (weights 512 -> 192)
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    for name, value, valid in (("weights", weights, WEIGHTS), ("init", init, INITS)):
        if value not in valid:
            raise ValueError(f"{name}={value!r} is not allowed; valid: {', '.join(valid)}")
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
    names = {name for name, _ in model.named_modules()}
    unknown = [e for e in exclude if e not in names]
    if unknown:
        raise ValueError(f"exclude names modules the model does not have: {unknown}")
    new = copy.deepcopy(model)
    report = ConversionReport(f"module replacement (PH layers, n={n}, weights={weights})")
    for name, m in list(new.named_modules()):
        if type(m) not in _DENSE:
            continue
        if name in exclude:
            report.refuse(name, f"kept {type(m).__name__}", "excluded")
            continue
        try:
            ph, err = to_ph_layer(m, n, weights=weights, init=init, gain=gain)
        except ValueError as e:
            report.refuse(name, f"kept {type(m).__name__}", str(e))
            continue
        new = set_module(new, name, ph)
        detail = f"weights {m.weight.numel()} -> {ph.A.numel() + ph.F.numel()}"
        if err is not None:
            detail += f", relative error {err:.3g}"
        report.add(name, f"{type(m).__name__} -> {type(ph).__name__}", detail)
    if not report.changes and not report.not_converted:
        report.refuse("<model>", "nothing to convert", "no Linear, Conv1d or Conv2d found")
    return new, report
