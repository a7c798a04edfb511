"""When can a convolution layer be orthogonal? (Achour, Malgouyres & Mamalet, JMLR 2022).

A layer with C input channels, M output channels, kernel k^d and stride S maps
(C, SN, ..., SN) inputs to (M, N, ..., N) outputs: a matrix with M N^d rows and
C S^d N^d columns. It is *orthogonal* when its rows are orthonormal (RO case, M <= C S^d:
K K^T = Id, a dimensionality reduction) or its columns are (CO case, M >= C S^d:
K^T K = Id, an embedding). With circular padding (their Theorem 4, for SN >= k):

* RO case: an orthogonal layer exists if and only if M <= C k^d;
* CO case: an orthogonal layer exists if and only if S <= k.

Why (the argument generalizes to per-axis kernels, strides and dilations, and this module
uses that form): split the input into its S^d polyphase components; the layer becomes an
unstrided convolution from C S^d channels, of which only the phases a kernel tap ever
reads, C prod_i c_i with c_i = min(k_i, S_i / gcd(dilation_i, S_i)), are used. Rows can be
orthonormal only if M <= C prod c_i (rank), and then a kernel whose Fourier matrix is a
constant partial isometry is orthogonal; columns can be orthonormal only if every phase is
read (c_i = S_i), and then the same construction works. For square kernels, stride and no
dilation this is Theorem 4. Groups split the layer into independent ones with the same
verdict.

Other boundaries (Section 2.2 of the paper): with 'valid' convolution no orthogonal layer
exists in the CO case (their Proposition 5, stride 1; the same edge argument here covers
S < k and S > k, and a non-overlapping S = k tiling of an input that is a multiple of S is
the one exception); in the RO case every row is a whole kernel, so the circular
condition applies. With zero-padded 'same' convolution and stride 1 only trivial layers
are orthogonal: every tap but the centre one must vanish (their Proposition 6), i.e. the
layer is a 1 x 1 convolution by an M x C matrix with orthonormal rows or columns.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from signalprop.results.conv_spectra import Existence

PADDING_MODES = ("circular", "valid", "zeros")


def _per_axis(name: str, value: int | Sequence[int], d: int) -> tuple[int, ...]:
    vals = (value,) * d if isinstance(value, int) else tuple(value)
    if len(vals) != d or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1
                                 for v in vals):
        raise ValueError(f"{name} must be a positive integer or {d} of them (one per "
                         f"spatial axis), got {value!r}")
    return vals


def _case(m: int, c_s: int) -> str:
    return "square" if m == c_s else ("RO" if m < c_s else "CO")


def orthogonal_conv_exists(
    in_channels: int,
    out_channels: int,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] = 1,
    padding_mode: str = "circular",
    input_size: int | Sequence[int] | None = None,
    *,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    ndim: int | None = None,
) -> Existence:
    """Whether some kernel makes this convolution layer orthogonal, and why.

    Args:
        in_channels: C.
        out_channels: M.
        kernel_size: k, one integer or one per spatial axis.
        stride: S, one integer or one per spatial axis.
        padding_mode: ``"circular"`` (Theorem 4), ``"valid"`` (no padding) or ``"zeros"``
            (zero-padded 'same' size; only stride 1 is covered by the paper).
        input_size: spatial input size (one integer or one per axis); optional, it only
            checks the theorems' size conditions (and decides the 'valid' S = k case).
        dilation: one integer or one per spatial axis.
        groups: channel groups (each group is a layer of its own; same verdict).
        ndim: number of spatial axes d (default: from the tuples given, else 2).

    Returns:
        :class:`~signalprop.results.Existence` ``(exists, case, reason)``.

    Raises:
        ValueError: bad sizes, an unknown padding mode, channels not divisible by
            ``groups``, an input size the theorems do not cover (circular: not a multiple
            of the stride or smaller than the kernel), or zero padding with stride > 1
            (not covered).

    Examples:
        >>> orthogonal_conv_exists(64, 64, 3).exists
        True
        >>> e = orthogonal_conv_exists(64, 128, 1, stride=2)  # a ResNet strided shortcut
        >>> e.exists, e.case
        (False, 'RO')
        >>> orthogonal_conv_exists(16, 64, 1, stride=3).case
        'RO'

    References:
        Achour, Malgouyres & Mamalet, "Existence, Stability and Scalability of Orthogonal
        Convolutional Neural Networks", JMLR 23 (2022), Theorem 4, Propositions 5-6.
    """
    d = ndim if ndim is not None else next(
        (len(v) for v in (kernel_size, stride, dilation, input_size)
         if v is not None and not isinstance(v, int)), 2)
    if not isinstance(d, int) or d < 1:
        raise ValueError(f"ndim must be a positive integer, got {ndim!r}")
    k = _per_axis("kernel_size", kernel_size, d)
    s = _per_axis("stride", stride, d)
    dil = _per_axis("dilation", dilation, d)
    for name, v in (("in_channels", in_channels), ("out_channels", out_channels),
                    ("groups", groups)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"in_channels={in_channels} and out_channels={out_channels} must "
                         f"both be divisible by groups={groups}")
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"padding_mode={padding_mode!r} is not allowed; valid: "
                         f"{', '.join(PADDING_MODES)}")
    n = None if input_size is None else _per_axis("input_size", input_size, d)
    c, m = in_channels // groups, out_channels // groups
    span = tuple(di * (ki - 1) + 1 for ki, di in zip(k, dil))  # receptive field per axis
    c_s = c * math.prod(s)
    # phases of the input (per axis) that some tap reads: the effective input channels
    phases = tuple(min(ki, si // math.gcd(di, si)) for ki, si, di in zip(k, s, dil))
    meta = {"M": m, "C": c, "groups": groups, "C_S^d": c_s, "C_read": c * math.prod(phases),
            "kernel_size": list(k), "stride": list(s), "dilation": list(dil), "d": d}
    case = _case(m, c_s)
    if padding_mode == "circular":
        if n is not None:
            bad = [i for i in range(d) if n[i] % s[i] or n[i] < span[i]]
            if bad:
                i = bad[0]
                raise ValueError(f"input_size {n[i]} on axis {i} is outside Theorem 4: it must "
                                 f"be a multiple of the stride {s[i]} and at least the "
                                 f"receptive field {span[i]}")
        return _circular(m, c, c_s, phases, s, case, meta)
    if padding_mode == "valid":
        return _valid(m, c, c_s, k, s, dil, phases, n, case, meta)
    if any(si > 1 for si in s):
        raise ValueError(f"zero-padded 'same' convolution with stride {list(s)} is not "
                         "covered by Achour et al. (their Proposition 6 is for stride 1); "
                         "use padding_mode='circular' (Theorem 4) or 'valid'")
    return _zeros_same(m, c, k, case, meta)


def _circular(m: int, c: int, c_s: int, phases: tuple[int, ...], s: tuple[int, ...],
              case: str, meta: dict) -> Existence:
    c_read = c * math.prod(phases)
    if case in ("RO", "square") and m > c_read:
        return Existence(False, case, (
            f"RO case (M={m} <= C S^d={c_s}): the rows can be orthonormal only if "
            f"M <= C * (phases read) = {c_read} (M <= C k^d for a plain kernel), and "
            f"M={m} > {c_read}; use at most {c_read} output channels, or a kernel at "
            "least as large as the stride (then every phase is read)"), meta)
    if case in ("CO", "square") and c_read < c_s:
        axis = next(i for i, (p, si) in enumerate(zip(phases, s)) if p < si)
        return Existence(False, case, (
            f"CO case (M={m} >= C S^d={c_s}): the columns can be orthonormal only if "
            f"every input pixel is read (S <= k), but on axis {axis} the taps read "
            f"{phases[axis]} of the {s[axis]} stride phases; use a kernel at least as large "
            "as the stride (with a dilation coprime to it)"), meta)
    what = {"RO": "rows orthonormal, K K^T = Id", "CO": "columns orthonormal, K^T K = Id",
            "square": "an orthogonal square matrix"}[case]
    return Existence(True, case, (
        f"{case} case: an orthogonal circular convolution exists ({what}; M={m}, "
        f"C S^d={c_s}, input phases read {c_read}, Theorem 4)"), meta)


def _valid(m: int, c: int, c_s: int, k: tuple[int, ...], s: tuple[int, ...],
           dil: tuple[int, ...], phases: tuple[int, ...], n: tuple[int, ...] | None,
           case: str, meta: dict) -> Existence:
    if case == "CO":
        tiles = all(ki == si and (di == 1 or ki == 1) for ki, si, di in zip(k, s, dil))
        fits = n is None or all(ni % si == 0 for ni, si in zip(n, s))
        if tiles and fits:
            return Existence(True, case, (
                f"CO case with 'valid' padding: the stride equals the kernel, so the layer "
                f"applies one M x C k^d matrix to disjoint patches; it is orthogonal when "
                f"that matrix has orthonormal columns (M={m} >= C k^d={c_s})"), meta)
        return Existence(False, case, (
            f"CO case (M={m} >= C S^d={c_s}) with 'valid' padding: the border pixels are "
            "read by fewer taps than the interior ones, so the columns cannot all be "
            "orthonormal (Achour et al., Proposition 5); use circular padding, or a "
            "stride equal to the kernel on an input that is a multiple of it"), meta)
    c_read = c * math.prod(phases)
    if m > c_read:
        return Existence(False, case, (
            f"RO case (M={m} <= C S^d={c_s}) with 'valid' padding: the rows can be "
            f"orthonormal only if M <= C * (phases read) = {c_read}; use at most {c_read} "
            "output channels, or a kernel at least as large as the stride"), meta)
    return Existence(True, case, (
        f"RO case (M={m} <= C * phases read = {c_read}) with 'valid' padding: every row "
        "is a whole kernel, so a kernel with orthonormal rows under circular padding "
        "(Theorem 4) has them here too; K^T is an isometry, K is not injective at the "
        "border"), meta)


def _zeros_same(m: int, c: int, k: tuple[int, ...], case: str, meta: dict) -> Existence:
    # an M x C matrix always has orthonormal rows (M <= C) or columns (M >= C)
    what = {"RO": "rows", "CO": "columns", "square": "rows and columns"}[case]
    trivial = "" if all(ki == 1 for ki in k) else (
        "; possible, but only as this trivial layer: use circular padding for a "
        "non-trivial one")
    return Existence(True, case, (
        "zero-padded 'same' convolution, stride 1: orthogonal only if every tap but the "
        "one aligned with the output (the centre) vanishes (Achour et al., Proposition 6), "
        f"i.e. a 1 x 1 convolution by an M x C = {m} x {c} matrix with orthonormal {what}"
        + trivial), meta)
