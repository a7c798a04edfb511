"""Small quantized classifiers on MNIST-1D for the low-precision claims.

MNIST-1D (40 features, 10 classes; ``signalprop.data``, generated offline): the 4000
training examples are split into 3200 for training and the last 800 for validation (which
picks learning rates); the 1000 test examples are only reported. Every run is one call of
:func:`train_run` on a JSON-able job (a top-level function, so a process pool can run it).
"""

from __future__ import annotations

import math
from typing import Any

VAL = 800


def _splits() -> dict[str, Any]:
    from signalprop.data import load_dataset

    d = load_dataset("mnist1d")
    n = len(d.train) - VAL
    return {"xtr": d.train.x[:n], "ytr": d.train.y[:n], "xval": d.train.x[n:],
            "yval": d.train.y[n:], "xte": d.test.x, "yte": d.test.y}


def build_model(job: dict[str, Any]) -> Any:
    """The job's network (seeded by ``job["seed"]``):

    * ``"mlp"``: float 40-W-...-W-10 ReLU MLP, He init (``depth`` hidden layers);
    * ``"binary_mlp"``: the same with binary mean-|w| hidden weights (``quant_mlp``);
    * ``"bnn"``: a 1W/1A network, QuantLinear -> BatchNorm1d blocks whose layers after the
      first binarize their input (sign is the nonlinearity), a float head on the last
      BatchNorm output; weights and inputs share the job's estimator.
    """
    import torch
    import torch.nn as nn

    from signalprop.models import mlp, quant_mlp
    from signalprop.nn import QuantLinear, ReSTESchedule

    torch.manual_seed(job["seed"])
    depth, width = job["depth"], job["width"]
    if job["model"] == "mlp":
        return mlp(depth, width, "relu", init="he", in_features=40, out_features=10), None
    if job["model"] == "binary_mlp":
        return quant_mlp(depth, width, "relu", init="he", in_features=40, out_features=10,
                         weight_levels="binary", scale="mean_abs"), None
    params: dict[str, Any] = dict(job.get("estimator_params") or {})
    schedule = None
    if job["estimator"] == "reste":
        schedule = ReSTESchedule(job["steps"], o_end=job["o_end"])
        params["o"] = schedule
    layers: list[nn.Module] = []
    fan_in = 40
    for i in range(depth):
        layers += [QuantLinear(fan_in, width, act_levels=None if i == 0 else "binary",
                               estimator=job["estimator"], estimator_params=params),
                   nn.BatchNorm1d(width)]
        fan_in = width
    layers.append(nn.Linear(width, 10))
    return nn.Sequential(*layers), schedule


def _accuracy(model: Any, x: Any, y: Any) -> float:
    import torch

    was = model.training
    model.eval()
    with torch.no_grad():
        acc = float((model(x).argmax(dim=1) == y).float().mean())
    model.train(was)
    return acc


def train_run(job: dict[str, Any]) -> dict[str, Any]:
    """Train one network with Adam and return its record.

    ``job``: model, depth, width, seed, lr, batch, steps, scheme (``"fp"``, ``"bc"``,
    ``"sr"``), estimator / o_end (``"bnn"``), indicator_every (0: never).
    """
    import torch
    import torch.nn.functional as F

    from signalprop.measure import estimator_indicators
    from signalprop.optim import QuantizedTraining

    torch.set_num_threads(1)
    data = _splits()
    model, schedule = build_model(job)
    opt: Any = torch.optim.Adam(model.parameters(), lr=job["lr"])
    if job["scheme"] in ("bc", "sr"):
        opt = QuantizedTraining(opt, model, job["scheme"], snap=True, seed=job["seed"])
    gen = torch.Generator().manual_seed(1000 + job["seed"])
    n, b = len(data["ytr"]), job["batch"]
    probe = torch.randperm(n, generator=torch.Generator().manual_seed(7))[:256]
    indicators: list[dict[str, float]] = []
    status, perm = "completed", torch.randperm(n, generator=gen)
    for step in range(job["steps"]):
        pos = (step * b) % (n - n % b)
        if pos == 0 and step > 0:
            perm = torch.randperm(n, generator=gen)
        idx = perm[pos:pos + b]
        loss = F.cross_entropy(model(data["xtr"][idx]), data["ytr"][idx])
        if not math.isfinite(loss.item()):
            status = "diverged"
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
        if schedule is not None:
            schedule.step()
        every = job.get("indicator_every", 0)
        if every and ((step + 1) % every == 0):
            r = estimator_indicators(model, data["xtr"][probe], data["ytr"][probe],
                                     loss_fn=F.cross_entropy, chunks=4, step=step + 1)
            indicators.append({"step": step + 1, "estimating_error": r.estimating_error,
                               "gradient_instability": r.gradient_instability,
                               "o": float(schedule) if schedule is not None else 1.0})
    ok = status == "completed"
    return {**job, "status": status,
            "val_acc": _accuracy(model, data["xval"], data["yval"]) if ok else 0.0,
            "test_acc": _accuracy(model, data["xte"], data["yte"]) if ok else 0.0,
            "indicators": indicators}


def run_jobs(ctx: Any, jobs: list[dict[str, Any]], desc: str) -> list[dict[str, Any]]:
    """Run ``jobs`` in this process or on ``ctx.workers`` spawned processes (in order)."""
    from tqdm.auto import tqdm

    if ctx.workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(ctx.workers,
                                 mp_context=multiprocessing.get_context("spawn")) as pool:
            return list(tqdm(pool.map(train_run, jobs), total=len(jobs),
                             disable=not ctx.progress, desc=desc))
    return [train_run(j) for j in tqdm(jobs, disable=not ctx.progress, desc=desc)]


def best_lr(runs: list[dict[str, Any]], key: str) -> float:
    """The learning rate with the highest mean validation accuracy among runs whose
    ``group`` equals ``key`` (ties: the smaller rate)."""
    by_lr: dict[float, list[float]] = {}
    for r in runs:
        if r["group"] == key:
            by_lr.setdefault(r["lr"], []).append(r["val_acc"])
    return max(sorted(by_lr), key=lambda lr: sum(by_lr[lr]) / len(by_lr[lr]))
