"""An exactly orthogonal circular convolution: the Cayley transform in the Fourier domain
(Trockman & Kolter, "Orthogonalizing convolutional layers with the Cayley transform",
ICLR 2021).

A circular convolution is, at each frequency u, multiplication by a matrix W(u) (the DFT
of the kernel; strided layers by their polyphase kernel, :mod:`signalprop._fourier`). The
layer replaces W(u) by its Cayley transform Q(u), which has orthonormal columns (or rows),
and so applies an orthogonal operator to every input of any size.

For a tall matrix W = [U; V] (m >= n, U the top n x n block), let
S = U - U^H + V^H V. The Cayley transform (I - A)(I + A)^{-1} of the skew-Hermitian
A = [[U - U^H, -V^H], [V, 0]], restricted to its first n columns, works out to

    Q = [(I + S)^{-1} (I - S); -2 V (I + S)^{-1}],

one n x n solve (I + S is invertible: its Hermitian part I + V^H V is positive definite).
A wide W is transformed through its conjugate transpose. Real kernels give conjugate
matrices at opposite frequencies, so Q does too and the layer is real.
"""

from __future__ import annotations

import torch
from torch import Tensor


def cayley(w: Tensor) -> Tensor:
    """Cayley transform of a batch of complex (..., m, n) matrices: orthonormal columns
    (m >= n) or rows (m < n).

    Examples:
        >>> q = cayley(torch.randn(5, 6, 3, dtype=torch.complex128))
        >>> eye = torch.eye(3, dtype=torch.complex128)
        >>> bool(torch.allclose(q.mH @ q, eye.expand(5, 3, 3), atol=1e-12))
        True
    """
    m, n = w.shape[-2:]
    if m < n:
        return cayley(w.mH).mH
    u, v = w[..., :n, :], w[..., n:, :]
    eye = torch.eye(n, dtype=w.dtype, device=w.device)
    s = u - u.mH + v.mH @ v
    inv = torch.linalg.solve(eye + s, eye.expand_as(s))
    return torch.cat([2 * inv - eye, -2 * v @ inv], dim=-2)


def cayley_apply(w: Tensor, x: Tensor) -> Tensor:
    """``cayley(w) @ x`` without forming the Cayley matrix: one solve with the columns of
    x as right-hand sides (cheaper than the inverse when x has fewer columns than w's
    smaller side, and never more expensive).

    For a wide w (m < n) the transform goes through w^H: with S built from w^H's blocks and
    x = [x1; x2] (m and n - m rows), cayley(w) x = 2 (I + S^H)^{-1} (x1 - V^H x2) - x1.

    Examples:
        >>> w = torch.randn(4, 3, 5, dtype=torch.complex128)
        >>> x = torch.randn(4, 5, 2, dtype=torch.complex128)
        >>> bool(torch.allclose(cayley_apply(w, x), cayley(w) @ x))
        True
    """
    m, n = w.shape[-2:]
    if m >= n:
        u, v = w[..., :n, :], w[..., n:, :]
        eye = torch.eye(n, dtype=w.dtype, device=w.device)
        z = torch.linalg.solve(eye + u - u.mH + v.mH @ v, x)
        return torch.cat([2 * z - x, -2 * v @ z], dim=-2)
    wt = w.mH
    u, v = wt[..., :m, :], wt[..., m:, :]
    eye = torch.eye(m, dtype=w.dtype, device=w.device)
    s = u - u.mH + v.mH @ v
    x1 = x[..., :m, :]
    z = torch.linalg.solve(eye + s.mH, x1 - v.mH @ x[..., m:, :])
    return 2 * z - x1
