"""Quantized training of one weight as a Markov chain: why stochastic rounding does not anneal.

Li, De, Xu, Studer, Samet & Goldstein (NeurIPS 2017) compare, on a grid of spacing Delta
and with stochastic gradients g(w) = f'(w) + noise:

* ``"sr"`` (stochastic rounding): only grid values are stored,
  w <- Q_sr(w - lr g(w)), rounding up with probability (x - floor(x)) / Delta (unbiased);
* ``"r"`` (deterministic rounding): w <- Q_r(w - lr g(w)), rounding to the nearest point;
* ``"bc"`` (BinaryConnect): a float buffer b moves by the gradient taken at the grid point,
  b <- b - lr g(Q_r(b)); the model uses Q_r(b).

SR and R are Markov chains on the grid. With Gaussian gradient noise of standard deviation
``noise`` the next value x = w - lr g is N(mu, tau^2), mu = w - lr f'(w), tau = lr noise,
and the SR transition probabilities are exact Gaussian expectations of the rounding's hat
functions: with R_j = E[(x - y_j)^+] = (mu - y_j) Phi((mu - y_j) / tau) + tau phi(...),

    P(w -> y_j) = (R_{j-1} - 2 R_j + R_{j+1}) / Delta      (interior points),

and the end points take the clamped mass (1 - (R_0 - R_1) / Delta at the lower end). For
small lr the chain moves by one point with probabilities lr E[g^-] / Delta (up) and
lr E[g^+] / Delta (down): lr cancels from their ratio, so the stationary distribution
tends to a fixed law that does NOT concentrate on the minimizers as lr -> 0 -- SR has no
annealing (greedy) phase. BC's buffer is a continuous random walk whose stationary density
~ exp(-2 F(b) / (lr noise^2)) (F' = f' o Q_r) concentrates on the global minimum as
lr -> 0. The BC chain here is that walk on a fine buffer grid of spacing
h <= lr noise / ``resolution`` (stochastically rounded, so the drift is kept exactly);
it converges to the continuous buffer as ``resolution`` grows.

Examples:
    >>> well = DoubleWell(tilt=0.3)
    >>> sr = rounding_chain(well.grad, np.linspace(-2, 2, 17), lr=0.01, noise=2.0)
    >>> round(sum(sr.stationary), 12), sr.grid[int(np.argmax(sr.stationary))]
    (1.0, -1.0)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse, special

from signalprop.results.quantized import RoundingChainResult
from signalprop.theory import _checks

SCHEMES = ("sr", "r", "bc")
_BAND = 12.0  # Gaussian tails beyond 12 standard deviations (< 1e-32) are dropped


@dataclass(frozen=True)
class DoubleWell:
    """f(w) = (w^2 - 1)^2 + tilt w: two wells near -1 and +1, the left one deeper for tilt > 0.

    Examples:
        >>> DoubleWell(0.3).grad(np.array([-1.0, 1.0])).tolist()
        [0.3, 0.3]
    """

    tilt: float = 0.3

    def value(self, w: Any) -> np.ndarray:
        w = np.asarray(w, dtype=float)
        return (w * w - 1.0) ** 2 + self.tilt * w

    def grad(self, w: Any) -> np.ndarray:
        w = np.asarray(w, dtype=float)
        return 4.0 * w * (w * w - 1.0) + self.tilt


def _check_grid(grid: Any) -> tuple[np.ndarray, float]:
    y = np.asarray(grid, dtype=float).ravel()
    if y.size < 2 or not np.isfinite(y).all():
        raise ValueError(f"grid must hold at least 2 finite points, got {grid!r}")
    d = np.diff(y)
    if not (d > 0).all() or not np.allclose(d, d[0], rtol=1e-9, atol=0.0):
        raise ValueError("grid must be increasing and uniformly spaced")
    return y, float(d[0])


def _interp_rows(mu: np.ndarray, tau: float, y0: float, d: float, n: int, band: int
                 ) -> sparse.csr_matrix:
    """Rows P[i, j] = E[weight of point j when x ~ N(mu_i, tau^2) is stochastically rounded
    onto the n points y0 + j d, clamped at both ends].

    The hat-function weights are taken on the grid extended beyond its ends (columns
    c_i - band .. c_i + band around the nearest point c_i) and the weights of the virtual
    points are folded onto the end points, which is exactly what clamping does; ``band``
    must cover the Gaussian's mass (12 tau) for the rows to be exact.
    """
    off = np.arange(-band - 1, band + 2)
    rows, cols, vals = [], [], []
    for start in range(0, mu.size, 4096):  # chunks keep the (rows, window) arrays small
        m = mu[start:start + 4096, None]
        j = np.rint((m - y0) / d).astype(np.int64) + off[None, :]
        # E[(x - y)^+] and E[(y - x)^+] differ by the linear mu - y, whose second
        # difference vanishes: take the one that is small (no cancellation in the tails)
        below = (y0 + j[:, 1:-1] * d) < m  # the centre point of each second difference
        gap = (m - (y0 + j * d)) / tau
        sign = np.where(below, -1.0, 1.0)
        p = np.zeros(below.shape)
        for s in (-1.0, 1.0):
            z = s * gap
            r = tau * (z * special.ndtr(z) + np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi))
            p += np.where(sign == s, (r[:, :-2] - 2.0 * r[:, 1:-1] + r[:, 2:]) / d, 0.0)
        rows.append(np.repeat(np.arange(start, start + m.shape[0]), p.shape[1]))
        cols.append(np.clip(j[:, 1:-1], 0, n - 1).ravel())
        vals.append(np.clip(p, 0.0, None).ravel())
    return _normalized(np.concatenate(rows), np.concatenate(cols), np.concatenate(vals),
                       mu.size, n)


def _nearest_rows(mu: np.ndarray, tau: float, y: np.ndarray, d: float) -> sparse.csr_matrix:
    """Rows for deterministic rounding to the nearest point of y (clamped)."""
    n = y.size
    edges = np.concatenate(([-np.inf], y[:-1] + d / 2, [np.inf]))
    z = (edges[None, :] - mu[:, None]) / tau  # (states, n + 1)
    lower = np.diff(special.ndtr(z), axis=1)
    upper = -np.diff(special.ndtr(-z), axis=1)  # the same from the upper tail: no 1 - 1e-30
    p = np.clip(np.where(z[:, :-1] > 0, upper, lower), 0.0, None)
    rows, cols = np.nonzero(p > 0)
    return _normalized(rows, cols, p[rows, cols], mu.size, n)


def _normalized(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, m: int, n: int
                ) -> sparse.csr_matrix:
    p = sparse.csr_matrix((vals, (rows, cols)), shape=(m, n))  # duplicates are summed
    sums = np.asarray(p.sum(axis=1)).ravel()
    return sparse.diags(1.0 / sums) @ p  # rounding residue only (rows sum to 1 - O(1e-15))


def rounding_transitions(grad: Callable[[np.ndarray], Any], grid: Any, *, lr: float,
                         noise: float, scheme: str = "sr", resolution: float = 4.0,
                         max_states: int = 200_000) -> tuple[np.ndarray, sparse.csr_matrix]:
    """The chain's states and its transition matrix (rows sum to 1; see the module docstring).

    Returns:
        ``(states, P)``: the grid for ``"sr"`` / ``"r"``, the fine buffer points for
        ``"bc"`` (K per grid cell, centred in it), and P as a sparse CSR matrix.

    Examples:
        >>> states, p = rounding_transitions(DoubleWell().grad, np.linspace(-2, 2, 9),
        ...                                  lr=0.05, noise=1.0)
        >>> p.shape, bool(np.allclose(p.sum(axis=1), 1.0))
        ((9, 9), True)
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    y, d = _check_grid(grid)
    lr = _checks.positive("lr", lr)
    tau = lr * _checks.positive("noise", noise)
    if scheme != "bc":
        mu = y - lr * np.asarray(grad(y), dtype=float)
        if not np.isfinite(mu).all():
            raise ValueError("grad returned non-finite values on the grid")
        if scheme == "r":
            return y, _nearest_rows(mu, tau, y, d)
        return y, _interp_rows(mu, tau, y[0], d, y.size, y.size + math.ceil(_BAND * tau / d) + 1)

    k = max(1, math.ceil(d * _checks.positive("resolution", resolution) / tau))
    if k * y.size > max_states:
        raise ValueError(f"the BC buffer grid needs {k * y.size} states (> max_states="
                         f"{max_states}); use a larger lr, a smaller resolution or a coarser "
                         "grid")
    h = d / k
    fine = y[0] - d / 2 + h * (np.arange(k * y.size) + 0.5)
    at = np.repeat(y, k)  # Q_r(b): the grid point of each buffer value's cell
    mu = fine - lr * np.asarray(grad(at), dtype=float)
    if not np.isfinite(mu).all():
        raise ValueError("grad returned non-finite values on the grid")
    # the window reaches the state itself, so the rare moves against a strong drift that
    # make the chain irreducible are kept (they matter for GTH, not for the probabilities)
    band = math.ceil((_BAND * tau + float(np.max(np.abs(mu - fine)))) / h) + 2
    return fine, _interp_rows(mu, tau, fine[0], h, fine.size, band)


def stationary_distribution(p: Any) -> np.ndarray:
    """pi with pi P = pi, sum(pi) = 1, for an irreducible transition matrix P (dense or
    sparse, best banded).

    Uses the Grassmann-Taksar-Heyman state reduction, which never subtracts and so keeps
    full relative accuracy on nearly reducible chains (two wells whose exchange rates are
    far below machine precision, as BC's buffer at a small learning rate), where a linear
    solve returns an arbitrary mixture. Elimination within the band costs O(n b^2).

    Raises:
        ValueError: P is not square, or the chain is reducible (a state cannot reach the
            states before it).

    Examples:
        >>> stationary_distribution(np.array([[0.5, 0.5], [0.25, 0.75]])).round(4).tolist()
        [0.3333, 0.6667]

    References:
        Grassmann, Taksar & Heyman, "Regenerative analysis and steady state distributions
        for Markov chains", Operations Research 33 (1985).
    """
    a = sparse.csr_matrix(p, dtype=float)
    n = a.shape[0]
    if a.shape != (n, n):
        raise ValueError(f"P must be square, got shape {a.shape}")
    coo = a.tocoo()
    b = int(np.max(np.abs(coo.row - coo.col))) if coo.nnz else 0
    band = np.zeros((n, 2 * b + 1))  # band[i, j - i + b] = P[i, j]
    band[coo.row, coo.col - coo.row + b] = coo.data
    for k in range(n - 1, 0, -1):
        lo = max(0, k - b)
        rows = np.arange(lo, k)
        s = band[k, rows - k + b].sum()  # P[k, j < k]: never a subtraction
        if not s > 0:
            raise ValueError(f"the chain is reducible: state {k} cannot move to a lower state "
                             "(at this learning rate the rounding never leaves it)")
        col = band[rows, k - rows + b] / s  # P[i, k] / s for i < k
        band[rows, k - rows + b] = col
        row = band[k, rows - k + b]
        # P[i, j] += P[i, k] P[k, j] for i, j in [lo, k): |i - j| < b stays in the band
        band[rows[:, None], rows[None, :] - rows[:, None] + b] += col[:, None] * row[None, :]
    pi = np.zeros(n)
    pi[0] = 1.0
    for j in range(1, n):
        lo = max(0, j - b)
        rows = np.arange(lo, j)
        pi[j] = pi[lo:j] @ band[rows, j - rows + b]
        if pi[j] > 1e100:  # relative masses can span more than the float range: rescale
            pi[: j + 1] /= pi[j]
    pi /= pi.sum()
    if not np.isfinite(pi).all() or np.abs(a.T @ pi - pi).sum() > 1e-8:
        raise ValueError("the chain has no unique stationary distribution (it is reducible: "
                         "at this learning rate the rounding cannot leave some states)")
    return pi


def rounding_chain(grad: Callable[[np.ndarray], Any], grid: Any, *, lr: float, noise: float,
                   scheme: str = "sr", resolution: float = 4.0, max_states: int = 200_000,
                   label: str | None = None) -> RoundingChainResult:
    """The stationary distribution, over the grid, of quantized SGD on a 1-D objective.

    Args:
        grad: f', vectorised over a NumPy array of weights.
        grid: uniformly spaced increasing grid points (at least 2).
        lr: learning rate (> 0).
        noise: standard deviation of the Gaussian gradient noise (> 0; without noise SR
            just descends into the nearest minimum).
        scheme: ``"sr"``, ``"r"`` or ``"bc"`` (see the module docstring).
        resolution: BC only: buffer points per lr * noise (the walk's step size).
        max_states: BC only: refuse buffer grids larger than this.
        label: the result's label (default ``"<scheme> lr=<lr>"``).

    Returns:
        :class:`~signalprop.results.RoundingChainResult`: ``stationary[i]`` is the long-run
        probability that the weight the model uses is ``grid[i]``.

    Examples:
        >>> well = DoubleWell(0.3)
        >>> grid = np.linspace(-2, 2, 17)
        >>> [round(rounding_chain(well.grad, grid, lr=lr, noise=2.0).mass_near(-1.0), 2)
        ...  for lr in (0.02, 0.005)]    # SR: the same law at every small lr
        [0.53, 0.53]
        >>> [round(rounding_chain(well.grad, grid, lr=lr, noise=2.0, scheme="bc").mass_near(-1.0),
        ...        2) for lr in (0.04, 0.01)]   # BC anneals onto the global minimum
        [0.72, 0.89]
    """
    states, p = rounding_transitions(grad, grid, lr=lr, noise=noise, scheme=scheme,
                                     resolution=resolution, max_states=max_states)
    pi = stationary_distribution(p)
    y, _ = _check_grid(grid)
    if scheme == "bc":
        pi = pi.reshape(y.size, -1).sum(axis=1)
    return RoundingChainResult(label=label or f"{scheme} lr={lr:g}", scheme=scheme, lr=float(lr),
                               noise=float(noise), grid=y.tolist(), stationary=pi.tolist(),
                               states=int(states.size))
