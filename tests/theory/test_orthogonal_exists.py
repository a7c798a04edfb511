"""orthogonal_conv_exists: Achour, Malgouyres & Mamalet's Theorem 4 and Propositions 5-6.

The constructive and rank checks against explicit operators are in
tests/nn/test_orthogonal.py (they need torch); here: the theorem's statement case by case,
the paper's own examples, and bad input.
"""

import subprocess
import sys

import pytest

from signalprop.theory import orthogonal_conv_exists


def theorem4(m: int, c: int, k: int, s: int, d: int = 2) -> bool:
    """The theorem as printed: RO (M <= C S^d) iff M <= C k^d; CO (M >= C S^d) iff S <= k."""
    if m <= c * s ** d and not m <= c * k ** d:
        return False
    if m >= c * s ** d and not s <= k:
        return False
    return True


@pytest.mark.parametrize("d", [1, 2])
def test_matches_theorem_4_on_a_grid(d):
    for m in (1, 2, 3, 4, 6, 8, 9, 16, 27):
        for c in (1, 2, 3):
            for k in (1, 2, 3, 4):
                for s in (1, 2, 3):
                    e = orthogonal_conv_exists(c, m, k, s, ndim=d)
                    assert e.exists == theorem4(m, c, k, s, d), (m, c, k, s, d, e.reason)
                    want = "square" if m == c * s ** d else ("RO" if m < c * s ** d else "CO")
                    assert e.case == want


def test_the_papers_examples():
    # "skip-connection layers with stride ... (2C, C, 1, 2): no orthogonal layer"
    e = orthogonal_conv_exists(64, 128, 1, stride=2)
    assert not e.exists and e.case == "RO" and "M <= C * (phases read) = 64" in e.reason
    assert orthogonal_conv_exists(128, 128, 3, stride=2).exists  # (M,C,k,S)=(128,128,3,2)
    co = orthogonal_conv_exists(4, 64, 1, stride=2)  # CO with S > k: unread pixels
    assert not co.exists and co.case == "CO" and "S <= k" in co.reason


def test_generalizes_per_axis_and_with_dilation():
    # a 3 x 1 kernel with stride 2 reads every phase on axis 0, one of two on axis 1
    assert not orthogonal_conv_exists(4, 16, (3, 1), (2, 2)).exists  # square, needs all
    assert orthogonal_conv_exists(4, 8, (3, 1), (2, 2)).exists  # RO: 8 <= 4 * 2 * 1
    # dilation 2 with stride 2: every tap reads the same phase
    assert not orthogonal_conv_exists(4, 16, 3, 2, dilation=2).exists
    assert orthogonal_conv_exists(4, 16, 3, 2, dilation=3).exists  # 3 coprime to 2
    # groups: each group is a layer with the same verdict
    assert orthogonal_conv_exists(8, 16, 1, 2, groups=4).exists == \
        orthogonal_conv_exists(2, 4, 1, 2).exists


def test_valid_and_zero_padding():
    # Proposition 5: 'valid' has no orthogonal layer in the CO case (stride 1)
    e = orthogonal_conv_exists(4, 8, 3, 1, "valid")
    assert not e.exists and "Proposition 5" in e.reason
    # ... except a non-overlapping tiling (stride = kernel) of a multiple of the stride
    assert orthogonal_conv_exists(2, 9, 2, 2, "valid", input_size=8).exists
    assert not orthogonal_conv_exists(2, 9, 2, 2, "valid", input_size=7).exists
    # RO rows are whole kernels: the circular condition
    assert orthogonal_conv_exists(8, 4, 3, 1, "valid").exists
    assert not orthogonal_conv_exists(2, 9, 1, 2, "valid").exists
    # Proposition 6: zero 'same', stride 1: only the trivial (centre-tap) layer
    z = orthogonal_conv_exists(8, 8, 3, 1, "zeros")
    assert z.exists and "Proposition 6" in z.reason and "trivial" in z.reason


def test_bad_input():
    with pytest.raises(ValueError, match="padding_mode='same' is not allowed; valid: circular"):
        orthogonal_conv_exists(2, 2, 3, 1, "same")
    with pytest.raises(ValueError, match="divisible by groups=3"):
        orthogonal_conv_exists(4, 6, 3, groups=3)
    with pytest.raises(ValueError, match="kernel_size must be a positive integer"):
        orthogonal_conv_exists(2, 2, 0)
    with pytest.raises(ValueError, match="one per spatial axis"):
        orthogonal_conv_exists(2, 2, (3, 3), stride=(1, 1, 1))
    with pytest.raises(ValueError, match="stride 2 is not covered|stride \\[2, 2\\] is not"):
        orthogonal_conv_exists(2, 2, 3, 2, "zeros")
    with pytest.raises(ValueError, match="multiple of the stride 2"):
        orthogonal_conv_exists(2, 2, 3, 2, input_size=9)
    with pytest.raises(ValueError, match="in_channels must be a positive integer"):
        orthogonal_conv_exists(0, 2, 3)


def test_result_round_trips():
    from signalprop.results import Existence

    e = orthogonal_conv_exists(3, 5, 3)
    assert Existence.from_json(e.to_json()) == e and bool(e)


def test_runs_without_torch():
    code = ("import sys; sys.modules['torch'] = None\n"
            "from signalprop.theory import orthogonal_conv_exists as f\n"
            "assert not f(64, 128, 1, 2).exists\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
