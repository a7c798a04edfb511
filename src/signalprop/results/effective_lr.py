"""Result of ``effective_lr``: the learning rate that moves each scale-invariant weight."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from signalprop.results._base import Result


@dataclass(frozen=True)
class ParamLR:
    """One parameter's learning rate, squared norm and effective learning rate.

    Attributes:
        name: the parameter's qualified name.
        lr: its optimizer group's learning rate.
        norm2: ||w||^2.
        effective_lr: lr / ||w||^2 (infinite for a zero weight).
        momentum: the group's momentum (Adam: beta1; 0 without).
        weight_decay: the group's weight decay.
        scale_invariant: whether the model's output was unchanged when w was doubled
            (None when not checked).

    Examples:
        >>> ParamLR("0.weight", 0.1, 4.0, 0.025, 0.9, 5e-4, True).effective_lr
        0.025
    """

    name: str
    lr: float
    norm2: float
    effective_lr: float
    momentum: float = 0.0
    weight_decay: float = 0.0
    scale_invariant: bool | None = None


@dataclass
class EffectiveLRResult(Result):
    """Per parameter, lr / ||w||^2: for a weight the loss does not depend on the scale of
    (one followed by BatchNorm, in train mode), a gradient step moves its direction by
    about lr / ||w||^2 times the gradient of the loss on the unit sphere.

    Attributes:
        records: one :class:`ParamLR` per parameter, in optimizer order.
        label: the model's name.
        meta: anything else (``tolerance`` of the scale-invariance check).

    Examples:
        >>> r = EffectiveLRResult([ParamLR("a", 0.1, 4.0, 0.025, scale_invariant=True),
        ...                        ParamLR("b", 0.1, 1.0, 0.1, scale_invariant=False)])
        >>> r.names, r.invariant_names
        (['a', 'b'], ['a'])
    """

    records: list[ParamLR]
    label: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.records]

    @property
    def invariant_names(self) -> list[str]:
        """The parameters found scale-invariant."""
        return [r.name for r in self.records if r.scale_invariant]

    def by_name(self) -> dict[str, float]:
        """Parameter name -> effective learning rate.

        Examples:
            >>> EffectiveLRResult([ParamLR("w", 0.5, 2.0, 0.25)]).by_name()
            {'w': 0.25}
        """
        return {r.name: r.effective_lr for r in self.records}
