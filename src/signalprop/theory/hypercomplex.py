"""Parameterized hypercomplex (PH) layers in mean-field theory: weight variances and the
predicted SPP of PH ResNets with and without PHYDI.

A PH weight is W = sum_{s=1}^n kron(A_s, F_s) (A_s: n x n, F_s: out/n x in/n x taps).
With independent zero-mean factors, Var(W_rc) = n Var(A) Var(F) for every entry and
distinct entries are uncorrelated, so E_W[W W^T] = Var(W) * fan_in / fan_in * I: in
expectation over the weights a PH layer propagates the signal's mean and variance exactly
as a dense layer with sigma_w^2 = Var(W) * fan_in (the residual model of
:mod:`signalprop.theory.residual` applies unchanged). Only sigma_w^2 depends on the
initialization:

* ``"fan_in"`` (signalprop's PH layers): sigma_w^2 = gain^2 (LeCun 1, He 2 for ReLU);
* ``"xavier_factors"`` (the HyperNets / PHYDI reference code: Xavier-uniform A of shape
  (n, n, n) and F of shape (n, out/n, in/n, *taps), with torch's fan convention for
  tensors of more than two axes): Var(A) = 1 / n^2, Var(F) = 2 / (in/n * taps * (out/n +
  n)), so sigma_w^2 = 2 n / (out + n^2): 0.1 at out = 64, n = 4 and 0.029 at out = 256,
  i.e. each layer multiplies the forward second moment by sigma_w^2 / 2 after a ReLU
  (20-70x smaller per layer).

NOTE: PAPERS.md section 12 gives Var(W) fan_in ~ 4n / (d + n^2) for the reference init;
recomputed here from torch's fan convention (and checked by Monte Carlo in
tests/theory/test_ph_theory.py) it is 2n / (d + n^2), half of that.

:func:`ph_resnet_schedule` predicts the SPP of ``signalprop.models.ph_resnet1d``: a
(real) stem conv, then ``depth`` pre-activation basic blocks x + g * conv(phi(conv(phi(x))))
with PH convolutions; PHYDI sets g = 0 (every block the identity at initialization).
"""

from __future__ import annotations

import math

import numpy as np

from signalprop.results.spp import BlockStats, SPPResult
from signalprop.theory import _checks
from signalprop.theory.activations import get_activation
from signalprop.theory.residual import _conv, _Padding, _Stats

INITS = ("fan_in", "xavier_factors")


def ph_weight_variance(n: int, in_features: int, out_features: int, kernel_size: int = 1, *,
                       init: str = "fan_in", gain: float = 1.0) -> float:
    """sigma_w^2 = Var(W) * fan_in of a PH layer's composed weight at initialization.

    Args:
        n: the hypercomplex dimension (number of Kronecker terms).
        in_features: input features or channels (a multiple of n).
        out_features: output features or channels (a multiple of n).
        kernel_size: taps per input channel (prod of the kernel shape; 1 for linear).
        init: ``"fan_in"`` or ``"xavier_factors"`` (see the module docstring).
        gain: the ``"fan_in"`` gain.

    Returns:
        sigma_w^2 (1 for LeCun, 2 for He).

    Examples:
        >>> ph_weight_variance(4, 64, 64, init="xavier_factors")
        0.1
        >>> ph_weight_variance(4, 64, 64, 3, gain=math.sqrt(2))  # He
        2.0000000000000004
    """
    n = _checks.count("n", n)
    for name, v in (("in_features", in_features), ("out_features", out_features)):
        if _checks.count(name, v) % n:
            raise ValueError(f"{name}={v} is not divisible by n={n}")
    k = _checks.count("kernel_size", kernel_size)
    if init == "fan_in":
        return _checks.positive("gain", gain) ** 2
    if init != "xavier_factors":
        raise ValueError(f"init={init!r} is not allowed; valid: {', '.join(INITS)}")
    o, i = out_features // n, in_features // n
    var_a = 2.0 / (n * n + n * n)  # (n, n, n): fan_in = fan_out = n * n
    var_f = 2.0 / (o * i * k + n * i * k)  # (n, o, i, k): fan_in = o i k, fan_out = n i k
    return n * var_a * var_f * (in_features * k)


def _padding_1d(length: int | None, kernel: int) -> _Padding:
    """Zero-padding factors of a stride-1 'same' 1-D conv on ``length`` positions."""
    if length is None or kernel == 1:
        return _Padding()
    c = kernel // 2
    offsets = np.arange(kernel) - c
    pos = np.arange(length)
    valid = (pos[:, None] + offsets[None, :] >= 0) & (pos[:, None] + offsets[None, :] < length)
    f = valid.mean(axis=0)
    return _Padding(float(f.mean()), float((f * f).mean()),
                    float(((valid.sum(axis=1) / kernel) ** 2).mean()))


def ph_resnet_schedule(
    depth: int,
    *,
    n: int = 4,
    width: int = 32,
    kernel_size: int = 3,
    init: str = "fan_in",
    gain: float = math.sqrt(2.0),
    branch_gain: float = 0.0,
    residual: bool = True,
    activation: str = "relu",
    input_var: float = 1.0,
    input_sq_mean: float = 0.0,
    length: int | None = None,
    label: str | None = None,
) -> SPPResult:
    """Predicted SPP (``stem``, ``blocks.0`` ...) of a PH ResNet at initialization.

    The stem is a real conv (LeCun init) of the input; every block applies
    phi -> PH conv -> phi -> PH conv to the trunk and adds it times ``branch_gain`` (0:
    PHYDI, 1: a plain residual block); with ``residual=False`` the branch replaces the
    trunk (a plain PH CNN). Records match ``ph_resnet1d(...).signal_blocks()``.

    Args:
        depth: residual blocks.
        n: hypercomplex dimension of the PH convs.
        width: channels of the trunk.
        kernel_size: taps of every conv ('same' zero padding).
        init: ``"fan_in"`` or ``"xavier_factors"`` (:func:`ph_weight_variance`).
        gain: the ``"fan_in"`` gain (He for ReLU by default).
        branch_gain: the scalar on every branch (PHYDI: 0).
        residual: add the branch to the trunk (False: a plain stack).
        activation: registered activation name.
        input_var: the input's average channel variance.
        input_sq_mean: the input's average squared channel mean.
        length: the signal length, for the variance the zero padding removes (None: none).
        label: the result's label.

    Returns:
        ``SPPResult(kind="predicted")`` with ``res_var`` the branch before its gain.

    Examples:
        >>> r = ph_resnet_schedule(3, branch_gain=1.0)  # no PHYDI: doubles per block
        >>> [round(v + m, 2) for v, m in zip(r.avg_var, r.avg_sq_mean)]
        [1.0, 2.0, 4.0, 8.0]
        >>> r = ph_resnet_schedule(3)  # PHYDI: identity at initialization
        >>> [round(v + m, 2) for v, m in zip(r.avg_var, r.avg_sq_mean)]
        [1.0, 1.0, 1.0, 1.0]
    """
    depth = _checks.count("depth", depth)
    sw2 = ph_weight_variance(n, width, width, kernel_size, init=init, gain=gain)
    g = float(branch_gain)
    if not math.isfinite(g):
        raise ValueError(f"branch_gain must be finite, got {branch_gain!r}")
    act, ident = get_activation(activation), get_activation("identity")
    pad = _padding_1d(None if length is None else _checks.count("length", length), kernel_size)
    x = _Stats(math.sqrt(_checks.non_negative("input_sq_mean", input_sq_mean)), 0.0,
               _checks.non_negative("input_var", input_var))
    x = _conv(ident, x, 1.0, False, pad)  # the real stem, LeCun
    records = [BlockStats("stem", 0, x.sq_mean, x.var, None)]
    for b in range(depth):
        branch = _conv(act, _conv(act, x, sw2, False, pad), sw2, False, pad)
        x = x + branch.scaled(g) if residual else branch
        records.append(BlockStats(f"blocks.{b}", b + 1, x.sq_mean, x.var, branch.var))
    meta = {"model": "signalprop.theory.ph_resnet_schedule", "n": n, "width": width,
            "init": init, "sigma_w2": sw2, "branch_gain": g, "residual": bool(residual),
            "activation": act.name}
    name = label or f"PH ResNet {init}, g={g:g} (predicted)"
    return SPPResult(name, records, kind="predicted", meta=meta)
