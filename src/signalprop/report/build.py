"""Orchestration: measure a model, diagnose it, optionally fix it, and write the page."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from signalprop.measure import (
    ForwardError,
    batch_independence,
    conv_spectra,
    gradient_confusion,
    gradient_spp,
    jacobian_spectrum,
    spp,
)
from signalprop.report import _probe, html, plots
from signalprop.report._predict import predicted_spp
from signalprop.report._types import Measurements, ReportResult
from signalprop.report.diagnosis import diagnose

#: Lanczos steps and Hutchinson probes of the report's Jacobian spectrum
JACOBIAN_STEPS = 20
JACOBIAN_PROBES = 8


def _steps(progress: bool, total: int, desc: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not progress, leave=False)


def _loss_and_target(out: Any, seed: int) -> tuple[Any, Any]:
    """Cross-entropy on random labels for (B, K) logits, else MSE to a Gaussian target."""
    gen = torch.Generator().manual_seed(seed)
    if isinstance(out, torch.Tensor) and out.dim() == 2 and out.shape[1] > 1:
        return nn.CrossEntropyLoss(), torch.randint(0, out.shape[1], (out.shape[0],),
                                                    generator=gen)
    if isinstance(out, torch.Tensor):
        return nn.MSELoss(), torch.randn(out.shape, generator=gen, dtype=out.dtype)
    return None, None


def measure_all(model: nn.Module, x: torch.Tensor, label: str, *, seed: int = 0,
                progress: bool = False, jacobian_k: int = 4) -> Measurements:
    """Run every measurement of the report on ``model`` and diagnose the results.

    Args:
        model: the model, in the mode to measure (train mode: as in the SPP paper).
        x: a batch of at least 2 examples.
        label: its name on the page.
        seed: seed of the probes, targets and the perturbation.
        progress: show a progress bar over the steps.
        jacobian_k: largest / smallest singular values to report per example.

    Returns:
        :class:`Measurements`.

    Raises:
        ForwardError: the forward pass fails (the failing module is named).

    Examples:
        >>> import signalprop as sp
        >>> net = sp.models.mlp(depth=4, width=32)
        >>> m = measure_all(net, torch.randn(8, 32), "mlp")
        >>> m.summary["depth"], m.diagnoses
        (4, [])
    """
    bar = _steps(progress, 7, f"measuring {label}")
    res = spp(model, x, label=label)
    bar.update()
    names = [r.name for r in res.records]
    activation = _probe.activation_name(model)
    crit, chi = _probe.theory_numbers(model, activation, x)
    m = Measurements(label, res)
    m.summary = {
        "parameters": sum(p.numel() for p in model.parameters()),
        "depth": len(res.records),
        "block_types": _probe.block_types(model, names),
        "discovery": res.discovery,
        "activation": activation,
        "critical_sigma_w2": crit,
        "theory_chi_1": chi,
        "input_shape": tuple(x.shape),
        "mode": "train" if model.training else "eval",
    }
    m.prediction, note = predicted_spp(model, res, x)
    m.notes.append(note)
    bar.update()
    numel, out = _probe.block_numel(model, names, x)
    try:
        m.grad = gradient_spp(model, x, seed=seed, label=label)
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
            m.conv_spectra = conv_spectra(model, x[:1], label=label, seed=seed)
        except (ValueError, ForwardError, RuntimeError) as e:
            m.notes.append(f"convolution spectra not measured: {e}")
    bar.update()
    bar.close()
    m.diagnoses = diagnose(res, m.grad, m.independence, numel=numel, activation=activation,
                           critical_sigma_w2=crit, theory_chi_1=chi)
    return m


def _measure_confusion(m: Measurements, model: nn.Module, x: torch.Tensor, out: Any,
                       seed: int, bn: bool) -> None:
    """``m.confusion`` on random targets for the output ``out`` (or a note why not)."""
    loss_fn, y = _loss_and_target(out, seed)
    if loss_fn is None or x.shape[0] < 2:
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


def _measure_jacobian(m: Measurements, model: nn.Module, x: torch.Tensor, seed: int,
                      bn: bool, k: int) -> None:
    """``m.jacobian`` on the first two examples (or a note why not)."""
    try:
        # few Lanczos steps and trace probes: extremes to a few digits, affordable for a
        # ResNet-50 with 1000 outputs (the residual bounds say how accurate they are)
        m.jacobian = jacobian_spectrum(model, x[: min(2, x.shape[0])], k=k,
                                       steps=JACOBIAN_STEPS, probes=JACOBIAN_PROBES,
                                       seed=seed, batchnorm="eval" if bn else "auto",
                                       label=m.label)
    except (ValueError, ForwardError, RuntimeError) as e:
        m.notes.append(f"Jacobian spectrum not measured: {e}")


def _measure_independence(m: Measurements, model: nn.Module, x: torch.Tensor,
                          seed: int) -> None:
    """``m.independence`` for batches of 2+ examples (or a note why it was not checked)."""
    if x.shape[0] < 2:
        return
    try:
        ind = batch_independence(model, x, seed=seed, label=m.label)
        ind.meta["first_leak_type"] = {k: _probe.module_type(model, v)
                                       for k, v in ind.first_leak.items()}
        m.independence = ind
    except (ValueError, ForwardError, RuntimeError) as e:
        m.notes.append(f"batch independence not checked: {e}")


def apply_fix(model: nn.Module, before: Measurements) -> tuple[nn.Module | None, str]:
    """The fixed model: NF conversion for BatchNorm or residual networks, the critical
    initialization for plain ones; ``(None, reason)`` when neither applies.

    Args:
        model: the model as given (left unchanged).
        before: its measurements (they tell residual from plain).

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

    residual = any(r.res_var is not None for r in before.spp.records)
    activation = before.summary.get("activation")
    if residual or _probe.has_batchnorm(model):
        try:
            fixed, conversion = to_normfree(model)
        except ConversionError as e:
            return None, f"to_normfree could not convert the model: {e}"
        return fixed, f"sp.convert.to_normfree(model)\n{conversion}"
    if activation:
        fixed = copy.deepcopy(model)
        sw2 = critical_(fixed, activation)
        return fixed, (f'sp.nn.init.critical_(model, "{activation}"): every Linear/Conv '
                       f"re-drawn with sigma_w^2 = {sw2:.4g}")
    return None, "no automatic fix: the model has no residual blocks and no known activation"


def build_report(
    model: nn.Module,
    x: torch.Tensor,
    out: str | Path,
    *,
    fix: bool = False,
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
        x: a batch of at least 2 examples.
        out: output directory (created).
        fix: also apply the fix and compare.
        label: the model's name on the page (default: its class name).
        seed: seed of the probes, targets and the perturbation.
        progress: show progress bars in the terminal.

    Returns:
        :class:`ReportResult`.

    Raises:
        ValueError: ``x`` is not a floating tensor with at least 2 examples.
        ForwardError: the forward pass fails.

    Examples:
        >>> import signalprop as sp
        >>> net = sp.models.resnetv2([1, 1], norm="none", stem="cifar", width=0.25)
        >>> r = build_report(net, torch.randn(4, 3, 16, 16), "report")
        >>> r.path.name, "mean_shift" in [d.kind for d in r.diagnoses]
        ('report.html', True)
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 1 \
            or x.shape[0] < 2:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError("x must be a floating-point tensor with at least 2 examples on its "
                         f"first axis, got {got}")
    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    label = label or type(model).__name__
    before = measure_all(model, x, label, seed=seed, progress=progress)
    after, fix_summary = None, ""
    if fix:
        fixed, fix_summary = apply_fix(model, before)
        if fixed is not None:
            fixed.train(model.training)
            after = measure_all(fixed, x, f"{label} (fixed)", seed=seed, progress=progress)
    images = plots.write_all(before, after, out)
    result = ReportResult(out / "report.html", images, before, after, fix_summary)
    result.seconds = time.perf_counter() - t0
    page = html.render(result)
    tmp = out / "report.html.tmp"
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out / "report.html")
    result.save(out / "report.json")
    return result
