"""The end of a converted residual branch, and its calibration on an example batch."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn

from signalprop._forward import ModelInput, call_model, first_tensor
from signalprop.convert.report import ConversionError, ConversionReport
from signalprop.nn import BranchTap, SkipInit


class GatedBranch(nn.Module):
    """``gain * tap(inner(...) * branch_scale)`` at the end of a converted residual branch.

    ``inner`` is the module that ended the branch (``nn.Identity`` where that was a
    BatchNorm), called with whatever arguments the model passes; where it returns a tuple
    or list (attention layers), the gate applies to its first element, the branch, and the
    rest passes through. ``branch_scale`` (a buffer, 1 unless calibrated) makes the branch
    output's second moment 1 on the calibration batch; the tap marks the branch output for
    measurement (before the gain); the gain is a learnable :class:`SkipInit`. Attributes
    the gate lacks are read from ``inner``, so code reading ``self.attn.num_heads`` works.

    Examples:
        >>> gate = GatedBranch(nn.Linear(4, 4), init=0.0)
        >>> gate(torch.randn(2, 4)).abs().sum().item()  # the gain starts at 0
        0.0
        >>> float(gate.branch_scale), gate.in_features  # until calibrated; read from inner
        (1.0, 4)
    """

    branch_scale: torch.Tensor

    def __init__(self, inner: nn.Module, init: float) -> None:
        super().__init__()
        self.inner = inner
        self.register_buffer("branch_scale", torch.ones(()))
        self.branch_tap = BranchTap()
        self.skip_gain = SkipInit(init)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        out = self.inner(*args, **kwargs)
        if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
            items = [self._gate(out[0]), *out[1:]]
            return type(out)(*items) if hasattr(out, "_fields") else type(out)(items)
        return self._gate(out)

    def _gate(self, y: torch.Tensor) -> torch.Tensor:
        return self.skip_gain(self.branch_tap(y * self.branch_scale))

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "inner":
                raise
            return getattr(super().__getattr__("inner"), name)


@torch.no_grad()
def calibrate_gates(model: nn.Module, gates: dict[str, GatedBranch], x: ModelInput,
                    report: ConversionReport) -> None:
    """One eval-mode forward on ``x``; at each gate, in execution order, set
    ``branch_scale = 1 / sqrt(E[f^2])`` from the branch output f it receives, so every later
    block already sees the calibrated stream: x_{l+1} = x_l + a f_l / rms(f_l) and the
    stream's second moment grows by about a^2 per block instead of by a factor."""
    handles = []
    flags = [(m, m.training) for m in model.modules()]

    def hook(name: str, gate: GatedBranch) -> Any:
        def fn(mod: nn.Module, args: Any, out: Any) -> None:
            y = first_tensor(out)
            if y is None:
                report.refuse(name, "not calibrated", "the branch output is not a tensor")
                return
            second = y.double().square().mean().item()
            if not math.isfinite(second):
                raise ConversionError(
                    f"calibration: the branch ending at '{name}' produced NaN/Inf on "
                    "example_input")
            if second == 0.0:
                report.refuse(name, "not calibrated", "the branch output is 0 on example_input")
                return
            gate.branch_scale.fill_(1.0 / math.sqrt(second))
            report.add(name, "branch calibrated", f"branch_scale={1.0 / math.sqrt(second):.4g}")

        return fn

    try:
        for name, gate in gates.items():
            handles.append(gate.inner.register_forward_hook(hook(name, gate)))
        model.eval()
        scales = {id(g.branch_scale) for g in gates.values()}
        # every other buffer is restored: calibration must change nothing else
        saved = [(b, b.clone()) for b in model.buffers() if id(b) not in scales]
        try:
            call_model(model, x)
        finally:
            for b, v in saved:
                b.copy_(v)
    finally:
        for h in handles:
            h.remove()
        for m, flag in flags:
            m.training = flag
