"""The low-precision figures draw from result objects alone."""

import numpy as np
import pytest

from signalprop import plot, theory
from signalprop.results import EstimatorIndicatorsResult, LayerIndicators


def test_indicator_and_chain_figures(tmp_path):
    rs = [EstimatorIndicatorsResult(f"o={o}", [LayerIndicators("fc", 0, "reste", 3.0 / o + s,
                                                               0.01 * o, 0.1, 16)], step=s)
          for o in (1, 3) for s in range(3)]
    assert plot.estimator_indicators(rs, tmp_path / "ind.png").stat().st_size > 0
    well = theory.DoubleWell(0.3)
    chains = [theory.rounding_chain(well.grad, np.linspace(-2, 2, 9), lr=lr, noise=1.0,
                                    scheme=s) for s in ("sr", "bc") for lr in (0.1, 0.05)]
    assert plot.rounding_chains(chains, tmp_path / "ch.svg", title="t").stat().st_size > 0
    with pytest.raises(ValueError, match="non-empty sequence of RoundingChainResult"):
        plot.rounding_chains(rs, tmp_path / "x.png")
    with pytest.raises(ValueError, match="EstimatorIndicatorsResult"):
        plot.estimator_indicators([], tmp_path / "x.png")
