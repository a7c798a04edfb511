"""Does one example of a batch change the outputs of the others? (BatchNorm in train mode
does; per-example normalization, Weight Standardization and normalizer-free nets do not.)"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
from torch import Tensor

from signalprop._forward import (
    ModelInput,
    buffers_restored,
    call_model,
    first_tensor,
    hooks_removed_after,
    locate_failure,
)
from signalprop.measure._inputs import batch_size
from signalprop.measure._options import check_float, check_int, check_label, check_seed
from signalprop.results.independence import BatchIndependenceResult

_MODES = ("train", "eval")


def _perturb(x: Any, index: int, batch: int, gen: torch.Generator) -> Any:
    """A copy of ``x`` where example ``index`` of every batched tensor is replaced:
    floating tensors by fresh noise of the batch's mean and std, others (token ids, ...)
    by a copy of the next example."""
    if isinstance(x, Tensor):
        if x.dim() == 0 or x.shape[0] != batch:
            return x
        out = x.clone()
        if x.is_floating_point():
            noise = torch.randn(x[index].shape, generator=gen, dtype=x.dtype, device="cpu")
            std = x.std().item() if x.numel() > 1 else 1.0
            out[index] = noise.to(x.device) * (std if std > 0 else 1.0) + x.mean()
        else:
            out[index] = x[(index + 1) % batch]
        return out
    if isinstance(x, dict):
        return {k: _perturb(v, index, batch, gen) for k, v in x.items()}
    if isinstance(x, (tuple, list)):
        return type(x)(_perturb(v, index, batch, gen) for v in x)
    return x


def _digest(y: Tensor) -> tuple[Tensor, Tensor]:
    """Per-example (sum, sum of squares) in float64: (B,), (B,)."""
    flat = y.detach().reshape(y.shape[0], -1).double()
    return flat.sum(1), flat.square().sum(1)


def _relative_moves(a: Tensor, b: Tensor) -> Tensor:
    """Per example ||b_j - a_j|| / ||a_j|| (0 where both are 0)."""
    a64 = a.detach().reshape(a.shape[0], -1).double()
    b64 = b.detach().reshape(b.shape[0], -1).double()
    num = torch.linalg.vector_norm(b64 - a64, dim=1)
    den = torch.linalg.vector_norm(a64, dim=1)
    return torch.where(num == 0, torch.zeros_like(num), num / den.clamp_min(1e-300))


def _run(model: nn.Module, x: Any, batch: int, seed: int) -> tuple[Tensor, list[Any]]:
    """The output and, per leaf-module call, (name, digest) for batched outputs."""
    names = {id(m): n for n, m in model.named_modules()}
    record: list[Any] = []

    def hook(mod: nn.Module, args: Any, out: Any) -> None:
        y = first_tensor(out)
        if y is not None and y.dim() >= 1 and y.shape[0] == batch:
            record.append((names.get(id(mod), type(mod).__name__), _digest(y)))

    with hooks_removed_after() as handles:
        for m in model.modules():
            if next(m.children(), None) is None:
                handles.append(m.register_forward_hook(hook))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # dropout draws the same masks in both passes
            try:
                out = call_model(model, x)
            except Exception as e:
                raise locate_failure(model, x, e) from e
    y = first_tensor(out)
    if y is None or y.dim() == 0 or y.shape[0] != batch:
        shape = None if y is None else tuple(y.shape)
        raise ValueError(f"the model's output must have the batch axis first (size {batch}); "
                         f"got {shape}")
    return y, record


def _first(before: list[Any], after: list[Any], others: Tensor, tol: float,
           nonfinite: bool) -> str | None:
    """First module whose digest, for the unperturbed examples, moved by > tol (or held
    NaN/Inf when ``nonfinite``)."""
    for (name, (s0, q0)), (_, (s1, q1)) in zip(before, after):
        if nonfinite:
            if not (torch.isfinite(s0).all() and torch.isfinite(s1).all()):
                return name
            continue
        s0, q0, s1, q1 = s0[others], q0[others], s1[others], q1[others]
        scale = q0.sqrt().clamp_min(1e-300)
        moved = torch.maximum((s1 - s0).abs() / scale, (q1.sqrt() - q0.sqrt()).abs() / scale)
        if bool((moved > tol).any()):
            return name
    return None


def batch_independence(
    model: nn.Module,
    x: ModelInput,
    *,
    modes: Sequence[str] = _MODES,
    index: int = 0,
    tolerance: float = 1e-5,
    seed: int = 0,
    label: str | None = None,
) -> BatchIndependenceResult:
    """Perturb one example of a batch and measure how far every other example's output moves.

    For each mode the model runs on ``x`` and on ``x'`` (example ``index`` replaced by fresh
    noise with the batch's mean and std), with identical random draws (dropout masks);

        leak = max_{j != index} ||f(x')_j - f(x)_j|| / ||f(x)_j||

    A model is batch-independent when the leak is at most ``tolerance`` in every mode.
    BatchNorm in train mode leaks (batch statistics); in eval mode it does not. The first
    leaf module whose output moved for an unperturbed example is named (per-example digests
    of every module's output; nothing tensor-sized is kept). The forward runs under
    ``torch.no_grad()``; mode, buffers (BatchNorm running statistics) and the global RNG
    are restored afterwards.

    Args:
        model: any module whose outputs (first tensor of a tuple/dict) are batch-first.
        x: a batch of at least 2 examples, batch axis first (tensor, tuple or dict).
        modes: any of ``"train"``, ``"eval"``.
        index: the example to perturb.
        tolerance: the largest relative leak counted as independent (float32 rounding is
            ~1e-7; a leaking BatchNorm moves outputs by ~1/batch).
        seed: seed of the perturbation and of the random draws inside the model.
        label: a name for the result (default: the model's class name).

    Returns:
        :class:`signalprop.results.BatchIndependenceResult` (``.independent``, ``.leak``).

    Raises:
        ValueError: batch smaller than 2, bad ``index``, ``modes``, ``tolerance``, or an
            output without the batch axis first.
        NonFiniteError: ``x`` holds NaN/Inf (a NaN example would move every output by NaN,
            which is not a leak of the model).

    Examples:
        >>> import signalprop as sp
        >>> bn = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4))
        >>> res = sp.batch_independence(bn, torch.randn(8, 4))
        >>> res.independent, res.leak["eval"] == 0.0, res.first_leak["train"]
        (False, True, '1')

    References:
        Richemond et al., "BYOL works even without batch statistics", arXiv 2010.10241;
        Brock, De & Smith, ICLR 2021 (normalizer-free networks are batch-independent).
    """
    batch, index, tolerance, seed = _check_arguments(x, modes, index, tolerance, seed, label)
    index %= batch
    gen = torch.Generator().manual_seed(seed)
    x2 = _perturb(x, index, batch, gen)
    others = torch.tensor([j != index for j in range(batch)])
    leak: dict[str, float] = {}
    sens: dict[str, float] = {}
    first: dict[str, str | None] = {}
    nonfinite: dict[str, str | None] = {}
    flags = [(m, m.training) for m in model.modules()]
    try:
        for mode in modes:
            model.train(mode == "train")
            with torch.no_grad(), buffers_restored(model):
                y0, d0 = _run(model, x, batch, seed)
                y1, d1 = _run(model, x2, batch, seed)
            bad_values = not (torch.isfinite(y0).all() and torch.isfinite(y1).all())
            if bad_values:
                leak[mode], sens[mode] = math.nan, math.nan
                nonfinite[mode] = _first(d0, d1, others, tolerance, True) or "<output>"
                first[mode] = None
                continue
            moves = _relative_moves(y0, y1)
            leak[mode] = float(moves[others].max())
            sens[mode] = float(moves[index])
            nonfinite[mode] = None
            first[mode] = (_first(d0, d1, others, tolerance, False)
                           or ("<output>" if leak[mode] > tolerance else None))
    finally:
        for m, flag in flags:
            m.training = flag
    return BatchIndependenceResult(leak, sens, first, nonfinite, float(tolerance), index, batch,
                                   label=label or type(model).__name__)


def _check_arguments(x: ModelInput, modes: Sequence[str], index: int, tolerance: float,
                     seed: int, label: str | None) -> tuple[Any, ...]:
    """Validate the options and the input; returns the batch size, index, tolerance and
    seed as Python numbers."""
    if isinstance(modes, str) or not modes or any(m not in _MODES for m in modes):
        raise ValueError(f"modes must be a non-empty subset of {_MODES}, got {modes!r}")
    tolerance = check_float("tolerance", tolerance, low=0.0)
    seed = check_seed(seed)
    check_label(label)
    batch = batch_size(x)
    if batch < 2:
        raise ValueError(f"x must hold at least 2 examples to check independence, got {batch}")
    return batch, check_int("index", index, low=-batch, high=batch - 1), tolerance, seed
