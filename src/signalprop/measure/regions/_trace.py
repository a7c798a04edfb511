"""Run a model on stacked rows (points and points + directions) and follow every
piecewise-linear call: fix its state from the value rows, or stop at the stage being split
and report where its units change state.

Stage k is the k-th piecewise-linear call of a forward (in execution order). On a piece
where stages 0..K-1 keep their states, ``trace(..., split_at=K)`` evaluates the model up
to stage K at one interior point per piece and returns stage K's boundaries as affine
functions (values and directional changes); ``split_at=None`` runs the whole model and,
with ``record=True``, returns every stage's state per piece.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
from torch import Tensor
from torch.overrides import TorchFunctionMode

from signalprop._forward import call_model, first_tensor, locate_failure
from signalprop.measure._nonfinite import NonFiniteError
from signalprop.measure._stochastic import first_random_module, rng_state, same_rng_state
from signalprop.measure.regions import _units
from signalprop.measure.regions._support import PIECEWISE, REFUSED, check_modules, supported_names

_DROPOUTS = ("dropout", "dropout_", "alpha_dropout", "feature_alpha_dropout", "dropout1d",
             "dropout2d", "dropout3d")


class _Stop(Exception):
    """Raised at the stage being split: the rest of the forward is not needed."""


@dataclass
class Stage:
    """One piecewise-linear call: its torch name, unit kind and units per example."""

    name: str
    kind: str
    units: int


class Tracer(TorchFunctionMode):
    """The function mode that runs a forward on ``rows`` stacked blocks of ``n // rows``
    rows, fixing the states of stages before ``split_at`` and stopping there."""

    def __init__(self, rows: int, n: int, split_at: int | None = None,
                 record: bool = False) -> None:
        super().__init__()
        self.rows, self.n, self.split_at, self.record = rows, n, split_at, record
        self.stage = 0
        self.boundary: _units.Boundary | None = None
        self.stages: list[Stage] = []
        self.states: list[Tensor] = []

    def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        kind = PIECEWISE.get(name)
        if kind is None and name == "__abs__":
            kind = "abs"
        if kind == "maximum" and len(args) > 1 and not self._stacked(args[0]) \
                and self._stacked(args[1]):
            args = (args[1], args[0], *args[2:])  # max and min are symmetric
        if kind is None or not self._stacked(args[0] if args else None):
            if name in REFUSED and any(self._stacked(a) for a in args):
                raise ValueError(f"the model calls {name}, which is not piecewise linear; "
                                 f"linear regions are counted for {supported_names()}")
            self._check_mode(name, args, kwargs)
            return func(*args, **kwargs)
        return self._unit(kind, name, func, args, kwargs)

    def _stacked(self, t: Any) -> bool:
        """Whether ``t`` is computed from the model's input: only the input requires
        grad (the copy's parameters do not), so weights quantized inside a forward are
        never taken for units."""
        return isinstance(t, Tensor) and t.requires_grad and t.dim() >= 1 \
            and t.shape[0] == self.n

    def _batched(self, t: Any) -> bool:
        """Same batch as the input (e.g. ``torch.zeros_like(x)``), input-derived or not."""
        return isinstance(t, Tensor) and t.dim() >= 1 and t.shape[0] == self.n

    def _check_mode(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if name == "batch_norm" and _units._arg(args, kwargs, 5, "training", False):
            raise ValueError("the model runs batch_norm with batch statistics (train mode); "
                             "call model.eval() or pass batchnorm='eval'")
        if name in _DROPOUTS and _units._arg(args, kwargs, 2, "training", True) \
                and _units._arg(args, kwargs, 1, "p", 0.5) > 0:
            raise ValueError(f"the model runs {name} in train mode (random); call model.eval()")

    def _unit(self, kind: str, name: str, func: Any, args: tuple[Any, ...],
              kwargs: dict[str, Any]) -> Any:
        z = args[0]
        Z = z.reshape(self.rows, self.n // self.rows, *z.shape[1:])
        if not bool(torch.isfinite(Z).all()):
            raise NonFiniteError(f"NaN/Inf in the input of {name} (piecewise-linear call "
                                 f"{self.stage}): regions are undefined there")
        extra = None
        if kind == "maximum":
            other = _units._arg(args, kwargs, 1, "other", None)
            if not isinstance(other, Tensor):
                raise ValueError(f"torch.{name} over a dimension (a reduction) is not "
                                 f"supported; linear regions are counted for "
                                 f"{supported_names()}")
            out, state, bnd = _units.maximum_unit(name, z, other, self._batched(other),
                                                    self.rows)
        elif kind == "clamp":
            if any(self._stacked(a) for a in [*args[1:], *kwargs.values()]):
                raise ValueError(f"{name} with input-dependent bounds is not supported")
            out, state, bnd = _units.clamp_unit(name, args, kwargs, Z)
        elif kind == "max_pool":
            out, state, bnd, extra = _units.pool_unit(name, args, kwargs, Z)
        elif kind == "step":
            out, state, bnd = _units.step_unit(name, func, args, kwargs, Z)
        else:
            out, state, bnd = _units.factor_unit(kind, name, args, kwargs, Z)
        index = self.stage
        self.stage += 1
        units = state[0].numel()
        if index == self.split_at:
            self.boundary = _units.Boundary(bnd.kind, bnd.g.detach(), bnd.dg.detach(), bnd.step)
            raise _Stop
        if self.record:
            self.stages.append(Stage(name.rstrip("_"), kind, units))
            self.states.append(state.reshape(state.shape[0], -1))
        out = out.reshape(self.n, *out.shape[2:])
        if name.endswith("_") or kwargs.get("inplace") or \
                (kind in ("relu", "leaky_relu", "clamp") and _inplace_arg(name, args)):
            z.copy_(out)
            out = z
        if extra is not None and (name.endswith("with_indices")
                                  or _units._arg(args, kwargs, 6, "return_indices", False)):
            return out, extra.repeat(self.rows, *([1] * (extra.dim() - 1)))
        return out


def _inplace_arg(name: str, args: tuple[Any, ...]) -> bool:
    """F.relu(x, True), F.leaky_relu(x, s, True), F.hardtanh(x, lo, hi, True)."""
    pos = {"relu": 1, "leaky_relu": 2, "hardtanh": 3}.get(name)
    return pos is not None and len(args) > pos and args[pos] is True


def prepare(model: nn.Module, batchnorm: str) -> nn.Module:
    """A float64 CPU copy of ``model`` (the caller's model is never changed).

    Raises:
        ValueError: a layer that is not piecewise linear, train-mode BatchNorm (unless
            ``batchnorm="eval"``) or Dropout, or a bad ``batchnorm``.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if batchnorm not in ("auto", "eval", "error"):
        raise ValueError(f"batchnorm must be 'auto', 'eval' or 'error', got {batchnorm!r}")
    check_modules(model, batchnorm)
    twin = copy.deepcopy(model).to("cpu", torch.float64)
    for p in twin.parameters():
        p.requires_grad_(False)
    if batchnorm == "eval":
        for m in twin.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
    return twin


def trace(model: nn.Module, points: Tensor, directions: Tensor, *, split_at: int | None = None,
          record: bool = False) -> tuple[Tracer, Tensor | None]:
    """Run ``model`` on ``points`` (P, *S) and ``points + directions[k]`` ((q, P, *S)).

    Returns:
        The tracer (its ``boundary`` is set when stage ``split_at`` was reached; with
        ``record``, its ``stages`` and per-stage ``states`` of shape (P, units)) and the
        output as (q + 1, P, out) (None when the forward stopped at ``split_at``).
    """
    P, rows = points.shape[0], directions.shape[0] + 1
    X = torch.cat([points.unsqueeze(0), points.unsqueeze(0) + directions]).reshape(
        rows * P, *points.shape[1:])
    tracer = Tracer(rows, rows * P, split_at, record)
    before = rng_state()
    try:
        # grad marks what depends on the input (a non-leaf, so in-place units work); no
        # backward ever runs
        with torch.enable_grad(), tracer:
            out = call_model(model, X.requires_grad_(True) * 1.0)
    except _Stop:
        return tracer, None
    except ValueError:
        raise
    except Exception as e:  # a failing forward: name the module
        raise locate_failure(model, points, e) from e
    if not same_rng_state(before, rng_state()):
        where = first_random_module(model, points) or "<model>"
        raise ValueError(f"module {where} draws random numbers in its forward (noise, masks): "
                         "the model is a different function at every call, so its regions "
                         "are not defined; call model.eval() or remove the random layer")
    y = first_tensor(out)
    if y is None or y.dim() == 0 or y.shape[0] != rows * P:
        raise ValueError("the model's output must be a tensor with the batch axis first; got "
                         f"{None if y is None else tuple(y.shape)}")
    return tracer, y.detach().reshape(rows, P, -1)
