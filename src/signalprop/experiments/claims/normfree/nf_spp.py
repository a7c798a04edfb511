"""nf-spp: Signal Propagation Plots of BN, unnormalized and NF ResNet-V2 at initialization.

Brock, De & Smith (ICLR 2021), Fig. 1-2 (PAPERS.md section 1): on Gaussian-noise inputs, a
BN-ReLU pre-activation ResNet's average channel variance grows about linearly inside a
stage and drops back at each transition; an unnormalized He-init ReLU ResNet suffers a
mean shift (the squared channel mean grows and overtakes the variance); an NF-ResNet with
Scaled WS keeps the squared mean near 0, the residual variance near 1 and the variance on
the predicted 1 + k alpha^2 schedule, reset at each transition.

The measurement is deterministic given the seed (one batch, no training), so the
criterion must hold for every seed rather than on average.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from signalprop.experiments._claim import Claim, RunContext, Verdict

NORMS = ("bn", "none", "nf")
# the network, its input (batch x 3 x input_hw x input_hw Gaussian noise) and the seeds
SIZES: dict[str, dict[str, Any]] = {
    "smoke": {"model": "resnetv2_50", "input_hw": 32, "batch_size": 4, "seeds": [0]},
    "quick": {"model": "resnetv2_600", "input_hw": 224, "batch_size": 8, "seeds": [0, 1, 2]},
    "full": {"model": "resnetv2_600", "input_hw": 224, "batch_size": 8,
             "seeds": [0, 1, 2, 3, 4]},
}
# Thresholds of the pre-registered criterion (fixed before any run; see CRITERION).
BN_GROWTH = 3.0  # var(last block of a stage) / var(first block) at least this
BN_RESET = 2.0  # var falls by at least this factor at every transition
NONE_MEAN_GROWTH = 10.0  # sq_mean(last block) / sq_mean(first block) at least this
NF_SQ_MEAN = 0.1  # sq_mean / var below this at every block
NF_RES_VAR = (0.5, 2.0)  # residual variance inside this range at every block
NF_PRED_TOL = 0.25  # |var / predicted - 1| below this at every block

CRITERION = (
    f"in every seed: BN -- within every stage var(last block) >= {BN_GROWTH:g} x "
    f"var(first block), and var falls >= {BN_RESET:g}x at every transition; none (He) -- "
    f"squared mean at the last block > variance there and >= {NONE_MEAN_GROWTH:g} x the "
    f"first block's; NF -- squared mean < {NF_SQ_MEAN:g} x variance, residual variance in "
    f"[{NF_RES_VAR[0]:g}, {NF_RES_VAR[1]:g}] and variance within "
    f"{100 * NF_PRED_TOL:.0f}% of the predicted schedule at every residual block "
    "(record 0, the stem with its max-pool, is not a residual block)"
)


def _stage_slices(depths: tuple[int, ...]) -> list[tuple[int, int]]:
    """(first, last) record index of each stage; record 0 is the stem."""
    out, start = [], 1
    for d in depths:
        out.append((start, start + d - 1))
        start += d
    return out


def check_bn(var: list[float], depths: tuple[int, ...]) -> dict[str, Any]:
    """BN shape: growth inside every stage and a drop at every transition.

    Examples:
        >>> check_bn([1, 1, 2, 3, 1.2, 2.5, 4], (3, 3))["ok"]
        True
    """
    stages = _stage_slices(depths)
    growth = [var[b] / var[a] for a, b in stages]
    resets = [var[stages[i][1]] / var[stages[i + 1][0]] for i in range(len(stages) - 1)]
    ok = all(g >= BN_GROWTH for g in growth) and all(r >= BN_RESET for r in resets)
    return {"ok": bool(ok), "stage_growth": growth, "transition_drop": resets}


def check_none(sq_mean: list[float], var: list[float]) -> dict[str, Any]:
    """Mean shift: the squared mean overtakes the variance and grows with depth.

    Examples:
        >>> check_none([0.0, 0.1, 5.0], [1.0, 1.0, 2.0])["ok"]
        True
    """
    ratio_last = sq_mean[-1] / var[-1]
    growth = sq_mean[-1] / max(sq_mean[1], 1e-300)
    ok = math.isfinite(ratio_last) and ratio_last > 1.0 and growth >= NONE_MEAN_GROWTH
    return {"ok": bool(ok), "sq_mean_over_var_last": ratio_last, "sq_mean_growth": growth}


def check_nf(sq_mean: list[float], var: list[float], res_var: list[float | None],
             predicted_var: list[float]) -> dict[str, Any]:
    """NF shape at the residual blocks (records 1..): mean near 0, residual variance near 1,
    variance on the predicted schedule.

    Examples:
        >>> check_nf([0.5, 0.01], [1.0, 1.05], [None, 1.0], [1.0, 1.04])["ok"]
        True
    """
    mean_ratio = max(m / v for m, v in zip(sq_mean[1:], var[1:]))
    rv = [r for r in res_var[1:] if r is not None]
    dev = max(abs(v / p - 1.0) for v, p in zip(var[1:], predicted_var[1:]))
    ok = (mean_ratio < NF_SQ_MEAN and all(NF_RES_VAR[0] <= r <= NF_RES_VAR[1] for r in rv)
          and dev < NF_PRED_TOL)
    return {"ok": bool(ok), "max_sq_mean_over_var": mean_ratio,
            "res_var_range": [min(rv), max(rv)] if rv else None,
            "max_rel_dev_from_prediction": dev}


def measure(ctx: RunContext, size: dict[str, Any]) -> dict[str, Any]:
    """SPP of each norm's network on each seed's Gaussian batch, and its prediction."""
    import torch

    from signalprop import models
    from signalprop.measure import spp

    torch.set_num_threads(1)
    name, hw, batch, seeds = size["model"], size["input_hw"], size["batch_size"], size["seeds"]
    per_seed: list[dict[str, Any]] = []
    drawn: dict[str, Any] = {}  # the first seed's SPPs, for the figure
    depths: list[int] = []
    for seed in seeds:
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(batch, 3, hw, hw, generator=gen)
        stats: dict[str, Any] = {"seed": seed}
        for norm in NORMS:
            torch.manual_seed(seed)
            # SkipInit gain absent: the paper's SPPs have every branch contributing.
            model = models.load_model(name, norm=norm).train()
            ctx.log(f"  seed {seed}: SPP of {name} norm={norm} on {batch}x3x{hw}x{hw}")
            res = spp(model, x, label=f"{name} {norm}", progress=ctx.progress)
            stem = res.records[0]
            pred = model.predicted_spp((hw, hw), stem_var=stem.avg_var,
                                       stem_sq_mean=stem.avg_sq_mean,
                                       label=f"{name} {norm} (predicted)")
            depths = list(model.cfg.depths)
            stats[norm] = {"avg_sq_mean": list(res.avg_sq_mean), "avg_var": list(res.avg_var),
                           "res_var": list(res.res_var), "predicted_var": list(pred.avg_var),
                           "nonfinite": res.first_nonfinite is not None}
            if seed == seeds[0]:
                drawn[norm] = {"measured": res.to_dict(), "predicted": pred.to_dict()}
            del model
        per_seed.append(stats)
    return {"model": name, "input_hw": hw, "batch_size": batch, "seeds": seeds,
            "stage_depths": depths, "per_seed": per_seed, "first_seed_spp": drawn}


def decide(m: dict[str, Any]) -> Verdict:
    """The three shape checks on every seed; REPRODUCED when every one holds.

    Examples:
        >>> bn = {"avg_sq_mean": [0.0] * 5, "avg_var": [1, 1, 3, 1, 3],
        ...       "res_var": [None, 1, 1, 1, 1], "predicted_var": [1] * 5}
        >>> none = {**bn, "avg_sq_mean": [0, 0.1, 1, 2, 5], "avg_var": [1, 1, 1, 1, 2]}
        >>> nf = {**bn, "avg_sq_mean": [0.0] * 5, "avg_var": [1, 1, 1.1, 1, 1.1],
        ...       "predicted_var": [1, 1, 1.1, 1, 1.1]}
        >>> m = {"model": "toy", "input_hw": 8, "seeds": [0], "stage_depths": [2, 2],
        ...      "per_seed": [{"seed": 0, "bn": bn, "none": none, "nf": nf}]}
        >>> decide(m).reproduced
        True
    """
    depths = tuple(m["stage_depths"])
    checks = []
    for s in m["per_seed"]:
        checks.append({"seed": s["seed"],
                       "bn": check_bn(s["bn"]["avg_var"], depths),
                       "none": check_none(s["none"]["avg_sq_mean"], s["none"]["avg_var"]),
                       "nf": check_nf(s["nf"]["avg_sq_mean"], s["nf"]["avg_var"],
                                      s["nf"]["res_var"], s["nf"]["predicted_var"])})
    ok = {norm: all(c[norm]["ok"] for c in checks) for norm in NORMS}
    bn_growth = min(min(c["bn"]["stage_growth"]) for c in checks)
    bn_drop = min(min(c["bn"]["transition_drop"]) for c in checks)
    none_ratio = min(c["none"]["sq_mean_over_var_last"] for c in checks)
    nf_mean = max(c["nf"]["max_sq_mean_over_var"] for c in checks)
    nf_dev = max(c["nf"]["max_rel_dev_from_prediction"] for c in checks)
    rv = [c["nf"]["res_var_range"] for c in checks if c["nf"]["res_var_range"]]
    rv_lo = min(r[0] for r in rv) if rv else float("nan")
    rv_hi = max(r[1] for r in rv) if rv else float("nan")
    effect = (f"{m['model']} at {m['input_hw']}x{m['input_hw']}, {len(m['seeds'])} seed(s): "
              f"BN min stage growth {bn_growth:.2f}x, min transition drop {bn_drop:.2f}x "
              f"({'ok' if ok['bn'] else 'FAILS'}); none sq_mean/var at last block "
              f"{none_ratio:.3g} ({'ok' if ok['none'] else 'FAILS'}); NF max sq_mean/var "
              f"{nf_mean:.2g}, res_var in [{rv_lo:.2f}, {rv_hi:.2f}], max deviation from "
              f"prediction {100 * nf_dev:.1f}% ({'ok' if ok['nf'] else 'FAILS'})")
    details = {"ok": ok, "per_seed": checks,
               "summary": {"bn_min_stage_growth": bn_growth,
                           "bn_min_transition_drop": bn_drop,
                           "none_min_sq_mean_over_var_last": none_ratio,
                           "nf_max_sq_mean_over_var": nf_mean,
                           "nf_res_var_range": [rv_lo, rv_hi],
                           "nf_max_rel_dev_from_prediction": nf_dev}}
    return Verdict(all(ok.values()), effect, details)


def figure(m: dict[str, Any], path: Path) -> None:
    """The first seed's SPPs of the three networks, predictions dashed."""
    from signalprop import plot
    from signalprop.results import SPPResult

    drawn = [m["first_seed_spp"][norm] for norm in NORMS]
    hw = m["input_hw"]
    plot.spp([SPPResult.from_dict(d["measured"]) for d in drawn], path,
             predicted=[SPPResult.from_dict(d["predicted"]) for d in drawn],
             title=f"{m['model']}, {m['batch_size']}x3x{hw}x{hw} Gaussian input, seed "
                   f"{m['seeds'][0]} (dashed: predicted)")


CLAIM = Claim(
    name="nf-spp",
    paper="Brock, De & Smith (ICLR 2021)",
    statement="At initialization, BN ResNets' variance grows linearly within a stage and "
              "resets at transitions, unnormalized He-init ResNets suffer a mean shift, and "
              "NF-ResNets keep the mean near 0 and the variance on the predicted "
              "1 + k*alpha^2 schedule (ResNetV2-600, Gaussian input).",
    criterion=CRITERION,
    quick_minutes=3.0,
    sizes=SIZES, measure=measure, decide=decide, figure=figure,
)
