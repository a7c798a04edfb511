"""A 2-D linear recurrence over a grid with Source, Transition and Mark gates, computed
in wavefront order (pLSTM; Poeppel et al., 2025)."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.autograd.forward_ad as fwAD
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

MODES = ("naive", "P", "D")
TRANSITIONS = ("rl", "ru", "dl", "du")  # "<outgoing edge><incoming edge>"


def skew(x: Tensor) -> Tensor:
    """(..., H, W) -> (..., H, H + W - 1) with ``out[..., i, k] = x[..., i, k - i]`` (0 where
    ``k - i`` is outside ``[0, W)``): antidiagonal ``k`` of the grid becomes column ``k``.

    Examples:
        >>> skew(torch.arange(1.0, 5.0).view(2, 2)).tolist()
        [[1.0, 2.0, 0.0], [0.0, 3.0, 4.0]]
    """
    h, w = x.shape[-2:]
    flat = F.pad(x, (0, h)).flatten(-2)  # rows of length W + H
    return flat[..., : h * (w + h - 1)].unflatten(-1, (h, w + h - 1))


def unskew(s: Tensor, width: int) -> Tensor:
    """Inverse of :func:`skew`: (..., H, H + W - 1) -> (..., H, W), ``out[i, j] = s[i, i + j]``.

    Examples:
        >>> x = torch.randn(3, 4)
        >>> torch.equal(unskew(skew(x), 4), x)
        True
    """
    h = s.shape[-2]
    flat = F.pad(F.pad(s, (0, 1)).flatten(-2), (0, h))  # rows of length W + H, then slack
    return flat.unflatten(-1, (h, width + h + 1))[..., :width]


def _needs_graph(x: Tensor, params: Any) -> bool:
    """Whether a forward must be differentiable: autograd will need it, or ``x`` carries a
    forward-mode tangent or a torch.func transform."""
    try:
        from torch._C._functorch import is_functorch_wrapped_tensor
    except ImportError:  # a torch without functorch: be safe, keep the graph
        return True
    if fwAD.unpack_dual(x).tangent is not None or is_functorch_wrapped_tensor(x):
        return True
    return torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in params))


class LinearRNN2d(nn.Module):
    """A linear recurrence over the grid of an image: the reference 2-D pLSTM cell.

    States live on the edges of the grid DAG (edges go right and down): ``R[i, j]`` on
    the edge leaving node ``(i, j)`` to the right, ``D[i, j]`` on the one leaving it
    downwards. With the incoming edges ``l = R[i, j-1]`` (from the left) and
    ``u = D[i-1, j]`` (from above), per channel::

        R[i, j] = T_rl l + T_ru u + S_r x[i, j]          (Transition and Source gates)
        D[i, j] = T_dl l + T_du u + S_d x[i, j]
        y[i, j] = M_l l + M_u u + direct x[i, j]          (Mark gates)

    The gates are per-channel parameters (input-independent), so the layer is linear in
    ``x`` and ``dy[i, j] / dx[0, 0]`` is the sum over paths of
    :func:`signalprop.theory.plstm_gain`. ``mode`` sets the transitions from the raw
    parameters ``a = tanh(theta)`` (each ``|a| < 1``, stable on a sequence):

    * ``"naive"``: ``T = a``. With ``C(i + j, i)`` paths into node ``(i, j)`` the gain
      grows like ``(|T_rl| + |T_dl|)^(i + j)``: it explodes with distance once the summed
      transitions out of an edge exceed one (e.g. all ``T = 0.6``), although each is stable
      in 1-D;
    * ``"P"`` (directed propagation): for each incoming edge the pair of transitions to
      the two outgoing edges is scaled so that ``|T_rl| + |T_dl| <= 1`` and
      ``|T_ru| + |T_du| <= 1``; the summed absolute gain across any cut of the grid
      then never grows, and every node's gain is at most ``(|S_r| + |S_d|) max |M|``;
    * ``"D"`` (diffusive distribution): ``T_dl = 0`` (a right-going edge never turns
      down), which makes the line graph a multitree: one path between any two edges, each
      transition ``|T| < 1``, so the same bound holds.

    The forward visits the ``H + W - 1`` antidiagonals in order, all nodes of one in
    parallel (every predecessor of a node lies on the previous antidiagonal): work
    ``O(N C H W)``, ``H + W - 1`` sequential steps of ``O(N C H)`` each.
    :meth:`forward_loop` is the naive double loop over nodes (a reference for tests).

    Args:
        channels: C; input and output are (N, C, H, W).
        mode: "naive", "P" or "D".
        transition: initial value of every raw transition ``a`` (in (-1, 1)).
        source: initial ``S_r`` and ``S_d``.
        mark: initial ``M_l`` and ``M_u``.
        direct: initial ``direct``.
        device: as for torch layers.
        dtype: as for torch layers.

    Examples:
        >>> rnn = LinearRNN2d(2, mode="P", transition=0.6)
        >>> x = torch.randn(1, 2, 5, 6)
        >>> torch.allclose(rnn(x), rnn.forward_loop(x), atol=1e-6)
        True
        >>> [round(v[0].item(), 2) for v in rnn.transitions().values()]   # rl, ru, dl, du
        [0.5, 0.5, 0.5, 0.5]

    References:
        Poeppel, Freinschlag, Schmied, Lin & Hochreiter, "pLSTM: parallelizable Linear
        Source Transition Mark networks" (arXiv 2506.11997, 2025); Graves, Fernandez &
        Schmidhuber, "Multi-dimensional recurrent neural networks" (ICANN 2007).
    """

    def __init__(
        self,
        channels: int,
        mode: str = "naive",
        *,
        transition: float = 0.5,
        source: float = 1.0,
        mark: float = 1.0,
        direct: float = 1.0,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(map(repr, MODES))}, got {mode!r}")
        if not -1.0 < transition < 1.0:
            raise ValueError(f"transition must be in (-1, 1) (tanh of a parameter), "
                             f"got {transition!r}")
        kw = {"device": device, "dtype": dtype}
        self.channels, self.mode = channels, mode
        self.init = {"transition": float(transition), "source": float(source),
                     "mark": float(mark), "direct": float(direct)}
        self.theta = nn.Parameter(torch.empty(4, channels, **kw))  # rl, ru, dl, du
        self.source = nn.Parameter(torch.empty(2, channels, **kw))  # S_r, S_d
        self.mark = nn.Parameter(torch.empty(2, channels, **kw))  # M_l, M_u
        self.direct = nn.Parameter(torch.empty(channels, **kw))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.theta.fill_(math.atanh(self.init["transition"]))
            self.source.fill_(self.init["source"])
            self.mark.fill_(self.init["mark"])
            self.direct.fill_(self.init["direct"])

    def transitions(self) -> dict[str, Tensor]:
        """The effective transitions ``{"rl", "ru", "dl", "du"} -> (C,)`` of this mode."""
        a = torch.tanh(self.theta)
        rl, ru, dl, du = a[0], a[1], a[2], a[3]
        if self.mode == "P":
            left = torch.clamp(rl.abs() + dl.abs(), min=1.0)  # out of the edge from the left
            up = torch.clamp(ru.abs() + du.abs(), min=1.0)  # out of the edge from above
            rl, dl, ru, du = rl / left, dl / left, ru / up, du / up
        elif self.mode == "D":
            dl = torch.zeros_like(dl)
        return {"rl": rl, "ru": ru, "dl": dl, "du": du}

    def gain_bound(self) -> Tensor | None:
        """Per channel, the bound ``(|S_r| + |S_d|) max(|M_l|, |M_u|)`` on the gain from any
        node to any later one (P and D modes; None for "naive", which has none)."""
        if self.mode == "naive":
            return None
        return (self.source.abs().sum(0) * self.mark.abs().max(0).values).detach()

    def _check(self, x: Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f"LinearRNN2d({self.channels}) takes (N, {self.channels}, H, W), "
                             f"got shape {tuple(x.shape)}")

    def _gates(self, c: int) -> tuple[dict[str, Tensor], Tensor, Tensor, Tensor, Tensor]:
        t = {k: v.view(1, c, 1) for k, v in self.transitions().items()}
        s_r, s_d = self.source[0].view(1, c, 1), self.source[1].view(1, c, 1)
        m_l, m_u = self.mark[0].view(1, c, 1), self.mark[1].view(1, c, 1)
        return t, s_r, s_d, m_l, m_u

    def forward(self, x: Tensor) -> Tensor:
        self._check(x)
        if not _needs_graph(x, self.parameters()):
            with torch.no_grad():
                return self._forward_buffers(x)
        n, c, h, w = x.shape
        t, s_r, s_d, m_l, m_u = self._gates(c)
        # (K, N, C, H): step k reads antidiagonal k as one contiguous block
        xs = skew(x).permute(3, 0, 1, 2).contiguous()
        src_r, src_d = s_r * xs, s_d * xs
        right = down = x.new_zeros(n, c, h)  # R and D on the previous antidiagonal, by row
        lefts, aboves = [], []
        for k in range(h + w - 1):
            left = right  # R[i, j - 1]: same row, previous antidiagonal
            above = F.pad(down, (1, 0))[..., :h]  # D[i - 1, j]: the row above
            right = torch.addcmul(torch.addcmul(src_r[k], t["rl"], left), t["ru"], above)
            down = torch.addcmul(torch.addcmul(src_d[k], t["dl"], left), t["du"], above)
            lefts.append(left)
            aboves.append(above)
        # the marks read the incoming edges of every node at once
        y = torch.addcmul(torch.addcmul(self.direct.view(1, c, 1) * xs, m_l,
                                        torch.stack(lefts)), m_u, torch.stack(aboves))
        return unskew(y.permute(1, 2, 3, 0), w)

    def _forward_buffers(self, x: Tensor) -> Tensor:
        """:meth:`forward` without an autograd graph: the states are written in place into
        preallocated buffers (``out=``), which saves a copy and an allocation per step."""
        n, c, h, w = x.shape
        steps = h + w - 1
        t, s_r, s_d, m_l, m_u = self._gates(c)
        t = {k: v.expand(n, c, h).contiguous() for k, v in t.items()}
        xs = skew(x).permute(3, 0, 1, 2).contiguous()
        right = x.new_zeros(steps + 1, n, c, h)  # right[k + 1]: R on antidiagonal k
        down = x.new_zeros(steps + 1, n, c, h + 1)  # down[k + 1, ..., i + 1]: D on k, row i
        src_r, src_d = s_r * xs, s_d * xs
        for k in range(steps):
            left, above = right[k], down[k, ..., :h]
            r, d = right[k + 1], down[k + 1, ..., 1:]
            torch.addcmul(src_r[k], t["rl"], left, out=r)
            r.addcmul_(t["ru"], above)
            torch.addcmul(src_d[k], t["dl"], left, out=d)
            d.addcmul_(t["du"], above)
        y = xs.mul_(self.direct.view(1, c, 1))
        y.addcmul_(m_l, right[:-1]).addcmul_(m_u, down[:-1, ..., :h])
        return unskew(y.permute(1, 2, 3, 0), w)

    def forward_loop(self, x: Tensor) -> Tensor:
        """The same recurrence as a naive double loop over the nodes (slow; a reference)."""
        self._check(x)
        _, _, h, w = x.shape
        t = self.transitions()
        zero = x.new_zeros(x.shape[:2])
        right: dict[tuple[int, int], Tensor] = {}
        down: dict[tuple[int, int], Tensor] = {}
        out = [[zero] * w for _ in range(h)]
        for i in range(h):
            for j in range(w):
                u = x[:, :, i, j]
                left = right.get((i, j - 1), zero)
                above = down.get((i - 1, j), zero)
                right[i, j] = t["rl"] * left + t["ru"] * above + self.source[0] * u
                down[i, j] = t["dl"] * left + t["du"] * above + self.source[1] * u
                out[i][j] = self.mark[0] * left + self.mark[1] * above + self.direct * u
        return torch.stack([torch.stack(row, dim=-1) for row in out], dim=-2)

    def extra_repr(self) -> str:
        return f"{self.channels}, mode={self.mode!r}, transition={self.init['transition']:g}"
