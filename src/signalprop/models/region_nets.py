"""Networks with many linear regions by construction, and random ternary MLPs.

* :func:`relu_region_net`: the lower-bound construction of Montufar et al. (2014) and
  Serra et al. (2018): every hidden layer folds each input coordinate with a zigzag of t
  teeth, so L layers make prod_l t_l pieces per coordinate.
* :func:`ternary_region_net`: the same folding with every weight in {-1, 0, +1} (real,
  here integer, biases), after Nakahara, Kobayashi & Matsushima (arXiv 2507.16079).
* :func:`ternary_mlp`: a random MLP whose Linear weights are ternary (the TWN rule of Li
  & Liu 2016 applied to a He-normal draw), for region statistics at initialization.

Each construction is a :class:`RegionNet` (an ``nn.Sequential``) that knows its input
``domain`` (a cube, the same interval for every coordinate) and how many ``regions`` it
has there (:mod:`signalprop.theory.regions` counts them); ``signalprop.measure`` counts
them exactly.

The ternary networks are plain ``nn.Linear`` layers whose weights hold -1, 0 or +1.
NOTE: ``signalprop.nn``'s quantized layers (being written) can replace them: a ternary
Linear with scale alpha computes alpha T x + b, which has the regions of T x + b / alpha
(see :func:`ternary_mlp`), so its weights can be loaded into these models unchanged.

Examples:
    >>> import torch
    >>> net = ternary_region_net([3, 3])
    >>> net.domain, net.regions, sorted(set(net[0].weight.flatten().tolist()))
    ((0.0, 3.0), 9, [1.0])
    >>> net(torch.tensor([[0.5], [1.5]], dtype=torch.float64)).flatten().tolist()
    [0.5, 0.5]
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn as nn

from signalprop.theory.regions import (
    COPIES,
    relu_construction_count,
    relu_teeth,
    ternary_construction_count,
)


class RegionNet(nn.Sequential):
    """An ``nn.Sequential`` built to have a known number of linear regions.

    Attributes:
        domain: (lo, hi): the construction lives on the cube [lo, hi]^input_dim.
        teeth: zigzag teeth per coordinate of each folding layer.
        input_dim: input size.
        regions: linear regions inside the domain cube.

    Examples:
        >>> net = relu_region_net([3])
        >>> isinstance(net, RegionNet), net.domain, net.regions
        (True, (0.0, 1.0), 4)
    """

    def __init__(self, layers: OrderedDict[str, nn.Module], domain: tuple[float, float],
                 teeth: list[int], input_dim: int, regions: int) -> None:
        super().__init__(layers)
        self.domain, self.teeth, self.input_dim, self.regions = domain, teeth, input_dim, regions


def _zigzag(m: int) -> tuple[list[float], list[int], list[float], float]:
    """m neurons folding [0, 1] onto itself: (breakpoints b_j, signs s_j, output
    coefficients a_j, output bias c) with neuron j = ReLU(s_j (t - b_j)) and
    g(t) = sum_j a_j neuron_j + c.

    m >= 3: m + 1 teeth of widths w_0 (w_2 = w_3 = 2 w_0); neuron 3 is ReLU(b_3 - t),
    which gives tooth 0 its slope (1 / w_0 = 1 / w_2 + 1 / w_3). m < 3: m equal teeth with
    b_1 = 0.
    """
    if m >= 3:
        w = [1.0] * (m + 1)
        w[2] = w[3] = 2.0
        total = sum(w)
        w = [v / total for v in w]
        b = [sum(w[:j]) for j in range(1, m + 1)]
        signs = [1] * m
        signs[2] = -1
    else:
        w = [1.0 / m] * m
        b = [j / m for j in range(m)]
        signs = [1] * m
    slopes = [(-1) ** j / wj for j, wj in enumerate(w)]
    # neuron j changes the slope at b_j by a_j; ReLU(t - b_1) with b_1 = 0 starts tooth 0
    a = [slopes[j + 1] - slopes[j] for j in range(m)] if m >= 3 else \
        [slopes[0]] + [slopes[j] - slopes[j - 1] for j in range(1, m)]
    c = -a[2] * b[2] if m >= 3 else 0.0  # g(0) = 0: only ReLU(b_3 - t) is on at t = 0
    return b, signs, a, c


def relu_region_net(widths: Sequence[int], input_dim: int = 1, *,
                    dtype: torch.dtype = torch.float64) -> RegionNet:
    """The folding construction behind the ReLU lower bounds, on the domain [0, 1]^n_0.

    Hidden layer l gives each input coordinate m = floor(n_l / n_0) neurons that fold its
    signal with a zigzag of t = m + 1 teeth (m >= 3; Serra et al. 2018) or m teeth
    (Montufar et al. 2014); spare neurons are switched off. Each tooth maps onto [0, 1], so
    the domain is cut into prod_l t_l pieces per coordinate, a grid of
    (prod_l t_l)^n_0 regions; for n_0 = 1 and n_l >= 3 that is prod_l (n_l + 1), the
    maximal number (:func:`signalprop.theory.region_bounds`). The output sums the
    coordinates' last zigzags.

    Args:
        widths: hidden widths n_1, ..., n_L (each >= input_dim).
        input_dim: n_0.
        dtype: parameter precision (float64: the breakpoints are exact enough to count).

    Returns:
        A :class:`RegionNet` (Linear, ReLU, ..., Linear to one output).

    Raises:
        ValueError: empty widths or a width below ``input_dim``.

    Examples:
        >>> net = relu_region_net([3, 3])
        >>> net.regions, net.domain, net.teeth
        (16, (0.0, 1.0), [4, 4])
    """
    widths = list(widths)
    regions = relu_construction_count(widths, input_dim)  # validates
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    fan_in, prev = input_dim, None  # prev: (a, c, m) of the previous zigzag
    for layer, n in enumerate(widths):
        m = n // input_dim
        b, signs, a, c = _zigzag(m)
        lin = nn.Linear(fan_in, n, dtype=dtype)
        with torch.no_grad():
            lin.weight.zero_()
            lin.bias.fill_(-1.0)  # spare neurons: always off
            for i in range(input_dim):  # coordinate i's group
                for j in range(m):
                    row = i * m + j
                    if prev is None:
                        lin.weight[row, i] = signs[j]
                        lin.bias[row] = -signs[j] * b[j]
                    else:  # t = sum_k a_k h_k + c of the previous group
                        pa, pc, pm = prev
                        lin.weight[row, i * pm:(i + 1) * pm] = signs[j] * torch.tensor(
                            pa, dtype=dtype)
                        lin.bias[row] = signs[j] * (pc - b[j])
        layers[f"fc{layer}"] = lin
        layers[f"act{layer}"] = nn.ReLU()
        fan_in, prev = n, (a, c, m)
    head = nn.Linear(fan_in, 1, dtype=dtype)
    pa, pc, pm = prev  # type: ignore[misc]
    with torch.no_grad():
        head.weight.zero_()
        for i in range(input_dim):
            head.weight[0, i * pm:(i + 1) * pm] = torch.tensor(pa, dtype=dtype)
        head.bias.fill_(pc * input_dim)
    layers["head"] = head
    teeth = [relu_teeth(n, input_dim) for n in widths]
    return RegionNet(layers, (0.0, 1.0), teeth, input_dim, regions)


def _ternary_group(k: int) -> tuple[list[int], list[int]]:
    """Thresholds and output signs of the 2k - 1 neurons of a unit-slope zigzag with k
    teeth on [0, k]: T(t) = ReLU(t) + sum_{j=1}^{k-1} (-1)^j (ReLU(t - j) + ReLU(t - j))."""
    thresholds, signs = [0], [1]
    for j in range(1, k):
        thresholds += [j, j]
        signs += [(-1) ** j] * 2
    return thresholds, signs


def ternary_region_net(teeth: Sequence[int], input_dim: int = 1, *, copies: str = "identity",
                       dtype: torch.dtype = torch.float64) -> RegionNet:
    """A network with weights in {-1, 0, +1} (integer biases) and prod_l k_l^n_0 regions
    on the domain [0, k_1]^n_0.

    ReLU layer l holds, per input coordinate, the 2 k_l - 1 neurons of a unit-slope zigzag
    T(t) = ReLU(t) + sum_{j<k_l} (-1)^j 2 ReLU(t - j) of k_l teeth on t in [0, k_l] (the
    factor 2 is two copies of a neuron), each tooth mapping onto [0, 1]. Layer l + 1 needs
    t = k_{l+1} T, the sum of k_{l+1} copies of T, which with ternary weights takes
    either

    * ``copies="identity"``: a Linear layer of width n_0 k_{l+1} after the ReLU layer
      (twice the depth; ReLU width 2 k - 1 per coordinate, about twice the general
      network's k - 1 for k teeth);
    * ``copies="relu"``: the same layer followed by a ReLU (T >= 0, so nothing changes:
      a ReLU-only network of twice the depth);
    * ``copies="width"``: k_{l+1} copies of ReLU layer l's neurons (ReLU layers only, width
      n_0 k_{l+1} (2 k_l - 1): about the square of the general network's width).

    Compare the general ReLU network of widths k_l - 1, which has the same prod_l k_l^n_0
    regions (:func:`relu_region_net`): this is the sense in which doubling the width and
    then doubling the depth or squaring the width lets a ternary network match it
    (Nakahara, Kobayashi & Matsushima, arXiv 2507.16079).

    Args:
        teeth: k_1, ..., k_L (each >= 1).
        input_dim: n_0.
        copies: "identity", "relu" or "width" (see above).
        dtype: parameter precision.

    Returns:
        A :class:`RegionNet`; every Linear weight is -1, 0 or +1.

    Raises:
        ValueError: bad teeth, input_dim or copies.

    Examples:
        >>> net = ternary_region_net([2, 3], copies="width")
        >>> net.regions, [m.out_features for m in net if isinstance(m, nn.Linear)]
        (6, [9, 5, 1])
    """
    ks = list(teeth)
    if not ks or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in ks):
        raise ValueError(f"teeth must be a non-empty list of integers >= 1, got {teeth!r}")
    if copies not in COPIES:
        raise ValueError(f"copies must be one of {COPIES}, got {copies!r}")
    regions = ternary_construction_count(ks, input_dim)
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    # per coordinate: (column, sign) of the previous layer whose signed sum is its signal
    source: list[list[tuple[int, int]]] = [[(i, 1)] for i in range(input_dim)]
    fan_in = input_dim
    for layer, k in enumerate(ks):
        nxt = ks[layer + 1] if layer + 1 < len(ks) else 1
        reps = nxt if copies == "width" else 1
        lin, zigzag = _ternary_relu_layer(fan_in, source, k, reps, dtype)
        layers[f"fc{layer}"], layers[f"act{layer}"] = lin, nn.ReLU()
        fan_in, source = lin.out_features, zigzag  # zigzag: reps copies of T per coordinate
        if layer + 1 == len(ks) or copies == "width":
            continue
        copy = _copy_layer(fan_in, zigzag, nxt, dtype)
        layers[f"copy{layer}"] = copy
        if copies == "relu":
            layers[f"copy_act{layer}"] = nn.ReLU()
        fan_in = copy.out_features
        source = [[(i * nxt + r, 1) for r in range(nxt)] for i in range(input_dim)]
    head = nn.Linear(fan_in, 1, dtype=dtype)
    _set(head, [[(0, col, sign) for src in source for col, sign in src]], [0.0])
    layers["head"] = head
    return RegionNet(layers, (0.0, float(ks[0])), ks, input_dim, regions)


def _set(lin: nn.Linear, rows: list[list[tuple[int, int, int]]], bias: list[float]) -> None:
    """Zero ``lin`` and set the listed (row, column, value) weights and the biases."""
    with torch.no_grad():
        lin.weight.zero_()
        for entries in rows:
            for row, col, value in entries:
                lin.weight[row, col] = value
        if lin.bias is not None:
            lin.bias.copy_(torch.tensor(bias, dtype=lin.bias.dtype))


def _ternary_relu_layer(fan_in: int, source: list[list[tuple[int, int]]], k: int, reps: int,
                        dtype: torch.dtype) -> tuple[nn.Linear, list[list[tuple[int, int]]]]:
    """``reps`` copies, per coordinate, of the 2k - 1 zigzag neurons reading the signal
    ``source``; returns the layer and, per coordinate, the (row, sign) whose signed sum is
    reps * T."""
    thresholds, signs = _ternary_group(k)
    g = len(thresholds)
    n = len(source) * reps * g
    rows, bias, zigzag = [], [0.0] * n, []
    for i, src in enumerate(source):
        cols: list[tuple[int, int]] = []
        for r in range(reps):
            for j, (th, s) in enumerate(zip(thresholds, signs)):
                row = (i * reps + r) * g + j
                rows.append([(row, col, sign) for col, sign in src])
                bias[row] = -float(th)
                cols.append((row, s))
        zigzag.append(cols)
    lin = nn.Linear(fan_in, n, dtype=dtype)
    _set(lin, rows, bias)
    return lin, zigzag


def _copy_layer(fan_in: int, zigzag: list[list[tuple[int, int]]], nxt: int,
                dtype: torch.dtype) -> nn.Linear:
    """A Linear layer (no bias) holding ``nxt`` copies of every coordinate's zigzag T."""
    copy = nn.Linear(fan_in, len(zigzag) * nxt, bias=False, dtype=dtype)
    _set(copy, [[(i * nxt + r, row, s) for row, s in cols] for i, cols in enumerate(zigzag)
                for r in range(nxt)], [])
    return copy


def ternary_mlp(depth: int, width: int, in_features: int, out_features: int = 1, *,
                sigma_b2: float = 0.01, threshold: float = 0.7, seed: int = 0,
                dtype: torch.dtype = torch.float32) -> nn.Sequential:
    """A random ReLU MLP whose Linear weights are exactly -1, 0 or +1.

    Each layer draws W ~ N(0, 2 / fan_in) (He) and ternarizes it with the TWN rule (Li &
    Liu 2016): T = sign(W) [|W| > Delta], Delta = ``threshold`` * mean|W|, scale
    alpha = mean of |W| over the kept entries. The scaled network h_l = ReLU(alpha_l T_l
    h_{l-1} + b_l), b ~ N(0, sigma_b2), has exactly the regions of the stored one,
    ReLU(T_l h'_{l-1} + b_l / A_l) with A_l = alpha_1 ... alpha_l (h_l = A_l h'_l), so the
    stored weights are ternary and the biases carry the scale.

    Args:
        depth: hidden layers (>= 1).
        width: hidden width (>= 1).
        in_features: input size.
        out_features: size of the linear head.
        sigma_b2: bias variance of the scaled network (>= 0).
        threshold: TWN threshold factor (> 0).
        seed: seeds the draw.
        dtype: parameter precision.

    Returns:
        ``nn.Sequential`` named ``fc0, act0, ..., head``; ``model.scales`` holds alpha_l.

    Examples:
        >>> net = ternary_mlp(2, 16, in_features=4)
        >>> sorted(set(net.fc0.weight.flatten().tolist()))
        [-1.0, 0.0, 1.0]
    """
    for name, v in (("depth", depth), ("width", width), ("in_features", in_features),
                    ("out_features", out_features)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    if not (sigma_b2 >= 0 and math.isfinite(sigma_b2)):
        raise ValueError(f"sigma_b2 must be finite and >= 0, got {sigma_b2!r}")
    if not (threshold > 0 and math.isfinite(threshold)):
        raise ValueError(f"threshold must be finite and > 0, got {threshold!r}")
    gen = torch.Generator().manual_seed(seed)
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    scales: list[float] = []
    cumulative, fan_in = 1.0, in_features
    sizes = [(f"fc{i}", width) for i in range(depth)] + [("head", out_features)]
    for name, n in sizes:
        w = torch.randn(n, fan_in, generator=gen, dtype=torch.float64) * math.sqrt(2 / fan_in)
        delta = threshold * w.abs().mean()
        keep = w.abs() > delta
        alpha = float(w.abs()[keep].mean()) if keep.any() else 1.0
        cumulative *= alpha
        b = torch.randn(n, generator=gen, dtype=torch.float64) * math.sqrt(sigma_b2)
        lin = nn.Linear(fan_in, n, dtype=dtype)
        with torch.no_grad():
            lin.weight.copy_(torch.where(keep, torch.sign(w), torch.zeros_like(w)))
            lin.bias.copy_(b / cumulative)
        layers[name] = lin
        if name != "head":
            layers[name.replace("fc", "act")] = nn.ReLU()
        scales.append(alpha)
        fan_in = n
    net = nn.Sequential(layers)
    net.scales = scales
    return net
