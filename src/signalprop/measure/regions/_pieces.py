"""Shared by segments and slices: pattern ids, and the final pass that reads every piece's
states, output value and derivatives (and checks that the model is affine there)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch import Tensor

from signalprop._forward import call_model, first_tensor
from signalprop.measure.regions._trace import Stage, trace

_CODE = 1 << 20  # states enter the ids modulo this
_PRIME = (1 << 31) - 1


class NotAffineError(RuntimeError):
    """The model is not affine on a piece: it computes a nonlinearity the counter cannot
    see (for example ``x * x``, or a custom autograd function).

    Examples:
        >>> import torch.nn as nn
        >>> from signalprop.measure import linear_regions
        >>> class Square(nn.Module):
        ...     def forward(self, x):
        ...         return x * x
        >>> try:
        ...     linear_regions(Square(), torch.zeros(1, 1), end=torch.ones(1, 1))
        ... except NotAffineError as e:
        ...     print(str(e)[:40])
        the model is not affine on segment 0, t
    """


def chunks(n: int, size: int) -> Iterator[slice]:
    """Consecutive slices of ``range(n)`` of at most ``size`` items."""
    for s in range(0, n, size):
        yield slice(s, min(n, s + size))


def _weights(stage: int, units: int, salt: int) -> Tensor:
    gen = torch.Generator().manual_seed(1_000_003 * stage + 7919 * units + salt)
    return torch.randint(1, _CODE, (units,), generator=gen, dtype=torch.int64)


def pattern_ids(states: list[Tensor]) -> list[str]:
    """One 62-bit id per row from every stage's states (P, units): two sums of
    state * random weight modulo 2^31 - 1, as 16 hex digits. Equal patterns get equal ids.

    Examples:
        >>> a = torch.tensor([[1, 0, 1]])
        >>> pattern_ids([a]) == pattern_ids([a.clone()]), pattern_ids([a]) == pattern_ids([1 - a])
        (True, False)
    """
    if not states:
        return []
    P = states[0].shape[0]
    h = [torch.zeros(P, dtype=torch.int64), torch.zeros(P, dtype=torch.int64)]
    for k, s in enumerate(states):
        code = torch.remainder(s.to(torch.int64), _CODE) + 1  # (P, units), < 2^20 + 1
        for salt in (0, 1):
            w = _weights(k, s.shape[1], salt)
            h[salt] = torch.remainder(h[salt] * 31 + torch.remainder(code @ w, _PRIME), _PRIME)
    ids = h[0] * (1 << 31) + h[1]
    return [f"{int(v):016x}" for v in ids]


@dataclass
class Final:
    """What the last pass reads from each piece (rows in piece order).

    Attributes:
        values: (P, out) the output at the reference point.
        derivs: (q, P, out) its change along each direction.
        changed: (P,) whether piece i's states differ from piece i - 1's (row 0: True).
        jump: (P,) whether a step unit's state differs from piece i - 1's.
        ids: pattern id per piece.
        stages: the piecewise-linear calls of one forward.
    """

    values: Tensor
    derivs: Tensor
    changed: Tensor
    jump: Tensor
    ids: list[str]
    stages: list[Stage]


def final_pass(model: nn.Module, n: int, points: Callable[[slice], tuple[Tensor, Tensor]],
               chunk: int) -> Final:
    """Run the model on every piece's reference point with all states fixed.

    Args:
        model: the float64 model.
        n: number of pieces.
        points: ``points(slice)`` -> (reference points (p, *S), directions (q, p, *S)).
        chunk: pieces per forward.
    """
    values, derivs, changed, jump, ids = [], [], [], [], []
    stages: list[Stage] = []
    last: list[Tensor] | None = None
    for sl in chunks(n, chunk):
        pts, dirs = points(sl)
        tracer, out = trace(model, pts, dirs, record=True)
        assert out is not None
        values.append(out[0])
        derivs.append(out[1:] - out[0])
        stages = tracer.stages
        states = tracer.states
        prev = [torch.cat([s[:1] if last is None else last[k], s[:-1]]) for k, s in
                enumerate(states)]
        diff = [(s != p).any(1) for s, p in zip(states, prev)]
        first = torch.zeros(pts.shape[0], dtype=torch.bool)
        if last is None:
            first[0] = True
        changed.append(first | _any(diff, pts.shape[0]))
        steps = [d for d, st in zip(diff, stages) if st.kind == "step"]
        jump.append(_any(steps, pts.shape[0]) & ~first)
        ids += pattern_ids(states) if states else ["0" * 16] * pts.shape[0]
        last = [s[-1:] for s in states]
    return Final(torch.cat(values), torch.cat(derivs, 1), torch.cat(changed), torch.cat(jump),
                 ids, stages)


def _any(flags: list[Tensor], n: int) -> Tensor:
    out = torch.zeros(n, dtype=torch.bool)
    for f in flags:
        out |= f
    return out


def check_affine(model: nn.Module, n: int,
                 probe: Callable[[slice], tuple[Tensor, Tensor, Tensor]],
                 where: Callable[[int], str], chunk: int) -> None:
    """Compare a plain forward at each piece's probe point with the affine prediction.

    Args:
        model: the float64 model.
        n: number of pieces.
        probe: ``probe(slice)`` -> (points (p, *S), predicted outputs (p, out), scale
            (p, out): the size of the numbers involved).
        where: piece index -> its description for the error.
        chunk: pieces per forward.

    Raises:
        NotAffineError: the first piece where they differ by more than 1e-6 * (1 + scale).
    """
    for sl in chunks(n, chunk):
        pts, predicted, scale = probe(sl)
        with torch.no_grad():
            y = first_tensor(call_model(model, pts))
        assert y is not None
        err = (y.reshape(y.shape[0], -1) - predicted).abs()
        bad = (err > 1e-6 * (1 + scale)).any(1)
        if bad.any():
            i = int(sl.start + bad.nonzero()[0, 0])
            raise NotAffineError(
                f"the model is not affine on {where(i)}: it computes a nonlinearity the "
                "region counter cannot follow (such as x * x, a custom autograd function, "
                "or a comparison); count only models built from the supported layers")
