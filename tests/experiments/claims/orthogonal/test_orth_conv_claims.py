"""The three orthogonal-convolution claims: decide() on synthetic nulls (must fail) and on
the claimed effect at realistic noise (must pass), written before any pilot run; their
smoke runs end to end."""

import math
from pathlib import Path

import numpy as np
import pytest

from signalprop.experiments.claims.orthogonal import orth_conv_existence as existence
from signalprop.experiments.claims.orthogonal import orth_conv_stability as stability
from signalprop.experiments.claims.orthogonal import orth_conv_tradeoff as tradeoff

RNG = {"rng": np.random.default_rng(0)}


@pytest.fixture(autouse=True)
def _fresh_noise():
    """Every test draws the same synthetic noise, whichever tests ran before it."""
    RNG["rng"] = np.random.default_rng(0)


# ---------------------------------------------------------------- existence

def _configs(reached_when_exists: float, stuck_when_none: float, noise: float = 0.3):
    """Grid verdicts from the theory; final errors drawn around the given levels (log-normal
    spread), with one bad start per configuration."""
    from signalprop.theory import orthogonal_conv_exists

    out = []
    for cfg in existence.grid(existence.CLAIM.sizes["quick"]):
        ex = orthogonal_conv_exists(cfg["in"], cfg["out"], cfg["k"], cfg["stride"],
                                    cfg["padding"])
        level = reached_when_exists if ex.exists else stuck_when_none
        errs = list(level * np.exp(noise * RNG["rng"].standard_normal(3)))
        errs[0] = 0.5  # one start stuck in a poor basin
        square = cfg["out"] == cfg["in"] * cfg["stride"] ** 2
        out.append({**cfg, "exists": ex.exists, "case": ex.case, "square": square,
                    "errors": errs})
    return {"configs": out}


def test_existence_passes_on_the_claimed_effect():
    v = existence.decide(_configs(1e-9, 1.0))
    assert v.reproduced, v.effect
    assert v.details["counts"]["none"] > 5 and v.details["counts"]["exists"] > 5


def test_existence_fails_when_the_optimizer_never_converges():
    assert not existence.decide(_configs(1e-3, 1.0)).reproduced  # null: no zero anywhere


def test_existence_fails_when_zero_is_reached_everywhere():
    assert not existence.decide(_configs(1e-9, 1e-9)).reproduced  # null: penalty trivial


def test_existence_fails_with_a_single_disagreement_and_ignores_squares():
    m = _configs(1e-9, 1.0)
    judged_none = next(c for c in m["configs"] if not c["exists"] and not c["square"])
    judged_none["errors"] = [1e-8]
    assert not existence.decide(m).reproduced
    m = _configs(1e-9, 1.0)
    for c in m["configs"]:
        if c["square"]:
            c["errors"] = [0.3]  # the paper's hard case: not judged
    assert existence.decide(m).reproduced


# ---------------------------------------------------------------- stability

def _layers(growth: float, frob_rel: float = 0.0, n_layers: int = 16):
    """Layers whose err_s^2 sits at a fraction of alpha L at N = 8 and grows as
    N^growth (the claim: growth 0, bounded; the null: growth like the Frobenius error)."""
    layers = []
    for i in range(n_layers):
        c, m, k, s = [(8, 4, 3, 1), (4, 8, 3, 1), (8, 16, 3, 2), (4, 24, 3, 2)][i % 4]
        a_low, a_up = stability.alphas(c, m, k, s)
        lorth = 10.0 ** (-1 - i % 4)
        ns = [8, 16, 32, 64, 128]
        base = 0.05 * a_up * lorth * math.exp(0.2 * RNG["rng"].standard_normal())
        err_s2 = [min(max(base, 1.5 * a_low * lorth) * (n / 8) ** growth, 1e300) for n in ns]
        layers.append({"config": [c, m, k, s], "lorth": lorth, "alpha": a_up,
                       "alpha_low": a_low, "N": ns, "err_s": [math.sqrt(e) for e in err_s2],
                       "err_f2": [n * n * lorth * (1 + frob_rel) for n in ns], "d": 2})
    return {"layers": layers}


def test_stability_passes_when_bounded_independently_of_n():
    v = stability.decide(_layers(growth=0.1))  # a slight rise with N, well within the bound
    assert v.reproduced, v.effect


def test_stability_fails_when_the_spectral_error_grows_like_the_frobenius_one():
    assert not stability.decide(_layers(growth=2.0)).reproduced


def test_stability_fails_when_theorem_7_is_off_or_the_regime_is_wrong():
    assert not stability.decide(_layers(0.0, frob_rel=1e-3)).reproduced
    m = _layers(0.0)
    m["layers"][0]["lorth"] = 0.5  # not "small"
    assert not stability.decide(m).reproduced
    assert not stability.decide(_layers(0.0, n_layers=3)).reproduced


# ---------------------------------------------------------------- tradeoff

def _tradeoff(cond_start: float, cond_end: float, acc_start: float, acc_end: float,
              sd_log: float = 0.15, sd_acc: float = 0.01, seeds: int = 4):
    lams = [0.0, 1e-3, 1e-2, 1e-1, 1.0, 10.0]
    t = np.linspace(0, 1, len(lams))
    log_c = math.log(cond_start) + (math.log(cond_end) - math.log(cond_start)) * t
    accs = acc_start + (acc_end - acc_start) * t ** 2
    lc = [[list(log_c[i] * (1 + 0.1 * j) + sd_log * RNG["rng"].standard_normal(seeds))
           for j in range(3)] for i in range(len(lams))]
    acc = [list(accs[i] + sd_acc * RNG["rng"].standard_normal(seeds)) for i in range(len(lams))]
    return {"lambdas": lams, "layers": ["conv1", "conv2", "conv3"], "log_cond": lc,
            "test_acc": acc}


def test_tradeoff_passes_on_the_claimed_effect():
    v = tradeoff.decide(_tradeoff(12.0, 1.05, 0.97, 0.90))
    assert v.reproduced, v.effect


def test_tradeoff_fails_when_the_penalty_does_nothing():
    assert not tradeoff.decide(_tradeoff(12.0, 12.0, 0.97, 0.90)).reproduced


def test_tradeoff_fails_without_a_cost_or_short_of_orthogonal():
    assert not tradeoff.decide(_tradeoff(12.0, 1.05, 0.97, 0.97)).reproduced  # no cost
    assert not tradeoff.decide(_tradeoff(12.0, 3.0, 0.97, 0.90)).reproduced  # not near 1


def test_tradeoff_fails_on_a_reversal_and_checks_its_input():
    m = _tradeoff(12.0, 1.05, 0.97, 0.90)
    m["log_cond"][3][1] = [5.0, 5.1, 4.9, 5.0]  # conv2 jumps back up at lambda = 0.1
    assert not tradeoff.decide(m).reproduced
    m["lambdas"] = [1e-3, 0.0, 1e-2, 1e-1, 1.0, 10.0]
    with pytest.raises(ValueError, match="start at 0 and increase"):
        tradeoff.decide(m)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["orth-conv-existence", "orth-conv-stability",
                                  "orth-conv-tradeoff"])
def test_smoke_end_to_end(name: str, tmp_path: Path, smoke_run) -> None:
    smoke_run(name, tmp_path)
