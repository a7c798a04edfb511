"""What a model conversion changed, and what it could not convert (with reasons)."""

from __future__ import annotations

from dataclasses import dataclass, field

from signalprop.results import Result


class ConversionError(ValueError):
    """The converter cannot analyse the model; the message lists the offending modules.

    Examples:
        >>> import torch.nn as nn, torch.nn.functional as F
        >>> import signalprop as sp
        >>> class Net(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.fc = nn.Linear(4, 4)
        ...     def forward(self, x):
        ...         return F.batch_norm(self.fc(x), None, None, training=True)
        >>> try:
        ...     sp.convert.to_normfree(Net())
        ... except ConversionError as err:
        ...     print(err)
        to_normfree cannot analyse Net: batch_norm is called as a function in '<model>'; only
        BatchNorm modules can be removed. Use nn.BatchNorm modules there
    """


@dataclass(frozen=True)
class Change:
    """One module-level edit (or refusal): where, what, and why.

    Examples:
        >>> print(Change("layer1.0.bn1", "removed BatchNorm2d"))
        layer1.0.bn1: removed BatchNorm2d
        >>> print(Change("fc", "Linear -> WSLinear", "gamma=1.7129"))
        fc: Linear -> WSLinear (gamma=1.7129)
    """

    module: str  # qualified name ("<model>" for the root)
    action: str  # e.g. "removed BatchNorm2d", "Conv2d -> ScaledStdConv2d"
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.module}: {self.action}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class ConversionReport(Result):
    """The record of a conversion.

    Attributes:
        changes: every edit made, in the order made.
        not_converted: what was left as it was, each with the reason.
        residual_blocks: the modules in which a residual addition received a gain.
        method: how the model was analysed ("torch.fx graph", "forward hooks on
            example_input", "ResNetV2 rebuild", ...).

    Examples:
        >>> r = ConversionReport("torch.fx graph")
        >>> r.add("layer1.bn", "removed BatchNorm2d")
        >>> ConversionReport.from_json(r.to_json()).count("removed")
        1
    """

    method: str
    changes: list[Change] = field(default_factory=list)
    not_converted: list[Change] = field(default_factory=list)
    residual_blocks: list[str] = field(default_factory=list)

    def add(self, module: str, action: str, detail: str = "") -> None:
        self.changes.append(Change(module or "<model>", action, detail))

    def refuse(self, module: str, action: str, reason: str) -> None:
        self.not_converted.append(Change(module or "<model>", action, reason))

    def csv_rows(self) -> tuple[list[str], list[list[str]]]:
        """One row per change and per refusal (``kind`` "changed" / "not converted")."""
        rows = [["changed", c.module, c.action, c.detail] for c in self.changes]
        rows += [["not converted", c.module, c.action, c.detail] for c in self.not_converted]
        return ["kind", "module", "action", "detail"], rows

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
