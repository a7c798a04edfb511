"""collapse_history draws what it is given and refuses what it cannot draw."""

import pytest

import signalprop as sp


def test_draws_one_panel_per_key_and_checks_its_arguments(tmp_path):
    recs = [{"step": 10, "split": "train", "loss": 1.0},
            {"step": 10, "split": "test", "acc": 0.7, "std_ratio": 0.2, "cos_views": 0.9},
            {"step": 20, "split": "test", "acc": 0.8, "std_ratio": 0.5, "cos_views": 0.95}]
    path = sp.plot.collapse_history({"a": recs, "b": recs[:2]}, tmp_path / "c.png",
                                    keys=("acc", "std_ratio", "cos_views"), title="t")
    assert path.stat().st_size > 0
    with pytest.raises(ValueError, match="unknown keys"):
        sp.plot.collapse_history({"a": recs}, tmp_path / "d.png", keys=("loss",))
    with pytest.raises(ValueError, match="at least one labelled run"):
        sp.plot.collapse_history({}, tmp_path / "e.png")
