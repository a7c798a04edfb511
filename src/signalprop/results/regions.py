"""Linear regions of piecewise-linear networks: along segments (:class:`RegionsResult`), on
2-D slices (:class:`PlaneRegionsResult`), their density around data
(:class:`RegionDensityResult`) and the known bounds on their number
(:class:`RegionBoundsResult`).

Per-piece data of many segments (or polygons) is stored flat, one row per piece, in the
order segment 0's pieces, segment 1's pieces, ...; ``counts`` (or ``sizes``) says how many
rows belong to each, and the accessor methods slice them out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

from signalprop.results._base import TENSOR, Result


class Segment(NamedTuple):
    """One segment's pieces (see :meth:`RegionsResult.segment`)."""

    breakpoints: list[float]  # (n - 1,) t of each breakpoint, ascending
    jumps: list[bool]  # (n - 1,) whether the output is discontinuous there
    values: Any  # (n, out) tensor: the output at each piece's midpoint
    slopes: Any  # (n, out) tensor: d output / dt on each piece
    patterns: list[str]  # (n,) activation-pattern id of each piece


def _offsets(sizes: list[int]) -> list[int]:
    out = [0]
    for s in sizes:
        out.append(out[-1] + s)
    return out


@dataclass
class RegionsResult(Result):
    """The exact linear pieces of a model along segments ``start + t (end - start)``,
    t in [0, 1].

    A piece is a maximal interval of t on which every piecewise-linear unit of the model
    (ReLU, clamp, max-pool window, ...) keeps its state, so the model is affine there. A
    breakpoint is where some unit changes state; at a breakpoint of a step unit (round,
    floor, sign: a quantizer) the output jumps.

    Attributes:
        label: the model's name.
        counts: (B,) pieces per segment (breakpoints + 1).
        breakpoints: (sum(counts) - B,) flat tensor of breakpoint positions t in (0, 1),
            segment by segment, ascending within each.
        jumps: one flag per breakpoint (same order): True where a step unit changes state,
            so the output is discontinuous there.
        values: (sum(counts), out) flat tensor: the output (flattened) at each piece's
            midpoint.
        slopes: (sum(counts), out) flat tensor: d output / dt on each piece (divide by
            ``lengths`` for the slope per unit of input distance).
        patterns: one id per piece (16 hex digits, a 64-bit hash of the states of all
            units): equal patterns have equal ids.
        lengths: (B,) Euclidean length of each segment ``||end - start||``.
        n_neurons: piecewise-linear units per example (neurons, clamp elements, pooling
            windows).
        stages: the piecewise-linear calls of one forward, in order, as
            ``"name[units]"`` (e.g. ``"relu[256]"``).
        meta: anything else (tolerance, timings, ...).

    Examples:
        >>> import torch
        >>> r = RegionsResult("toy", [2], torch.tensor([0.5]), [False],
        ...                   torch.tensor([[0.0], [0.0]]), torch.tensor([[-1.0], [1.0]]),
        ...                   ["a" * 16, "b" * 16], [2.0], 1, ["relu[1]"])
        >>> r.n_breakpoints, r.density, r.segment(0).breakpoints
        ([1], [0.5], [0.5])
        >>> RegionsResult.from_json(r.to_json()).counts
        [2]
    """

    label: str
    counts: list[int]
    breakpoints: Any = field(metadata=TENSOR)
    jumps: list[bool]
    values: Any = field(metadata=TENSOR)
    slopes: Any = field(metadata=TENSOR)
    patterns: list[str]
    lengths: list[float]
    n_neurons: int
    stages: list[str]
    meta: dict[str, Any] = field(default_factory=dict)

    json_extras: ClassVar[tuple[str, ...]] = ("n_breakpoints", "density")

    @property
    def n_breakpoints(self) -> list[int]:
        """(B,) breakpoints per segment (pieces - 1)."""
        return [c - 1 for c in self.counts]

    @property
    def density(self) -> list[float]:
        """(B,) breakpoints per unit length of input space (NaN for a zero-length segment)."""
        return [(c - 1) / n if n > 0 else math.nan for c, n in zip(self.counts, self.lengths)]

    @property
    def n_jumps(self) -> list[int]:
        """(B,) discontinuities per segment."""
        offs = _offsets(self.n_breakpoints)
        return [sum(self.jumps[offs[i]:offs[i + 1]]) for i in range(len(self.counts))]

    def segment(self, i: int) -> Segment:
        """Segment ``i``'s breakpoints, jump flags, values, slopes and pattern ids."""
        if not 0 <= i < len(self.counts):
            raise ValueError(f"segment index must be in [0, {len(self.counts)}), got {i}")
        p, b = _offsets(self.counts), _offsets(self.n_breakpoints)
        return Segment([float(t) for t in self.breakpoints[b[i]:b[i + 1]]],
                       list(self.jumps[b[i]:b[i + 1]]), self.values[p[i]:p[i + 1]],
                       self.slopes[p[i]:p[i + 1]], list(self.patterns[p[i]:p[i + 1]]))

    def csv_rows(self) -> tuple[list[str], list[list[Any]]]:
        """One row per segment: pieces, breakpoints, jumps, length, density."""
        cols = ["segment", "pieces", "breakpoints", "jumps", "length", "density"]
        return cols, [[i, c, c - 1, j, n, d] for i, (c, j, n, d) in enumerate(
            zip(self.counts, self.n_jumps, self.lengths, self.density))]


@dataclass
class PlaneRegionsResult(Result):
    """The exact linear regions of a model on the 2-D slice ``x + s u + r v`` for (s, r) in
    the rectangle ``bounds = (s_min, s_max, r_min, r_max)``.

    Every region of a piecewise-linear network is convex, so on the slice each is one
    convex polygon; the polygons tile the rectangle.

    Attributes:
        label: the model's name.
        bounds: (s_min, s_max, r_min, r_max).
        count: number of regions (polygons).
        vertices: (sum(sizes), 2) flat tensor of polygon vertices (s, r), counter-clockwise,
            polygon by polygon.
        sizes: vertices per polygon.
        patterns: activation-pattern id per polygon (see :class:`RegionsResult`).
        values: (count, out) the output at each polygon's vertex centroid.
        gradients: (count, out, 2) d output / d(s, r) on each polygon.
        n_neurons: piecewise-linear units per example.
        stages: the piecewise-linear calls of one forward (``"name[units]"``).
        meta: anything else.

    Examples:
        >>> import torch
        >>> sq = torch.tensor([[0., 0.], [1., 0.], [1., 1.], [0., 1.]])
        >>> r = PlaneRegionsResult("toy", (0.0, 1.0, 0.0, 1.0), 1, sq, [4], ["0" * 16],
        ...                        torch.zeros(1, 1), torch.zeros(1, 1, 2), 0, [])
        >>> r.areas
        [1.0]
        >>> PlaneRegionsResult.from_json(r.to_json()).polygons()[0].shape
        torch.Size([4, 2])
    """

    label: str
    bounds: tuple[float, float, float, float]
    count: int
    vertices: Any = field(metadata=TENSOR)
    sizes: list[int]
    patterns: list[str]
    values: Any = field(metadata=TENSOR)
    gradients: Any = field(metadata=TENSOR)
    n_neurons: int
    stages: list[str]
    meta: dict[str, Any] = field(default_factory=dict)

    def polygons(self) -> list[Any]:
        """The polygons as a list of (k, 2) tensors of vertices (s, r)."""
        offs = _offsets(self.sizes)
        return [self.vertices[offs[i]:offs[i + 1]] for i in range(len(self.sizes))]

    @property
    def areas(self) -> list[float]:
        """Area of each polygon (shoelace formula)."""
        out = []
        for p in self.polygons():
            s, r = p[:, 0], p[:, 1]
            out.append(float(0.5 * (s * r.roll(-1) - s.roll(-1) * r).sum().abs()))
        return out

    def csv_rows(self) -> tuple[list[str], list[list[Any]]]:
        """One row per region: its pattern id, vertex count and area."""
        return ["region", "pattern", "vertices", "area"], [
            [i, p, n, a] for i, (p, n, a) in enumerate(zip(self.patterns, self.sizes,
                                                          self.areas))]


@dataclass
class RegionDensityResult(Result):
    """How densely region boundaries sit around data: random lines of length ``length``
    centred on each data point, counted exactly.

    Attributes:
        label: the model's name.
        counts: (n_points * n_lines,) breakpoints on each line (point-major order).
        length: each line's Euclidean length.
        n_points: data points.
        n_lines: lines per point (directions uniform on the sphere).
        n_neurons: piecewise-linear units per example.
        units_per_stage: units of each piecewise-linear call, in forward order.
        meta: anything else (seed, step, ...).

    Examples:
        >>> r = RegionDensityResult("toy", [2, 4, 3, 3], 2.0, 2, 2, 4, [4])
        >>> r.density, round(r.density_se, 4), r.per_neuron
        (1.5, 0.2041, 0.375)
    """

    label: str
    counts: list[int]
    length: float
    n_points: int
    n_lines: int
    n_neurons: int
    units_per_stage: list[int]
    meta: dict[str, Any] = field(default_factory=dict)

    json_extras: ClassVar[tuple[str, ...]] = ("density", "density_se", "per_neuron")

    @property
    def density(self) -> float:
        """Mean breakpoints per unit length (region boundaries crossed per unit length)."""
        return sum(self.counts) / (len(self.counts) * self.length)

    @property
    def density_se(self) -> float:
        """Standard error of :attr:`density` over the lines (NaN for one line)."""
        n = len(self.counts)
        if n < 2:
            return math.nan
        d = [c / self.length for c in self.counts]
        mean = sum(d) / n
        return math.sqrt(sum((v - mean) ** 2 for v in d) / (n - 1) / n)

    @property
    def per_neuron(self) -> float:
        """:attr:`density` divided by the number of units (Hanin & Rolnick's constant)."""
        return self.density / self.n_neurons if self.n_neurons else math.nan

    @property
    def depth(self) -> int:
        """Number of piecewise-linear calls (hidden layers of an MLP)."""
        return len(self.units_per_stage)

    @property
    def width(self) -> int:
        """Largest number of units of one call."""
        return max(self.units_per_stage, default=0)

    def csv_rows(self) -> tuple[list[str], list[list[Any]]]:
        """One summary row."""
        cols = ["density", "density_se", "per_neuron", "n_neurons", "depth", "width", "length",
                "n_points", "n_lines"]
        return cols, [[self.density, self.density_se, self.per_neuron, self.n_neurons,
                       self.depth, self.width, self.length, self.n_points, self.n_lines]]


@dataclass
class RegionBoundsResult(Result):
    """Known bounds on the maximal number of linear regions of a ReLU network with input
    dimension ``input_dim`` and hidden widths ``widths``, and the counts of the
    constructions that :mod:`signalprop.models` builds. All numbers are exact integers;
    a bound whose condition does not hold is None.

    Attributes:
        widths: hidden-layer widths n_1, ..., n_L.
        input_dim: n_0.
        upper_serra: Serra, Tjandraatmadja & Ramalingam (ICML 2018), Theorem 1.
        upper_montufar: Montufar (SampTA 2017): prod_l sum_{j <= d_l} C(n_l, j),
            d_l = min(n_0, ..., n_l).
        lower_montufar: Montufar, Pascanu, Cho & Bengio (NeurIPS 2014), deep rectifier
            lower bound (needs n_l >= n_0).
        lower_serra: Serra et al. (2018), improved lower bound (needs n_l >= 3 n_0).
        relu_construction: regions of ``signalprop.models.relu_region_net(widths,
            input_dim)``.
        ternary_identity: regions of the ternary construction with ReLU layers of these
            widths and a linear copy layer after each (``copies="identity"``).
        ternary_width: regions of the ternary construction with ReLU layers only, of these
            widths (``copies="width"``).
        references: the source of each field.

    Examples:
        >>> b = RegionBoundsResult([3, 3], 1, 16, 16, 9, 16, 16, 4, 1, {})
        >>> RegionBoundsResult.from_json(b.to_json()).lower_serra
        16
    """

    widths: list[int]
    input_dim: int
    upper_serra: int
    upper_montufar: int
    lower_montufar: int | None
    lower_serra: int | None
    relu_construction: int
    ternary_identity: int
    ternary_width: int
    references: dict[str, str] = field(default_factory=dict)
    label: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
