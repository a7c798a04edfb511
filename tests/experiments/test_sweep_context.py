"""RunContext.sweep runs a tiny grid through the sweep runner and returns its rows."""

from pathlib import Path

from signalprop.experiments import RunContext
from signalprop.train import TrainConfig, fit


def test_sweep_returns_one_row_per_run_and_resumes(tmp_path: Path) -> None:
    ctx = RunContext("smoke", tmp_path, progress=False, log=lambda m: None)
    base = {"model": "torch.nn:Linear", "model_args": {"in_features": 4, "out_features": 3},
            "dataset": "iris", "steps": 5, "batch_size": 16}
    rows = ctx.sweep("tiny", base, {"lr": [0.1, 0.01]}, seeds=[0])
    assert [r["label"] for r in rows] == ["lr=0.1 seed=0", "lr=0.01 seed=0"]
    assert all(r["result"]["status"] == "completed" for r in rows)
    assert Path(rows[0]["history"]).is_file()
    # the numbers are those of the same run trained directly
    direct = fit(TrainConfig.from_dict({**base, "lr": 0.1, "seed": 0}), progress=False)
    assert rows[0]["result"]["metrics"]["test_acc"] == direct.metrics["test_acc"]
    assert rows[0]["result"]["metrics"]["train_loss"] == direct.metrics["train_loss"]
    again = ctx.sweep("tiny", base, {"lr": [0.1, 0.01]}, seeds=[0])  # all skipped
    assert again == rows
