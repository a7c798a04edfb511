"""Bounds on the number of linear regions, against direct computations."""

from __future__ import annotations

import itertools
from math import comb, prod

import pytest

from signalprop import theory


def _serra_by_enumeration(widths: list[int], n0: int) -> int:
    """Serra et al. (2018, Theorem 1) summed over the index set J directly."""
    total = 0
    for js in itertools.product(*[range(n + 1) for n in widths]):
        cap, ok = n0, True
        for j, n in zip(js, widths):
            if j > min(cap, n):
                ok = False
                break
            cap = min(cap, n - j)
        if ok:
            total += prod(comb(n, j) for j, n in zip(js, widths))
    return total


@pytest.mark.parametrize("widths,n0", [([3, 3], 1), ([4, 2, 5], 2), ([2, 2], 2),
                                       ([5, 3, 4], 3), ([6], 2), ([1, 4, 2], 2)])
def test_serra_upper_bound_is_its_sum_over_j(widths, n0):
    assert theory.upper_bound_serra(widths, n0) == _serra_by_enumeration(widths, n0)


@pytest.mark.parametrize("widths", [[3], [3, 3], [5, 4, 3], [8, 8, 8, 8]])
def test_input_dim_one_bounds_meet_at_prod_n_plus_one(widths):
    exact = prod(n + 1 for n in widths)
    b = theory.region_bounds(widths, 1)
    assert b.upper_serra == b.upper_montufar == b.lower_serra == b.relu_construction == exact
    assert b.lower_montufar == prod(widths[:-1]) * (widths[-1] + 1)


def test_one_layer_is_zaslavsky():
    # n hyperplanes in general position in R^d: sum_{j <= d} C(n, j), the exact maximum
    for n, d in [(5, 2), (3, 3), (7, 1), (2, 4)]:
        b = theory.region_bounds([n], d)
        assert b.upper_serra == b.upper_montufar == sum(comb(n, j) for j in range(min(n, d) + 1))


@pytest.mark.parametrize("widths,n0", [([6, 6, 6], 2), ([9, 12], 3), ([4, 8, 8], 1)])
def test_bounds_are_ordered(widths, n0):
    b = theory.region_bounds(widths, n0)
    assert b.lower_montufar <= b.lower_serra <= b.upper_serra <= b.upper_montufar
    assert b.relu_construction <= b.lower_serra


def test_lower_bounds_need_their_width_conditions():
    b = theory.region_bounds([2, 5], 1)
    assert b.lower_serra is None and b.lower_montufar == 2 * 6
    assert theory.region_bounds([1, 4], 2).lower_montufar is None


def test_ternary_teeth_fit_their_widths():
    assert theory.ternary_teeth([7, 7]) == [4, 4]  # 2k - 1 <= 7
    assert theory.ternary_teeth([5, 5, 5], input_dim=2) == [1, 1, 1]
    k = theory.ternary_teeth([28, 28, 7], copies="width")[0]
    assert k == 4 and 4 * (2 * 4 - 1) <= 28 < 5 * (2 * 5 - 1)
    assert theory.ternary_construction_count([3, 4], input_dim=2) == 144


def test_bad_widths_are_refused():
    with pytest.raises(ValueError, match="widths must be a non-empty list"):
        theory.region_bounds([], 1)
    with pytest.raises(ValueError, match="input_dim must be an integer >= 1"):
        theory.region_bounds([3], 0)
    with pytest.raises(ValueError, match="copies must be one of"):
        theory.ternary_teeth([3], copies="nope")
