"""gradient_confusion(): cosine statistics and eta against a brute-force loop over pairs."""

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn as nn

import signalprop as sp
from signalprop.measure import confusion_from_gram

from .test_gram import CE, brute_rows


def brute_stats(model, x, y):
    """eta and every pairwise cosine from per-example gradients computed one by one."""
    f = torch.cat(list(brute_rows(model, CE, x, y).values()), dim=1).numpy()
    inner, cos = [], []
    for i, j in itertools.combinations(range(len(f)), 2):
        dot = float(f[i] @ f[j])
        inner.append(dot)
        cos.append(dot / (np.linalg.norm(f[i]) * np.linalg.norm(f[j])))
    return max(0.0, -min(inner)), np.array(cos), float(np.mean([r @ r for r in f]))


def test_statistics_equal_the_brute_force():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 3, stride=2), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 9, 5)).double()
    x, y = torch.randn(9, 2, 7, 7, dtype=torch.float64), torch.randint(0, 5, (9,))
    qs = (0.0, 0.1, 0.5, 0.9, 1.0)
    res = sp.gradient_confusion(model, x, y, loss_fn=CE, quantiles=qs, bins=20, label="cnn")
    eta, cos, msq = brute_stats(model, x, y)
    assert res.label == "cnn" and res.batch_size == 9 and res.n_pairs == 36
    assert res.eta == pytest.approx(eta, rel=1e-10)
    assert res.min_cosine == pytest.approx(cos.min(), abs=1e-12)
    assert res.mean_cosine == pytest.approx(cos.mean(), abs=1e-12)
    assert res.std_cosine == pytest.approx(cos.std(), abs=1e-12)
    assert res.mean_sq_norm == pytest.approx(msq, rel=1e-10)
    for q, v in res.quantiles.items():
        assert v == pytest.approx(np.quantile(cos, q), abs=1e-12)
    assert res.quantiles[0.0] == pytest.approx(res.min_cosine, abs=1e-12)
    counts, _ = np.histogram(cos, bins=20, range=(-1, 1))
    assert res.hist_counts == counts.tolist() and sum(res.hist_counts) == 36
    assert len(res.hist_edges) == 21 and res.zero_gradient_examples == 0


def test_eta_is_the_papers_bound_and_zero_gradients_are_left_out():
    # g_0 = (1, 0), g_1 = (-2, 0), g_2 = 0: <g_0, g_1> = -2 is the most negative product
    f = torch.tensor([[1.0, 0.0], [-2.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    res = confusion_from_gram(f @ f.T, quantiles=(0.5,))
    assert res.eta == 2.0
    assert res.n_pairs == 1 and res.zero_gradient_examples == 1
    assert res.min_cosine == -1.0 and res.quantiles == {0.5: -1.0}
    # all products non-negative: eta = 0
    g = torch.tensor([[1.0, 0.5], [0.5, 1.0]], dtype=torch.float64)
    assert confusion_from_gram(g).eta == 0.0
    # only zero gradients: no cosines, statistics NaN, eta 0
    empty = confusion_from_gram(torch.zeros(3, 3))
    assert empty.n_pairs == 0 and math.isnan(empty.mean_cosine) and empty.eta == 0.0


@pytest.mark.parametrize(
    "gram,kwargs,message",
    [
        (torch.ones(1, 1), {}, "at least 2 examples, got a batch of 1"),
        (torch.ones(2, 3), {}, r"square \(B, B\) matrix, got shape \(2, 3\)"),
        (torch.eye(3), {"quantiles": (1.5,)}, r"quantiles\[0\] must be a finite number in \[0.0, 1.0\], got 1.5"),
        (torch.eye(3), {"bins": 0}, "bins must be an integer >= 1, got 0"),
    ],
)
def test_bad_input(gram, kwargs, message):
    with pytest.raises(ValueError, match=message):
        confusion_from_gram(gram, **kwargs)


def test_batch_of_one_is_refused():
    model = nn.Linear(3, 2)
    with pytest.raises(ValueError, match="at least 2 examples, got x with batch 1"):
        sp.gradient_confusion(model, torch.randn(1, 3), torch.tensor([0]), loss_fn=CE)
