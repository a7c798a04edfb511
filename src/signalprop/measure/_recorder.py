"""Numbering of block calls shared by the forward and the backward plots.

A block called twice appears as ``name`` and ``name#2``; records are indexed in execution
order; blocks flagged ``is_transition`` (a change of resolution or width) are noted so
that plots can mark where the expected variance resets.
"""

from __future__ import annotations

import collections
from typing import Any

import torch.nn as nn
from tqdm.auto import tqdm


class BlockRecorder:
    """Counts block calls, numbers the recorded ones and drives the progress bar.

    Examples:
        >>> rec = BlockRecorder(total=2, desc="toy", progress=False)
        >>> rec.call("b"); rec.place("b", nn.Identity())
        1
        ('b', 0)
        >>> rec.call("b"); rec.place("b", nn.Identity())
        2
        ('b#2', 1)
        >>> rec.close(); rec.count
        2
    """

    def __init__(self, total: int, desc: str, progress: bool) -> None:
        self.calls: collections.Counter[str] = collections.Counter()
        self.transitions: list[int] = []
        self.count = 0
        # no bar object at all without progress: creating a disabled one costs ~0.2 ms
        self._bar = (tqdm(total=total, desc=desc, unit="block", leave=False) if progress
                     else None)

    def call(self, name: str) -> int:
        """Count one call of block ``name``; returns how many calls it has had."""
        self.calls[name] += 1
        return self.calls[name]

    def place(self, name: str, module: nn.Module) -> tuple[str, int]:
        """The display name and index of the record for the latest call of ``name``."""
        if getattr(module, "is_transition", False):
            self.transitions.append(self.count)
        k = self.calls[name]
        index = self.count
        self.count += 1
        return (name if k == 1 else f"{name}#{k}"), index

    def tick(self) -> None:
        """One block measured."""
        if self._bar is not None:
            self._bar.update()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def meta(self, model: nn.Module, **extra: Any) -> dict[str, Any]:
        """The result's ``meta``: transitions, the model's mode, and ``extra``."""
        return {"transitions": self.transitions,
                "mode": "train" if model.training else "eval", **extra}
