"""The kernel a convolution (or linear) layer's forward really applies.

``layer.weight`` is the parameter, not always the operator: Scaled WS layers standardize
it, quantized layers replace it by Q(w). Every tool that reasons about the operator
(``conv_spectrum``, ``orth_penalty``) reads it here, so a new layer kind is taught once.
"""

from __future__ import annotations

import torch.nn as nn
from torch import Tensor


def effective_kernel(layer: nn.Module) -> Tensor:
    """The weight ``layer``'s forward multiplies its input by, with its autograd graph:
    the standardized weight of a Scaled WS layer, Q(w) of a quantized layer (its gradient
    follows the layer's estimator), the weight otherwise.

    Examples:
        >>> import torch
        >>> from signalprop.nn import QuantConv2d
        >>> conv = QuantConv2d(2, 2, 3, weight_levels="binary", scale=None)
        >>> effective_kernel(conv).abs().unique().tolist()
        [1.0]
        >>> plain = torch.nn.Conv2d(2, 2, 3)
        >>> effective_kernel(plain) is plain.weight
        True
    """
    from signalprop.nn.quantized._layers import _QuantMixin

    if hasattr(layer, "standardized_weight"):
        return layer.standardized_weight()
    if isinstance(layer, _QuantMixin):
        return layer.quantized_weight()
    return layer.weight


def nonlinear_input(layer: nn.Module) -> str | None:
    """Why ``layer`` is not a linear map of its input (None when it is, up to its bias).

    Examples:
        >>> from signalprop.nn import QuantLinear
        >>> nonlinear_input(QuantLinear(2, 2, act_levels="binary"))
        "act_levels='binary' (it applies sign to its input)"
    """
    act = getattr(layer, "act_levels", None)
    return None if act is None else f"act_levels={act!r} (it applies sign to its input)"
