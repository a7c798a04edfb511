"""sign(x) in the forward pass, a surrogate derivative in the backward pass.

The estimators and their formulas are defined once, in
:mod:`signalprop.theory.quantized` (``ESTIMATORS``: ste, clipped, tanh, reste); this
module applies them to tensors. Forward: sign(x) with sign(+0.0) = +1 (copysign), so the
output is exactly +-1. Backward: dL/dx = g'(x) dL/dy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from signalprop.theory.quantized import check_estimator, estimator_params, reste_o


def _derivative(x: Tensor, name: str, p: Mapping[str, float]) -> Tensor:
    """g'(x) of estimator ``name`` with resolved parameters ``p`` (see the theory table)."""
    if name == "clipped":
        return (x.abs() <= p["limit"]).to(x.dtype)
    if name == "tanh":
        th = torch.tanh(p["beta"] * x)
        return p["beta"] * (1.0 - th * th)
    o, t, m = p["o"], p["t"], p["m"]
    ax = x.abs()
    if o == 1.0:  # the power part is flat: the clipped STE with limit t
        return (ax <= t).to(x.dtype)
    power = ax.clamp_min(m).pow(1.0 / o - 1.0).div_(o)
    inner = math.pow(m, 1.0 / o - 1.0)
    return power.masked_fill_(ax <= m, inner).masked_fill_(ax > t, 0.0)


def hard_sign(x: Tensor) -> Tensor:
    """sign(x) in {-1, +1}: copysign(1, x), so sign(+0.0) = +1 (and sign(-0.0) = -1).

    One kernel; a comparison-and-select is several times slower on CPU.
    """
    return torch.copysign(torch.ones((), dtype=x.dtype, device=x.device), x)


class _SignSurrogate(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, name: str, params: dict[str, float]) -> Tensor:
        ctx.name, ctx.params = name, params
        if name != "ste":
            ctx.save_for_backward(x)
        return hard_sign(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, None, None]:
        if ctx.name == "ste":
            return grad, None, None
        (x,) = ctx.saved_tensors
        return grad * _derivative(x, ctx.name, ctx.params), None, None


def resolve(estimator: str, params: Mapping[str, Any] | None) -> dict[str, float]:
    """Validated float parameters (schedules are read now) with defaults filled in."""
    return estimator_params(estimator, **dict(params or {}))


def sign_surrogate(x: Tensor, estimator: str = "ste", **params: Any) -> Tensor:
    """sign(x) (sign(+0.0) = +1) whose backward pass is the estimator's g'(x) dL/dy.

    Estimators (``signalprop.theory.quantized.ESTIMATORS``): ``"ste"`` (identity),
    ``"clipped"`` (1 on |x| <= limit), ``"tanh"`` (beta (1 - tanh(beta x)^2)),
    ``"reste"`` (the rectified power surrogate sign(x)|x|^(1/o): slope m^(1/o - 1) below
    m, (1/o)|x|^(1/o - 1) up to t, 0 beyond). A parameter may be a schedule such as
    :class:`ReSTESchedule` (read at every call).

    Args:
        x: any tensor.
        estimator: the estimator's name.
        **params: its parameters (``limit``; ``beta``; ``o``, ``t``, ``m``).

    Returns:
        A tensor of +-1 of ``x``'s shape and dtype.

    Raises:
        ValueError: unknown estimator (the valid ones are listed) or parameter.

    Examples:
        >>> x = torch.tensor([-2.0, 0.5, 0.0], requires_grad=True)
        >>> y = sign_surrogate(x, "clipped")
        >>> y.tolist()
        [-1.0, 1.0, 1.0]
        >>> y.sum().backward(); x.grad.tolist()
        [0.0, 1.0, 1.0]

    References:
        Bengio, Leonard & Courville, "Estimating or propagating gradients through stochastic
        neurons" (2013); Wu et al., "Estimator meets equilibrium perspective: a rectified
        straight through estimator for binary neural networks training", ICCV 2023.
    """
    name = check_estimator(estimator)
    return _SignSurrogate.apply(x, name, resolve(name, params))


class ReSTESchedule:
    """ReSTE's annealing of o from ``o_start`` to ``o_end``: o = o_start + (1 - cos(pi p / 2))
    (o_end - o_start), p = step / total_steps (clipped at 1).

    Pass it as the ``o`` parameter (``estimator_params={"o": schedule}``): layers read
    ``float(schedule)`` at every forward; call :meth:`step` once per training step (or
    :meth:`set_progress`). The reference code steps it once per epoch.

    Examples:
        >>> s = ReSTESchedule(total_steps=4)
        >>> float(s)
        1.0
        >>> for _ in range(4):
        ...     s.step()
        >>> float(s), s.state_dict()["steps"]
        (3.0, 4)
    """

    def __init__(self, total_steps: int, o_end: float = 3.0, o_start: float = 1.0) -> None:
        if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1:
            raise ValueError(f"total_steps must be an integer >= 1, got {total_steps!r}")
        reste_o(0.0, o_end, o_start)  # checks o_start, o_end >= 1
        self.total_steps, self.o_end, self.o_start = total_steps, float(o_end), float(o_start)
        self.steps = 0

    @property
    def progress(self) -> float:
        return min(1.0, self.steps / self.total_steps)

    @property
    def o(self) -> float:
        """The current o."""
        return reste_o(self.progress, self.o_end, self.o_start)

    def __float__(self) -> float:
        return self.o

    def step(self) -> None:
        """Advance by one step."""
        self.steps += 1

    def set_progress(self, progress: float) -> None:
        """Jump to ``progress`` in [0, 1] of the schedule."""
        if not 0.0 <= float(progress) <= 1.0:
            raise ValueError(f"progress must be in [0, 1], got {progress!r}")
        self.steps = round(float(progress) * self.total_steps)

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "total_steps": self.total_steps, "o_end": self.o_end,
                "o_start": self.o_start}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.__init__(int(state["total_steps"]), state["o_end"], state["o_start"])  # type: ignore[misc]
        self.steps = int(state["steps"])

    def __repr__(self) -> str:
        return (f"ReSTESchedule(o={self.o:.4g}, steps={self.steps}/{self.total_steps}, "
                f"o_start={self.o_start:g}, o_end={self.o_end:g})")
