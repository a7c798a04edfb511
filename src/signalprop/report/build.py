"""Orchestration: measure a model, diagnose it, optionally fix it, and write the page."""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils import _pytree as pytree

from signalprop._forward import ModelInput, first_tensor
from signalprop.measure import (
    ForwardError,
    batch_independence,
    conv_spectra,
    gradient_confusion,
    gradient_spp,
    jacobian_spectrum,
    spp,
)
from signalprop.measure._per_example import batch_size
from signalprop.report import _fixes, _probe, html, plots
from signalprop.report._causes import is_residual
from signalprop.report._predict import predicted_spp
from signalprop.report._types import Measurements, ReportResult
from signalprop.report.diagnosis import diagnose

#: Lanczos steps and Hutchinson probes of the report's Jacobian spectrum
JACOBIAN_STEPS = 20
JACOBIAN_PROBES = 8


def _steps(progress: bool, total: int, desc: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not progress, leave=False)


class _OnFirstTensor(nn.Module):
    """``loss(first floating tensor of the output, y)``: for outputs that are tuples or
    dicts (HuggingFace ``ModelOutput``: logits or the last hidden state)."""

    def __init__(self, loss: nn.Module) -> None:
        super().__init__()
        self.loss = loss

    def forward(self, out: Any, y: torch.Tensor) -> torch.Tensor:
        return self.loss(first_tensor(out), y)


def _loss_and_target(out: Any, seed: int) -> tuple[Any, Any]:
    """Cross-entropy on random labels for (B, K) logits, else MSE to a Gaussian target,
    on the output's first floating tensor."""
    gen = torch.Generator().manual_seed(seed)
    t = first_tensor(out)
    if t is None:
        return None, None
    if t.dim() == 2 and t.shape[1] > 1:
        return _OnFirstTensor(nn.CrossEntropyLoss()), torch.randint(
            0, t.shape[1], (t.shape[0],), generator=gen)
    return _OnFirstTensor(nn.MSELoss()), torch.randn(t.shape, generator=gen, dtype=t.dtype)


def _examples(x: ModelInput, n: int) -> ModelInput:
    """The first ``n`` examples of every tensor in ``x`` with the batch on axis 0."""
    b = batch_size(x)
    return pytree.tree_map(lambda t: t[:n] if isinstance(t, torch.Tensor) and t.dim() > 0
                           and t.shape[0] == b else t, x)


def _is_float_input(x: ModelInput) -> bool:
    return any(isinstance(t, torch.Tensor) and t.is_floating_point()
               for t in pytree.tree_leaves(x))


def describe_input(x: ModelInput) -> str:
    """``x`` in words for the page: shapes and, for non-float tensors, dtypes.

    Examples:
        >>> describe_input({"input_ids": torch.zeros(4, 16, dtype=torch.long)})
        'input_ids 4x16 int64'
    """
    def one(t: torch.Tensor) -> str:
        shape = "x".join(map(str, t.shape))
        return shape if t.is_floating_point() else f"{shape} {str(t.dtype).removeprefix('torch.')}"

    if isinstance(x, torch.Tensor):
        return one(x)
    if isinstance(x, dict):
        return ", ".join(f"{k} {one(v)}" for k, v in x.items() if isinstance(v, torch.Tensor))
    return ", ".join(one(t) for t in pytree.tree_leaves(x) if isinstance(t, torch.Tensor))


def measure_all(model: nn.Module, x: ModelInput, label: str, *, seed: int = 0,
                progress: bool = False, jacobian_k: int = 4,
                channel_dim: int | None = None) -> Measurements:
    """Run every measurement of the report on ``model`` and diagnose the results.

    Args:
        model: the model, in the mode to measure (train mode: as in the SPP paper).
        x: a batch of at least 2 examples: a float tensor, integer token ids, or a
            tuple / dict of inputs (e.g. ``{"input_ids": ..., "attention_mask": ...}``).
        label: its name on the page.
        seed: seed of the probes, targets and the perturbation.
        progress: show a progress bar over the steps.
        jacobian_k: largest / smallest singular values to report per example.
        channel_dim: channel axis of the block outputs (1: (N, C, ...), -1: (N, T, C));
            None infers it from the layers inside the blocks (see
            :func:`~signalprop.report._probe.infer_channel_dim`; the page says which).

    Returns:
        :class:`Measurements`.

    Raises:
        ForwardError: the forward pass fails (the failing module is named).

    Examples:
        >>> import signalprop as sp
        >>> _ = torch.manual_seed(0)
        >>> net = sp.models.mlp(depth=4, width=32)
        >>> m = measure_all(net, torch.randn(8, 32), "mlp")
        >>> m.summary["depth"], m.diagnoses
        (4, [])
    """
    bar = _steps(progress, 7, f"measuring {label}")
    channel_dim, why = _probe.channel_axis(model, x, channel_dim)
    res = spp(model, x, channel_dim=channel_dim, label=label)
    bar.update()
    activation = _probe.activation_name(model)
    m = Measurements(label, res)
    m.summary = _summary(model, x, res, activation, channel_dim, why)
    m.prediction, note = predicted_spp(model, res, x)
    m.notes.append(note)
    structure = _probe.structure_note(res)
    if structure:
        m.notes.append(structure)
    bar.update()
    shapes, out = _probe.block_shapes(model, res.names, x)
    try:
        m.grad = gradient_spp(model, x, channel_dim=channel_dim, seed=seed, label=label)
    except (ValueError, ForwardError, RuntimeError) as e:
        m.notes.append(f"gradient SPP not measured: {e}")
    bar.update()
    bn = _probe.has_batchnorm(model)
    _measure_confusion(m, model, x, out, seed, bn)
    bar.update()
    _measure_jacobian(m, model, x, seed, bn, jacobian_k)
    bar.update()
    _measure_independence(m, model, x, seed)
    bar.update()
    if any(isinstance(mod, nn.modules.conv._ConvNd) for mod in model.modules()):
        try:
            m.conv_spectra = conv_spectra(model, _examples(x, 1), label=label, seed=seed)
        except (ValueError, ForwardError, RuntimeError) as e:
            m.notes.append(f"convolution spectra not measured: {e}")
    bar.update()
    bar.close()
    fixes = _fixes.applicable_fixes(model, activation, x)
    m.summary["fixes"] = _fixes.summary(fixes)
    numel = [math.prod(s) for s in shapes] if shapes is not None else None
    m.diagnoses = diagnose(res, m.grad, m.independence, numel=numel, activation=activation,
                           critical_sigma_w2=m.summary["critical_sigma_w2"],
                           theory_chi_1=m.summary["theory_chi_1"], shapes=shapes, fixes=fixes)
    return m


def _summary(model: nn.Module, x: ModelInput, res: Any, activation: str | None,
             channel_dim: int, why: str) -> dict[str, Any]:
    crit, chi = _probe.theory_numbers(model, activation, first_tensor(x))
    return {
        "parameters": sum(p.numel() for p in model.parameters()),
        "depth": len(res.records),
        "block_types": _probe.block_types(model, res.names),
        "discovery": res.discovery,
        "skips": _probe.describe_skips(res),
        "activation": activation,
        "critical_sigma_w2": crit,
        "theory_chi_1": chi,
        "input_shape": tuple(x.shape) if isinstance(x, torch.Tensor) else None,
        "input": describe_input(x),
        "channel_dim": channel_dim,
        "channel_dim_reason": why,
        "mode": "train" if model.training else "eval",
    }


def _measure_confusion(m: Measurements, model: nn.Module, x: ModelInput, out: Any,
                       seed: int, bn: bool) -> None:
    """``m.confusion`` on random targets for the output ``out`` (or a note why not)."""
    loss_fn, y = _loss_and_target(out, seed)
    if loss_fn is None or batch_size(x) < 2:
        m.notes.append("gradient confusion not measured: it needs a tensor output and at "
                       "least 2 examples")
        return
    try:
        m.confusion = gradient_confusion(model, x, y, loss_fn=loss_fn, label=m.label,
                                         batchnorm="eval" if bn else "auto")
        if bn:
            m.notes.append("gradient confusion and the Jacobian use BatchNorm's running "
                           "statistics (eval mode): per-example gradients need "
                           "batch-independent layers")
    except (ValueError, ForwardError, RuntimeError) as e:
        m.notes.append(f"gradient confusion not measured: {e}")


def _measure_jacobian(m: Measurements, model: nn.Module, x: ModelInput, seed: int,
                      bn: bool, k: int) -> None:
    """``m.jacobian`` on the first two examples (or a note why not)."""
    if not _is_float_input(x):
        m.notes.append("Jacobian spectrum not measured: the input holds no floating-point "
                       "tensor (token ids have no input-output Jacobian)")
        return
    try:
        # few Lanczos steps and trace probes: extremes to a few digits, affordable for a
        # ResNet-50 with 1000 outputs (the residual bounds say how accurate they are)
        m.jacobian = jacobian_spectrum(model, _examples(x, 2), k=k,
                                       steps=JACOBIAN_STEPS, probes=JACOBIAN_PROBES,
                                       seed=seed, batchnorm="eval" if bn else "auto",
                                       label=m.label)
    except (ValueError, ForwardError, RuntimeError) as e:
        m.notes.append(f"Jacobian spectrum not measured: {e}")


def _measure_independence(m: Measurements, model: nn.Module, x: ModelInput,
                          seed: int) -> None:
    """``m.independence`` for batches of 2+ examples (or a note why it was not checked)."""
    if batch_size(x) < 2:
        return
    try:
        ind = batch_independence(model, x, seed=seed, label=m.label)
        ind.meta["first_leak_type"] = {k: _probe.module_type(model, v)
                                       for k, v in ind.first_leak.items()}
        m.independence = ind
    except (ValueError, ForwardError, RuntimeError) as e:
        m.notes.append(f"batch independence not checked: {e}")


def apply_fix(model: nn.Module, before: Measurements, x: ModelInput | None = None
              ) -> tuple[nn.Module | None, str]:
    """The fixed model: NF conversion for BatchNorm or residual networks (skip connections
    measured on the forward), the critical initialization for plain ones; ``(None,
    reason)`` when neither applies (a fix that fails or changes nothing is not applied).

    Args:
        model: the model as given (left unchanged).
        before: its measurements (they tell residual from plain).
        x: the batch measured: where torch.fx cannot trace the model, ``to_normfree``
            reads its structure from a forward on it (``example_input=x``).

    Returns:
        ``(fixed model or None, what was done)``.

    Examples:
        >>> net = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 4))
        >>> fixed, what = apply_fix(net, measure_all(net, torch.randn(8, 8), "tanh net"))
        >>> print(what)
        sp.nn.init.critical_(model, "tanh"): every Linear/Conv re-drawn with sigma_w^2 = 1
    """
    from signalprop.convert import ConversionError, to_normfree
    from signalprop.nn.init import critical_

    residual = is_residual(before.spp)
    activation = before.summary.get("activation")
    if residual or _probe.has_batchnorm(model) or not activation:
        call = "sp.convert.to_normfree(model)"
        try:
            try:
                fixed, conversion = to_normfree(model)
            except ConversionError:
                if x is None:
                    raise
                conversion = None
            if x is not None and (conversion is None or not conversion.changes):
                # read the structure off a real forward (torch.fx failed or saw nothing)
                fixed, conversion = to_normfree(model, example_input=x)
                call = "sp.convert.to_normfree(model, example_input=x)"
        except ConversionError as e:
            return None, f"to_normfree could not convert the model: {e}"
        if not conversion.changes:
            return None, "no automatic fix: to_normfree changes no module of this model"
        return fixed, f"{call}\n{conversion}"
    if activation:
        fixed = copy.deepcopy(model)
        sw2 = critical_(fixed, activation)
        return fixed, (f'sp.nn.init.critical_(model, "{activation}"): every Linear/Conv '
                       f"re-drawn with sigma_w^2 = {sw2:.4g}")
    return None, "no automatic fix: the model has no residual blocks and no known activation"


def build_report(
    model: nn.Module,
    x: ModelInput,
    out: str | Path,
    *,
    fix: bool = False,
    channel_dim: int | None = None,
    label: str | None = None,
    seed: int = 0,
    progress: bool = False,
) -> ReportResult:
    """Measure ``model`` on ``x``, diagnose it and write ``out/report.html`` and its PNGs.

    The page is self-contained (styles and images inline, no network access needed): the
    forward SPP with the theory's prediction where one exists, the gradient SPP, gradient
    confusion, the Jacobian spectrum, batch independence, the singular values of every
    convolution (models that have some), and the diagnoses with the line
    of code that fixes each. With ``fix=True`` the model is converted with
    :func:`~signalprop.convert.to_normfree` (residual / BatchNorm networks) or re-drawn at
    the critical initialization (plain networks), measured again, and before/after plots
    are added. ``report.json`` holds every measurement and diagnosis
    (:meth:`ReportResult.load` reads it back).

    Args:
        model: any module, in the mode to measure (train mode for the paper's SPPs).
        x: a batch of at least 2 examples: a float tensor, integer token ids, or a tuple
            / dict of inputs (``{"input_ids": ..., "attention_mask": ...}``).
        out: output directory (created).
        fix: also apply the fix and compare.
        channel_dim: channel axis of the block outputs (1 for (N, C, ...), -1 for
            (N, T, C)); None infers it from the layers inside the blocks and says so on
            the page.
        label: the model's name on the page (default: its class name).
        seed: seed of the probes, targets and the perturbation.
        progress: show progress bars in the terminal.

    Returns:
        :class:`ReportResult`.

    Raises:
        ValueError: ``x`` holds no tensor with at least 2 examples on its first axis, or
            ``channel_dim`` is not an int.
        ForwardError: the forward pass fails.

    Examples:
        >>> import signalprop as sp
        >>> net = sp.models.resnetv2([1, 1], norm="none", stem="cifar", width=0.25)
        >>> r = build_report(net, torch.randn(4, 3, 16, 16), "report")
        >>> r.path.name, "mean_shift" in [d.kind for d in r.diagnoses]
        ('report.html', True)
    """
    _check_report_input(x, channel_dim)
    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    label = label or type(model).__name__
    before = measure_all(model, x, label, seed=seed, progress=progress,
                         channel_dim=channel_dim)
    after, fix_summary = None, ""
    if fix:
        fixed, fix_summary = apply_fix(model, before, x)
        if fixed is not None:
            fixed.train(model.training)
            after = measure_all(fixed, x, f"{label} (fixed)", seed=seed, progress=progress,
                                channel_dim=before.summary["channel_dim"])
    images = plots.write_all(before, after, out)
    result = ReportResult(out / "report.html", images, before, after, fix_summary)
    result.seconds = time.perf_counter() - t0
    page = html.render(result)
    tmp = out / "report.html.tmp"
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out / "report.html")
    result.save(out / "report.json")
    return result


def _check_report_input(x: Any, channel_dim: Any) -> None:
    t = next((v for v in pytree.tree_leaves(x) if isinstance(v, torch.Tensor)), None)
    if t is None or t.dim() < 1 or t.shape[0] < 2:
        got = tuple(t.shape) if t is not None else type(x).__name__
        raise ValueError("x must hold a tensor with at least 2 examples on its first axis "
                         f"(batch independence and gradient confusion compare examples), "
                         f"got {got}")
    if channel_dim is not None and (isinstance(channel_dim, bool)
                                    or not isinstance(channel_dim, int)):
        raise ValueError(f"channel_dim must be None (infer it) or an int (1 for (N, C, ...), "
                         f"-1 for (N, T, C)), got {channel_dim!r}")
