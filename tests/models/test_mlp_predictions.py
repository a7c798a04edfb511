"""MLP.predicted_spp / predicted_gradient_chi against measurements on wide random MLPs."""

import pytest
import torch

import signalprop as sp
from signalprop.models import mlp

# Width 1024, depth 8, batch 256. Finite-width fluctuations of one network's per-layer
# statistics are O(sqrt(depth / width)) ~ 9%; the tolerances are ~2x that and the
# statistics are averaged over 2 networks.
WIDTH, DEPTH, BATCH, NETS = 1024, 8, 256, 2


@pytest.mark.parametrize("activation,init,sigma_b2", [("tanh", "critical", 0.05),
                                                      ("relu", "he", 0.0)])
def test_forward_and_backward_predictions_match_wide_networks(activation, init, sigma_b2):
    meas_var = torch.zeros(DEPTH, dtype=torch.float64)
    meas_tot = torch.zeros(DEPTH, dtype=torch.float64)
    meas_grad = torch.zeros(DEPTH, dtype=torch.float64)
    for seed in range(NETS):
        torch.manual_seed(seed)
        net = mlp(DEPTH, WIDTH, activation, init=init, sigma_b2=sigma_b2)
        x = torch.randn(BATCH, WIDTH)
        m = sp.spp(net, x)
        g = sp.gradient_spp(net, x)
        meas_var += torch.tensor(m.avg_var, dtype=torch.float64) / NETS
        meas_tot += torch.tensor([r.avg_var + r.avg_sq_mean for r in m.records],
                                 dtype=torch.float64) / NETS
        meas_grad += torch.tensor([r.grad_avg_var for r in g.records], dtype=torch.float64) / NETS
    pred = net.predicted_spp(batch_size=BATCH)
    assert pred.names == m.names == [f"fc{i}" for i in range(DEPTH)]
    pv = torch.tensor(pred.avg_var, dtype=torch.float64)
    pt = torch.tensor([r.avg_var + r.avg_sq_mean for r in pred.records], dtype=torch.float64)
    assert torch.all((meas_var / pv - 1).abs() < 0.15), (meas_var, pv)
    assert torch.all((meas_tot / pt - 1).abs() < 0.15), (meas_tot, pt)
    chi = net.predicted_gradient_chi()
    assert len(chi) == DEPTH - 1
    anchored = sp.results.chi_prediction(g, chi)  # scale from the last measured block
    pg = torch.tensor(anchored.grad_avg_var, dtype=torch.float64) * meas_grad[-1] / g.records[-1].grad_avg_var
    assert torch.all((meas_grad / pg - 1).abs() < 0.15), (meas_grad, pg)


def test_relu_channel_means_grow_as_inputs_correlate():
    pred = mlp(12, 64, "relu", init="he").predicted_spp()
    sq, var = pred.avg_sq_mean, pred.avg_var
    assert sq[0] == 0.0 and all(b > a for a, b in zip(sq[1:], sq[2:]))
    assert all(b < a for a, b in zip(var[1:], var[2:]))
    assert all(abs(s + v - 2.0) < 1e-9 for s, v in zip(sq, var))  # q* = 2 is preserved


def test_prediction_needs_a_known_weight_variance():
    with pytest.raises(ValueError, match="no mean-field prediction for init='torch'"):
        mlp(3, 16, "tanh", init="torch").predicted_spp()
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        mlp(3, 16, "tanh").predicted_spp(batch_size=0)
