"""Mean-field layer maps of a deep random network and their per-layer iteration.

A fully connected layer h_{l+1} = W phi(h_l) + b with W_ij ~ N(0, sigma_w^2 / n) and
b_i ~ N(0, sigma_b^2) maps, at infinite width, the pre-activation variance q and the
correlation c of two inputs as (Poole et al. 2016; Schoenholz et al. 2017):

    q_{l+1}  = sigma_b^2 + sigma_w^2 E[phi(sqrt(q_l) z)^2]                     (q-map)
    q12_{l+1} = sigma_b^2 + sigma_w^2 E[phi(u1) phi(u2)],  c_{l+1} = q12_{l+1} / q_{l+1}

with (u1, u2) of variances q_l and correlation c_l (c-map). Back-propagated gradients
scale per layer by sigma_w^2 E[phi'(sqrt(q_l) z)^2] (chi_1 at q_l).

Examples:
    >>> p = propagate("relu", depth=4, sigma_w2=2.0)
    >>> p.q.tolist()
    [1.0, 1.0, 1.0, 1.0, 1.0]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from signalprop.theory import _checks
from signalprop.theory.activations import get_activation
from signalprop.theory.expectations import (
    ActivationLike,
    expect_dphi2,
    expect_phi2,
    expect_phi_phi,
)
from signalprop.theory.gaussian import _check_c, _check_q


def qmap(activation: ActivationLike, q: Any, sigma_w2: float, sigma_b2: float = 0.0) -> Any:
    """One layer of the length map: sigma_b^2 + sigma_w^2 E[phi(sqrt(q) z)^2].

    Args:
        activation: registered name, :class:`~signalprop.theory.Activation` or callable.
        q: pre-activation variance(s) of the layer input, >= 0 (array-like).
        sigma_w2: weight variance times fan-in, > 0.
        sigma_b2: bias variance, >= 0.

    Returns:
        q of the next layer (float or array like ``q``).

    Examples:
        >>> qmap("relu", 3.0, sigma_w2=2.0)
        3.0
    """
    sw = _checks.positive("sigma_w2", sigma_w2)
    sb = _checks.non_negative("sigma_b2", sigma_b2)
    out = sb + sw * np.asarray(expect_phi2(activation, q))
    return float(out) if out.ndim == 0 else out


def cmap(
    activation: ActivationLike, c: Any, q: Any, sigma_w2: float, sigma_b2: float = 0.0
) -> Any:
    """One layer of the correlation map for two inputs of equal variance q.

    c_next = (sigma_b^2 + sigma_w^2 E[phi(u1) phi(u2)]) / (sigma_b^2 + sigma_w^2 E[phi(u1)^2]),
    which is the textbook (sigma_b^2 + sigma_w^2 E[phi(u1) phi(u2)]) / q* at q = q*.

    Args:
        activation: registered name, Activation or callable.
        c: correlation(s) in [-1, 1].
        q: variance(s) of both inputs, >= 0 (broadcast against ``c``).
        sigma_w2: weight variance times fan-in, as in :func:`qmap`.
        sigma_b2: bias variance, as in :func:`qmap`.

    Returns:
        The next layer's correlation (float or array).

    Examples:
        >>> round(cmap("relu", 0.0, 1.0, sigma_w2=2.0), 12) == round(1 / np.pi, 12)
        True
    """
    sw = _checks.positive("sigma_w2", sigma_w2)
    sb = _checks.non_negative("sigma_b2", sigma_b2)
    act = get_activation(activation)
    c, q = np.broadcast_arrays(_check_c(c), _check_q(q))
    num = sb + sw * np.asarray(expect_phi_phi(act, q, c))
    den = sb + sw * np.asarray(expect_phi2(act, q))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1.0), c)
    # NOTE: a zero-variance layer (q = 0 and sigma_b^2 = 0 with phi(0) = 0) carries no
    # signal; the correlation is then left unchanged rather than reported as 0/0.
    return float(out) if out.ndim == 0 else out


@dataclass(frozen=True)
class Propagation:
    """Predicted per-layer statistics of a deep random network.

    Attributes:
        q: (depth + 1,) pre-activation variance of layers 0..depth (q[0] is the input's).
        c: (depth + 1,) correlation of two inputs per layer, or None if ``c0`` was not given.
        grad_scale: (depth + 1,) predicted E|dL/dh_l|^2 / E|dL/dh_depth|^2: the product of
            sigma_w^2 E[phi'(sqrt(q_k) z)^2] over k = l .. depth - 1 (1 at l = depth).
        chi: (depth,) the per-layer gradient factors sigma_w^2 E[phi'(sqrt(q_l) z)^2].

    Examples:
        >>> p = propagate("relu", depth=2, sigma_w2=2.0, c0=0.0)
        >>> p.q.tolist(), p.c.round(4).tolist(), p.chi.tolist()
        ([1.0, 1.0, 1.0], [0.0, 0.3183, 0.4937], [1.0, 1.0])
    """

    q: np.ndarray
    c: np.ndarray | None
    grad_scale: np.ndarray
    chi: np.ndarray


def propagate(
    activation: ActivationLike,
    depth: int,
    sigma_w2: float,
    sigma_b2: float = 0.0,
    *,
    q0: float = 1.0,
    c0: float | None = None,
) -> Propagation:
    """Iterate the q-map (and c-map) through ``depth`` layers.

    q_{l+1} = sigma_b^2 + sigma_w^2 E[phi(sqrt(q_l) z)^2]; with ``c0``,
    c_{l+1} = (sigma_b^2 + sigma_w^2 E[phi(u1) phi(u2)]) / q_{l+1} for (u1, u2) of variance
    q_l and correlation c_l; gradients shrink per layer by chi(q_l) = sigma_w^2 E[phi'^2].

    Args:
        activation: registered name, Activation or callable.
        depth: number of layers to apply (>= 1).
        sigma_w2: weight variance times fan-in (> 0).
        sigma_b2: bias variance (>= 0).
        q0: variance of the first layer's pre-activations (>= 0).
        c0: correlation of two inputs at layer 0, in [-1, 1] (optional).

    Returns:
        A :class:`Propagation` with arrays of length depth + 1.

    Examples:
        >>> p = propagate("tanh", depth=3, sigma_w2=1.5, sigma_b2=0.05, c0=0.5)
        >>> p.q.shape, bool(p.c[-1] > 0.5)
        ((4,), True)
    """
    depth = _checks.count("depth", depth)
    sw = _checks.positive("sigma_w2", sigma_w2)
    sb = _checks.non_negative("sigma_b2", sigma_b2)
    q0 = _checks.non_negative("q0", q0)
    act = get_activation(activation)
    q = np.empty(depth + 1)
    chi = np.empty(depth)
    q[0] = q0
    c = None
    if c0 is not None:
        c = np.empty(depth + 1)
        c[0] = _checks.correlation("c0", c0)
    for layer in range(depth):
        ql = q[layer]
        q[layer + 1] = sb + sw * expect_phi2(act, ql)
        chi[layer] = sw * expect_dphi2(act, ql)
        if not np.isfinite(q[layer + 1]):
            raise ValueError(
                f"the q-map overflowed at layer {layer + 1} (q = {ql!r}): sigma_w2 = {sw} is "
                "far in the chaotic phase for this depth; use a smaller sigma_w2 or depth"
            )
        if c is not None:
            q12 = sb + sw * expect_phi_phi(act, ql, c[layer])
            c[layer + 1] = min(1.0, max(-1.0, q12 / q[layer + 1])) if q[layer + 1] > 0 else c[layer]
    grad = np.ones(depth + 1)
    grad[:-1] = np.cumprod(chi[::-1])[::-1]
    return Propagation(q=q, c=c, grad_scale=grad, chi=chi)
