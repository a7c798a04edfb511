"""Lanczos with full reorthogonalization for B independent symmetric operators at once.

Each of the B problems builds an orthonormal Krylov basis q_0, q_1, ... of its operator A
(only products A v are needed) and the tridiagonal T = Q^T A Q; the eigenvalues of T (Ritz
values) approximate A's extreme eigenvalues first. For every Ritz pair (theta, Q s),
||A Q s - theta Q s|| = beta_m |s_m| (the last Lanczos coefficient times the last entry of
s), and since A is symmetric an eigenvalue of A lies within that residual of theta. After
``dim`` steps the basis spans the space and the Ritz values are A's eigenvalues (exact up
to rounding). Vectors are kept in float64; a breakdown (invariant subspace) restarts
with a random vector orthogonal to the basis, so the run still reaches every eigenvalue.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.linalg import eigh_tridiagonal
from torch import Tensor

MatVec = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class Ritz:
    """Ritz values (B, m), ascending, their residual bounds (B, m), and the step count."""

    values: np.ndarray
    residuals: np.ndarray
    steps: int


def _orthogonalize(w: Tensor, basis: Tensor) -> Tensor:
    """w (B, n) minus its projection on basis (j, B, n); twice, for numerical safety."""
    for _ in range(2):
        coef = torch.einsum("jbn,bn->jb", basis, w)
        w = w - torch.einsum("jb,jbn->bn", coef, basis)
    return w


def lanczos(matvec: MatVec, b: int, dim: int, steps: int, *, dtype: torch.dtype,
            device: torch.device | str = "cpu", seed: int = 0) -> Ritz:
    """Run ``min(steps, dim)`` Lanczos steps on B operators of size ``dim``.

    Args:
        matvec: maps a (B, dim) tensor of ``dtype`` to the (B, dim) products A_b v_b.
        b: number of independent operators.
        dim: their size.
        steps: Krylov dimension (>= 1); ``dim`` steps give every eigenvalue.
        dtype: dtype the operator takes (vectors are cast to it).
        seed: seed of the random start vectors.

    Returns:
        :class:`Ritz`.

    Examples:
        >>> a = torch.diag(torch.arange(1.0, 6.0, dtype=torch.float64))
        >>> r = lanczos(lambda v: v @ a, 1, 5, 5, dtype=torch.float64)
        >>> np.round(r.values[0], 6).tolist()
        [1.0, 2.0, 3.0, 4.0, 5.0]
    """
    if steps < 1 or dim < 1:
        raise ValueError(f"steps and dim must be >= 1, got steps={steps}, dim={dim}")
    m = min(steps, dim)
    gen = torch.Generator(device="cpu").manual_seed(seed)

    def random_unit(basis: Tensor | None) -> Tensor:
        v = torch.randn(b, dim, generator=gen, dtype=torch.float64).to(device)
        if basis is not None:
            v = _orthogonalize(v, basis)
        return v / torch.linalg.vector_norm(v, dim=1, keepdim=True)

    q = torch.zeros(m + 1, b, dim, dtype=torch.float64, device=device)
    alpha = torch.zeros(b, m, dtype=torch.float64)
    beta = torch.zeros(b, m, dtype=torch.float64)
    q[0] = random_unit(None)
    for j in range(m):
        w = matvec(q[j].to(dtype)).to(torch.float64)
        if w.shape != (b, dim):
            raise ValueError(f"matvec returned shape {tuple(w.shape)}, expected {(b, dim)}")
        if not bool(torch.isfinite(w).all()):
            raise FloatingPointError(f"the operator returned NaN/Inf at Lanczos step {j}")
        alpha[:, j] = torch.einsum("bn,bn->b", w, q[j]).cpu()
        w = _orthogonalize(w, q[: j + 1])
        norm = torch.linalg.vector_norm(w, dim=1)
        beta[:, j] = norm.cpu()
        if j + 1 == dim:
            break
        scale = torch.maximum(alpha[:, : j + 1].abs().max(dim=1).values,
                              beta[:, : j + 1].max(dim=1).values)
        broken = (norm.cpu() <= 1e-10 * torch.clamp(scale, min=1e-300)).to(device)
        nxt = w / torch.clamp(norm, min=1e-300).unsqueeze(1)
        if bool(broken.any()):
            fresh = random_unit(q[: j + 1])
            nxt = torch.where(broken.unsqueeze(1), fresh, nxt)
            beta[:, j] = torch.where(broken.cpu(), 0.0, beta[:, j])
        q[j + 1] = nxt
    a_np, b_np = alpha.numpy(), beta.numpy()
    values = np.empty((b, m))
    residuals = np.empty((b, m))
    for i in range(b):
        if m == 1:
            vals, vecs = a_np[i, :1], np.ones((1, 1))
        else:
            vals, vecs = eigh_tridiagonal(a_np[i, :m], b_np[i, : m - 1])
        values[i] = vals
        residuals[i] = 0.0 if m == dim else np.abs(b_np[i, m - 1] * vecs[-1, :])
    return Ritz(values, residuals, m)
