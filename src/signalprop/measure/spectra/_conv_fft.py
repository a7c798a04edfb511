"""Exact singular values of circular convolutions: one small SVD per frequency.

The frequency matrices come from :mod:`signalprop._fourier` (Sedghi, Gupta & Long 2019,
with the polyphase reduction of strides); the operator is block diagonal in that basis, so
its singular values are the union of the blocks' (each half-spectrum block counted with its
multiplicity).
"""

from __future__ import annotations

import torch
from torch import Tensor

#: complex entries decomposed at once (bounds memory on large layers)
CHUNK = 1 << 22
#: Gram eigenvalues are trusted to GRAM_TOL * inner dimension * eps * largest eigenvalue
#: (forming A^H A and a backward-stable eigensolver err by O(n eps ||A||^2))
GRAM_TOL = 16.0
EPS = float(torch.finfo(torch.float64).eps)


def svdvals(a: Tensor) -> Tensor:
    """Singular values (descending) of a batch of matrices (..., m, n), as
    ``torch.linalg.svdvals`` but faster on strongly rectangular ones: a QR factorization
    first reduces them to the smaller side (same singular values, backward stable).

    Examples:
        >>> a = torch.randn(3, 40, 5, dtype=torch.float64)
        >>> bool(torch.allclose(svdvals(a), torch.linalg.svdvals(a)))
        True
    """
    m, n = a.shape[-2:]
    if max(m, n) >= 2 * min(m, n):
        a = torch.linalg.qr(a if m > n else a.mH, mode="r").R
    return torch.linalg.svdvals(a)


def spectrum(mats: Tensor, weight: Tensor, *, values: bool = True
             ) -> tuple[float, float, Tensor | None]:
    """Singular values of the block-diagonal operator with blocks ``mats`` (G, F, m, n).

    Returns:
        ``(sigma_max, sigma_min, all values descending or None)``; the full spectrum
        counts frequency f ``weight[f]`` times.
    """
    g, f, m, n = mats.shape
    step = max(1, CHUNK // max(1, g * m * n))
    parts = [svdvals(mats[:, i:i + step]) for i in range(0, f, step)]
    sv = torch.cat(parts, dim=1)  # (G, F, min(m, n)), descending per matrix
    smax, smin = float(sv[..., 0].max()), float(sv[..., -1].min())
    if not values:
        return smax, smin, None
    reps = weight.to(torch.long).repeat(g)
    flat = torch.repeat_interleave(sv.reshape(g * f, -1), reps, dim=0).flatten()
    return smax, smin, torch.sort(flat, descending=True).values


def extremes(mats: Tensor) -> tuple[float, float, tuple[float, float], tuple[float, float]]:
    """The largest and the smallest singular value over the matrices (G, F, m, n), with
    intervals (low, high) that hold them, from the eigenvalues of their smaller Gram
    matrices (two to three times cheaper than SVDs; the smallest value loses relative
    accuracy as kappa^2 eps, which its interval shows).
    """
    g, f, m, n = mats.shape
    step = max(1, CHUNK // max(1, g * m * n))
    top, bottom = 0.0, float("inf")
    for i in range(0, f, step):
        part = mats[:, i:i + step]
        gram = part.mH @ part if n <= m else part @ part.mH
        ev = torch.linalg.eigvalsh(gram)
        top, bottom = max(top, float(ev[..., -1].max())), min(bottom, float(ev[..., 0].min()))
    tol = GRAM_TOL * max(m, n) * EPS * top
    return (top ** 0.5, max(bottom, 0.0) ** 0.5,
            (max(top - tol, 0.0) ** 0.5, (top + tol) ** 0.5),
            (max(bottom - tol, 0.0) ** 0.5, max(bottom + tol, 0.0) ** 0.5))


def largest(mats: Tensor) -> float:
    """An upper bound (tight to rounding) of the largest spectral norm among the matrices
    (G, F, m, n)."""
    return extremes(mats)[2][1]
