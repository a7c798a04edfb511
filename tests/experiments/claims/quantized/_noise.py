"""Synthetic seed-to-seed noise for the decide() tests: one generator, reset before every
test (conftest), so a test draws the same numbers whichever tests ran before it."""

import numpy as np

STATE = {"rng": np.random.default_rng(0)}


def reset() -> None:
    STATE["rng"] = np.random.default_rng(0)


def normal(mean, sd, n=None):
    return STATE["rng"].normal(mean, sd, n)


def seeds(mean, sd, n=4):
    """``n`` per-seed values around ``mean``."""
    return list(normal(mean, sd, n))
