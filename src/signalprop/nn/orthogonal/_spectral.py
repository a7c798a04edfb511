"""The fast path of :class:`~signalprop.nn.OrthoConv2d`: its Cayley systems built straight
from the few kernel taps, and applied with the batch as right-hand sides.

The parameter has T = k1 k2 taps; tap t sits at polyphase grid position q_t in phase slot
r_t (:mod:`signalprop._fourier`), so the half-spectrum matrix at frequency f is

    W(f) = sum_t exp(-i theta_t(f)) w_t,    theta_t(f) = 2 pi (u q_t1 / N1 + v q_t2 / N2),

with w_t the (M, C S^2) matrix of tap t placed in its phase slot. That is a (F, T) x
(T, M C S^2) product instead of an FFT of a kernel padded to the whole grid (T = 9 taps
against N1 N2 grid points). The Cayley transform only needs, with r = min(M, C S^2),

    A(f) = I + Wr(f) - Wr(f)^H + (V^H V or R R^H),

where Wr is the leading r x r block, V the rows below it (tall W) or R the columns right of
it (wide W). Its skew part is real-linear in the taps: Re = sum_t cos theta_t (w_t - w_t^T)
and Im = -sum_t sin theta_t (w_t + w_t^T), two real products with no elementwise pass over
the F x r x r complex matrices (and none in the backward either).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Taps:
    """DFT coefficients of the parameter's taps on one polyphase grid.

    Attributes:
        coef: (F, T, 2) real: tap t contributes exp(-i theta) = coef[f, t, 0] +
            i coef[f, t, 1] (cos theta, -sin theta) at half-spectrum frequency f (C order
            over (N1, N2 // 2 + 1), as ``rfft2``).
        slot: (T,) phase slot of each tap (index into the prod(stride) phases, C order).
        constant: every tap sits at grid position 0, so W(f) is the same real matrix at
            every frequency (1 x 1 kernels, or kernel = stride): no FFT is needed.
    """

    coef: Tensor
    slot: Tensor
    constant: bool


def taps(kernel_size: tuple[int, ...], stride: tuple[int, ...], dilation: tuple[int, ...],
         offset: tuple[int, ...], grid: tuple[int, ...], dtype: torch.dtype,
         device: torch.device) -> Taps:
    """Tap positions and their DFT coefficients (same convention as
    :func:`signalprop._fourier.polyphase_kernel` followed by ``rfftn``)."""
    slots, angles = torch.zeros((), dtype=torch.long), torch.zeros((), dtype=torch.float64)
    constant = True
    for j, (k, s, dil, off, n) in enumerate(zip(kernel_size, stride, dilation, offset, grid)):
        t = torch.arange(k) * dil + off
        r = torch.remainder(t, s)
        q = torch.remainder(torch.div(t - r, s, rounding_mode="floor"), n)
        constant = constant and bool((q == 0).all())
        freqs = torch.arange(n // 2 + 1 if j == len(grid) - 1 else n)
        phase = torch.remainder(torch.outer(freqs, q), n)  # integer u q mod N: exact
        theta = (2 * math.pi / n) * phase.to(torch.float64)  # (n_f, k)
        angles = _outer_sum(angles, theta)  # taps and frequencies both in C order
        slots = (slots.reshape(-1, 1) * s + r.reshape(1, -1)).flatten()
    coef = torch.stack([angles.cos(), -angles.sin()], dim=-1)
    return Taps(coef.to(dtype=dtype, device=device), slots.to(device), constant)


def _outer_sum(acc: Tensor, theta: Tensor) -> Tensor:
    """(F, T) + (f, t) -> (F f, T t): angles of the combined frequency and tap indices."""
    if acc.dim() == 0:
        return theta
    f, t = acc.shape
    g, u = theta.shape
    return (acc.reshape(f, 1, t, 1) + theta.reshape(1, g, 1, u)).reshape(f * g, t * u)


def expand(weight: Tensor, slot: Tensor, phases: int, groups: int) -> Tensor:
    """(M, Cg, *k) kernel -> (T, G, M / G, Cg * phases): each tap's matrix in its phase
    slot (input channel c, phase p is column c * phases + p)."""
    m, cg = weight.shape[:2]
    onehot = torch.nn.functional.one_hot(slot, phases).to(weight.dtype)  # (T, P)
    w = weight.reshape(m, cg, -1).permute(2, 0, 1)  # (T, M, Cg)
    return (w.unsqueeze(-1) * onehot[:, None, None, :]).reshape(
        -1, groups, m // groups, cg * phases)


def _interleaved(re: Tensor, im: Tensor) -> Tensor:
    """(T, X) tap blocks -> (2T, 2X) such that ``coef (F, 2T) @ it`` is (F, X, 2) with real
    part sum_t cos theta_t re_t and imaginary part -sum_t sin theta_t im_t."""
    zero = torch.zeros_like(re)
    blk = torch.stack([torch.stack([re, zero], dim=-1), torch.stack([zero, im], dim=-1)], 1)
    return blk.reshape(2 * re.shape[0], 2 * re.shape[1])  # (T, 2, X, 2) flattened


def _dft(t: Taps, blocks: Tensor, skew: bool = False) -> Tensor:
    """For every frequency, sum_t exp(-i theta_t(f)) blocks[t]: (T, ...) -> (F, ...); with
    ``skew`` (square blocks), (I + that sum - its conjugate transpose) / 2.

    Complex results come out of one real product, already interleaved (no pass over the
    (F, ...) complex result to assemble it, forward or backward)."""
    n_taps, shape = blocks.shape[0], blocks.shape[1:]
    if skew:
        re, im = (blocks - blocks.mT) / 2, (blocks + blocks.mT) / 2
        eye = torch.eye(shape[-1], dtype=blocks.dtype, device=blocks.device) / 2
        eye = eye.expand(*shape)
    else:
        re = im = blocks
        eye = torch.zeros((), dtype=blocks.dtype, device=blocks.device).expand(*shape)
    re, im = re.reshape(n_taps, -1), im.reshape(n_taps, -1)
    if t.constant:  # real: cos = 1, sin = 0 at the one frequency
        return (eye + re.sum(dim=0).reshape(shape)).unsqueeze(0)
    shift = torch.stack([eye.reshape(-1), torch.zeros_like(eye.reshape(-1))], dim=-1)
    out = torch.addmm(shift.reshape(-1), t.coef.reshape(t.coef.shape[0], -1),
                      _interleaved(re, im))
    return torch.view_as_complex(out.reshape(-1, *shape, 2))


def system(weight: Tensor, t: Taps, phases: int, groups: int
           ) -> tuple[Tensor, Tensor | None, bool]:
    """The Cayley system at every frequency, halved (so that the solve gives 2 A^{-1} x
    directly, the factor the transform needs) and with the off-square block negated (the
    sign the transform needs).

    Returns:
        ``(h, rest, tall)``: h (F, G, r, r) = (I + Wr - Wr^H + (V^H V or R R^H)) / 2;
        ``rest`` is -V (F, G, M/G - r, r) when W is tall, -R (F, G, r, C'/G - r) when it
        is wide, None when it is square; real when ``t.constant`` (then F = 1), complex
        otherwise.
    """
    wexp = expand(weight, t.slot, phases, groups)  # (T, G, Mg, Cg')
    mg, cgp = wexp.shape[-2:]
    r, tall = min(mg, cgp), mg >= cgp
    # built transposed, so that h comes out column-major, the layout LAPACK factors in
    # (the skew part of the transposed blocks is the transpose of the skew part)
    ht = _dft(t, wexp[..., :r, :r].mT, skew=True)
    blocks = wexp[..., r:, :] if tall else wexp[..., :, r:]
    if blocks.numel() == 0:
        return ht.mT, None, tall
    rest = _dft(t, -blocks)
    f = rest.shape[0] * groups
    flat = rest.reshape(f, *rest.shape[2:])
    gram = (flat.mT, flat.conj()) if tall else (flat.conj(), flat.mT)  # (V^H V)^T, (R R^H)^T
    ht = torch.baddbmm(ht.reshape(f, r, r), *gram, alpha=0.5).reshape(ht.shape)
    return ht.mT, rest, tall


def apply(h: Tensor, rest: Tensor | None, tall: bool, x: Tensor) -> Tensor:
    """cayley(W) x at every frequency, from :func:`system`, without forming cayley(W): one
    LU of ``h`` and a solve with the columns of x (F, G, C'/G, B) as right-hand sides.
    Returns (F, G, M/G, B).

    Tall W: z = 2 A^{-1} x = h^{-1} x, cayley(W) x = [z - x; -V z]. Wide W (through W^H),
    x = [x1; x2]: cayley(W) x = 2 A^{-1} (x1 - R x2) - x1."""
    if tall:
        z = torch.linalg.solve(h, x)
        y = z - x
        return y if rest is None else torch.cat([y, rest @ z], dim=-2)
    r = h.shape[-1]
    x1 = x[..., :r, :]
    return torch.linalg.solve(h, x1 + rest @ x[..., r:, :]) - x1


def operator(h: Tensor, rest: Tensor | None, tall: bool) -> Tensor:
    """cayley(W) itself, (F, G, M/G, C'/G): :func:`apply` to the identity."""
    cgp = h.shape[-1] if tall else h.shape[-1] + rest.shape[-1]  # type: ignore[union-attr]
    eye = torch.eye(cgp, dtype=h.dtype, device=h.device)
    return apply(h, rest, tall, eye.expand(*h.shape[:2], cgp, cgp))
