"""What a model conversion changed, and what it could not convert (with reasons)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


class ConversionError(ValueError):
    """The converter cannot analyse the model; the message lists the offending modules."""


@dataclass(frozen=True)
class Change:
    """One module-level edit (or refusal): where, what, and why."""

    module: str  # qualified name ("<model>" for the root)
    action: str  # e.g. "removed BatchNorm2d", "Conv2d -> ScaledStdConv2d"
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.module}: {self.action}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class ConversionReport:
    """The record of a conversion.

    Attributes:
        changes: every edit made, in the order made.
        not_converted: what was left as it was, each with the reason.
        residual_blocks: the modules in which a residual addition received a gain.
        method: how the model was analysed ("torch.fx graph", "ResNetV2 rebuild", ...).
    """

    method: str
    changes: list[Change] = field(default_factory=list)
    not_converted: list[Change] = field(default_factory=list)
    residual_blocks: list[str] = field(default_factory=list)

    def add(self, module: str, action: str, detail: str = "") -> None:
        self.changes.append(Change(module or "<model>", action, detail))

    def refuse(self, module: str, action: str, reason: str) -> None:
        self.not_converted.append(Change(module or "<model>", action, reason))

    def count(self, prefix: str) -> int:
        """How many changes' actions start with ``prefix``."""
        return sum(c.action.startswith(prefix) for c in self.changes)

    def __str__(self) -> str:
        lines = [f"conversion by {self.method}: changes {len(self.changes)}, "
                 f"residual gains {len(self.residual_blocks)}, "
                 f"not converted {len(self.not_converted)}"]
        lines += [f"  {c}" for c in self.changes]
        if self.not_converted:
            lines.append("not converted:")
            lines += [f"  {c}" for c in self.not_converted]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "changes": [asdict(c) for c in self.changes],
            "not_converted": [asdict(c) for c in self.not_converted],
            "residual_blocks": list(self.residual_blocks),
        }

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ConversionReport:
        return cls(d["method"], [Change(**c) for c in d["changes"]],
                   [Change(**c) for c in d["not_converted"]], list(d["residual_blocks"]))
