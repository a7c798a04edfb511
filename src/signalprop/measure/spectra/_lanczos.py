"""Block Lanczos with full reorthogonalization for B independent symmetric operators at
once, with residual bounds that hold in floating point.

Each of the B problems builds an orthonormal basis Q of the block Krylov space
span{V, A V, A^2 V, ...} of a random start block V of ``block`` vectors (only products
A v are needed), and the Rayleigh quotient H = Q^T A Q from the products themselves
(every product is projected on the whole basis, twice, so H is the compression of A to
span(Q) up to rounding, whatever happened to the Krylov structure). The eigenvalues of H
(Ritz values) approximate A's extreme eigenvalues first.

What is guaranteed for a Ritz pair (theta, y = Q s):

* an eigenvalue of A lies within r = ||A y - theta y|| of theta (A symmetric). r is
  computed from the part of the last products outside span(Q) (and bounded above by
  what was discarded on the way when the Krylov space lost rank), not from the
  exact-arithmetic Lanczos recurrence;
* Cauchy interlacing: the j-th smallest Ritz value is >= the j-th smallest eigenvalue of
  A, and the j-th largest is <= the j-th largest (H is a compression of A);
* a start block of p random vectors keeps up to p copies of a repeated eigenvalue
  (its eigenspace meets span(V) in min(p, multiplicity) dimensions), so the k extreme
  values of an operator whose extreme eigenvalue is repeated are found with p >= k. A
  single vector (p = 1) sees each distinct eigenvalue once: for the k smallest with a
  repeated smallest eigenvalue it reports larger eigenvalues instead, each within its
  residual of *an* eigenvalue but not the j-th one;
* when the basis spans the whole space (``steps >= dim``) the Ritz values are the
  eigenvalues (``complete``).

When the Krylov space becomes invariant (breakdown) its basis is continued with random
vectors orthogonal to it, so the run still reaches every eigenvalue.

References:
    Golub & Underwood, "The block Lanczos method for computing eigenvalues" (1977);
    Parlett, "The Symmetric Eigenvalue Problem" (1998), ch. 4 (residual bounds) and 10.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from signalprop.measure._options import check_int, check_seed

MatVec = Callable[[Tensor], Tensor]
# A new basis vector whose norm after projection is below this fraction of the largest
# product norm seen is rounding noise (the Krylov space is invariant): replaced at random.
_BREAKDOWN = 1e-10


@dataclass(frozen=True)
class Ritz:
    """Ritz values (B, m), ascending, their residual bounds (B, m), the Krylov dimension m
    (``steps``: products per operator), the block size and whether the basis spans the
    whole space (then the values are every eigenvalue, to rounding)."""

    values: np.ndarray
    residuals: np.ndarray
    steps: int
    block: int = 1
    complete: bool = False


def _project_out(w: Tensor, basis: Tensor) -> tuple[Tensor, Tensor]:
    """w (B, n) minus its projection on basis (B, j, n), twice; returns the remainder and
    the coefficients basis @ w (B, j)."""
    total = torch.zeros(basis.shape[:2], dtype=w.dtype, device=w.device)
    for _ in range(2):  # batched matrix products (einsum's parsing costs more at this size)
        coef = torch.bmm(basis, w.unsqueeze(2)).squeeze(2)
        w = w - torch.bmm(coef.unsqueeze(1), basis).squeeze(1)
        total += coef
    return w, total


class _Basis:
    """The growing orthonormal basis Q (B, m, n), H = Q^T A Q and the error bookkeeping."""

    def __init__(self, b: int, dim: int, cap: int, device: torch.device | str,
                 gen: torch.Generator) -> None:
        self.b, self.dim, self.device, self.gen = b, dim, device, gen
        self.q = torch.zeros(b, cap, dim, dtype=torch.float64, device=device)
        self.h = torch.zeros(b, cap, cap, dtype=torch.float64, device=device)
        self.filled = 0
        self.scale = torch.zeros(b, dtype=torch.float64, device=device)  # max ||A q||
        self.discarded = torch.zeros(b, dtype=torch.float64, device=device)  # sum of sq.

    def random_unit(self, basis: Tensor) -> Tensor:
        v = torch.randn(self.b, self.dim, generator=self.gen, dtype=torch.float64)
        v, _ = _project_out(v.to(self.device), basis)
        return v / torch.linalg.vector_norm(v, dim=1, keepdim=True).clamp_min(1e-300)

    def extend(self, w: Tensor, count: int) -> Tensor:
        """Orthonormalize the columns of w (B, p, n) against the basis and each other into
        ``count`` new basis vectors, written after the basis (not yet counted in it) and
        returned (B, count, n); what of w they do not span is added to ``discarded``."""
        f0 = self.filled
        for i in range(count):
            basis = self.q[:, : f0 + i]
            v = w[:, i] if i < w.shape[1] else torch.zeros_like(w[:, 0])
            v, _ = _project_out(v, basis)
            norm = torch.linalg.vector_norm(v, dim=1)
            broken = norm <= _BREAKDOWN * self.scale.clamp_min(1e-300)
            v = v / norm.clamp_min(1e-300).unsqueeze(1)
            if bool(broken.any()):
                v = torch.where(broken.unsqueeze(1), self.random_unit(basis), v)
            self.q[:, f0 + i] = v
        block = self.q[:, f0 : f0 + count]
        coef = torch.bmm(w, block.transpose(1, 2))
        left = w - torch.bmm(coef, block)
        self.discarded += left.square().sum(dim=(1, 2))
        return block

    def add(self, v: Tensor, av: Tensor) -> Tensor:
        """Append the block v (B, p, n) with its products av; returns av's remainder
        outside the basis (B, p, n)."""
        p, f0 = v.shape[1], self.filled
        self.q[:, f0 : f0 + p] = v  # a no-op for the block extend() wrote in place
        self.filled += p
        self.scale = torch.maximum(self.scale, torch.linalg.vector_norm(av, dim=2).amax(1))
        rest = torch.empty_like(av)
        for i in range(p):
            rest[:, i], coef = _project_out(av[:, i], self.q[:, : self.filled])
            self.h[:, : self.filled, f0 + i] = coef
        return rest

    def ritz(self, rest: Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Ritz values and residual bounds from H and the last block's remainder."""
        m, p = self.filled, rest.shape[1]
        h = torch.triu(self.h[:, :m, :m])
        h = h + torch.triu(h, 1).transpose(1, 2)  # H_ij for i <= j from q_i^T (A q_j)
        vals, vecs = torch.linalg.eigh(h)
        last = vecs[:, m - p :, :]  # (B, p, m): the last block's rows of every s
        gram = torch.einsum("bin,bjn->bij", rest, rest)
        r_last = torch.einsum("bim,bij,bjm->bm", last, gram, last).clamp_min(0).sqrt()
        res = r_last + self.discarded.sqrt().unsqueeze(1)
        return vals.cpu().numpy(), res.cpu().numpy()


def lanczos(matvec: MatVec, b: int, dim: int, steps: int, *, dtype: torch.dtype,
            device: torch.device | str = "cpu", seed: int = 0, block: int = 1) -> Ritz:
    """Block Lanczos on B symmetric operators of size ``dim`` in lockstep: ``steps`` products
    per operator (rounded up to whole blocks of ``block`` vectors, at most ``dim``).

    Args:
        matvec: maps a (B, dim) tensor of ``dtype`` to the (B, dim) products A_b v_b.
        b: number of independent operators.
        dim: their size.
        steps: Krylov dimension (>= 1), i.e. products per operator; ``dim`` steps give
            every eigenvalue.
        dtype: dtype the operator takes (vectors are cast to it).
        device: where the vectors live.
        seed: seed of the random start block.
        block: start vectors (>= 1): up to ``block`` copies of a repeated eigenvalue are
            found (use the number of extreme eigenvalues wanted).

    Returns:
        :class:`Ritz` (see the module docstring for what its bounds guarantee).

    Examples:
        >>> a = torch.diag(torch.tensor([0.0, 0.0, 1.0, 2.0, 3.0], dtype=torch.float64))
        >>> r = lanczos(lambda v: v @ a, 1, 5, 5, dtype=torch.float64, block=2)
        >>> (np.round(r.values[0], 6) + 0.0).tolist(), r.complete  # 5 steps span the space
        ([0.0, 0.0, 1.0, 2.0, 3.0], True)
    """
    b, dim, steps, block = (check_int(name, v, low=1)  # type: ignore[misc]
                            for name, v in (("b", b), ("dim", dim), ("steps", steps),
                                            ("block", block)))
    seed = check_seed(seed)
    p = min(block, steps, dim)
    cap = min(-(-steps // p) * p, dim)  # whole blocks: a cut block would leave a residual
    gen = torch.Generator(device="cpu").manual_seed(seed)
    basis = _Basis(b, dim, cap, device, gen)
    start = torch.randn(b, p, dim, generator=gen, dtype=torch.float64).to(device)
    v = basis.extend(start, p)
    basis.discarded.zero_()  # the start block is not a product: nothing of A discarded
    while True:
        av = torch.stack([_product(matvec, v[:, i], b, dim, dtype, basis.filled + i)
                          for i in range(v.shape[1])], dim=1)
        rest = basis.add(v, av)
        if basis.filled == cap:
            break
        v = basis.extend(rest, min(p, cap - basis.filled))
    values, residuals = basis.ritz(rest)
    return Ritz(values, residuals, cap, p, cap == dim)


def _product(matvec: MatVec, v: Tensor, b: int, dim: int, dtype: torch.dtype,
             step: int) -> Tensor:
    w = matvec(v.to(dtype)).to(torch.float64)
    if w.shape != (b, dim):
        raise ValueError(f"matvec returned shape {tuple(w.shape)}, expected {(b, dim)}")
    if not bool(torch.isfinite(w).all()):
        raise FloatingPointError(f"the operator returned NaN/Inf at Lanczos step {step}")
    return w.to(v.device)
