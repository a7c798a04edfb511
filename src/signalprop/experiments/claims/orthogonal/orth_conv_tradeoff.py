"""orth-conv-tradeoff: the weight of the L_orth penalty trades accuracy for orthogonality.

Achour, Malgouyres & Mamalet (JMLR 2022), Section 3.2 (PAPERS.md section 9): training
with L_task + lambda sum_l L_orth(K_l), the largest and smallest singular values of every
convolution approach 1 as lambda grows (Figure 5: lambda from 1e-5 to 10), while the clean
accuracy falls from the unconstrained network's; lambda tunes the trade-off.

Experiment (scaled down): scikit-learn's 8x8 digits as images, a three-convolution CNN with
circular padding (1 -> 8 channels, 8 -> 16 with stride 2, 16 -> 24; no square M = C S^2
layer, which the paper reports as hard to make orthogonal), ReLU, global average pooling and
a linear head, trained with Adam at one learning rate (chosen on a validation split at
lambda = 0) for every lambda, several seeds. After training, every convolution's condition
number sigma_max / sigma_min at its input size is computed exactly (signalprop.measure.
conv_spectrum), and the test accuracy.

Design (pilot on the validation split, seeds 10-11, never the test split): at lambda = 0,
learning rates 1e-3 / 3e-3 / 1e-2 / 3e-2 gave validation accuracy 0.86 / 0.93 / 0.94 /
diverged-or-0.88, so 1e-2 for every lambda; 1500 steps of batch 64 (about 80 epochs).
Lambdas a decade apart from 1e-2: at lambda = 0 L_orth is 1e1-1e4 per layer, so already
1e-2 constrains it, and smaller steps of lambda would add comparisons between nearly equal
settings, where the "no rise by more than 2 standard errors" test has only its false-alarm
rate to give. Pilot spread of the accuracy across seeds: about 0.03.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from signalprop.experiments._claim import Claim, RunContext, Verdict
from signalprop.experiments._stats import diff_se, mean_se, separated

K = 2.0  # standard errors
NEAR_ONE = 1.5  # at the largest lambda, every layer's (geometric) mean condition <= this
LOG_INF = 50.0  # log condition number recorded for sigma_min = 0 (never seen in pilots)

CRITERION = (
    f"with lambda = 0 first and increasing: for every conv layer, the seed-mean log "
    f"condition number at the largest lambda is below that at lambda = 0 by more than "
    f"{K:g} standard errors, never rises between consecutive lambdas by more than {K:g} "
    f"standard errors, and exp(its mean) <= {NEAR_ONE:g} at the largest lambda; and the "
    f"test accuracy at the largest lambda is below that at lambda = 0 by more than {K:g} "
    "standard errors (the cost)"
)


def decide(m: dict[str, Any]) -> Verdict:
    """The pre-registered criterion, from per-seed log condition numbers [lambda][layer]
    and test accuracies [lambda].

    Examples:
        >>> lc = [[[2.0, 2.2, 1.9]], [[0.5, 0.6, 0.4]], [[0.05, 0.04, 0.06]]]
        >>> acc = [[0.97, 0.96, 0.97], [0.95, 0.96, 0.95], [0.90, 0.89, 0.91]]
        >>> decide({"lambdas": [0, 0.1, 10], "layers": ["c"], "log_cond": lc,
        ...         "test_acc": acc}).reproduced
        True
    """
    lams, layers, lc, acc = m["lambdas"], m["layers"], m["log_cond"], m["test_acc"]
    if lams[0] != 0 or any(b <= a for a, b in zip(lams, lams[1:])):
        raise ValueError(f"lambdas must start at 0 and increase, got {lams}")
    per_layer = {}
    for j, name in enumerate(layers):
        series = [lc[i][j] for i in range(len(lams))]
        drop = diff_se(series[0], series[-1])
        rises = [lams[i + 1] for i in range(len(lams) - 1)
                 if separated(series[i + 1], series[i], K)]
        final = math.exp(mean_se(series[-1])[0])
        per_layer[name] = {
            "drops": separated(series[0], series[-1], K), "rises_at": rises,
            "final_condition": final, "near_one": final <= NEAR_ONE,
            "log_cond_drop": drop, "mean_log_cond": [mean_se(v)[0] for v in series]}
    layers_ok = all(p["drops"] and not p["rises_at"] and p["near_one"]
                    for p in per_layer.values())
    cost = separated(acc[0], acc[-1], K)
    d_acc = diff_se(acc[0], acc[-1])
    accs = [mean_se(a)[0] for a in acc]
    conds = ", ".join(f"{n} {math.exp(p['mean_log_cond'][0]):.3g} -> {p['final_condition']:.3g}"
                      for n, p in per_layer.items())
    effect = (f"condition number from lambda 0 to {lams[-1]:g}: {conds} "
              f"({'every layer moves to 1' if layers_ok else 'NOT every layer moves to 1'}); "
              f"test accuracy {accs[0]:.3f} -> {accs[-1]:.3f} (drop {d_acc[0]:+.3f} +- "
              f"{d_acc[1]:.3f}, {'a cost' if cost else 'no clear cost'})")
    return Verdict(bool(layers_ok and cost), effect, {
        "per_layer": per_layer, "accuracy_cost": cost, "accuracy_drop": d_acc,
        "mean_test_acc": accs})


def _model(seed: int) -> Any:
    import torch
    import torch.nn as nn

    torch.manual_seed(seed)

    def conv(c: int, m: int, s: int) -> nn.Conv2d:
        return nn.Conv2d(c, m, 3, stride=s, padding=1, padding_mode="circular")

    return nn.Sequential(conv(1, 8, 1), nn.ReLU(), conv(8, 16, 2), nn.ReLU(), conv(16, 24, 1),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(24, 10))


CONVS = ("0", "2", "4")  # the convolutions' names in the Sequential
INPUTS = ((1, 8, 8), (8, 8, 8), (16, 4, 4))


def train(lam: float, seed: int, size: dict[str, Any], holdout: str = "test"
          ) -> dict[str, Any]:
    """One run: accuracy on the held-out split and every conv's spectrum."""
    import torch
    import torch.nn.functional as F

    from signalprop.data import load_digits
    from signalprop.measure import conv_spectrum
    from signalprop.nn import orth_penalty

    data = load_digits(as_image=True, validation_fraction=0.2, holdout=holdout)
    x, y = data.train.tensors()
    xt, yt = data.test.tensors()
    model = _model(seed)
    convs = [model.get_submodule(n) for n in CONVS]
    opt = torch.optim.Adam(model.parameters(), lr=size["lr"])
    gen = torch.Generator().manual_seed(seed)
    for _ in range(size["steps"]):
        idx = torch.randint(0, x.shape[0], (size["batch"],), generator=gen)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        if lam > 0:
            loss = loss + lam * sum(orth_penalty(c) for c in convs)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        acc = float((model(xt).argmax(1) == yt).float().mean())
        lorth = [float(orth_penalty(c)) for c in convs]
    spectra = [conv_spectrum(c, shape, values=False) for c, shape in zip(convs, INPUTS)]
    log_cond = [math.log(s.condition) if math.isfinite(s.condition) else LOG_INF
                for s in spectra]
    return {"acc": acc, "log_cond": log_cond, "lorth": lorth,
            "sigma_max": [s.sigma_max for s in spectra],
            "sigma_min": [s.sigma_min for s in spectra]}


def measure(ctx: RunContext, size: dict[str, Any]) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    lams, seeds = size["lambdas"], size["seeds"]
    runs = {}
    for lam in lams:
        for seed in seeds:
            runs[(lam, seed)] = r = train(lam, seed, size)
            ctx.log(f"  lambda={lam:g} seed={seed}: test acc {r['acc']:.3f}, condition "
                    + ", ".join(f"{math.exp(v):.3g}" for v in r["log_cond"]))
    pick = lambda key: [[runs[(lam, s)][key] for s in seeds] for lam in lams]  # noqa: E731
    per_layer = lambda key: [[[runs[(lam, s)][key][j] for s in seeds]  # noqa: E731
                              for j in range(len(CONVS))] for lam in lams]
    return {"lambdas": lams, "seeds": seeds, "layers": [f"conv{j + 1}" for j in range(3)],
            "test_acc": pick("acc"), "log_cond": per_layer("log_cond"),
            "lorth": per_layer("lorth"), "sigma_max": per_layer("sigma_max"),
            "sigma_min": per_layer("sigma_min"), "steps": size["steps"], "lr": size["lr"],
            "batch": size["batch"]}


def figure(m: dict[str, Any], path: Path) -> None:
    from signalprop.experiments._rows import errorbar_lines
    from signalprop.plot._style import pyplot, save

    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    lams = m["lambdas"]
    xs = [lam if lam > 0 else min(v for v in lams if v > 0) / 10 for lam in lams]
    errorbar_lines(ax1, xs, {"test accuracy": m["test_acc"]})
    errorbar_lines(ax2, xs, {name: [[math.exp(v) for v in m["log_cond"][i][j]]
                                    for i in range(len(lams))]
                             for j, name in enumerate(m["layers"])})
    ax2.axhline(1.0, color="0.5", lw=0.8)
    ax2.set_yscale("log")
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.set_xlabel("lambda (leftmost point: lambda = 0)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    ax1.set_ylabel("test accuracy (mean +- s.e.)")
    ax2.set_ylabel("condition number sigma_max / sigma_min")
    ax1.set_title("accuracy falls as lambda grows")
    ax2.set_title("every conv moves to orthogonal (condition 1)")
    save(fig, path)


CLAIM = Claim(
    name="orth-conv-tradeoff",
    paper="Achour, Malgouyres & Mamalet (JMLR 2022)",
    statement="Training with lambda * L_orth moves every convolution's condition number "
              "towards 1 as lambda grows, at some cost in accuracy (the accuracy / "
              "orthogonality trade-off, here on 8x8 digits).",
    criterion=CRITERION,
    quick_minutes=6.0,
    sizes={
        "smoke": {"lambdas": [0.0, 10.0], "seeds": [0, 1], "steps": 30, "batch": 32,
                  "lr": 1e-2},
        "quick": {"lambdas": [0.0, 1e-2, 1e-1, 1.0, 10.0], "seeds": [0, 1, 2, 3],
                  "steps": 1500, "batch": 64, "lr": 1e-2},
        "full": {"lambdas": [0.0, 1e-3, 1e-2, 1e-1, 1.0, 10.0],
                 "seeds": [0, 1, 2, 3, 4, 5, 6, 7], "steps": 3000, "batch": 64, "lr": 1e-2},
    },
    measure=measure, decide=decide, figure=figure,
)
