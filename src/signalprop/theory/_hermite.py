"""Mehler (Hermite) series of the correlation kernel, for many variances at once.

With a_k(q) = E[phi(sqrt(q) z) He_k(z)] / sqrt(k!) (probabilists' Hermite polynomials),

    E[phi(u1) phi(u2)] = sum_k a_k^2 c^k,   q E[phi'(u1) phi'(u2)] = sum_k k a_k^2 c^(k-1)

(Mehler's formula and Price's theorem). Once the coefficients are known, every c costs a
polynomial evaluation, which is what makes a 100 x 100 phase diagram fast.

The series is cut at degree ``K``; the rest is modelled per parity as A k^-p with A and p
fitted to the exact remainders of sum a_k^2 and sum k a_k^2, which follow from
one-dimensional expectations at c = +-1 (E[phi(u)^2], E[phi(u) phi(-u)], E[phi'(u)^2],
E[phi'(u) phi'(-u)]). Kinks give algebraic tails (a_k^2 ~ k^-5/2 for ReLU-like corners),
which this model captures; truncation alone would leave ~1e-4 errors at c = 0.99.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import special

from signalprop.theory.activations import Activation
from signalprop.theory.gaussian import gauss_expect_many

DEGREE = 128


_EDGES = np.arange(-13.0, 13.0 + 1e-9, 0.5)


def _hermite_table(z: np.ndarray) -> np.ndarray:
    """He_k(z) / sqrt(k!) for k = 0..DEGREE, shape (DEGREE + 1, N) (stable recurrence)."""
    h = np.empty((DEGREE + 1, z.size))
    h[0] = 1.0
    h[1] = z
    for k in range(1, DEGREE):
        h[k + 1] = (z * h[k] - math.sqrt(k) * h[k - 1]) / math.sqrt(k + 1)
    return h


@lru_cache(maxsize=1)
def _fixed_rule() -> tuple[np.ndarray, np.ndarray]:
    """Nodes on [-13, 13] and the weighted Hermite table (DEGREE + 1, N).

    Panels of width 0.5 with 12 Gauss-Legendre nodes resolve He_k up to k = 128 (beyond
    |z| = 13, |He_k(z)| phi(z) / sqrt(k!) < 1e-18); z = 0 is a panel edge, so kinks at
    u = 0 are exact.
    """
    x, w = np.polynomial.legendre.leggauss(12)
    z = ((_EDGES[:-1] + _EDGES[1:]) / 2)[:, None] + 0.25 * x
    wz = 0.25 * w * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    z, wz = z.ravel(), wz.ravel()
    return z, _hermite_table(z) * wz


def coefficients(act: Activation, q: np.ndarray) -> np.ndarray:
    """a_k(q)^2 for k = 0..DEGREE, shape (len(q), DEGREE + 1).

    One fixed node set serves every q: kinks at u = 0 sit on a panel edge. A kink k != 0
    (relu6's at 6) lands at z = k / sqrt(q) inside some panel; that panel's contribution is
    replaced, per q, by two Gauss-Legendre halves split at the kink.
    """
    z, hw = _fixed_rule()
    s = np.sqrt(q)
    a = act.fn(s[:, None] * z) @ hw.T  # (B, DEGREE + 1)
    x, w = np.polynomial.legendre.leggauss(12)
    for kink in act.kinks:
        if kink == 0:
            continue
        zk = kink / s
        idx = np.flatnonzero(np.abs(zk) < _EDGES[-1])
        if idx.size == 0:
            continue
        j = np.minimum(((zk[idx] - _EDGES[0]) // 0.5).astype(int), _EDGES.size - 2)
        nodes = j[:, None] * 12 + np.arange(12)  # the panel's fixed nodes, (b, 12)
        si = s[idx, None]
        a[idx] -= np.einsum("bn,kbn->bk", act.fn(si * z[nodes]), hw[:, nodes])
        lo, hi, mid = _EDGES[j], _EDGES[j] + 0.5, zk[idx]
        halves = []
        for a_, b_ in ((lo, mid), (mid, hi)):
            half = 0.5 * (b_ - a_)[:, None]
            zz = 0.5 * (a_ + b_)[:, None] + half * x
            ww = half * w * np.exp(-0.5 * zz * zz) / math.sqrt(2 * math.pi)
            halves.append((zz, ww))
        zz = np.concatenate([h[0] for h in halves], axis=1)  # (b, 24)
        ww = np.concatenate([h[1] for h in halves], axis=1)
        fw = ww * act.fn(si * zz)
        h_prev, h = np.ones_like(zz), zz.copy()
        a[idx, 0] += fw.sum(axis=1)
        a[idx, 1] += (fw * h).sum(axis=1)
        for k in range(1, DEGREE):
            h_prev, h = h, (zz * h - math.sqrt(k) * h_prev) / math.sqrt(k + 1)
            a[idx, k + 1] += (fw * h).sum(axis=1)
    return a * a


def _upper_gamma_neg(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Gamma(a, x) for a < 1, x > 0 by the recurrence Gamma(a, x) = (Gamma(a+1, x) -
    x^a e^-x) / a, started from a + n in (0, 1] (scipy only covers a > 0)."""
    n = np.floor(-a) + 1.0  # a + n in (0, 1]
    g = special.gammaincc(a + n, x) * special.gamma(a + n)
    for m in range(int(n.max()) - 1, -1, -1):
        am = a + m
        on = m < n  # this point still recurses
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            step = (g - np.exp(am * np.log(x) - x)) / am
        g = np.where(on, step, g)
    return g


class _Tail:
    """a_k^2 = A (k / k0)^-p for k = k0, k0 + 2, ... (one parity), fitted to the exact
    remainders t0 = sum a_k^2 and t1 = sum k a_k^2 of that parity beyond DEGREE."""

    def __init__(self, a2: np.ndarray, total0: np.ndarray, total1: np.ndarray,
                 parity: int) -> None:
        k = np.arange(DEGREE + 1)
        sel = k % 2 == parity
        t0 = total0 - a2[:, sel].sum(axis=1)
        t1 = total1 - (k[sel] * a2[:, sel]).sum(axis=1)
        self.k0 = k0 = DEGREE + 1 if (DEGREE + 1) % 2 == parity else DEGREE + 2
        scale = np.maximum(np.abs(total0), 1e-300)
        self.idx = np.flatnonzero((t0 > 1e-15 * scale) & (t1 > k0 * t0 * (1 + 1e-12)))
        t0, t1 = t0[self.idx], t1[self.idx]
        # sum k^(1-p) / sum k^-p over the parity tail = 2 zeta(p-1, k0/2) / zeta(p, k0/2),
        # decreasing in p from inf (p -> 2) to k0 (p -> inf).
        lo, hi = np.full(t0.size, 2.0 + 1e-9), np.full(t0.size, 60.0)
        for _ in range(32):
            p = 0.5 * (lo + hi)
            big = 2.0 * special.zeta(p - 1.0, k0 / 2.0) / special.zeta(p, k0 / 2.0) > t1 / t0
            lo, hi = np.where(big, p, lo), np.where(big, hi, p)
        p = 0.5 * (lo + hi)
        self.p = np.where(np.abs(p - np.round(p)) < 1e-7, p + 2e-7, p)  # Gamma(1-p) finite
        # t0 = A sum (k/k0)^-p = A (k0/2)^p zeta(p, k0/2)
        self.amp = t0 / ((k0 / 2.0) ** self.p * special.zeta(self.p, k0 / 2.0))

    def _sum(self, c: np.ndarray, p: np.ndarray) -> np.ndarray:
        """sum_j (k_j / k0)^-p |c|^k_j over k_j = k0 + 2j."""
        k0 = self.k0
        lam = -np.log(np.abs(c))
        x = lam * k0
        out = np.zeros_like(c)
        # Fast decay (steep power or |c| well below 1): 64 explicit terms suffice (< 1e-7).
        few = (p >= 20.0) | (x >= 14.0)
        if few.any():
            kj = k0 + 2.0 * np.arange(64)
            out[few] = np.exp(-p[few, None] * np.log(kj / k0) - lam[few, None] * kj).sum(axis=1)
        slow = ~few
        if slow.any():  # Euler-Maclaurin: half the integral + g(k0)/2 - g'(k0)/6
            ps, xs, ls = p[slow], x[slow], lam[slow]
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                integral = k0 * np.exp((ps - 1.0) * np.log(xs)) * _upper_gamma_neg(1.0 - ps, xs)
            integral = np.where(ls > 0, integral, k0 / (ps - 1.0))
            g0 = np.exp(-xs)
            out[slow] = 0.5 * integral + 0.5 * g0 + g0 * (ps / k0 + ls) / 6.0
        return out

    def add(self, c: np.ndarray, k_val: np.ndarray, dk_val: np.ndarray) -> None:
        """Add the modelled tail to K(c) and q Kd(c) in place (c: one value per point)."""
        if self.idx.size == 0:
            return
        cc = c[self.idx]
        # Skip points where |c|^k0 makes the tail invisible.
        live = np.abs(cc) ** self.k0 * self.amp > 1e-20 * (np.abs(k_val[self.idx]) + 1e-300)
        if not live.any():
            return
        idx, cc = self.idx[live], cc[live]
        p, amp = self.p[live], self.amp[live]
        par = np.where(cc < 0, (-1.0) ** self.k0, 1.0)  # c^k = (-1)^k0 |c|^k
        k_val[idx] += amp * par * self._sum(cc, p)
        # sum k a_k^2 c^(k-1) = (k0 / c) sum (k/k0)^(1-p) c^k
        dk_val[idx] += amp * par * (self.k0 / cc) * self._sum(cc, p - 1.0)


class MehlerKernel:
    """K(c) = E[phi(u1) phi(u2)] and q E[phi'(u1) phi'(u2)] for a batch of variances q.

    Args:
        act: the activation.
        q: (B,) variances (> 0).
        v, d, vm, dm: optional precomputed E[phi(u)^2], E[phi'(u)^2], E[phi(u) phi(-u)]
            and E[phi'(u) phi'(-u)] at q (all four, or they are computed).

    Examples:
        >>> from signalprop.theory import get_activation
        >>> mk = MehlerKernel(get_activation("tanh"), np.array([1.0]))
        >>> k, dk = mk(np.array([1.0]))
        >>> round(float(k[0]), 9), round(float(dk[0]), 9)  # E[tanh^2], q E[tanh'^2] at q = 1
        (0.39429449, 0.464402902)
    """

    def __init__(self, act: Activation, q: np.ndarray, v: np.ndarray | None = None,
                 d: np.ndarray | None = None, vm: np.ndarray | None = None,
                 dm: np.ndarray | None = None) -> None:
        q = np.asarray(q, dtype=float)
        self.a2 = coefficients(act, q)
        self._k = np.arange(DEGREE + 1, dtype=float)
        if v is None or d is None or vm is None or dm is None:
            mirror = tuple(sorted({*act.kinks, *(-k for k in act.kinks)}))
            fs = [lambda u: act.fn(u) ** 2, lambda u: act.d1(u) ** 2,
                  lambda u: act.fn(u) * act.fn(-u), lambda u: act.d1(u) * act.d1(-u)]
            v, d, vm, dm = gauss_expect_many(fs, q, mirror, scale=act.scale, name=act.name)
        v, v_m = np.asarray(v), np.asarray(vm)
        d, d_m = q * np.asarray(d), q * np.asarray(dm)
        # sum_even a^2 = (V + K(-1))/2 ... and sum_odd k a^2 = q (D + Kd(-1))/2.
        self.tails = [
            _Tail(self.a2, 0.5 * (v + v_m), 0.5 * (d - d_m), 0),
            _Tail(self.a2, 0.5 * (v - v_m), 0.5 * (d + d_m), 1),
        ]

    def __call__(self, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(K(c), q Kd(c)) for one c per variance (or one c for all), each of shape (B,)."""
        c = np.asarray(c, dtype=float)
        if c.ndim == 0 or np.all(c == c.flat[0]):  # one c for all: two matrix-vector products
            c0 = float(c.flat[0])
            powers = c0 ** self._k
            # einsum, not BLAS: a (B, 129) matrix-vector product is faster without threads
            k_val = np.einsum("bk,k->b", self.a2, powers)
            dk_val = np.einsum("bk,k->b", self.a2[:, 1:], self._k[1:] * powers[:-1])
            c = np.full(self.a2.shape[0], c0)
        else:
            powers = np.empty_like(self.a2)  # (B, DEGREE + 1): c^k
            powers[:, 0] = 1.0
            powers[:, 1:] = c[:, None]
            np.cumprod(powers, axis=1, out=powers)
            k_val = np.einsum("bk,bk->b", self.a2, powers)
            dk_val = np.einsum("bk,bk,k->b", self.a2[:, 1:], powers[:, :-1], self._k[1:])
        for tail in self.tails:
            tail.add(c, k_val, dk_val)
        return k_val, dk_val
