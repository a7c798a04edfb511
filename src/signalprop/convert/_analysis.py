"""What a converter needs to know about a model's structure, found either from a torch.fx
graph or from one real forward (hooks and a torch-function mode), in the same shape."""

from __future__ import annotations

from dataclasses import dataclass, field

from signalprop.convert._ops import Act

Feed = tuple[Act | None, str]  # (activation feeding a module call, how it was found)


@dataclass(frozen=True)
class Residual:
    """A residual addition ``out = skip + branch`` in module ``block``'s forward.

    ``end`` is the module whose output is the branch (where a gain can go), or None with
    the reason in ``reason``; ``skip`` says what the other operand was."""

    block: str
    end: str | None
    reason: str = ""
    skip: str = ""


@dataclass
class Analysis:
    """The structure of a model as the converters use it.

    Attributes:
        method: how it was found ("torch.fx graph" or "forward hooks ...").
        calls: module name -> how many times it ran (graph: call sites), in call order.
        feeds: module name -> the activation feeding each of its calls.
        head: the classifier (the last ``nn.Linear`` applied), if any.
        residuals: every residual addition found, with its branch end or why none.
        functional_bn: modules that call ``batch_norm`` as a function.
        shapes: module name -> shapes of its first input over its calls (forward only).
    """

    method: str
    calls: dict[str, int] = field(default_factory=dict)
    feeds: dict[str, list[Feed]] = field(default_factory=dict)
    head: str | None = None
    residuals: list[Residual] = field(default_factory=list)
    functional_bn: list[str] = field(default_factory=list)
    shapes: dict[str, list[tuple[int, ...]]] = field(default_factory=dict)



def settle_head(analysis: Analysis) -> Analysis:
    """No classifier when the last ``nn.Linear`` applied sits inside a residual block (a
    model without a head, e.g. a backbone, ends in a block)."""
    head = analysis.head
    blocks = [r.block for r in analysis.residuals if r.block != "<model>"]
    if head is not None and any(head.startswith(b + ".") for b in blocks):
        analysis.head = None
    return analysis
