"""plstm-modes: on a 2-D grid the number of paths grows combinatorially, so a linear
recurrence whose transitions are stable on a sequence explodes with distance; pLSTM's
P-mode and D-mode keep it bounded.

Poeppel et al. (arXiv 2506.11997; PAPERS.md section 13): cell states on the edges of the
DAG, Source / Transition / Mark gates; P-mode bounds, for each incoming edge, the summed
absolute transitions to the node's outgoing edges by one; D-mode reduces the line graph to
a multitree (here: a right-going edge never turns down), each transition bounded by one.
On an n x n grid with transition t on every edge the corner-to-corner gain is
C(2n, n) t^(2n).

Experiment (no training; exact): for each seed, per-channel raw transitions
``a ~ U(0.55, 0.85)`` (each below one: stable on a sequence, but the two out of every edge
sum above one), sources and marks ``~ U(0.5, 1)``, no direct term, in
:class:`signalprop.nn.LinearRNN2d` of each mode (float64). The spatial Jacobian from the
corner (:func:`signalprop.spatial_jacobian`, one forward-mode pass) is compared with the
exact path sums over the line graph (:func:`signalprop.theory.plstm_gain`), and its
largest value at each Manhattan distance from the corner is recorded.

NOTE: the paper's gates are input-dependent and its P-mode splits one transition between
the two outgoing edges through an orientation gate; here the gates are per-channel
parameters (so the Jacobian is exactly the path sum) and P-mode rescales the pair of
transitions out of each incoming edge to an absolute sum of at most one. The optional
arrow-pointing extrapolation task is not part of this claim.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from signalprop.experiments._claim import Claim, RunContext, Verdict

MODES = ("naive", "P", "D")
EXACT = 1e-9  # relative error allowed between the measured map and the path sum (float64)
GROWTH = 100.0  # naive: largest gain at the far corner over that at distance 1, at least
CRITERION = (
    "for every seed, with per-channel transitions in (0.55, 0.85) (each stable in 1-D): the "
    f"measured spatial Jacobian equals the exact line-graph path sum to {EXACT:g} relative "
    "error in every mode; the naive recurrence explodes with distance (largest gain at the "
    f"far corner >= {GROWTH:g} x that at distance 1, growing over the second half of the "
    "distances) while its gain along the first row (a 1-D chain) decays; P-mode and D-mode "
    "stay below the bound (|S_r| + |S_d|) max |M| summed over channels everywhere"
)


def _layer(mode: str, raw: Any, src: Any, mark: Any) -> Any:
    import torch

    from signalprop.nn import LinearRNN2d

    rnn = LinearRNN2d(raw.shape[1], mode, direct=0.0).double()
    with torch.no_grad():
        rnn.theta.copy_(torch.atanh(raw))
        rnn.source.copy_(src)
        rnn.mark.copy_(mark)
    return rnn


def _exact(rnn: Any, n: int) -> Any:
    import numpy as np

    from signalprop import theory

    t = {k: v.detach().numpy() for k, v in rnn.transitions().items()}
    total = np.zeros((n, n))
    for c in range(rnn.channels):
        total += np.abs(theory.plstm_gain(
            (n, n), {k: t[k][c] for k in t}, source=tuple(rnn.source[:, c].tolist()),
            mark=tuple(rnn.mark[:, c].tolist()), direct=0.0))
    return total


def _one_seed(seed: int, n: int, channels: int) -> dict[str, Any]:
    import numpy as np
    import torch

    from signalprop.measure import spatial_jacobian

    gen = torch.Generator().manual_seed(seed)
    raw = 0.55 + 0.3 * torch.rand(4, channels, generator=gen, dtype=torch.float64)
    src = 0.5 + 0.5 * torch.rand(2, channels, generator=gen, dtype=torch.float64)
    mark = 0.5 + 0.5 * torch.rand(2, channels, generator=gen, dtype=torch.float64)
    out: dict[str, Any] = {"seed": seed}
    for mode in MODES:
        rnn = _layer(mode, raw, src, mark)
        x = torch.randn(1, channels, n, n, generator=gen, dtype=torch.float64)
        res = spatial_jacobian(rnn, x, source=(0, 0), label=mode)
        got, want = res.map.numpy(), _exact(rnn, n)
        err = float(np.max(np.abs(got - want)) / np.max(np.abs(want)))
        bound = rnn.gain_bound()
        out[mode] = {"profile": res.profile("max"), "row": got[0].tolist(),
                     "max": float(got.max()), "rel_err": err,
                     "bound": None if bound is None else float(bound.sum()),
                     "map": got.tolist() if seed == 0 else None}
    return out


def measure(ctx: RunContext, size: dict[str, Any]) -> dict[str, Any]:
    runs = []
    for seed in size["seeds"]:
        runs.append(_one_seed(seed, size["grid"], size["channels"]))
        r = runs[-1]
        ctx.log(f"  seed {seed}: naive far/near {r['naive']['profile'][-1]:.3g}/"
                f"{r['naive']['profile'][1]:.3g}, P max {r['P']['max']:.3g} <= "
                f"{r['P']['bound']:.3g}, D max {r['D']['max']:.3g} <= {r['D']['bound']:.3g}")
    return {"runs": runs, "size": size}


def _naive_explodes(p: dict[str, Any]) -> tuple[bool, float]:
    prof = p["profile"]
    k = len(prof) - 1
    ratio = prof[-1] / prof[1] if prof[1] > 0 else math.inf
    second_half = prof[k // 2:]
    growing = all(b >= a for a, b in zip(second_half, second_half[1:]))
    row = p["row"]
    chain_decays = row[-1] <= row[1]
    return ratio >= GROWTH and growing and chain_decays, ratio


def decide(m: dict[str, Any]) -> Verdict:
    """Exact path sums in every mode, naive explosion, P/D below their bounds, per seed.

    Examples:
        >>> naive = {"profile": [0, 1.0, 3.0, 200.0], "row": [0, 1.0, 0.5], "max": 200.0,
        ...          "rel_err": 1e-15, "bound": None}
        >>> p = {"profile": [0, 1.0, 0.8, 0.7], "row": [0, 1.0, 0.5], "max": 1.0,
        ...      "rel_err": 1e-15, "bound": 2.0}
        >>> decide({"runs": [{"seed": 0, "naive": naive, "P": p, "D": p}]}).reproduced
        True
        >>> flat = dict(naive, profile=[0, 1.0, 1.0, 1.0])
        >>> decide({"runs": [{"seed": 0, "naive": flat, "P": p, "D": p}]}).reproduced
        False
    """
    runs = m["runs"]
    worst_err = max(r[mode]["rel_err"] for r in runs for mode in MODES)
    explode = [_naive_explodes(r["naive"]) for r in runs]
    over = [f"seed {r['seed']} {mode}" for r in runs for mode in ("P", "D")
            if r[mode]["max"] > r[mode]["bound"] * (1 + 1e-9)]
    ok = bool(runs) and worst_err <= EXACT and all(e[0] for e in explode) and not over
    ratio = min(e[1] for e in explode) if explode else math.nan
    margin = {mode: max(r[mode]["max"] / r[mode]["bound"] for r in runs) for mode in ("P", "D")}
    effect = (f"naive: far-corner gain >= {ratio:.3g} x distance-1 gain over {len(runs)} seeds "
              f"({sum(e[0] for e in explode)}/{len(runs)} explode); largest gain / bound: "
              f"P {margin['P']:.2f}, D {margin['D']:.2f}; path sums exact to {worst_err:.1e}")
    return Verdict(ok, effect, {"worst_rel_err": worst_err, "min_naive_ratio": ratio,
                                "naive_explodes": [e[0] for e in explode], "over_bound": over,
                                "max_over_bound": margin})


def figure(m: dict[str, Any], path: Path) -> None:
    import numpy as np
    from matplotlib.colors import LogNorm

    from signalprop.plot._style import pyplot, save

    plt = pyplot()
    first = m["runs"][0]
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.9), constrained_layout=True)
    maps = [np.maximum(np.asarray(first[mode]["map"]), 1e-12) for mode in MODES]
    hi = max(float(a.max()) for a in maps)
    norm = LogNorm(vmin=max(hi * 1e-8, 1e-12), vmax=hi)
    for ax, mode, a in zip(axes, MODES, maps):
        im = ax.imshow(a, norm=norm, cmap="magma")
        ax.plot(0, 0, "x", color="cyan")
        ax.set_title(f"{mode}: |dy / dx(0, 0)| (seed 0)", fontsize=9)
    fig.colorbar(im, ax=list(axes[:3]), shrink=0.85, label="gain summed over channels")
    for i, mode in enumerate(MODES):
        for r in m["runs"]:
            prof = r[mode]["profile"]
            axes[3].semilogy(range(1, len(prof)), prof[1:], color=f"C{i}", lw=0.8,
                             label=mode if r is first else None)
        if first[mode]["bound"] is not None:
            axes[3].axhline(first[mode]["bound"], color=f"C{i}", ls=":", lw=0.8,
                            label=f"{mode} bound (seed 0)")
    axes[3].set_xlabel("Manhattan distance from the source")
    axes[3].set_ylabel("largest gain at that distance")
    axes[3].legend(fontsize=8)
    save(fig, path)


CLAIM = Claim(
    name="plstm-modes",
    paper="Poeppel et al. (arXiv 2506.11997)",
    statement="Linear RNNs on 2-D grids explode with distance at transitions that are stable "
              "in 1-D, because the number of paths grows combinatorially; pLSTM's P-mode "
              "and D-mode keep the gain bounded, and the spatial Jacobian is the exact sum "
              "over the paths.",
    criterion=CRITERION,
    sizes={"smoke": {"grid": 8, "channels": 2, "seeds": [0]},
           "quick": {"grid": 32, "channels": 8, "seeds": [0, 1, 2, 3, 4]},
           "full": {"grid": 64, "channels": 16, "seeds": list(range(10))}},
    measure=measure, decide=decide, figure=figure, quick_minutes=0.5,
)
