"""``conv_spectrum``: every singular value of a convolution layer, or certified bounds.

Which method ``"auto"`` picks, first that applies:

1. ``"fft"``: circular padding whose output is the input divided by the stride (the
   operator is a circular convolution): exact, one small SVD per frequency (Sedghi et
   al. 2019, with the polyphase reduction for strides).
2. ``"pointwise"``: a kernel with one live tap per axis (1 x 1 kernels, or a 3 x 3 kernel
   on a 1 x 1 input): the layer applies the channel matrix to distinct pixels, so its
   singular values are that matrix's, repeated once per output that reads a real pixel,
   and zeros.
3. ``"dense"``: the explicit operator (written from the kernel: each output reads its
   inputs through the taps) when it is small (``AUTO_DENSE_SIDE``, ``AUTO_DENSE``): exact.
4. ``"bounds"``: otherwise (zero, reflect or replicate padding on large inputs).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn as nn

from signalprop._fourier import frequency_matrices, polyphase_kernel
from signalprop.measure._options import (
    check_bool,
    check_choice,
    check_int,
    check_label,
    check_seed,
)
from signalprop.measure.spectra import _conv_bounds
from signalprop.measure.spectra._conv_fft import extremes, spectrum
from signalprop.measure.spectra._conv_layer import (
    ConvOperator,
    Products,
    conv_operator,
    dense_matrix,
    per_example,
)
from signalprop.results.conv_spectra import ConvSpectrumResult

METHODS = ("auto", "fft", "pointwise", "dense", "bounds")
#: "auto" builds the dense operator when its smaller side is at most AUTO_DENSE_SIDE and it
#: has at most AUTO_DENSE entries (a 1024 x 1024 Gram eigenproblem: ~0.1 s)
AUTO_DENSE_SIDE = 1024
AUTO_DENSE = 1 << 22
#: method="dense" refuses operators with more entries than this by default (1 GiB)
MAX_DENSE = 1 << 27


def _circular_exact(op: ConvOperator) -> bool:
    return op.mode == "circular" and all(
        n % s == 0 and o == n // s
        for n, o, s in zip(op.in_shape[1:], op.out_shape[1:], op.stride))


def _live(op: ConvOperator) -> list[tuple[list[int], list[int]]]:
    """Per axis: (taps that read a real input pixel, per tap the outputs that do)."""
    per_axis = []
    for n, o, k, s, dil, (left, _) in zip(op.in_shape[1:], op.out_shape[1:],
                                          op.weight.shape[2:], op.stride, op.dilation, op.pad):
        counts = [sum(0 <= s * i + dil * a - left < n for i in range(o)) for a in range(k)]
        per_axis.append(([a for a in range(k) if counts[a]], counts))
    return per_axis


def _pointwise_tap(op: ConvOperator) -> tuple[tuple[int, ...], int] | None:
    """The single live tap and how many outputs read a real pixel with it, or None."""
    live = _live(op)
    if any(len(taps) != 1 for taps, _ in live):
        return None
    if op.mode != "zeros" and any(counts[taps[0]] != o for (taps, counts), o
                                  in zip(live, op.out_shape[1:])):
        return None  # a copied (not zero) border pixel would be read twice
    tap = tuple(taps[0] for taps, _ in live)
    return tap, math.prod(counts[taps[0]] for taps, counts in live)


Blocks = tuple[torch.Tensor, torch.Tensor, int, dict[str, Any]]


def _pointwise(op: ConvOperator, tap: tuple[int, ...], reads: int) -> Blocks:
    w = op.weight[(slice(None), slice(None), *tap)].contiguous()  # (M, Cg)
    g = op.groups
    mats = w.reshape(g, 1, w.shape[0] // g, w.shape[1])
    zeros = op.n_values - reads * g * min(mats.shape[2:])
    return mats, torch.tensor([float(reads)], dtype=torch.float64), zeros, {
        "tap": list(tap), "pixels_read": reads}


def _fft(op: ConvOperator) -> Blocks:
    grid = tuple(n // s for n, s in zip(op.in_shape[1:], op.stride))
    kernel = polyphase_kernel(op.weight, op.stride, op.dilation,
                              tuple(-left for left, _ in op.pad), grid)
    mats, weight = frequency_matrices(kernel, op.groups)
    return mats, weight, 0, {"frequencies": int(weight.sum()), "matrix": list(mats.shape[2:])}


def _dense(op: ConvOperator, limit: int) -> Blocks:
    entries = op.rows * op.cols
    if entries > limit:
        raise ValueError(
            f"method='dense' would build a {op.rows} x {op.cols} matrix ({entries:,} float64 "
            f"entries, {entries * 8 / 2**30:.2f} GiB), above max_dense={limit:,}; use "
            "method='bounds' (or 'fft' with circular padding), or raise max_dense")
    mats = dense_matrix(op).reshape(1, 1, op.rows, op.cols)
    return mats, torch.ones(1, dtype=torch.float64), 0, {"matrix": [op.rows, op.cols]}


def _exact(blocks: Blocks, values: bool) -> tuple[float, float, tuple, tuple, Any, dict]:
    """Extremes, their intervals and (``values``) every singular value of the blocks."""
    mats, weight, zeros, meta = blocks
    if values:
        smax, smin, vals = spectrum(mats, weight, values=True)
        if zeros:
            vals = torch.cat([vals, torch.zeros(zeros, dtype=vals.dtype)])
            smin = 0.0
        return smax, smin, (smax, smax), (smin, smin), vals, {**meta, "solver": "svd"}
    smax, smin, smax_iv, smin_iv = extremes(mats)
    if zeros:
        smin, smin_iv = 0.0, (0.0, 0.0)
    return smax, smin, smax_iv, smin_iv, None, {**meta, "solver": "gram eigenvalues"}


@contextlib.contextmanager
def _frozen(conv: nn.Module) -> Iterator[None]:
    """The layer in eval mode for the call: a weight parametrization such as
    ``spectral_norm`` runs a power-iteration step on every read in train mode (changing
    its buffers and the weight between two reads); in eval mode every read is the same."""
    modes = [(m, m.training) for m in conv.modules()]
    conv.eval()
    try:
        yield
    finally:
        for m, mode in modes:
            m.training = mode


def _check_module(conv: nn.Module, op: ConvOperator) -> None:
    """The module's forward must be the operator (plus bias): catches conv subclasses whose
    forward changes the kernel in ways the extraction does not know."""
    p = next(conv.parameters(), None)
    dtype = p.dtype if p is not None and p.is_floating_point() else torch.float32
    shape = op.out_shape if op.transposed else op.in_shape
    x = torch.randn((1, *shape), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = x.to(dtype).to(torch.float64)  # what the layer sees: the reference reads the same
    with torch.no_grad():
        y = conv(x.to(dtype=dtype, device=p.device if p is not None else "cpu"))
        y = y.to(torch.float64).cpu()
        if getattr(conv, "bias", None) is not None:
            y = y - conv.bias.detach().to(torch.float64).cpu().reshape(1, -1, *[1] * op.d)
    ref = Products(op).adjoint(x.reshape(1, -1)) if op.transposed else op.apply(x)
    ref = ref.reshape(y.shape)
    # float64: rounding only; float32: summation order; half types: the output's rounding
    tol = 1e-9 if dtype == torch.float64 else max(1e-3, 2 * torch.finfo(dtype).eps)
    if float((y - ref).norm()) > tol * max(float(ref.norm()), 1e-30):
        raise ValueError(f"{type(conv).__name__}'s forward is not the convolution by its "
                         "weight (a subclass with its own forward?); conv_spectrum supports "
                         "nn.ConvNd, ConvTransposeNd, Scaled WS and quantized convolutions "
                         "and OrthoConv2d")


def conv_spectrum(
    conv: nn.Module,
    input_shape: tuple[int, ...],
    *,
    method: str = "auto",
    values: bool = True,
    steps: int = 30,
    seed: int = 0,
    max_dense: int = MAX_DENSE,
    label: str | None = None,
) -> ConvSpectrumResult:
    """All singular values of the linear map a convolution layer applies to inputs of
    ``input_shape`` (float64), or certified bounds on the extremes.

    Supports Conv1d/2d/3d and their subclasses (Scaled WS: the standardized kernel;
    quantized ``QuantConv1d/2d``: the quantized kernel Q(w), refused with binary inputs,
    which make the layer nonlinear), ConvTranspose1d/2d/3d (the adjoint of a convolution:
    same singular values) and :class:`signalprop.nn.OrthoConv2d`, with any channels,
    groups, kernel shape, dilation, stride, input shape and padding mode (zeros, circular,
    reflect, replicate), in any floating dtype (the kernel is read in float64). The bias
    is ignored.

    Args:
        conv: the layer.
        input_shape: one example's shape (C, *spatial), or with a batch axis first.
        method: ``"auto"`` (the cheapest exact method that applies, else ``"bounds"``),
            ``"fft"`` (circular padding, output = input / stride), ``"pointwise"`` (one
            live tap), ``"dense"`` (explicit operator) or ``"bounds"``.
        values: keep every singular value (exact methods) in ``singular_values``, computed
            by SVDs; with ``False`` only the extremes are found, from the eigenvalues of
            Gram matrices (faster; the intervals then hold their rounding error).
        steps: Lanczos steps of ``"bounds"``.
        seed: seed of the Lanczos start vector.
        max_dense: largest operator (rows x cols entries) ``"dense"`` builds.
        label: the result's label (default: the layer's class name).

    Returns:
        :class:`~signalprop.results.ConvSpectrumResult`.

    Raises:
        ValueError: an unsupported layer or padding, a bad input shape, an unknown method, a
            method that does not apply (its reason), or ``"dense"`` above ``max_dense``
            (raised before anything is allocated, with the matrix size).
        NonFiniteError: the kernel holds NaN/Inf.

    Examples:
        >>> conv = nn.Conv2d(4, 4, 3, padding=1, padding_mode="circular", bias=False)
        >>> r = conv_spectrum(conv, (4, 8, 8))
        >>> r.method, r.exact, r.n_values, len(r.singular_values)
        ('fft', True, 256, 256)
        >>> d = conv_spectrum(conv, (4, 8, 8), method="dense")
        >>> bool(torch.allclose(r.singular_values, d.singular_values, atol=1e-12))
        True

    References:
        Sedghi, Gupta & Long, "The singular values of convolutional layers", ICLR 2019;
        Achour, Malgouyres & Mamalet, JMLR 2022 (strided layers as polyphase ones).
    """
    method = check_choice("method", method, METHODS)
    steps = check_int("steps", steps, low=1)  # type: ignore[assignment]
    seed, label = check_seed(seed), check_label(label)
    max_dense = check_int("max_dense", max_dense, low=1)  # type: ignore[assignment]
    values = check_bool("values", values)
    from signalprop.nn.orthogonal import OrthoConv2d

    t0 = time.perf_counter()
    if isinstance(conv, OrthoConv2d):
        return _ortho(conv, input_shape, method, values, label, t0)
    with _frozen(conv):
        op = conv_operator(conv, input_shape)
        _check_module(conv, op)
    chosen, why = _choose(op, method, max_dense)
    name, layer = label or type(conv).__name__, repr(conv)
    shapes = (_shape(op, True), _shape(op, False))
    if chosen == "bounds":
        hi = _conv_bounds.sigma_max_upper(op)
        lo, smin, used = _conv_bounds.lanczos_extremes(op, steps, seed)
        return ConvSpectrumResult(name, layer, *shapes, "bounds", False, op.n_values, lo, smin,
                                  (lo, max(hi, lo)), (0.0, smin),
                                  meta={"lanczos_steps": used, "why": why,
                                        "seconds": time.perf_counter() - t0})
    if chosen == "fft":
        blocks = _fft(op)
    elif chosen == "pointwise":
        found = _pointwise_tap(op)
        assert found is not None  # _choose checked
        blocks = _pointwise(op, *found)
    else:
        blocks = _dense(op, max_dense)
    smax, smin, smax_iv, smin_iv, vals, meta = _exact(blocks, values)
    meta.update(why=why, seconds=time.perf_counter() - t0)
    return ConvSpectrumResult(name, layer, *shapes, chosen, True, op.n_values, smax, smin,
                              smax_iv, smin_iv, vals, meta)


def _shape(op: ConvOperator, inp: bool) -> tuple[int, ...]:
    """The layer's own input (or output) shape: a ConvTranspose's are swapped."""
    return op.out_shape if inp == op.transposed else op.in_shape


def _choose(op: ConvOperator, method: str, max_dense: int) -> tuple[str, str]:
    circular = _circular_exact(op)
    tap = _pointwise_tap(op) if not circular else None
    if method == "fft" and not circular:
        raise ValueError("method='fft' needs circular padding with an output of size "
                         f"input / stride; this layer has {op.mode} padding {list(op.pad)}, "
                         f"input {op.in_shape[1:]}, output {op.out_shape[1:]}, stride "
                         f"{list(op.stride)}; use method='auto'")
    if method == "pointwise" and tap is None:
        raise ValueError("method='pointwise' needs a kernel with one live tap per axis "
                         f"(taps reading real pixels: {[t for t, _ in _live(op)]}); use "
                         "method='auto'")
    if method != "auto":
        return method, "requested"
    if circular:
        return "fft", "circular padding: a circular convolution"
    if tap is not None:
        return "pointwise", "one live tap: a channel matrix applied to distinct pixels"
    if op.n_values <= AUTO_DENSE_SIDE and op.rows * op.cols <= min(AUTO_DENSE, max_dense):
        return "dense", f"{op.rows} x {op.cols} operator: small enough for a dense SVD"
    return "bounds", (f"{op.mode} padding and a {op.rows} x {op.cols} operator: too large "
                      "for a dense SVD")


def _ortho(conv: nn.Module, input_shape: Any, method: str, values: bool,
           label: str | None, t0: float) -> ConvSpectrumResult:
    if method not in ("auto", "fft"):
        raise ValueError(f"OrthoConv2d is a Fourier-domain layer: use method='fft' or "
                         f"'auto', got {method!r}")
    shape = per_example(input_shape, 2, "OrthoConv2d")
    if shape[0] != conv.in_channels:
        raise ValueError(f"OrthoConv2d takes {conv.in_channels} input channels, but "
                         f"input_shape {shape} has {shape[0]}")
    with torch.no_grad():
        mats, weight = conv.frequency_matrices(shape[1:])
    mats = mats.detach().to(torch.complex128)
    smax, smin, smax_iv, smin_iv, vals, meta = _exact((mats, weight, 0, {}), values)
    out = (conv.out_channels, *(n // s for n, s in zip(shape[1:], conv.stride)))
    n_values = min(math.prod(out), math.prod(shape))
    meta.update(frequencies=int(weight.sum()), why="Fourier-domain layer",
                seconds=time.perf_counter() - t0)
    return ConvSpectrumResult(label or type(conv).__name__, repr(conv), shape, out, "fft", True,
                              n_values, smax, smin, smax_iv, smin_iv, vals, meta)
