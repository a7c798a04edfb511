"""lanczos(): Ritz values against dense eigendecompositions, residual bounds, breakdowns."""

import numpy as np
import pytest
import torch

from signalprop.measure import lanczos


def sym(n, seed, spectrum=None):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    lam = torch.randn(n, generator=g, dtype=torch.float64) if spectrum is None else spectrum
    return q @ torch.diag(lam) @ q.T


def test_full_krylov_space_gives_every_eigenvalue_of_each_operator():
    mats = torch.stack([sym(12, 0), sym(12, 1)])
    r = lanczos(lambda v: torch.einsum("bij,bj->bi", mats, v), 2, 12, 50, dtype=torch.float64)
    assert r.steps == 12
    for b in range(2):
        np.testing.assert_allclose(r.values[b], torch.linalg.eigvalsh(mats[b]).numpy(), atol=1e-10)
    assert r.complete and (r.residuals < 1e-12).all()  # rounding only


def test_partial_run_ritz_values_are_within_their_residuals_of_eigenvalues():
    spectrum = torch.cat([torch.tensor([10.0, 8.0, -6.0]), torch.linspace(-1, 1, 197)]).double()
    a = sym(200, 3, spectrum)
    r = lanczos(lambda v: v @ a, 1, 200, 25, dtype=torch.float64, seed=4)
    exact = np.sort(spectrum.numpy())
    for theta, res in zip(r.values[0], r.residuals[0]):
        assert np.abs(exact - theta).min() <= res + 1e-10
    # well separated extremes converge in 25 steps
    np.testing.assert_allclose(r.values[0][[-1, -2, 0]], [10.0, 8.0, -6.0], atol=1e-6)


def test_breakdown_restarts_and_still_finds_repeated_eigenvalues():
    # rank-2 projector: the Krylov space of any start vector has dimension <= 3
    a = sym(8, 5, torch.tensor([1.0, 1.0, 0, 0, 0, 0, 0, 0], dtype=torch.float64))
    r = lanczos(lambda v: v @ a, 1, 8, 8, dtype=torch.float64)
    np.testing.assert_allclose(r.values[0], [0, 0, 0, 0, 0, 0, 1, 1], atol=1e-10)


def test_bad_operator():
    with pytest.raises(ValueError, match="steps must be an integer >= 1, got 0"):
        lanczos(lambda v: v, 1, 3, 0, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"matvec returned shape \(1, 2\)"):
        lanczos(lambda v: v[:, :2], 1, 3, 2, dtype=torch.float64)
    with pytest.raises(FloatingPointError, match="NaN/Inf at Lanczos step 0"):
        lanczos(lambda v: v * float("nan"), 1, 3, 2, dtype=torch.float64)
