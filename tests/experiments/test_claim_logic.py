"""The pieces of the training claims: model factories, measurements and decisions, each
against an independent computation."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from signalprop.experiments._models import (
    autoencoder,
    gaussian_mlp,
    relu_mlp,
    relu_resmlp,
    snn_mlp,
)
from signalprop.experiments.claims import (
    adam_nag,
    confusion_width_depth,
    criticality_depth,
    snn_depth,
)


def test_gaussian_mlp_variances_and_prediction() -> None:
    torch.manual_seed(0)
    net = gaussian_mlp(4, 1024, sigma_w2=1.5, sigma_b2=0.1, in_features=1024)
    w = net.fc2.weight
    # sample variance of 1M N(0, 1.5/1024) draws: relative s.e. sqrt(2/1M) ~ 0.0014
    assert w.var().item() * 1024 == pytest.approx(1.5, rel=0.01)
    assert net.fc2.bias.var().item() == pytest.approx(0.1, rel=0.15)  # 1024 draws: s.e. 4.4%
    x = torch.randn(256, 1024)
    # the measured pre-activation second moment of layer 3 vs the mean-field q-map
    acts = {}
    net.fc3.register_forward_hook(lambda m, i, o: acts.setdefault("h", o))
    with torch.no_grad():
        net(x)
    pred = net.predicted_spp(input_var=1.0)
    q3 = pred.records[3].avg_var + pred.records[3].avg_sq_mean
    assert (acts["h"] ** 2).mean().item() == pytest.approx(q3, rel=0.05)


def test_snn_stays_normalized_with_depth() -> None:
    torch.manual_seed(0)
    net = snn_mlp(16, 512, in_features=512, num_classes=3, dropout=0.05).eval()
    h = torch.randn(2048, 512)
    with torch.no_grad():
        for m in list(net)[:-1]:
            h = m(h)
    # SELU's fixed point (0, 1); finite width and sampling leave a few percent
    assert abs(h.mean().item()) < 0.1 and h.var().item() == pytest.approx(1.0, abs=0.15)


def test_relu_nets_and_autoencoder_shapes() -> None:
    x = torch.randn(8, 5)
    assert relu_mlp(3, 16, 5, 4, batchnorm=True)(x).shape == (8, 4)
    net = relu_resmlp(32, 64, 5, 4)
    torch.manual_seed(0)
    h = torch.randn(512, 5)
    with torch.no_grad():
        stem = net.stem(h)
        out = stem
        for i in range(32):
            out = getattr(net, f"block{i}")(out)
    # branch scale 1/sqrt(depth): variance grows at most ~e-fold over 32 blocks
    assert out.var().item() / stem.var().item() < math.e * 1.5
    assert autoencoder(5, (4, 2, 4))(x).shape == x.shape
    with pytest.raises(ValueError, match="unknown activation"):
        autoencoder(5, (4,), activation="cube")


def test_minibatch_confusion_matches_loop() -> None:
    torch.manual_seed(0)
    model = relu_mlp(2, 8, 5, 3)
    x, y = torch.randn(24, 5), torch.randint(0, 3, (24,))
    res = confusion_width_depth.minibatch_confusion(model, x, y, batch=4)
    grads = []
    for i in range(0, 24, 4):
        model.zero_grad()
        F.cross_entropy(model(x[i:i + 4]), y[i:i + 4]).backward()
        grads.append(np.concatenate([p.grad.numpy().ravel() for p in model.parameters()]))
    g = np.array(grads, dtype=np.float64)
    cos = [g[i] @ g[j] / np.linalg.norm(g[i]) / np.linalg.norm(g[j])
           for i in range(6) for j in range(i + 1, 6)]
    assert res.n_pairs == 15
    assert res.min_cosine == pytest.approx(min(cos), abs=1e-6)
    assert res.mean_cosine == pytest.approx(np.mean(cos), abs=1e-6)


def test_criticality_decision() -> None:
    xi = {1.0: 3.63, 1.76: 5000.0, 4.0: 7.0}
    acc = {(s, d): 0.9 for s in xi for d in (4, 64)}
    acc[(1.0, 64)] = 0.1  # 64 > 12 xi_c: predicted not to train, and does not
    acc[(4.0, 64)] = 0.1  # 12 * 7 = 84 > 64: inside the band, not counted
    out = criticality_depth.decide(acc, xi, 1.76)
    assert out["reproduced"] and out["n_predicted_fail"] == 1
    assert out["max_trainable_depth"] == {"1.0": 4, "1.76": 64, "4.0": 4}
    acc[(1.76, 64)] = 0.1  # the peak is no longer at the critical point
    acc[(1.0, 64)] = 0.9
    out = criticality_depth.decide(acc, xi, 1.76)
    assert not out["peak_at_critical"] and not out["reproduced"]


def test_snn_decision_needs_two_datasets() -> None:
    good = {(ds, m, d): v for ds in ("a", "b", "c") for m, d, v in (
        (snn_depth.SNN, 4, [0.9, 0.91]), (snn_depth.SNN, 32, [0.9, 0.89]),
        (snn_depth.RELU, 4, [0.9, 0.91]), (snn_depth.RELU, 32, [0.5, 0.52]))}
    assert snn_depth.decide(good, ["a", "b", "c"], [4, 32])["reproduced"]
    for ds in ("a", "b"):  # the SNN degrades too on two of three datasets
        good[(ds, snn_depth.SNN, 32)] = [0.8, 0.81]
    out = snn_depth.decide(good, ["a", "b", "c"], [4, 32])
    assert out["n_hold"] == 1 and not out["reproduced"]


def test_adam_nag_run_and_decision() -> None:
    job = {"family": "nag mu=0.9", "lr": 0.01, "seed": 0, "steps": 40, "batch": 64,
           "record_every": 20, "hessian_every": 40, "hidden": [8, 4, 8]}
    r = adam_nag.train_autoencoder(job)
    assert r["status"] == "completed" and r["record"]["step"] == [0, 20, 40]
    assert r["hessian"]["step"] == [0, 40]
    assert r["final_train_loss"] < r["record"]["train_loss"][0]
    assert r["hessian"]["min_eig"][0] <= r["hessian"]["max_eig"][0]
    again = adam_nag.train_autoencoder(job)  # deterministic in the seed
    assert again["record"] == r["record"]
    final = {"adam b1=0.99": {1e-3: [0.3, 0.31], 3e-3: [0.1, 0.11]},
             "adam b1=0.9": {1e-3: [0.2, 0.2]}, "nag mu=0.9": {0.1: [0.05, 0.06]},
             "nag mu=0.99": {0.01: [0.4, math.inf]}}
    out = adam_nag.decide(final, final)
    assert out["best_lr"]["adam b1=0.99"] == 3e-3 and out["best_nag"] == "nag mu=0.9"
    assert not out["reproduced"]  # NAG is lower here


@pytest.mark.slow
def test_adam_nag_workers_give_the_same_runs(tmp_path) -> None:
    from signalprop.experiments import RunContext

    jobs = [{"family": f, "lr": 0.01, "seed": 1, "steps": 20, "batch": 64,
             "record_every": 10, "hessian_every": 20, "hidden": [8, 4, 8]}
            for f in ("adam b1=0.99", "nag mu=0.9")]
    here = adam_nag._run_all(RunContext("full", tmp_path, progress=False), jobs)
    pool = adam_nag._run_all(RunContext("full", tmp_path, workers=2, progress=False), jobs)
    assert [r["record"] for r in pool] == [r["record"] for r in here]


def test_at_grid_edge_matches_sorted_ends() -> None:
    from signalprop.experiments._rows import at_grid_edge

    rng = np.random.default_rng(0)
    for _ in range(50):
        grid = list(rng.choice([1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3], rng.integers(1, 6),
                               replace=False))
        ends = sorted(grid)
        for value in grid:  # an edge: the first or last of the sorted grid, if 3 or more
            assert at_grid_edge(value, grid) == (len(grid) >= 3 and value in (ends[0], ends[-1]))


def test_snn_and_confusion_quick_designs_cover_the_criterion(tmp_path) -> None:
    """The quick grids give ``decide`` every configuration it reads (checked on the design
    only: the sweep is replaced by a recorder, nothing trains)."""
    from signalprop.experiments import RunContext

    calls: list[tuple[str, dict, dict]] = []

    class Stop(Exception):
        pass

    class Recorder(RunContext):
        def sweep(self, name, base, grid, seeds):  # noqa: ANN001, ANN201
            calls.append((name, base, grid))
            if name == "res-bn":
                raise Stop
            return []

    with pytest.raises(Stop):
        confusion_width_depth.run(Recorder("quick", tmp_path, progress=False))
    got = {(w, d) for _, _, g in calls[:2] for w in g["model_args.width"]
           for d in g["model_args.depth"]}
    # widest/narrowest at the middle depth, shallowest/deepest at the middle width
    assert {(16, 8), (64, 8), (256, 8), (64, 2), (64, 32)} == got
    assert all(b["schedule"] == "cosine" and b["batch_size"] == 128 for _, b, _ in calls)
