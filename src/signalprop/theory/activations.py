"""Activation registry for the theory layer: NumPy functions with exact derivatives.

Every entry carries phi, phi' and phi'' as vectorised NumPy functions and the points where
phi or a derivative is not smooth (``kinks``); quadrature splits its range there so
integrals stay exact at ReLU-like corners.

Examples:
    >>> act = get_activation("leaky_relu", negative_slope=0.2)
    >>> float(act.fn(np.array(-1.0)))
    -0.2
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy.special import erf, expit

ArrayFn = Callable[[np.ndarray], np.ndarray]

# SELU constants (Klambauer et al. 2017), to the precision the paper gives them.
SELU_LAMBDA = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717

_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@dataclass(frozen=True)
class Activation:
    """An activation function with its first two derivatives.

    Attributes:
        name: registry name (or the callable's name for user functions).
        fn, d1, d2: vectorised NumPy callables phi, phi', phi''.
        kinks: points where phi, phi' or phi'' is discontinuous (quadrature splits there).
        params: keyword parameters the activation was built with.
        exact_derivatives: False for user callables, whose derivatives are finite differences.
        slopes: ``(a_plus, a_minus)`` when phi is positively homogeneous (phi(u) = a_plus u
            for u > 0, a_minus u for u < 0): ReLU, leaky ReLU, abs, identity. Gaussian
            expectations then have arc-cosine closed forms.
        closed_form: name of a closed-form family for Gaussian expectations
            (``"homogeneous"``, ``"erf"``) or ``""`` for quadrature.
        scale: where phi's features lie in u (quadrature refines panels around |u| ~ scale).
        registered: True when built by :func:`get_activation` from a registry name (it is
            then fully described by ``name`` and ``params``, so results can be cached).

    Examples:
        >>> get_activation("relu").slopes
        (1.0, 0.0)
        >>> square = Activation("square", lambda u: u**2, lambda u: 2 * u, lambda u: 2 + 0 * u)
        >>> float(square.d1(np.array(3.0)))
        6.0
    """

    name: str
    fn: ArrayFn
    d1: ArrayFn
    d2: ArrayFn
    kinks: tuple[float, ...] = ()
    params: Mapping[str, float] = field(default_factory=dict)
    exact_derivatives: bool = True
    slopes: tuple[float, float] | None = None
    closed_form: str = ""
    scale: float = 1.0
    registered: bool = False

    def __call__(self, x: np.ndarray | float) -> np.ndarray:
        return self.fn(np.asarray(x, dtype=float))


def _arr(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=float)


def _relu() -> Activation:
    return Activation(
        "relu",
        lambda x: np.maximum(_arr(x), 0.0),
        lambda x: (_arr(x) > 0).astype(float),
        lambda x: np.zeros_like(_arr(x)),
        kinks=(0.0,),
        slopes=(1.0, 0.0),
        closed_form="homogeneous",
    )


def _leaky_relu(negative_slope: float = 0.01) -> Activation:
    a = float(negative_slope)
    return Activation(
        "leaky_relu",
        lambda x: np.where(_arr(x) > 0, _arr(x), a * _arr(x)),
        lambda x: np.where(_arr(x) > 0, 1.0, a),
        lambda x: np.zeros_like(_arr(x)),
        kinks=(0.0,),
        params={"negative_slope": a},
        slopes=(1.0, a),
        closed_form="homogeneous",
    )


def _abs() -> Activation:
    return Activation(
        "abs",
        lambda x: np.abs(_arr(x)),
        lambda x: np.sign(_arr(x)),
        lambda x: np.zeros_like(_arr(x)),
        kinks=(0.0,),
        slopes=(1.0, -1.0),
        closed_form="homogeneous",
    )


def _identity() -> Activation:
    return Activation(
        "identity",
        lambda x: _arr(x).copy(),
        lambda x: np.ones_like(_arr(x)),
        lambda x: np.zeros_like(_arr(x)),
        slopes=(1.0, 1.0),
        closed_form="homogeneous",
    )


def _phi(x: np.ndarray) -> np.ndarray:
    return _INV_SQRT_2PI * np.exp(-0.5 * x * x)


def _Phi(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + erf(x / _SQRT2))


def _gelu() -> Activation:
    # Exact (erf) GELU, torch's default ``approximate='none'``.
    return Activation(
        "gelu",
        lambda x: _arr(x) * _Phi(_arr(x)),
        lambda x: _Phi(_arr(x)) + _arr(x) * _phi(_arr(x)),
        lambda x: _phi(_arr(x)) * (2.0 - _arr(x) ** 2),
    )


def _silu() -> Activation:
    def d1(x: Any) -> np.ndarray:
        x = _arr(x)
        s = expit(x)
        return s + x * s * (1.0 - s)

    def d2(x: Any) -> np.ndarray:
        x = _arr(x)
        s = expit(x)
        return s * (1.0 - s) * (2.0 + x * (1.0 - 2.0 * s))

    return Activation("silu", lambda x: _arr(x) * expit(_arr(x)), d1, d2)


def _tanh() -> Activation:
    def d2(x: Any) -> np.ndarray:
        t = np.tanh(_arr(x))
        return -2.0 * t * (1.0 - t * t)

    return Activation(
        "tanh", lambda x: np.tanh(_arr(x)), lambda x: 1.0 - np.tanh(_arr(x)) ** 2, d2
    )


def _erf() -> Activation:
    c = 2.0 / math.sqrt(math.pi)
    return Activation(
        "erf",
        lambda x: erf(_arr(x)),
        lambda x: c * np.exp(-_arr(x) ** 2),
        lambda x: -2.0 * c * _arr(x) * np.exp(-_arr(x) ** 2),
        closed_form="erf",
    )


def _sigmoid() -> Activation:
    def d1(x: Any) -> np.ndarray:
        s = expit(_arr(x))
        return s * (1.0 - s)

    def d2(x: Any) -> np.ndarray:
        s = expit(_arr(x))
        return s * (1.0 - s) * (1.0 - 2.0 * s)

    return Activation("sigmoid", lambda x: expit(_arr(x)), d1, d2)


def _elu_like(name: str, alpha: float, scale: float, celu: bool) -> Activation:
    # ELU: alpha*(e^x - 1) for x <= 0; CELU: alpha*(e^(x/alpha) - 1). Both times `scale`.
    k = 1.0 / alpha if celu else 1.0

    def neg(x: np.ndarray) -> np.ndarray:
        return alpha * np.expm1(k * np.minimum(x, 0.0))

    def fn(x: Any) -> np.ndarray:
        x = _arr(x)
        return scale * np.where(x > 0, x, neg(x))

    def d1(x: Any) -> np.ndarray:
        x = _arr(x)
        return scale * np.where(x > 0, 1.0, alpha * k * np.exp(k * np.minimum(x, 0.0)))

    def d2(x: Any) -> np.ndarray:
        x = _arr(x)
        return scale * np.where(x > 0, 0.0, alpha * k * k * np.exp(k * np.minimum(x, 0.0)))

    params = {"alpha": alpha} if name != "selu" else {}
    # CELU's exponential decays over |u| ~ alpha.
    feature = abs(alpha) if celu else 1.0
    return Activation(name, fn, d1, d2, kinks=(0.0,), params=params, scale=feature)


def _elu(alpha: float = 1.0) -> Activation:
    return _elu_like("elu", float(alpha), 1.0, celu=False)


def _celu(alpha: float = 1.0) -> Activation:
    if alpha == 0:
        raise ValueError("celu: alpha must be non-zero, got 0")
    return _elu_like("celu", float(alpha), 1.0, celu=True)


def _selu() -> Activation:
    return _elu_like("selu", SELU_ALPHA, SELU_LAMBDA, celu=False)


def _softplus(beta: float = 1.0) -> Activation:
    # NOTE: torch switches to the identity above beta*x > 20 (threshold); the difference
    # there is below 2e-9 and ignored here.
    b = float(beta)
    if b == 0 or not math.isfinite(b):
        raise ValueError(f"softplus: beta must be finite and non-zero, got {beta!r}")

    def d2(x: Any) -> np.ndarray:
        s = expit(b * _arr(x))
        return b * s * (1.0 - s)

    return Activation(
        "softplus",
        lambda x: np.logaddexp(0.0, b * _arr(x)) / b,
        lambda x: expit(b * _arr(x)),
        d2,
        params={"beta": b},
        scale=1.0 / abs(b),
    )


def _mish() -> Activation:
    def parts(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.tanh(np.logaddexp(0.0, x)), expit(x)

    def d1(x: Any) -> np.ndarray:
        x = _arr(x)
        t, s = parts(x)
        return t + x * (1.0 - t * t) * s

    def d2(x: Any) -> np.ndarray:
        x = _arr(x)
        t, s = parts(x)
        return (1.0 - t * t) * s * (2.0 + x * (1.0 - s - 2.0 * t * s))

    return Activation("mish", lambda x: _arr(x) * parts(_arr(x))[0], d1, d2)


def _relu6() -> Activation:
    return Activation(
        "relu6",
        lambda x: np.clip(_arr(x), 0.0, 6.0),
        lambda x: ((_arr(x) > 0) & (_arr(x) < 6)).astype(float),
        lambda x: np.zeros_like(_arr(x)),
        kinks=(0.0, 6.0),
    )


_FACTORIES: dict[str, Callable[..., Activation]] = {
    "relu": _relu,
    "leaky_relu": _leaky_relu,
    "abs": _abs,
    "identity": _identity,
    "gelu": _gelu,
    "silu": _silu,
    "tanh": _tanh,
    "erf": _erf,
    "sigmoid": _sigmoid,
    "elu": _elu,
    "selu": _selu,
    "celu": _celu,
    "softplus": _softplus,
    "mish": _mish,
    "relu6": _relu6,
}
_ALIASES = {"swish": "silu", "linear": "identity"}


def activation_names() -> list[str]:
    """All registered activation names, aliases included.

    Examples:
        >>> "tanh" in activation_names() and "swish" in activation_names()  # swish: an alias
        True
    """
    return sorted([*_FACTORIES, *_ALIASES])


def _numeric_derivatives(f: Callable[[Any], Any], name: str) -> Activation:
    warnings.warn(
        f"activation {name!r} is a user callable: its derivatives are central finite "
        "differences (relative accuracy about 1e-7 for phi', 1e-4 for phi''); register "
        "exact derivatives with signalprop.theory.Activation for better accuracy",
        UserWarning,
        stacklevel=3,
    )

    def fn(x: Any) -> np.ndarray:
        return np.asarray(f(_arr(x)), dtype=float)

    def d1(x: Any) -> np.ndarray:
        x = _arr(x)
        h = 1e-5 * np.maximum(1.0, np.abs(x))
        return (fn(x + h) - fn(x - h)) / (2.0 * h)

    def d2(x: Any) -> np.ndarray:
        x = _arr(x)
        h = 1e-4 * np.maximum(1.0, np.abs(x))
        return (fn(x + h) - 2.0 * fn(x) + fn(x - h)) / (h * h)

    return Activation(name, fn, d1, d2, exact_derivatives=False)


def get_activation(
    activation: str | Activation | Callable[[Any], Any], **params: float
) -> Activation:
    """Look up an activation by name, pass an :class:`Activation` through, or wrap a callable.

    Args:
        activation: a registered name (see :func:`activation_names`), an ``Activation``,
            or a callable mapping a float ndarray to an ndarray of the same shape (its
            derivatives are then finite differences, and a ``UserWarning`` says so).
        **params: parameters of parameterised activations: ``leaky_relu(negative_slope)``,
            ``elu(alpha)``, ``celu(alpha)``, ``softplus(beta)``.

    Raises:
        ValueError: unknown name or parameter; the message lists the valid ones.

    Examples:
        >>> get_activation("elu", alpha=0.5).params
        {'alpha': 0.5}
        >>> float(get_activation("tanh").d1(np.array(0.0)))
        1.0
    """
    if isinstance(activation, Activation):
        if params:
            raise ValueError(f"parameters {sorted(params)} given with a built Activation")
        return activation
    if isinstance(activation, str):
        key = activation.lower().replace("-", "_")
        key = _ALIASES.get(key, key)
        if key not in _FACTORIES:
            raise ValueError(
                f"unknown activation {activation!r}; valid names: {', '.join(activation_names())}"
            )
        try:
            return replace(_FACTORIES[key](**params), registered=True)
        except TypeError as e:
            raise ValueError(f"bad parameters {params} for activation {key!r}: {e}") from None
    if callable(activation):
        if params:
            raise ValueError(f"parameters {sorted(params)} given with a callable activation")
        name = getattr(activation, "__name__", type(activation).__name__)
        return _numeric_derivatives(activation, name)
    raise ValueError(
        f"activation must be a name, an Activation or a callable, got {type(activation).__name__}"
    )
