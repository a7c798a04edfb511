"""SGD's step and SR / R rounding in one pass per quantized weight (QuantizedTraining).

With ``torch.optim.SGD`` as the wrapped optimizer, :class:`~signalprop.optim.QuantizedTraining`
updates each quantized weight and rounds it onto its grid in one pass of the C kernel
``_cqstep.c``, instead of SGD's passes followed by a rounding pass. The update is SGD's
own arithmetic: before first use the kernel is checked to reproduce ``torch.optim.SGD``'s
step followed by nearest rounding bit for bit (weights and momentum buffers, float32 and
float64, every option), and it is not used otherwise. Stochastic rounding draws its
random numbers from a counter-based hash keyed by (seed, layer, step) (see ``_cqstep.c``):
reproducible, independent of the number of threads, and vectorized, far cheaper than
torch's CPU generator. Anything else (other optimizers, accelerators, non-contiguous weights, a
tensor learning rate, ``differentiable``) takes the general path.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import Tensor

from signalprop.nn.quantized import round_to_grid_
from signalprop.theory.quantized import max_code

try:  # built from _cqstep.c at install; optional
    from signalprop.optim import _cqstep
    from signalprop.optim._cqstep import sgd_round as _c_sgd_round
except ImportError:  # pragma: no cover - depends on the build
    _cqstep = _c_sgd_round = None

_MASK = (1 << 64) - 1
# None: not checked yet; then whether the kernel reproduces torch's SGD + rounding.
_kernel_matches: bool | None = None


def mix64(z: int) -> int:
    """SplitMix64's finalizer on Python ints (derives the kernel's 64-bit keys).

    Examples:
        >>> mix64(0), mix64(1) != mix64(2)
        (0, True)
    """
    z &= _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def stream_key(seed: int, layer: int, step: int) -> int:
    """The key of layer ``layer``'s random numbers at fused step ``step``: element k of the
    weight draws ``hash32(hash32(k ^ key_lo) ^ key_hi)`` (``_cqstep.c``).

    Examples:
        >>> stream_key(0, 0, 0) != stream_key(0, 1, 0) != stream_key(0, 0, 1)
        True
    """
    return mix64(mix64(mix64(seed) ^ (layer + 1)) ^ (step + 1))


def _is_sgd(optimizer: Any) -> bool:
    return type(optimizer) is torch.optim.SGD


def _group_ok(group: dict[str, Any]) -> bool:
    return (not group.get("differentiable", False) and not group.get("fused", False)
            and all(isinstance(group[k], (int, float)) and not isinstance(group[k], bool)
                    for k in ("lr", "momentum", "dampening", "weight_decay")))


def _unit_layout(p: Tensor, unit: Tensor) -> bool | None:
    """True: one unit per row of p (dim 0); False: one unit; None: neither (not fusable)."""
    if unit.numel() == 1:
        return False
    if p.dim() >= 1 and unit.numel() == p.shape[0] and unit.shape[:1] == p.shape[:1]:
        return True
    return None


def fusable(optimizer: Any, group: dict[str, Any], p: Tensor, unit: Tensor | None) -> bool:
    """Whether weight ``p`` (in param group ``group``, rounded with ``unit``) can take the
    one-pass step: SGD with float options, a contiguous float32/float64 CPU weight with a
    dense gradient (and momentum buffer) like it, a kernel that matched torch."""
    g = p.grad
    if not (_is_sgd(optimizer) and unit is not None and g is not None and _group_ok(group)):
        return False
    if not (p.dtype in (torch.float32, torch.float64) and p.device.type == "cpu"
            and p.is_contiguous() and g.layout is torch.strided and g.dtype == p.dtype
            and g.device == p.device and g.is_contiguous() and g.shape == p.shape
            and not g.is_neg() and unit.device == p.device
            and _unit_layout(p, unit) is not None):
        return False
    buf = optimizer.state.get(p, {}).get("momentum_buffer")
    if buf is not None and not (buf.dtype == p.dtype and buf.is_contiguous()
                                and buf.shape == p.shape and buf.device == p.device):
        return False
    return kernel_available()


def _top(levels: str | int | None) -> float:
    """The kernel's grid argument: 0 binary, L the largest code, -1 no rounding."""
    if levels is None:
        return -1.0
    return 0.0 if levels == "binary" else float(max_code(levels))


@torch.no_grad()
def sgd_round_(optimizer: Any, group: dict[str, Any], p: Tensor, unit: Tensor,
               levels: str | int | None, *, stochastic: bool, key: int = 0) -> None:
    """One SGD step on ``p`` (momentum buffer kept in ``optimizer.state[p]``, as SGD keeps
    it), then ``p`` rounded onto ``unit`` * codes, in one pass (``levels=None``: no
    rounding, SGD's step alone). Call only where :func:`fusable` said yes; the gradient
    is ``p.grad``."""
    momentum = float(group["momentum"])
    state = optimizer.state[p]
    buf = state.get("momentum_buffer") if momentum != 0 else None
    first = momentum != 0 and buf is None
    if first:
        buf = torch.empty_like(p, memory_format=torch.contiguous_format)
    per_row = bool(_unit_layout(p, unit))
    u = unit.detach().to(p.dtype).reshape(-1).contiguous()
    rows = p.shape[0] if per_row else 1
    _c_sgd_round(  # type: ignore[misc]
        p.detach().view(-1).numpy(), p.grad.detach().view(-1).numpy(),
        None if buf is None else buf.view(-1).numpy(), u.numpy(), rows, per_row,
        float(group["lr"]), momentum, float(group["dampening"]),
        float(group["weight_decay"]), bool(group["nesterov"]),
        bool(group.get("maximize", False)), first, stochastic, _top(levels), key,
        torch.get_num_threads())
    if first:
        state["momentum_buffer"] = buf


def _sgd_on_copy(p: Tensor, g: Tensor, buf: Tensor | None, opts: dict[str, Any]
                 ) -> tuple[Tensor, Any]:
    """A copy of p with gradient g, and an SGD on it holding momentum buffer buf."""
    q = p.clone().requires_grad_()
    q.grad = g.clone()
    sgd = torch.optim.SGD([q], **opts)
    if buf is not None:
        sgd.state[q]["momentum_buffer"] = buf.clone()
    return q, sgd


def _one_step_matches(p: Tensor, g: Tensor, buf: Tensor | None, unit: Tensor,
                      levels: str | int | None, opts: dict[str, Any]) -> bool:
    """The kernel's step equals torch's SGD step then round_to_grid_ (nearest; none for
    ``levels=None``), weights and momentum buffers bit for bit (on copies)."""
    want, sgd = _sgd_on_copy(p, g, buf, opts)
    sgd.step()
    if levels is not None:
        with torch.no_grad():
            round_to_grid_(want, unit, levels, stochastic=False)
    got, fused = _sgd_on_copy(p, g, buf, opts)
    sgd_round_(fused, fused.param_groups[0], got, unit, levels, stochastic=False)
    want_buf = sgd.state[want].get("momentum_buffer")
    got_buf = fused.state[got].get("momentum_buffer")
    if (want_buf is None) != (got_buf is None):
        return False
    return torch.equal(got.detach(), want.detach()) and (
        want_buf is None or torch.equal(got_buf, want_buf))


def _check_kernel() -> bool:
    """The kernel against torch's SGD step, alone and followed by nearest rounding, bit
    for bit: both dtypes, a per-row and two per-tensor grids, every grid kind, every SGD
    option (foreach too), first and later steps."""
    if _c_sgd_round is None:
        return False
    gen = torch.Generator().manual_seed(0)
    options = [dict(lr=0.1, momentum=0.9), dict(lr=0.03, momentum=0.9, nesterov=True,
                                                weight_decay=1e-3),
               dict(lr=0.2, momentum=0.5, dampening=0.1, weight_decay=0.01, maximize=True),
               dict(lr=0.05), dict(lr=0.1, momentum=0.9, foreach=True)]
    kinds: tuple[str | int, ...] = ("binary", "ternary", 3)
    cases = [(k, options[0]) for k in kinds]
    cases += [(kinds[i % 3], o) for i, o in enumerate(options[1:])]
    layouts = (((5, 37), True), ((3, 4, 3, 3), False), ((70,), False))
    for dtype in (torch.float32, torch.float64):
        draw = functools.partial(torch.randn, generator=gen, dtype=dtype)
        for (shape, per_row), (levels, opts) in ((lay, c) for lay in layouts for c in cases):
            unit = (draw(shape[0], *[1] * (len(shape) - 1)).abs() + 0.5 if per_row
                    else torch.tensor(0.7, dtype=dtype))
            p = round_to_grid_(draw(*shape), unit, levels, stochastic=False)
            for buf in (None, draw(*shape)):  # the first step, then a later one
                g = draw(*shape)
                # SGD's arithmetic alone (a rounding would hide small differences), then
                # with the rounding
                for lv in (None, levels):
                    if not _one_step_matches(p, g, buf, unit, lv, opts):
                        return False
    return True


def kernel_available() -> bool:
    """Whether the one-pass SGD + rounding kernel is built and reproduces torch here.

    Examples:
        >>> isinstance(kernel_available(), bool)
        True
    """
    global _kernel_matches
    if _kernel_matches is None:
        _kernel_matches = _check_kernel()
    return _kernel_matches
