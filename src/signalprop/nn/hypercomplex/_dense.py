"""PH counterparts of dense layers: Linear -> PHMLinear, Conv1d/2d -> PHConv1d/2d.

A dense weight W (out, in, *k) is a PH weight exactly when its rearrangement

    R[(a, b), (p, q, taps)] = W[a * out/n + p, b * in/n + q, taps]      (n^2 rows)

has rank <= n; the best PH approximation with n terms in Frobenius norm is R's truncated
SVD (the nearest Kronecker product problem of Van Loan & Pitsianis, 1993, with n terms).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
from torch import Tensor

from signalprop.nn.hypercomplex._layers import PHConv1d, PHConv2d, PHMLinear, _PHLayer

WEIGHTS = ("init", "nearest")
_PH_FOR: dict[type, type] = {nn.Linear: PHMLinear, nn.Conv1d: PHConv1d, nn.Conv2d: PHConv2d}


def nearest_ph_factors(weight: Tensor, n: int) -> tuple[Tensor, Tensor, float]:
    """The n-term PH factors (A, F) closest to ``weight`` in Frobenius norm.

    Args:
        weight: (out, in, *kernel) with out and in divisible by n.
        n: the number of Kronecker terms (and the algebra's dimension).

    Returns:
        ``(A, F, rel_error)``: A (n, n, n), F (n, out/n, in/n, *kernel) and
        ||W - compose(A, F)|| / ||W|| (0 when W is a PH weight).

    Examples:
        >>> from signalprop.nn.hypercomplex import compose_weight
        >>> w = compose_weight(torch.randn(2, 2, 2), torch.randn(2, 3, 4))
        >>> a, f, err = nearest_ph_factors(w, 2)
        >>> torch.allclose(compose_weight(a, f), w, atol=1e-5), err < 1e-5
        (True, True)
    """
    out, inp = weight.shape[:2]
    kernel = tuple(weight.shape[2:])
    o, i = out // n, inp // n
    w = weight.detach().double().reshape(n, o, n, i, *kernel)
    r = w.movedim(2, 1).reshape(n * n, -1)  # rows (a, b), columns (p, q, taps)
    u, s, vh = torch.linalg.svd(r, full_matrices=False)
    root = s[:n].sqrt()
    a = (u[:, :n] * root).T.reshape(n, n, n)
    f = (root[:, None] * vh[:n]).reshape(n, o, i, *kernel)
    total = torch.linalg.vector_norm(s)
    rest = torch.linalg.vector_norm(s[n:])
    err = float(rest / total) if total > 0 else 0.0
    return a.to(weight.dtype), f.to(weight.dtype), err


def to_ph_layer(layer: nn.Module, n: int, *, weights: str = "init", init: str = "fan_in",
                gain: float | None = None) -> tuple[_PHLayer, float | None]:
    """The PH counterpart of a dense ``layer`` with the same sizes and conv settings.

    Args:
        layer: ``nn.Linear``, ``nn.Conv1d`` or ``nn.Conv2d`` (groups 1, zero padding), with
            in and out features divisible by ``n``.
        n: the hypercomplex dimension.
        weights: ``"init"`` draws fresh factors (``init``, ``gain``); ``"nearest"`` fits
            the factors to the layer's weight (:func:`nearest_ph_factors`).
        init: the PH initialization for ``weights="init"``.
        gain: for ``init="fan_in"``; None keeps the dense weight's second moment
            (gain^2 = fan_in * mean(W^2)), so the converted layer passes the signal's
            variance on as the layer it replaces did at its current scale.

    Returns:
        ``(ph_layer, rel_error)``: rel_error is the Frobenius error of ``"nearest"`` (None
        for ``"init"``). The bias is copied.

    Raises:
        ValueError: the layer has no PH version, or its sizes or settings do not allow it
            (the message says why).

    Examples:
        >>> ph, _ = to_ph_layer(nn.Conv1d(8, 4, 3, padding=1), n=4)
        >>> type(ph).__name__, ph.kernel_size, ph.padding
        ('PHConv1d', (3,), (1,))
    """
    kind = _PH_FOR.get(type(layer))
    if kind is None:
        raise ValueError(f"no PH version of {type(layer).__name__}; valid: "
                         + ", ".join(t.__name__ for t in _PH_FOR))
    if weights not in WEIGHTS:
        raise ValueError(f"weights={weights!r} is not allowed; valid: {', '.join(WEIGHTS)}")
    w = layer.weight
    if gain is None:
        second = float(w.detach().double().square().mean())
        gain = math.sqrt(second * w[0].numel()) if second > 0 else 1.0
    factory = {"device": w.device, "dtype": w.dtype}
    bias = layer.bias is not None
    if kind is PHMLinear:
        ph: _PHLayer = PHMLinear(layer.in_features, layer.out_features, n, bias, init, gain,
                                 **factory)
    else:
        if layer.groups != 1 or layer.padding_mode != "zeros":
            raise ValueError(f"{type(layer).__name__} with groups={layer.groups}, padding_mode="
                             f"{layer.padding_mode!r} has no PH version (groups 1, zeros only)")
        ph = kind(layer.in_channels, layer.out_channels, layer.kernel_size, n, layer.stride,
                  layer.padding, layer.dilation, bias, init, gain, **factory)
    err = None
    with torch.no_grad():
        if weights == "nearest":
            a, f, err = nearest_ph_factors(w, n)
            ph.A.copy_(a)
            ph.F.copy_(f)
        if bias:
            ph.bias.copy_(layer.bias)
    return ph, err
