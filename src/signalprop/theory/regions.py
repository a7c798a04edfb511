"""How many linear regions can a ReLU network have? Known bounds, and the exact counts of
the constructions that reach them (exact integers; no NumPy needed).

A ReLU network with input dimension n_0 and hidden widths n_1, ..., n_L computes a
continuous piecewise-linear function; its linear regions are the maximal convex sets of
inputs on which every neuron keeps its state. The maximal number over all weights is
bounded by

* above: Serra, Tjandraatmadja & Ramalingam (ICML 2018, Theorem 1)
  sum over (j_1..j_L) in J of prod_l C(n_l, j_l),
  J = {0 <= j_l <= min(n_0, n_1 - j_1, ..., n_{l-1} - j_{l-1}, n_l)}; the simpler
  prod_l sum_{j <= d_l} C(n_l, j), d_l = min(n_0, ..., n_l) (Montufar 2017) is looser;
* below: prod_{l<L} floor(n_l/n_0)^{n_0} * sum_{j <= n_0} C(n_L, j) (Montufar, Pascanu, Cho
  & Bengio, NeurIPS 2014; needs n_l >= n_0), improved by Serra et al. (2018) to
  prod_{l<L} (floor(n_l/n_0) + 1)^{n_0} * sum_{j <= n_0} C(n_L, j) (needs n_l >= 3 n_0).

For n_0 = 1 and every n_l >= 3 the improved lower bound equals the upper bound: the maximum
is exactly prod_l (n_l + 1).

The constructions behind the lower bounds fold the input: each layer maps [0, 1] onto
itself t times with a zigzag of t teeth, so L layers give prod t_l pieces per input
coordinate (:func:`relu_construction_count`). With ternary weights in {-1, 0, +1} (and real
biases) a tooth has slope +-1, so a zigzag needs two neurons per breakpoint and the
next layer must add up t copies of it to rescale it: Nakahara, Kobayashi & Matsushima
(arXiv 2507.16079) show that ternary networks still reach regions polynomial in width and
exponential in depth, and that doubling the width, then squaring it or doubling the depth
(with identity layers between the ReLU layers) matches the general lower bound.
:func:`ternary_teeth` and :func:`ternary_construction_count` count the ternary
constructions that :func:`signalprop.models.ternary_region_net` builds.

NOTE: the ternary counts here are those of signalprop's construction (proved in the
docstrings below), which follows the paper's recipe; the constants of the paper's own
theorem could not be checked against its text.

Examples:
    >>> from signalprop import theory
    >>> b = theory.region_bounds([4, 4, 4], input_dim=1)
    >>> b.upper_serra, b.lower_serra, b.relu_construction
    (125, 125, 125)
    >>> b.ternary_identity, b.ternary_width   # ternary nets of the same ReLU widths
    (8, 1)
"""

from __future__ import annotations

from collections.abc import Sequence
from math import comb, prod

from signalprop.results.regions import RegionBoundsResult

COPIES = ("identity", "relu", "width")

REFERENCES = {
    "upper_serra": "Serra, Tjandraatmadja & Ramalingam, Bounding and counting linear regions "
                   "of deep neural networks (ICML 2018), Theorem 1",
    "upper_montufar": "Montufar, Notes on the number of linear regions of deep neural "
                      "networks (SampTA 2017)",
    "lower_montufar": "Montufar, Pascanu, Cho & Bengio, On the number of linear regions of "
                      "deep neural networks (NeurIPS 2014), deep rectifier lower bound",
    "lower_serra": "Serra, Tjandraatmadja & Ramalingam (ICML 2018), lower bound for "
                   "n_l >= 3 n_0",
    "relu_construction": "signalprop.models.relu_region_net: zigzag layers of "
                         "floor(n_l/n_0) + 1 teeth (floor(n_l/n_0) when below 3) per input",
    "ternary_identity": "signalprop.models.ternary_region_net(copies='identity'), after "
                        "Nakahara, Kobayashi & Matsushima (arXiv 2507.16079)",
    "ternary_width": "signalprop.models.ternary_region_net(copies='width'), after Nakahara, "
                     "Kobayashi & Matsushima (arXiv 2507.16079)",
}


def _check(widths: Sequence[int], input_dim: int) -> list[int]:
    ws = list(widths)
    if not ws or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in ws):
        raise ValueError(f"widths must be a non-empty list of integers >= 1, got {widths!r}")
    if isinstance(input_dim, bool) or not isinstance(input_dim, int) or input_dim < 1:
        raise ValueError(f"input_dim must be an integer >= 1, got {input_dim!r}")
    return ws


def _zaslavsky(n: int, d: int) -> int:
    """Regions of n hyperplanes in general position in R^d: sum_{j <= d} C(n, j)."""
    return sum(comb(n, j) for j in range(min(n, d) + 1))


def upper_bound_serra(widths: Sequence[int], input_dim: int) -> int:
    """Serra et al. (2018, Theorem 1): sum over J of prod_l C(n_l, j_l).

    Computed by dynamic programming over the running cap min(n_0, n_k - j_k, k < l).

    Examples:
        >>> upper_bound_serra([3, 3], 1), upper_bound_serra([2, 2], 2)
        (16, 11)
    """
    ws = _check(widths, input_dim)
    paths = {input_dim: 1}  # cap -> summed weight of the paths that reach it
    for n in ws:
        nxt: dict[int, int] = {}
        for cap, weight in paths.items():
            for j in range(min(cap, n) + 1):
                key = min(cap, n - j)
                nxt[key] = nxt.get(key, 0) + weight * comb(n, j)
        paths = nxt
    return sum(paths.values())


def upper_bound_montufar(widths: Sequence[int], input_dim: int) -> int:
    """Montufar (2017): prod_l sum_{j <= d_l} C(n_l, j), d_l = min(n_0, n_1, ..., n_l).

    Examples:
        >>> upper_bound_montufar([3, 3], 1), upper_bound_montufar([2, 2], 2)
        (16, 16)
    """
    ws = _check(widths, input_dim)
    d, out = input_dim, 1
    for n in ws:
        d = min(d, n)
        out *= _zaslavsky(n, d)
    return out


def lower_bound_montufar(widths: Sequence[int], input_dim: int) -> int | None:
    """Montufar et al. (2014): prod_{l<L} floor(n_l/n_0)^{n_0} * sum_{j <= n_0} C(n_L, j),
    for n_l >= n_0 (None otherwise).

    Examples:
        >>> lower_bound_montufar([3, 3], 1), lower_bound_montufar([1], 2)
        (12, None)
    """
    ws = _check(widths, input_dim)
    if min(ws) < input_dim:
        return None
    return prod((n // input_dim) ** input_dim for n in ws[:-1]) * _zaslavsky(ws[-1], input_dim)


def lower_bound_serra(widths: Sequence[int], input_dim: int) -> int | None:
    """Serra et al. (2018): prod_{l<L} (floor(n_l/n_0) + 1)^{n_0} * sum_{j <= n_0} C(n_L, j),
    for n_l >= 3 n_0 (None otherwise).

    Examples:
        >>> lower_bound_serra([3, 3], 1), lower_bound_serra([2], 1)
        (16, None)
    """
    ws = _check(widths, input_dim)
    if min(ws) < 3 * input_dim:
        return None
    return prod((n // input_dim + 1) ** input_dim for n in ws[:-1]) * _zaslavsky(ws[-1],
                                                                                  input_dim)


def relu_teeth(width: int, input_dim: int = 1) -> int:
    """Teeth per input coordinate of one layer of :func:`signalprop.models.relu_region_net`:
    m + 1 for m = floor(width / input_dim) >= 3 neurons per coordinate, else m.

    With m >= 3 neurons, breakpoints b_1 < ... < b_m in (0, 1) and one neuron of the form
    ReLU(b_3 - t) (the others ReLU(t - b_j)) give m + 1 teeth mapping [0, 1] onto itself;
    with fewer, ReLU(t - b_j) with b_1 = 0 give m teeth.

    Examples:
        >>> relu_teeth(3), relu_teeth(2), relu_teeth(7, input_dim=2)
        (4, 2, 4)
    """
    m = width // input_dim
    if m < 1:
        raise ValueError(f"width must be >= input_dim, got width={width}, "
                         f"input_dim={input_dim}")
    return m + 1 if m >= 3 else m


def relu_construction_count(widths: Sequence[int], input_dim: int = 1) -> int:
    """Regions of :func:`signalprop.models.relu_region_net`: prod_l relu_teeth(n_l)^{n_0}.

    The input coordinates are folded independently, so the regions form a grid of
    prod_l t_l cells per coordinate. For n_0 = 1 and n_l >= 3 this is prod_l (n_l + 1), the
    exact maximum.

    Examples:
        >>> relu_construction_count([3, 3, 3]), relu_construction_count([6, 6], input_dim=2)
        (64, 256)
    """
    ws = _check(widths, input_dim)
    return prod(relu_teeth(n, input_dim) for n in ws) ** input_dim


def ternary_teeth(widths: Sequence[int], input_dim: int = 1,
                  copies: str = "identity") -> list[int]:
    """Teeth per coordinate of each ReLU layer of the ternary construction whose ReLU
    layers have the given widths (the largest the construction fits).

    A ternary zigzag with k unit-slope teeth on [0, k] is
    T(t) = ReLU(t) + sum_{j=1}^{k-1} (-1)^j 2 ReLU(t - j): 2k - 1 neurons, all weights
    +-1 (the factor 2 is two copies of a neuron). It maps each tooth onto [0, 1]; the next
    layer needs k' T(t) on [0, k'], the sum of k' copies of T:

    * ``copies="identity"`` / ``"relu"``: a linear (or ReLU: T >= 0, so ReLU changes
      nothing) layer of width k' holds the copies; a ReLU layer of width n then fits
      k = floor((floor(n/n_0) + 1) / 2) teeth per coordinate.
    * ``copies="width"``: the ReLU layer itself is repeated k' times (ReLU layers only);
      with the same k in every layer, n_0 k (2k - 1) <= n_l for l < L and
      n_0 (2k - 1) <= n_L.

    Examples:
        >>> ternary_teeth([5, 5, 5]), ternary_teeth([15, 15, 5], copies="width")
        ([3, 3, 3], [3, 3, 3])
    """
    ws = _check(widths, input_dim)
    if copies not in COPIES:
        raise ValueError(f"copies must be one of {COPIES}, got {copies!r}")
    if copies != "width":
        return [max((n // input_dim + 1) // 2, 0) for n in ws]
    k = 1
    while (all(input_dim * (k + 1) * (2 * k + 1) <= n for n in ws[:-1])
           and input_dim * (2 * k + 1) <= ws[-1]):
        k += 1
    return [k if input_dim * (2 * k - 1) <= min(ws) else 0] * len(ws)


def ternary_construction_count(teeth: Sequence[int], input_dim: int = 1) -> int:
    """Regions of :func:`signalprop.models.ternary_region_net` with these teeth per layer:
    prod_l k_l^{n_0} (every tooth of layer l maps onto the whole input range of layer
    l + 1, and the coordinates fold independently).

    Examples:
        >>> ternary_construction_count([3, 3, 3]), ternary_construction_count([2, 2], 2)
        (27, 16)
    """
    ks = list(teeth)
    if not ks or any(isinstance(k, bool) or not isinstance(k, int) or k < 0 for k in ks):
        raise ValueError(f"teeth must be a non-empty list of integers >= 0, got {teeth!r}")
    return prod(ks) ** input_dim


def region_bounds(widths: Sequence[int], input_dim: int = 1,
                  label: str = "") -> RegionBoundsResult:
    """Every bound and construction count for hidden widths ``widths`` and ``input_dim``.

    Args:
        widths: hidden-layer widths n_1, ..., n_L (each >= 1).
        input_dim: input dimension n_0 (>= 1).
        label: the result's label.

    Returns:
        A :class:`~signalprop.results.RegionBoundsResult` of exact integers (None for a
        lower bound whose width condition fails).

    Raises:
        ValueError: empty widths, a width < 1, or input_dim < 1.

    Examples:
        >>> b = region_bounds([8, 8], input_dim=2)
        >>> b.lower_montufar, b.lower_serra, b.upper_serra
        (592, 925, 1369)
    """
    ws = _check(widths, input_dim)
    relu = (relu_construction_count(ws, input_dim) if min(ws) >= input_dim else 0)
    return RegionBoundsResult(
        widths=ws, input_dim=input_dim,
        upper_serra=upper_bound_serra(ws, input_dim),
        upper_montufar=upper_bound_montufar(ws, input_dim),
        lower_montufar=lower_bound_montufar(ws, input_dim),
        lower_serra=lower_bound_serra(ws, input_dim),
        relu_construction=relu,
        ternary_identity=ternary_construction_count(ternary_teeth(ws, input_dim), input_dim),
        ternary_width=ternary_construction_count(ternary_teeth(ws, input_dim, "width"),
                                                 input_dim),
        references=dict(REFERENCES), label=label or f"{input_dim}-" + "-".join(map(str, ws)))
