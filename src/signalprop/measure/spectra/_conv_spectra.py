"""``conv_spectra``: the singular values of every convolution of a model, at the input
sizes a real forward gives them."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

import torch
import torch.nn as nn

from signalprop._forward import (
    ModelInput,
    buffers_restored,
    forward_or_locate,
    hooks_removed_after,
    module_names,
)
from signalprop.measure._discovery import BlockSpec, resolve_blocks
from signalprop.measure._options import (
    check_bool,
    check_choice,
    check_int,
    check_label,
    check_seed,
)
from signalprop.measure.spectra._conv_spectrum import MAX_DENSE, METHODS, conv_spectrum
from signalprop.results.conv_spectra import (
    ConvLayerSpectrum,
    ConvSpectraResult,
    ConvSpectrumResult,
)


def _is_conv(m: nn.Module) -> bool:
    from signalprop.nn.orthogonal import OrthoConv2d

    return isinstance(m, (nn.modules.conv._ConvNd, OrthoConv2d))


def _example_shape(conv: nn.Module, t: torch.Tensor) -> tuple[int, ...]:
    """One example's (C, *spatial) shape from a call's input: torch convolutions also take
    unbatched (C, *spatial) inputs."""
    spatial = len(getattr(conv, "kernel_size", (0, 0)))
    return tuple(t.shape) if t.dim() == spatial + 1 else tuple(t.shape[1:])


def _selected(model: nn.Module, blocks: BlockSpec) -> dict[int, str]:
    """id(module) -> name of the convolutions to measure."""
    if blocks is None:
        names = module_names(model)
        return {id(m): names[id(m)] or "<model>" for m in model.modules() if _is_conv(m)}
    plan = resolve_blocks(model, blocks)
    bad = [b.name for b in plan.blocks if not _is_conv(b.module)]
    if bad:
        raise ValueError(f"blocks selects {bad[0]!r}, which is not a convolution; conv_spectra "
                         "measures Conv1d/2d/3d, ConvTranspose and OrthoConv2d layers")
    return {id(b.module): b.name for b in plan.blocks}


def _one(name: str, mod: nn.Module, shape: tuple[int, ...], options: dict[str, Any],
         threads: int | None) -> ConvSpectrumResult:
    if threads is not None:  # in a worker: its own (thread-local) intra-op thread count
        torch.set_num_threads(threads)
    try:
        return conv_spectrum(mod, shape, values=False, label=name, **options)
    except ValueError as e:
        raise ValueError(f"layer {name!r}: {e}") from e


def _spectra(calls: list[tuple[str, nn.Module, tuple[int, ...]]], options: dict[str, Any],
             progress: bool) -> list[ConvSpectrumResult]:
    """conv_spectrum of every call, once per (module, input shape): a module called again on
    the same size reuses its result. The layers are independent and most of their time is
    spent in LAPACK (which releases the GIL) on matrices too small to use several cores
    well, so with T intra-op threads T layers run at once, one thread each (each result is
    what a one-thread run gives, bit for bit)."""
    from tqdm.auto import tqdm

    first: dict[tuple[int, tuple[int, ...]], int] = {}  # (module, shape) -> its job
    jobs = []
    for name, mod, shape in calls:
        if (id(mod), shape) not in first:
            first[(id(mod), shape)] = len(jobs)
            jobs.append((name, mod, shape))
    bar = tqdm(total=len(jobs), desc="conv spectra", disable=not progress, leave=False)
    workers = min(torch.get_num_threads(), len(jobs))
    try:
        if workers <= 1:
            out = []
            for name, mod, shape in jobs:
                out.append(_one(name, mod, shape, options, None))
                bar.update()
        else:
            with ThreadPoolExecutor(workers) as pool:
                futures = [pool.submit(_one, name, mod, shape, options, 1)
                           for name, mod, shape in jobs]
                for _ in as_completed(futures):
                    bar.update()
                out = [fut.result() for fut in futures]  # the first failing layer in order
    finally:
        bar.close()
    return [out[first[(id(mod), shape)]] for _, mod, shape in calls]


def conv_spectra(
    model: nn.Module,
    x: ModelInput,
    *,
    blocks: BlockSpec = None,
    method: str = "auto",
    steps: int = 30,
    max_dense: int = MAX_DENSE,
    seed: int = 0,
    label: str | None = None,
    progress: bool = False,
) -> ConvSpectraResult:
    """The spectrum (sigma_max, sigma_min, condition number) of every convolution call of
    ``model`` on one example of ``x``, each layer at the input size it receives.

    One forward (no gradients, buffers left as they were) records each convolution's input
    shape; then :func:`conv_spectrum` runs per call: exact (FFT for circular padding,
    pointwise kernels, dense SVD for small layers) where it can be, certified bounds
    otherwise. A module called twice gets two records (``name#2``).

    Args:
        model: any module.
        x: its input (a batch; only the per-example shapes matter).
        blocks: which convolutions: ``None`` for all, else names, types, modules or a
            predicate ``f(name, module)`` (see the API conventions); they must be
            convolutions.
        method: passed to :func:`conv_spectrum` for every layer.
        steps: Lanczos steps of the ``"bounds"`` layers.
        max_dense: largest operator ``"dense"`` builds.
        seed: seed of the Lanczos start vectors.
        label: the result's label (default: the model's class name).
        progress: a progress bar over the layers.

    Returns:
        :class:`~signalprop.results.ConvSpectraResult`, one record per conv call.

    Raises:
        ValueError: the model has no (selected) convolution, a bad option, or a layer that
            :func:`conv_spectrum` refuses (its message names the layer).
        ForwardError: the forward fails (the failing module is named).

    Examples:
        >>> net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
        ...                     nn.Conv2d(8, 8, 3, stride=2, padding=1, padding_mode="circular"))
        >>> res = conv_spectra(net, torch.randn(2, 3, 8, 8))
        >>> [(r.name, r.method, r.input_shape) for r in res.records]
        [('0', 'dense', (3, 8, 8)), ('2', 'fft', (8, 8, 8))]
        >>> res.records[1].sigma_min <= res.records[1].sigma_max
        True
    """
    method = check_choice("method", method, METHODS)
    steps = check_int("steps", steps, low=1)  # type: ignore[assignment]
    max_dense = check_int("max_dense", max_dense, low=1)  # type: ignore[assignment]
    seed, label = check_seed(seed), check_label(label)
    progress = check_bool("progress", progress)
    chosen = _selected(model, blocks)
    if not chosen:
        raise ValueError(f"{type(model).__name__} has no convolution to measure")
    t0 = time.perf_counter()
    calls: list[tuple[str, nn.Module, tuple[int, ...]]] = []
    seen: dict[int, int] = {}

    def hook(mod: nn.Module, args: Any) -> None:
        if id(mod) in chosen and args and isinstance(args[0], torch.Tensor):
            seen[id(mod)] = seen.get(id(mod), 0) + 1
            n = seen[id(mod)]
            name = chosen[id(mod)] + (f"#{n}" if n > 1 else "")
            calls.append((name, mod, _example_shape(mod, args[0])))

    with torch.no_grad(), buffers_restored(model), hooks_removed_after() as handles:
        handles.append(nn.modules.module.register_module_forward_pre_hook(hook))
        forward_or_locate(model, x, handles)
    options = {"method": method, "steps": steps, "seed": seed, "max_dense": max_dense}
    records = []
    for i, ((name, _, _), r) in enumerate(zip(calls, _spectra(calls, options, progress))):
        records.append(ConvLayerSpectrum(
            name, i, r.layer, r.input_shape, r.output_shape, r.method, r.exact, r.n_values,
            r.sigma_max, r.sigma_min, *r.sigma_max_bounds, *r.sigma_min_bounds))
    shape = tuple(x.shape) if isinstance(x, torch.Tensor) else None
    return ConvSpectraResult(label or type(model).__name__, records, shape,
                             {"method": method, "steps": steps,
                              "seconds": time.perf_counter() - t0})
