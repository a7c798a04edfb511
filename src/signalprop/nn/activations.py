"""Torch activations by name, and :class:`GammaAct` = activation * gamma.

Names are those of :mod:`signalprop.theory.activations`, so the gain a layer applies is
the one the theory computes for the same function.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from signalprop import theory

TensorFn = Callable[[Tensor], Tensor]

# name -> builder(params) -> tensor function. Parameters mirror the theory registry.
_TORCH_ACTS: dict[str, Callable[..., TensorFn]] = {
    "relu": lambda: F.relu,
    "leaky_relu": lambda negative_slope=0.01: functools.partial(
        F.leaky_relu, negative_slope=negative_slope),
    "abs": lambda: torch.abs,
    "identity": lambda: _identity,
    "gelu": lambda: F.gelu,
    "silu": lambda: F.silu,
    "tanh": lambda: torch.tanh,
    "erf": lambda: torch.erf,
    "sigmoid": lambda: torch.sigmoid,
    "elu": lambda alpha=1.0: functools.partial(F.elu, alpha=alpha),
    "selu": lambda: F.selu,
    "celu": lambda alpha=1.0: functools.partial(F.celu, alpha=alpha),
    "softplus": lambda beta=1.0: functools.partial(F.softplus, beta=beta),
    "mish": lambda: F.mish,
    "relu6": lambda: F.relu6,
}


def _identity(x: Tensor) -> Tensor:
    return x


def torch_activation(name: str, **params: float) -> TensorFn:
    """The torch function for a registered activation name.

    Examples:
        >>> torch_activation("leaky_relu", negative_slope=0.2)(torch.tensor([-1.0]))
        tensor([-0.2000])
    """
    act = theory.get_activation(name, **params)  # validates the name and parameters
    return _TORCH_ACTS[act.name](**act.params)


def _numpy_view(fn: TensorFn) -> Callable[[np.ndarray], np.ndarray]:
    def f(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return fn(torch.as_tensor(np.asarray(x, dtype=np.float64))).numpy()

    return f


class GammaAct(nn.Module):
    """``activation(x) * gamma`` with gamma = 1 / std(activation(z)), z ~ N(0, 1).

    For unit-Gaussian input the output has unit variance (its mean is not zero for
    ReLU-like activations; Scaled WS in the next layer removes it).

    Args:
        activation: a name from ``signalprop.theory.activation_names()`` or a torch
            callable (its gamma is then computed by quadrature through NumPy).
        gamma: override the computed gain.
        **params: activation parameters (``negative_slope``, ``alpha``, ``beta``).

    Examples:
        >>> act = GammaAct("relu")
        >>> round(act.gamma, 4)
        1.7129
        >>> y = act(torch.randn(100_000))
        >>> abs(y.var().item() - 1) < 0.02
        True

    References:
        Brock, De & Smith, ICLR 2021 (arXiv 2101.08692), section 4.
    """

    def __init__(
        self, activation: str | TensorFn = "relu", gamma: float | None = None, **params: float
    ) -> None:
        super().__init__()
        if isinstance(activation, str):
            self.fn = torch_activation(activation, **params)
            self.name = theory.get_activation(activation, **params).name
            self.params = dict(params)
            g = theory.gamma(activation, **params) if gamma is None else gamma
        elif callable(activation):
            if params:
                raise ValueError(f"parameters {sorted(params)} given with a callable activation")
            self.fn = activation
            self.name = getattr(activation, "__name__", type(activation).__name__)
            self.params = {}
            if gamma is None:
                with warnings.catch_warnings():
                    # gamma needs no derivatives: the finite-difference warning is moot here.
                    warnings.simplefilter("ignore", UserWarning)
                    g = theory.gamma(_numpy_view(activation))
            else:
                g = gamma
        else:
            raise ValueError(
                f"activation must be a name or a callable, got {type(activation).__name__}"
            )
        self.gamma = float(g)

    def forward(self, x: Tensor) -> Tensor:
        if self.fn is _identity:
            return x if self.gamma == 1.0 else x * self.gamma
        # gamma = 1 (plain activations from make_activation): no extra pass over x
        return self.fn(x) if self.gamma == 1.0 else self.fn(x) * self.gamma

    def extra_repr(self) -> str:
        p = "".join(f", {k}={v}" for k, v in self.params.items())
        return f"{self.name!r}{p}, gamma={self.gamma:.6g}"


def make_activation(activation: str | TensorFn | nn.Module, **params: Any) -> nn.Module:
    """A plain (gain-free) activation module for a name, callable or module.

    Examples:
        >>> make_activation("tanh")
        GammaAct('tanh', gamma=1)
        >>> make_activation(nn.ReLU())  # a module is used as it is
        ReLU()
    """
    if isinstance(activation, nn.Module):
        return activation
    if isinstance(activation, str):
        return GammaAct(activation, gamma=1.0, **params)
    return GammaAct(activation, gamma=1.0)
