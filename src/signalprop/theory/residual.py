"""Predicted Signal Propagation Plots of pre-activation bottleneck ResNets at initialization.

State at every point of the trunk: the average squared channel mean M and the average
within-channel variance v (SPP's ``avg_sq_mean`` and ``avg_var``). Channel means are
spread across channels (they come from random weights), modelled as m_c ~ N(0, M); a
channel is then N(m_c, v), and two positions of one channel are correlated Gaussians with
variance S = M + v and correlation M / S. Hence, for phi followed by a convolution with
fan-in-normalised weights Var(w) = g^2 / fan_in (expectation over the weights; cross terms
vanish because weights are independent and zero-mean):

    A  = E[phi(u1) phi(u2)] at (S, M/S)         (average squared channel mean after phi)
    M' = g^2 A,   v' = g^2 E[phi(sqrt(S) z)^2] - M'                       (plain conv, T)

which is PAPERS.md's mean-shift formula E[z_i] = N mu_g mean(W_i) averaged over channels.
Branch and shortcut add: M and v of a sum are the sums (again in expectation over the
branch's last weights). Per block type (Brock, De & Smith 2021; De & Smith 2020):

* ``"bn"``: BN -> phi -> conv, He init (g^2 = 1 / E[phi(z)^2]); BN makes the input of
  every conv (0, 1), so the branch is T(0, 1) (ReLU: M = 1/pi, v = 1 - 1/pi) and the trunk
  grows by that per block; transitions project phi(bn(x)), also T(0, 1).
* ``"none"`` / ``"skipinit"``: phi -> conv, He init, no norm: branch T^3(M, v) and
  transition shortcut T(M, v). The total second moment doubles per block and the mean
  share grows (mean shift). SkipInit multiplies the branch by ``gain`` (0 in the reference).
* ``"nf"``: h <- h + alpha f(h / beta), gamma-scaled phi and Scaled WS convs (zero-mean,
  unit-norm weights per unit: channel means cancel, v' = gamma^2 Var phi), beta^2 the
  expected variance (1 + k alpha^2 after a transition, which projects gamma phi(h / beta)).

Zero padding: with ``spatial`` given, a 3x3 conv sees fewer valid taps at the borders of
small maps (a 2x2 map keeps 4/9 of the variance); per-tap valid fractions f_t enter as
rho_v = mean f_t (variance) and rho_m = mean f_t^2 (channel means).

Measured against ResNetV2-50 (width 1, 16 noise images; tests/models/test_residual_overlay.py):
``avg_var`` within 8% for ``bn``; within 11% for ``nf`` at 128x128 inputs but ~25% too high
in the last stage at 64x64, where the 2x2 maps carry components shared by all channels
that Scaled WS removes and this model keeps; ``none`` matches the average of several
networks within ~15%, while single networks scatter 20-40% around it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from signalprop.results.spp import BlockStats, SPPResult
from signalprop.theory import _checks
from signalprop.theory.activations import Activation, get_activation
from signalprop.theory.expectations import expect_phi2, expect_phi_phi
from signalprop.theory.gamma import gamma as _gamma
from signalprop.theory.gaussian import gauss_expect

NORMS = ("bn", "none", "nf", "skipinit")


@dataclass(frozen=True)
class _Stats:
    """Trunk statistics: common channel mean mu (same in every channel), spread D of the
    channel means around it, within-channel variance v. avg_sq_mean = mu^2 + D."""

    mu: float
    spread: float
    var: float

    @property
    def sq_mean(self) -> float:
        return self.mu * self.mu + self.spread

    def __add__(self, other: _Stats) -> _Stats:
        return _Stats(self.mu + other.mu, self.spread + other.spread, self.var + other.var)

    def scaled(self, k: float) -> _Stats:
        return _Stats(k * self.mu, k * k * self.spread, k * k * self.var)


def _activation_moments(act: Activation, x: _Stats) -> tuple[float, float, float]:
    """(E[phi], avg_c E[phi | c]^2, E[phi^2]) for channels N(mu + delta_c, v), delta ~ N(0, D)."""
    total = x.spread + x.var
    e1 = float(gauss_expect(act.fn, total, act.kinks, mean=x.mu, scale=act.scale))
    e2 = float(gauss_expect(lambda u: act.fn(u) ** 2, total, act.kinks, mean=x.mu,
                            scale=act.scale))
    if x.spread == 0.0:
        a = e1 * e1
    elif x.mu == 0.0:
        a = float(expect_phi_phi(act, total, min(1.0, x.spread / total)))
    else:  # channel mean h(m) = E[phi(m + sqrt(v) z)], averaged over m ~ N(mu, D)
        def h2(m: np.ndarray) -> np.ndarray:
            return np.asarray(gauss_expect(act.fn, x.var, act.kinks, mean=m,
                                           scale=act.scale)) ** 2

        a = float(gauss_expect(h2, x.spread, mean=x.mu))
    return e1, a, e2


def _conv(act: Activation, x: _Stats, gain2: float, ws: bool, pad: _Padding) -> _Stats:
    """phi (times sqrt(gain2)) then a conv: plain (Var w = 1/fan_in, He gain in gain2) or
    Scaled WS (zero-mean, unit-norm weights per unit), with zero-padding factors ``pad``."""
    e1, a, e2 = _activation_moments(act, x)
    mu2, a, e2 = gain2 * e1 * e1, gain2 * a, gain2 * e2  # moments of sqrt(gain2) * phi
    if ws:
        spread = pad.rho_m * a - pad.rho_v**2 * mu2
        second = pad.rho_v * e2 - pad.n2 * mu2
    else:
        spread = pad.rho_m * a
        second = pad.rho_v * e2
    spread = max(spread, 0.0)
    return _Stats(0.0, spread, max(second - spread, 0.0))


@dataclass(frozen=True)
class _Padding:
    """Zero-padding factors of a conv: rho_v = mean valid-tap fraction, rho_m = mean squared
    per-tap valid fraction, n2 = E_p[(valid taps / all taps)^2]; all 1 for 1x1 convs."""

    rho_v: float = 1.0
    rho_m: float = 1.0
    n2: float = 1.0


def _padding_3x3(size: tuple[int, int] | None, stride: int) -> tuple[_Padding, tuple[int, int]]:
    if size is None:
        return _Padding(), (0, 0)
    rv, rm, n2, out = 1.0, 1.0, 1.0, []
    for h in size:
        ho = (h - 1) // stride + 1
        valid = np.array([[0 <= o * stride + d < h for d in (-1, 0, 1)] for o in range(ho)])
        f = valid.mean(axis=0)  # per tap, fraction of output positions where it is valid
        rv *= f.sum() / 3
        rm *= (f * f).sum() / 3
        n2 *= (valid.sum(axis=1) ** 2).mean() / 9
        out.append(ho)
    return _Padding(rv, rm, n2), (out[0], out[1])


def _block(act: Activation, norm: str, x: _Stats, expected: float, transition: bool,
           pad: _Padding, gam2: float, alpha: float, gain: float
           ) -> tuple[_Stats, _Stats, float]:
    """One bottleneck block (3 convs, the middle one 3x3 with padding ``pad``) on trunk
    ``x``, its branch scaled by ``alpha * gain``: (trunk after it, branch output before
    the scale, NF's beta^2 ``expected`` for the next block)."""
    ws, one = norm == "nf", _Padding()
    unit = _Stats(0.0, 0.0, 1.0)  # what BN feeds every activation
    if norm == "bn":
        inp = unit
    elif norm == "nf":
        inp = x.scaled(1.0 / math.sqrt(expected))
    else:
        inp = x
    branch = _conv(act, inp, gam2, ws, one)
    branch = _conv(act, unit if norm == "bn" else branch, gam2, ws, pad)
    branch = _conv(act, unit if norm == "bn" else branch, gam2, ws, one)
    short = _conv(act, inp, gam2, ws, one) if transition else x
    if norm == "nf":
        expected = (1.0 if transition else expected) + alpha * alpha
    return short + branch.scaled(alpha * gain), branch, expected


def residual_schedule(
    norm: str,
    depths: Sequence[int],
    *,
    activation: str = "relu",
    alpha: float = 0.2,
    gain: float | None = None,
    stem_var: float = 1.0,
    stem_sq_mean: float = 0.0,
    spatial: int | tuple[int, int] | None = None,
    label: str | None = None,
    weight_gain: float = 1.0,
) -> SPPResult:
    """Predicted SPP (stem, then every block ``stages.{s}.{b}``) of a pre-activation ResNet.

    Record names and order match ``signalprop.models.resnetv2`` (``model.signal_blocks()``),
    so ``signalprop.plot.spp(measured, path, predicted=[this])`` overlays them.

    Args:
        norm: ``"bn"``, ``"none"``, ``"nf"`` or ``"skipinit"`` (see the module docstring).
        depths: bottleneck blocks per stage, e.g. (3, 4, 6, 3); the first block of every
            stage is a transition (projection shortcut).
        activation: registered activation name (He gain / gamma follow it).
        alpha: NF branch scale.
        gain: scalar on every residual branch (SkipInit); default 0 for ``"skipinit"``
            (the reference init) and 1 otherwise.
        stem_var: average channel variance of the stem output.
        stem_sq_mean: average squared channel mean of the stem output (taken as common
            to all channels, as after a max-pool).
        spatial: the stem output's spatial size (H, W); then 3x3 convs lose the variance of
            their zero-padded taps (large on 4x4 and 2x2 maps). None: no padding effects.
        label: the result's label (default ``"<norm> (predicted)"``).
        weight_gain: factor on the variance every block conv (branch and projection)
            passes on, e.g. ``quantized_variance_gain(...)`` for quantized convolutions.

    Returns:
        ``SPPResult(kind="predicted")``: ``avg_sq_mean``, ``avg_var`` and ``res_var`` (the
        branch output before gain/alpha) per record; the stem has ``res_var=None``.

    Examples:
        >>> r = residual_schedule("nf", [2, 2])
        >>> r.names
        ['stem', 'stages.0.0', 'stages.0.1', 'stages.1.0', 'stages.1.1']
        >>> [round(v, 2) for v in r.avg_var]  # 1 + k alpha^2, reset at each transition
        [1.0, 1.04, 1.08, 1.04, 1.08]
    """
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; valid: {', '.join(NORMS)}")
    depths = [_checks.count(f"depths[{i}]", d) for i, d in enumerate(depths)]
    if not depths:
        raise ValueError("depths must name at least one stage, got []")
    act = get_activation(activation)
    a = float(alpha) if norm == "nf" else 1.0
    if norm == "nf":
        _checks.positive("alpha", alpha)
    g = (0.0 if norm == "skipinit" else 1.0) if gain is None else float(gain)
    if not math.isfinite(g):
        raise ValueError(f"gain must be finite, got {gain!r}")
    m = _checks.non_negative("stem_sq_mean", stem_sq_mean)
    v = _checks.non_negative("stem_var", stem_var)
    size = None
    if spatial is not None:
        hw = (spatial, spatial) if isinstance(spatial, int) else tuple(spatial)
        size = (_checks.count("spatial", hw[0]), _checks.count("spatial", hw[-1]))
    he_g2 = 1.0 / float(expect_phi2(act, 1.0))
    gam2 = (_gamma(act) ** 2 if norm == "nf" else he_g2) * _checks.positive("weight_gain",
                                                                           weight_gain)
    # NOTE: the stem's squared mean is taken as common to all channels (positive), which is
    # what a max-pool produces; any conv with random weights turns it into a spread.
    x = _Stats(math.sqrt(m), 0.0, v)
    records = [BlockStats("stem", 0, m, v, None)]
    expected = 1.0  # NF: beta^2 of the next block (DeepMind's convention starts at 1)
    index = 0
    for s, depth in enumerate(depths):
        for b in range(depth):
            index += 1
            transition = b == 0
            pad, new_size = _padding_3x3(size, 2 if transition and s > 0 else 1)
            x, branch, expected = _block(act, norm, x, expected, transition, pad, gam2, a, g)
            if size is not None:
                size = new_size
            records.append(BlockStats(f"stages.{s}.{b}", index, x.sq_mean, x.var, branch.var))
    meta = {"norm": norm, "depths": list(depths), "activation": act.name, "alpha": a,
            "gain": g, "stem_var": records[0].avg_var, "stem_sq_mean": records[0].avg_sq_mean,
            "weight_gain": float(weight_gain), "model": "signalprop.theory.residual_schedule"}
    return SPPResult(label or f"{norm} (predicted)", records, kind="predicted", meta=meta)


def nf_expected_variances(depths: Sequence[int], alpha: float = 0.2) -> np.ndarray:
    """Expected block-output variances of an NF-ResNet: 1 + k alpha^2 within a stage.

    Examples:
        >>> nf_expected_variances([2, 1], alpha=0.5).tolist()
        [1.25, 1.5, 1.25]
    """
    a2 = _checks.positive("alpha", alpha) ** 2
    out = []
    for i, depth in enumerate(depths):
        depth = _checks.count(f"depths[{i}]", depth)
        out += [1.0 + (k + 1) * a2 for k in range(depth)]
    return np.array(out)
