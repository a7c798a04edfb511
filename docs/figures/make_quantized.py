"""Draw the figures of docs/quantized.md (a minute on one core):

    python docs/figures/make_quantized.py
"""

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import signalprop as sp
from signalprop.models import quant_mlp
from signalprop.plot._style import pyplot, save

OUT = Path(__file__).resolve().parent
DPI = 80


def spp_figure() -> None:
    torch.manual_seed(0)
    x = torch.randn(256, 512)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, kw in (("float", None), ("binary, mean |w|", {"scale": "mean_abs"}),
                      ("binary, rms", {"scale": "rms"}), ("ternary, mean |w|",
                                                          {"weight_levels": "ternary"})):
        torch.manual_seed(0)
        net = (sp.models.mlp(16, 512, "relu", init="he") if kw is None
               else quant_mlp(16, 512, "relu", init="he", **kw))
        meas = [r.avg_var + r.avg_sq_mean for r in sp.spp(net, x).records]
        pred = [r.avg_var + r.avg_sq_mean for r in net.predicted_spp(batch_size=256).records]
        line, = ax.plot(meas, marker="o", ms=3, label=label)
        ax.plot(pred, ls="--", color=line.get_color(), lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("layer")
    ax.set_ylabel("E[h^2]")
    ax.set_title("ReLU MLP at init: measured (solid), predicted (dashed)")
    ax.legend(fontsize=8)
    save(fig, OUT / "quantized_spp.png", dpi=DPI)


def chain_figure() -> None:
    well, grid = sp.theory.DoubleWell(0.3), np.linspace(-2, 2, 17)
    res = [sp.theory.rounding_chain(well.grad, grid, lr=lr, noise=2.0, scheme=s)
           for s in ("sr", "bc") for lr in (0.04, 0.02, 0.01, 0.005)]
    sp.plot.rounding_chains(res, OUT / "quantized_chains.png",
                            title="one weight on a tilted double well, grid spacing 0.25")


def surrogate_figure() -> None:
    from signalprop.theory.quantized import surrogate_derivative, surrogate_forward

    x = np.linspace(-2, 2, 801)
    cases = [("ste", {}), ("clipped", {}), ("tanh", {"beta": 2.0}), ("reste", {"o": 1.5}),
             ("reste", {"o": 3.0})]
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    q = np.logspace(-2, 1, 60)
    for name, p in cases:
        label = name + "".join(f" {k}={v:g}" for k, v in p.items())
        axes[0].plot(x, surrogate_forward(name, x, **p), label=label)
        axes[1].plot(x, surrogate_derivative(name, x, **p), label=label)
        axes[2].plot(q, sp.theory.surrogate_gain(name, q, **p), label=label)
    axes[0].plot(x, np.sign(x), color="k", lw=0.8, label="sign")
    axes[1].set_ylim(0, 5)
    axes[2].set_xscale("log")
    for ax, t in zip(axes, ("equivalent forward g(x)", "backward g'(x)",
                            "backward gain E[g'(sqrt(q) z)^2]")):
        ax.set_title(t)
        ax.legend(fontsize=7)
    axes[2].set_xlabel("q = Var(x)")
    save(fig, OUT / "quantized_surrogates.png", dpi=DPI)


def indicator_figure() -> None:
    from signalprop.nn import QuantLinear, ReSTESchedule

    torch.manual_seed(0)
    data = sp.data.load_dataset("mnist1d")
    xs, ys = data.train.x, data.train.y
    results = []
    for o_end in (1.0, 2.0, 3.0):
        torch.manual_seed(0)
        sched = ReSTESchedule(600, o_end=o_end)
        net = torch.nn.Sequential(
            QuantLinear(40, 128, estimator="reste", estimator_params={"o": sched}),
            torch.nn.BatchNorm1d(128),
            QuantLinear(128, 128, act_levels="binary", estimator="reste",
                        estimator_params={"o": sched}),
            torch.nn.BatchNorm1d(128), torch.nn.Linear(128, 10))
        opt = torch.optim.Adam(net.parameters(), 3e-3)
        for step in range(600):
            idx = torch.randint(0, len(ys), (64,))
            opt.zero_grad()
            F.cross_entropy(net(xs[idx]), ys[idx]).backward()
            opt.step()
            sched.step()
            if (step + 1) % 50 == 0:
                results.append(sp.estimator_indicators(net, xs[:256], ys[:256],
                                                       loss_fn=F.cross_entropy, chunks=4,
                                                       step=step + 1,
                                                       label=f"ReSTE o 1 -> {o_end:g}"))
    sp.plot.estimator_indicators(results, OUT / "quantized_indicators.png")


if __name__ == "__main__":
    torch.set_num_threads(1)
    spp_figure()
    chain_figure()
    surrogate_figure()
    indicator_figure()
