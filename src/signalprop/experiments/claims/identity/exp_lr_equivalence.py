"""exp-lr-equivalence (Li & Arora, ICLR 2020, arXiv 1910.07454): for a network whose loss
does not depend on the scale of its weights (every trained weight followed by BatchNorm),
SGD with momentum gamma, weight decay lambda and a fixed lr eta and SGD with momentum
gamma, no weight decay and the exponentially growing lr eta alpha^(-2t-1) produce the same
network function at every step (alpha: the larger root of x^2 - (1 + gamma - lambda eta) x
+ gamma = 0; ``signalprop.train`` schedule ``"exp"``).

Setup (float64): an MLP 40 -> 64 -> 64 -> 10 on MNIST-1D whose two hidden Linear layers
(no bias) each feed a BatchNorm without affine parameters that always uses the batch's
statistics (eps = 1e-30, so the invariance is exact to rounding); the classifier is fixed
at its random init (a trained classifier would not be scale-invariant). eta = 0.1,
gamma = 0.9, lambda = 5e-3 (alpha = 0.99475, the lr grows e-fold every ~95 steps), batch
128; both runs see the same batches. The exp run's momentum buffers start at
(alpha - 1) theta_0 / (eta alpha), the paper's initial condition theta~_{-1} = alpha
theta_{-1} (see ``signalprop.train.schedules``). Every ``eval_every`` steps both networks
(train-mode BatchNorm) predict a fixed batch of 256 test examples.

Controls, reported beside the equivalence: the same weight-decay-free run at the fixed lr
eta (what the schedule replaces; it must differ, or weight decay did nothing) and the exp
schedule with zero initial buffers (how much the initial condition matters).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from signalprop.experiments._claim import Claim, RunContext, Verdict

ETA, GAMMA, LAMBDA, BATCH, WIDTH = 0.1, 0.9, 5e-3, 128, 64
EQUAL_TOL = 1e-9  # max |f_wd - f_exp| / rms(f_wd) at every evaluation, every seed
CONTROL_MIN = 1e-2  # the fixed-lr, weight-decay-free control must differ at least this
CRITERION = (f"float64, eta {ETA}, momentum {GAMMA}, weight decay {LAMBDA}: at every "
             f"evaluation of every seed the exp-schedule run's predictions equal the "
             f"weight-decay run's within {EQUAL_TOL:g} of their rms, while the same run at "
             f"the fixed lr without weight decay ends more than {CONTROL_MIN:g} away in "
             "every seed")

SIZES: dict[str, dict[str, Any]] = {
    "smoke": {"steps": 30, "seeds": [0], "eval_every": 10},
    "quick": {"steps": 600, "seeds": [0, 1, 2], "eval_every": 20},
    "full": {"steps": 2000, "seeds": [0, 1, 2, 3, 4], "eval_every": 50},
}
RUNS = ("wd", "exp", "fixed_no_wd", "exp_zero_buffer")


def _network(seed: int) -> Any:
    import torch
    import torch.nn as nn

    torch.manual_seed(seed)

    def bn() -> nn.Module:
        return nn.BatchNorm1d(WIDTH, affine=False, track_running_stats=False, eps=1e-30)

    net = nn.Sequential(nn.Linear(40, WIDTH, bias=False), bn(), nn.ReLU(),
                        nn.Linear(WIDTH, WIDTH, bias=False), bn(), nn.ReLU(),
                        nn.Linear(WIDTH, 10)).double()
    for p in net[6].parameters():
        p.requires_grad_(False)  # a fixed classifier: every trained weight is invariant
    return net


def _train(kind: str, seed: int, size: dict[str, Any], data: Any) -> dict[str, list[float]]:
    """One run of ``kind`` (RUNS); its predictions, loss and mean effective lr over time."""
    import torch
    import torch.nn.functional as F

    from signalprop.measure import effective_lr
    from signalprop.train import TrainConfig, epoch_permutation, exp_alpha, lr_at

    steps = size["steps"]
    x, y = data.train.tensors()
    x, x_eval = x.double(), data.test.tensors()[0][:256].double()
    net = _network(seed)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=ETA, momentum=GAMMA,
                          weight_decay=LAMBDA if kind == "wd" else 0.0)
    alpha = exp_alpha(ETA, GAMMA, LAMBDA)
    if kind == "exp":
        for p in params:  # the paper's initial condition theta~_{-1} = alpha theta_{-1}
            opt.state[p]["momentum_buffer"] = (alpha - 1) * p.detach().clone() / (ETA * alpha)
    cfg = TrainConfig(dataset="mnist1d", schedule="exp", lr=ETA, momentum=GAMMA,
                      exp_weight_decay=LAMBDA, steps=steps)
    per_epoch = len(x) // BATCH
    out: dict[str, list[Any]] = {"pred": [], "loss": [], "eff_lr": []}
    for t in range(steps):
        epoch, pos = divmod(t, per_epoch)
        idx = epoch_permutation(len(x), seed, epoch)[pos * BATCH:(pos + 1) * BATCH]
        if kind.startswith("exp"):
            opt.param_groups[0]["lr"] = lr_at(t, cfg, steps)
        loss = F.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (t + 1) % size["eval_every"] == 0:
            with torch.no_grad():
                out["pred"].append(net(x_eval).clone())
            out["loss"].append(loss.item())
            lrs = [r.effective_lr for r in effective_lr(net, opt).records]
            out["eff_lr"].append(sum(lrs) / len(lrs))
    return out


def _mismatch(a: list[Any], b: list[Any]) -> list[float]:
    return [float((p - q).abs().max() / p.square().mean().sqrt()) for p, q in zip(a, b)]


def measure(ctx: RunContext, size: dict[str, Any]) -> dict[str, Any]:
    """The four runs per seed; mismatches of the other three against the weight-decay run."""
    from signalprop.data import load_dataset
    from signalprop.train import exp_alpha

    data = load_dataset("mnist1d")
    seeds: dict[str, Any] = {}
    for seed in size["seeds"]:
        runs = {kind: _train(kind, seed, size, data) for kind in RUNS}
        ref = runs["wd"]["pred"]
        first = ref[0]
        seeds[str(seed)] = {
            "mismatch": {k: _mismatch(ref, runs[k]["pred"]) for k in RUNS[1:]},
            "loss": runs["wd"]["loss"],
            "eff_lr": {k: runs[k]["eff_lr"] for k in ("wd", "exp")},
            "function_change": float((ref[-1] - first).square().mean().sqrt()
                                     / first.square().mean().sqrt()),
        }
        ctx.log(f"exp-lr-equivalence: seed {seed} max mismatch "
                f"{max(seeds[str(seed)]['mismatch']['exp']):.2e}")
    steps = list(range(size["eval_every"], size["steps"] + 1, size["eval_every"]))
    return {"setup": {"eta": ETA, "momentum": GAMMA, "weight_decay": LAMBDA, "batch": BATCH,
                      "width": WIDTH, "dtype": "float64", "dataset": "mnist1d",
                      "alpha": exp_alpha(ETA, GAMMA, LAMBDA), "steps": steps,
                      "seeds": size["seeds"]},
            "seeds": seeds}


def decide(m: dict[str, Any]) -> Verdict:
    """Equal within EQUAL_TOL everywhere, and the fixed-lr control farther than CONTROL_MIN.

    Examples:
        >>> s = {"mismatch": {"exp": [1e-13, 3e-13], "fixed_no_wd": [0.5, 1.8],
        ...                   "exp_zero_buffer": [0.2, 1.0]}, "function_change": 2.0}
        >>> decide({"seeds": {"0": s}, "setup": {"steps": [10, 20]}}).reproduced
        True
    """
    worst = max(max(s["mismatch"]["exp"]) for s in m["seeds"].values())
    control = min(s["mismatch"]["fixed_no_wd"][-1] for s in m["seeds"].values())
    zero = max(s["mismatch"]["exp_zero_buffer"][-1] for s in m["seeds"].values())
    moved = min(s["function_change"] for s in m["seeds"].values())
    equal = math.isfinite(worst) and worst <= EQUAL_TOL
    distinct = math.isfinite(control) and control > CONTROL_MIN
    n, last = len(m["seeds"]), m["setup"]["steps"][-1]
    effect = (f"{n} seeds x {last} steps: exp schedule vs weight decay max relative "
              f"difference {worst:.1e}; fixed lr without weight decay ends >= {control:.2g} "
              f"away; exp with zero initial momentum ends up to {zero:.2g} away; the function "
              f"moved by >= {moved:.2g} of its rms")
    return Verdict(bool(equal and distinct), effect,
                   {"max_mismatch": worst, "min_control_mismatch": control,
                    "max_zero_buffer_mismatch": zero, "min_function_change": moved,
                    "equal": bool(equal), "control_differs": bool(distinct)})


def figure(m: dict[str, Any], path: Path) -> None:
    """Left: the three runs' distance from the weight-decay run; right: effective lr."""
    from signalprop.plot._style import pyplot, save

    steps = m["setup"]["steps"]
    plt = pyplot()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(9.5, 3.6))
    labels = {"exp": "exp lr, no wd (paper's init.)", "exp_zero_buffer": "exp lr, zero momentum",
              "fixed_no_wd": "fixed lr, no wd"}
    for i, s in enumerate(m["seeds"].values()):
        for k, (label, color) in zip(labels, zip(labels.values(), ("C0", "C1", "C3"))):
            ax.semilogy(steps, [max(v, 1e-17) for v in s["mismatch"][k]], color=color,
                        alpha=0.8, label=label if i == 0 else None)
        bx.semilogy(steps, s["eff_lr"]["wd"], color="C2", label="wd run" if i == 0 else None)
        bx.semilogy(steps, s["eff_lr"]["exp"], color="C0", ls="--",
                    label="exp run" if i == 0 else None)
    ax.axhline(EQUAL_TOL, color="grey", ls=":", lw=1, label="criterion")
    ax.set_xlabel("step")
    ax.set_ylabel("max |f - f_wd| / rms(f_wd)")
    ax.legend(fontsize=7, loc="center right")
    bx.set_xlabel("step")
    bx.set_ylabel("mean lr / ||w||^2")
    bx.set_title(f"alpha = {m['setup']['alpha']:.5f}: exp run = alpha x wd run", fontsize=9)
    bx.legend(fontsize=7)
    fig.suptitle("SGD + momentum + weight decay = SGD + momentum + exponential lr (float64)",
                 fontsize=9)
    save(fig, path)


CLAIM = Claim(
    name="exp-lr-equivalence",
    paper="Li & Arora (ICLR 2020)",
    statement=("For scale-invariant (BatchNorm-preceded) weights, SGD with momentum and "
               "weight decay at a fixed lr and SGD with momentum at the exponentially "
               "growing lr eta alpha^(-2t-1) without weight decay give the same network "
               "function at every step."),
    criterion=CRITERION,
    quick_minutes=0.5,
    sizes=SIZES, measure=measure, decide=decide, figure=figure,
)
