"""Draw the figures of docs/identity.md (one thread, a few minutes):

    PYTHONPATH=src python docs/figures/make_identity_figures.py [docs/figures]
"""

from __future__ import annotations

import math
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn as nn

import signalprop as sp
from signalprop.experiments._claim import RunContext
from signalprop.results import BlockStats, SPPResult


def _mean_spp(results: list[SPPResult], label: str) -> SPPResult:
    """Record-wise mean of several networks' SPPs (single networks scatter)."""
    recs = []
    for rs in zip(*(r.records for r in results)):
        res = [r.res_var for r in rs]
        recs.append(BlockStats(rs[0].name, rs[0].index,
                               sum(r.avg_sq_mean for r in rs) / len(rs),
                               sum(r.avg_var for r in rs) / len(rs),
                               None if res[0] is None else sum(res) / len(res)))
    return SPPResult(label, recs)


def ph_spp(out: Path) -> None:
    x = torch.randn(512, 40)
    measured, predicted = [], []
    for phydi in (False, True):
        nets = []
        for seed in range(6):
            torch.manual_seed(seed)
            nets.append(sp.models.ph_resnet1d(12, width=32, phydi=phydi))
        name = "PHYDI" if phydi else "no PHYDI"
        measured.append(_mean_spp([sp.spp(n, x) for n in nets], f"{name} (mean of 6)"))
        predicted.append(nets[0].predicted_spp(length=40))
    sp.plot.spp(measured, out / "phm_spp_resnet.png", predicted=predicted,
                title="PH ResNet (n = 4, He-correct PH convs, no normalization), MNIST-1D length")
    measured, predicted = [], []
    for init in ("fan_in", "xavier_factors"):
        runs = []
        for seed in range(6):
            torch.manual_seed(seed)
            layers: list[nn.Module] = [nn.Conv1d(1, 32, 3, padding=1)]
            for _ in range(8):
                for _ in range(2):
                    layers += [nn.ReLU(), sp.nn.PHConv1d(32, 32, 3, 4, padding=1, init=init,
                                                         gain=math.sqrt(2.0))]
            net = nn.Sequential(*layers)
            with torch.no_grad():
                net[0].weight.normal_(0, 1 / math.sqrt(3))
                net[0].bias.zero_()
            blocks = [net[0]] + [net[i] for i in range(4, len(net), 4)]
            runs.append(sp.spp(net, x.unsqueeze(1), blocks=blocks))
        label = "He-correct PH init" if init == "fan_in" else "reference init (Xavier A, F)"
        measured.append(_mean_spp(runs, label))
        predicted.append(sp.theory.ph_resnet_schedule(8, init=init, residual=False, length=40))
    sp.plot.spp(measured, out / "phm_spp_plain.png", predicted=predicted,
                title="Plain PH CNN (2 PH convs per point): reference init shrinks ~20x a conv")


def exp_lr(out: Path) -> None:
    from signalprop.experiments.claims.identity import exp_lr_equivalence as claim

    with tempfile.TemporaryDirectory() as tmp:
        ctx = RunContext("quick", Path(tmp), progress=False, log=lambda s: None)
        m = claim.measure(ctx, {"steps": 600, "seeds": [0], "eval_every": 20})
    claim.figure(m, out / "exp_lr_equivalence.png")


def byol(out: Path) -> None:
    from signalprop.train import TrainConfig, fit, read_metrics

    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for norm, head, label in (("bn", "bn", "BatchNorm"), ("gn_ws", "gn", "GN+WS"),
                                  ("none", "none", "no normalization")):
            cfg = TrainConfig(
                model="signalprop.experiments.claims.identity._models:resnet1d_encoder",
                model_args={"depth": 3, "width": 32, "norm": norm}, dataset="mnist1d",
                objective="byol", objective_args={"head_norm": head}, optimizer="sgd",
                lr=0.05, momentum=0.9, weight_decay=5e-4, schedule="cosine", batch_size=128,
                steps=600, eval_every=100, log_every=50)
            fit(cfg, Path(tmp) / norm, progress=False)
            runs[label] = read_metrics(Path(tmp) / norm / "metrics.jsonl")
    sp.plot.collapse_history(runs, out / "byol_collapse.png",
                             title="BYOL on MNIST-1D (seed 0): probe accuracy and collapse")


def phydi(out: Path) -> None:
    from signalprop.experiments.claims.identity import phydi_depth as claim

    with tempfile.TemporaryDirectory() as tmp:
        ctx = RunContext("quick", Path(tmp), progress=False, log=lambda s: None)
        m = claim.measure(ctx, {"depths": [4, 16, 48], "seeds": [0], "steps": 300,
                                "lrs": [0.05], "width": 16})
    claim.figure(m, out / "phydi_depth.png")


if __name__ == "__main__":
    torch.set_num_threads(1)
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/figures")
    for draw in (ph_spp, exp_lr, byol, phydi):
        draw(folder)
        print("drew", draw.__name__, flush=True)
