"""Leading finite-width correction: the four-point vertex and preactivation kurtosis.

For z^{l+1}_i = b_i + sum_j W_ij phi(z^l_j), W_ij ~ N(0, C_W / n), b_i ~ N(0, C_b), the
preactivations of layer l+1 are, given layer l, i.i.d. Gaussian with the random variance
G_{l+1} = C_b + (C_W / n) sum_j phi(z^l_j)^2. Their excess kurtosis is therefore
3 Var(G) / E[G]^2, and with V_l = n Var(G_l) (the four-point vertex, Roberts, Yaida &
Hanin ch. 4) the leading order in 1/n gives (derivation in the docstring of
:func:`four_point_vertex`):

    K_{l+1} = C_b + C_W <phi^2>_{K_l}
    V_{l+1} = C_W^2 (<phi^4>_{K_l} - <phi^2>_{K_l}^2) + chi_par(K_l)^2 V_l,   V_1 = 0

so the excess kurtosis 3 V_l / (n K_l^2) grows linearly in depth / width at criticality:
ReLU (C_W = 2): V_l / K^2 = 5 (l - 1), i.e. 15 (l - 1) / n; tanh (C_W = 1): V_l / K_l^2
-> (2/3) l, i.e. -> 2 l / n. For ReLU the exact finite-width value is also known:
E[z^4] / E[z^2]^2 = 3 (1 + 5/n)^(l-1) (:func:`relu_kurtosis_exact`).

Examples:
    >>> fw = four_point_vertex("relu", depth=5, sigma_w2=2.0)
    >>> fw.normalized.round(12).tolist()
    [0.0, 5.0, 10.0, 15.0, 20.0]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from signalprop.theory import _checks
from signalprop.theory.activations import get_activation
from signalprop.theory.expectations import ActivationLike, expect_phi2, expect_phi2_dq
from signalprop.theory.gaussian import gauss_expect


@dataclass(frozen=True)
class FourPointVertex:
    """Per-layer kernel and four-point vertex (layers 1..depth; index 0 is layer 1).

    Attributes:
        q: (depth,) the kernel K_l (pre-activation variance at infinite width).
        vertex: (depth,) V_l = n Var(G_l), the width-independent four-point vertex.
        normalized: (depth,) V_l / K_l^2.

    Examples:
        >>> fw = four_point_vertex("relu", depth=3, sigma_w2=2.0)
        >>> fw.q.tolist(), fw.normalized.round(12).tolist()
        ([1.0, 1.0, 1.0], [0.0, 5.0, 10.0])
    """

    q: np.ndarray
    vertex: np.ndarray
    normalized: np.ndarray

    def excess_kurtosis(self, width: float) -> np.ndarray:
        """Predicted excess kurtosis of a preactivation, 3 V_l / (n K_l^2), per layer."""
        n = _checks.positive("width", width)
        return 3.0 * self.normalized / n


def four_point_vertex(
    activation: ActivationLike,
    depth: int,
    sigma_w2: float | None = None,
    sigma_b2: float = 0.0,
    *,
    q0: float = 1.0,
) -> FourPointVertex:
    """Iterate the kernel and four-point-vertex recursions (module docstring).

    Derivation (single input, equal widths n): Var(G_{l+1}) = (C_W/n)^2 Var(sum_j phi_j^2)
    = (C_W^2/n)(<phi^4> - <phi^2>^2) + C_W^2 Cov(phi_1^2, phi_2^2); units of layer l are
    independent given G_l, so the covariance is Var(<phi^2>_{G_l}) ~ (d<phi^2>/dK)^2
    Var(G_l) to leading order, which gives V_{l+1} = C_W^2 (<phi^4> - <phi^2>^2) +
    chi_par^2 V_l with chi_par = C_W d<phi^2>/dK. Layer 1 sees a fixed input: V_1 = 0.

    Args:
        activation: registered name, Activation or callable.
        depth: number of layers (>= 1).
        sigma_w2: C_W; default: the critical value for ``sigma_b2``
            (:func:`~signalprop.theory.critical_point`).
        sigma_b2: C_b (>= 0).
        q0: K_1, the first layer's pre-activation variance (> 0).

    Returns:
        A :class:`FourPointVertex`.

    Examples:
        >>> fw = four_point_vertex("tanh", depth=200)
        >>> round(float(fw.normalized[-1] / 200), 2)  # -> 2/3 at large depth
        0.66
    """
    depth = _checks.count("depth", depth)
    sb = _checks.non_negative("sigma_b2", sigma_b2)
    q0 = _checks.positive("q0", q0)
    act = get_activation(activation)
    if sigma_w2 is None:
        from signalprop.theory.criticality import critical_point

        sw = critical_point(act, sb, q0=q0).sigma_w2
    else:
        sw = _checks.positive("sigma_w2", sigma_w2)
    q = np.empty(depth)
    v = np.empty(depth)
    q[0], v[0] = q0, 0.0
    for layer in range(depth - 1):
        k = q[layer]
        m2 = float(expect_phi2(act, k))
        m4 = float(gauss_expect(lambda u: act.fn(u) ** 4, k, act.kinks, scale=act.scale,
                                name=act.name))
        chi_par = sw * float(expect_phi2_dq(act, k))
        q[layer + 1] = sb + sw * m2
        v[layer + 1] = sw * sw * (m4 - m2 * m2) + chi_par * chi_par * v[layer]
    return FourPointVertex(q=q, vertex=v, normalized=v / (q * q))


def relu_kurtosis_exact(depth: int, width: int) -> np.ndarray:
    """Exact excess kurtosis of ReLU-network preactivations, layers 1..depth.

    With sigma_b^2 = 0 and any sigma_w^2, E[G_{l+1}^2] / E[G_{l+1}]^2 = (1 + 5/n) times
    that of layer l exactly (E[relu^4] = 3 G^2/2, E[relu_1^2 relu_2^2] = G^2/4 given G), so
    E[z^4] / E[z^2]^2 - 3 = 3 ((1 + 5/n)^(l-1) - 1).

    Examples:
        >>> relu_kurtosis_exact(3, 10).tolist()
        [0.0, 1.5, 3.75]
    """
    depth = _checks.count("depth", depth)
    n = _checks.count("width", width)
    return 3.0 * ((1.0 + 5.0 / n) ** np.arange(depth) - 1.0)
