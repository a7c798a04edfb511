"""Independent computations the region tests compare against.

* :func:`walk`: the classical exact walk along a segment, in rational arithmetic
  (``fractions.Fraction``), for MLPs of Linear / ReLU / LeakyReLU / Hardtanh: from t, read
  the state of every unit just to the right of t (value, then slope), step to the
  nearest t where some unit reaches a threshold under those states, and record t when
  the states changed. Nothing is shared with signalprop's stage-by-stage float64 split.
* :func:`hook_patterns`: activation patterns from a plain forward with module hooks.
"""

from __future__ import annotations

from fractions import Fraction

import torch
import torch.nn as nn
import torch.nn.functional as F


def _frac(t: torch.Tensor) -> list:
    return [Fraction(v) for v in t.double().flatten().tolist()]


def rational_layers(model: nn.Sequential) -> list[tuple]:
    """(kind, params) per layer with exact Fractions of the float parameters."""
    out = []
    for m in model:
        if isinstance(m, nn.Linear):
            W = [[Fraction(v) for v in row] for row in m.weight.double().tolist()]
            b = [Fraction(v) for v in m.bias.double().tolist()]
            out.append(("linear", W, b))
        elif isinstance(m, nn.ReLU):
            out.append(("pwl", [Fraction(0)], [Fraction(0), Fraction(1)], None))
        elif isinstance(m, nn.LeakyReLU):
            s = Fraction(m.negative_slope)
            out.append(("pwl", [Fraction(0)], [s, Fraction(1)], None))
        elif isinstance(m, nn.Hardtanh):
            lo, hi = Fraction(m.min_val), Fraction(m.max_val)
            out.append(("pwl", [lo, hi], [Fraction(0), Fraction(1), Fraction(0)], (lo, hi)))
        else:
            raise TypeError(type(m).__name__)
    return out


def _forward(layers: list[tuple], x: list, dx: list) -> list[tuple]:
    """Per piecewise-linear layer: (states, pre-activations, their t-derivatives,
    thresholds), each unit in the state it has just to the right of the point
    (lexicographic on value, then slope)."""
    found = []
    for layer in layers:
        if layer[0] == "linear":
            _, W, b = layer
            x = [sum((w * v for w, v in zip(row, x)), bb) for row, bb in zip(W, b)]
            dx = [sum(w * v for w, v in zip(row, dx)) for row in W]
            continue
        _, thresholds, slopes, clamp = layer
        st = [sum(1 for th in thresholds if (z - th, dz) > (0, 0)) for z, dz in zip(x, dx)]
        found.append((tuple(st), x, dx, thresholds))
        x = [(clamp[0] if k == 0 else clamp[1]) if clamp is not None and k != 1
             else slopes[k] * z for z, k in zip(x, st)]
        dx = [slopes[k] * dz for dz, k in zip(dx, st)]
    return found


def walk(model: nn.Sequential, start: torch.Tensor, end: torch.Tensor) -> list[Fraction]:
    """Exact breakpoints t in (0, 1) of ``model`` along start -> end (1-D tensors)."""
    layers = rational_layers(model)
    x0, x1 = _frac(start), _frac(end)
    d = [b - a for a, b in zip(x0, x1)]
    t, out, prev = Fraction(0), [], None
    while t < 1:
        found = _forward(layers, [a + t * di for a, di in zip(x0, d)], d)
        pattern = tuple(f[0] for f in found)
        if prev is not None and pattern != prev:
            out.append(t)
        prev = pattern
        nxt = Fraction(1)  # states hold until the nearest threshold crossing
        for _, zs, dzs, thresholds in found:
            for z, dz in zip(zs, dzs):
                for th in thresholds:
                    if dz != 0 and t < t + (th - z) / dz < nxt:
                        nxt = t + (th - z) / dz
        t = nxt
    return out


def hook_patterns(model: nn.Module, points: torch.Tensor) -> torch.Tensor:
    """(P, units) states of every ReLU / LeakyReLU / Hardtanh / MaxPool module for a
    plain float64 forward (modules only; the model must not use functional units)."""
    codes: list[torch.Tensor] = []

    def hook(mod: nn.Module, inp: tuple, out: torch.Tensor) -> None:
        z = inp[0]
        if isinstance(mod, nn.MaxPool2d):
            _, idx = F.max_pool2d(z, mod.kernel_size, mod.stride, mod.padding, mod.dilation,
                                  mod.ceil_mode, return_indices=True)
            codes.append(idx.reshape(z.shape[0], -1))
        elif isinstance(mod, nn.Hardtanh):
            codes.append(((z > mod.min_val).long() + (z > mod.max_val).long())
                         .reshape(z.shape[0], -1))
        else:
            codes.append((z > 0).long().reshape(z.shape[0], -1))

    kinds = (nn.ReLU, nn.LeakyReLU, nn.Hardtanh, nn.MaxPool2d)
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, kinds)]
    try:
        with torch.no_grad():
            model(points.double())
    finally:
        for h in handles:
            h.remove()
    return torch.cat(codes, 1)
