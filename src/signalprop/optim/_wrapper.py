"""The optimizer interface a wrapper forwards to the optimizer it wraps (AGC,
QuantizedTraining): LR schedulers, the trainer and checkpoints then take the wrapper as
the optimizer."""

from __future__ import annotations

from typing import Any


class OptimizerWrapper:
    """``zero_grad``, ``param_groups``, ``state`` and ``add_param_group`` of ``self.optimizer``.

    Examples:
        >>> import torch
        >>> w = OptimizerWrapper()
        >>> w.optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        >>> w.param_groups[0]["lr"]
        0.1
    """

    optimizer: Any

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.optimizer.param_groups  # type: ignore[no-any-return]

    @property
    def state(self) -> Any:
        return self.optimizer.state

    def add_param_group(self, group: dict[str, Any]) -> None:
        self.optimizer.add_param_group(group)
