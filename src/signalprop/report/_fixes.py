"""Which of the report's one-line fixes apply to a model: each is tried on a copy, and a
fix that fails or changes nothing is never suggested."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from signalprop import theory
from signalprop._forward import ModelInput

#: The fixes the report knows, by key: the NF conversion and the critical initialization.
NORMFREE = "normfree"
NORMFREE_INPUT = "normfree_example_input"
CRITICAL = "critical"


def applicable_fixes(model: nn.Module, activation: str | None,
                     x: ModelInput | None = None) -> dict[str, str | None]:
    """Fix name -> None when the fix applies to ``model``, else why it does not.

    ``normfree``: :func:`~signalprop.convert.to_normfree` converts a copy of the model and
    changes at least one module; where it does not (torch.fx cannot trace the model, or its
    graph hides the residual additions), ``normfree_example_input``: the same with
    ``example_input=x`` (the structure read from a forward on ``x``). ``critical``: the
    activation is known, has a critical point, and the model has Linear / Conv layers for
    ``critical_`` to re-draw.

    Examples:
        >>> lstm = nn.Sequential(nn.LSTM(4, 4))
        >>> fixes = applicable_fixes(lstm, None)
        >>> fixes["normfree"]
        'to_normfree changes no module of this model'
        >>> applicable_fixes(nn.Sequential(nn.Linear(4, 4), nn.Tanh()), "tanh")["critical"]
    """
    cuda = sorted({p.device.index or 0 for p in model.parameters() if p.is_cuda})
    with torch.random.fork_rng(devices=cuda):  # the trial conversion draws new weights
        fixes = {NORMFREE: _normfree_reason(model, None),
                 CRITICAL: _critical_reason(model, activation)}
        if fixes[NORMFREE] is not None and x is not None:
            # torch.fx could not trace the model, or saw no residual addition in its graph
            # (a traced leaf module hides them): read the structure off a real forward
            fixes[NORMFREE_INPUT] = _normfree_reason(model, x)
    return fixes


def _normfree_reason(model: nn.Module, x: ModelInput | None) -> str | None:
    from signalprop.convert import ConversionError, to_normfree

    try:
        _, report = to_normfree(copy.deepcopy(model), example_input=x)
    except ConversionError as e:
        return f"to_normfree cannot convert this model ({_short(str(e))})"
    except Exception as e:  # noqa: BLE001 -- a conversion that breaks is no fix to suggest
        return f"to_normfree fails on this model ({type(e).__name__}: {_short(str(e))})"
    if not report.changes:
        return "to_normfree changes no module of this model"
    return None


def _short(text: str, limit: int = 160) -> str:
    """The first line of an error, cut to ``limit`` characters."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 3].rstrip() + "..."


def _critical_reason(model: nn.Module, activation: str | None) -> str | None:
    if activation is None:
        return "the model's activation is not known"
    try:
        theory.critical_point(activation)
    except ValueError as e:
        return f"{activation} has no critical initialization: {e}"
    layers = (nn.Linear, nn.modules.conv._ConvNd)
    if not any(isinstance(m, layers) for m in model.modules()):
        return "the model has no Linear or Conv layers to re-initialize"
    return None


def summary(fixes: dict[str, str | None] | None) -> dict[str, Any]:
    """The fixes as the report's summary shows them (``"applies"`` or the reason).

    Examples:
        >>> summary({"normfree": None, "critical": "no activation"})
        {'normfree': 'applies', 'critical': 'no activation'}
    """
    return {k: "applies" if v is None else v for k, v in (fixes or {}).items()}
