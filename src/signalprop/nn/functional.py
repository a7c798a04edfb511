"""Functional forms of signalprop's layers (``signalprop.nn.functional.sign_surrogate``).

Examples:
    >>> import torch
    >>> from signalprop.nn import functional as SF
    >>> SF.sign_surrogate(torch.tensor([-0.3, 0.2]), "reste", o=2.0).tolist()
    [-1.0, 1.0]
"""

from signalprop.nn.normfree import standardize_weight
from signalprop.nn.quantized._rounding import round_to_grid, round_to_grid_
from signalprop.nn.quantized._surrogate import sign_surrogate

__all__ = ["round_to_grid", "round_to_grid_", "sign_surrogate", "standardize_weight"]
