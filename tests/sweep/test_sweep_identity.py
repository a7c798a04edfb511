"""A sweep folder holds one sweep: another spec is refused (its rows would mix under the same
labels), an extended grid is accepted; runs that cannot start stop the sweep before any row."""

import sqlite3

import pytest

from signalprop.sweep import SweepDB, SweepSpec, run_sweep
from signalprop.sweep._identity import differences, identity

BASE = {"model": "torch.nn:Linear", "model_args": {"in_features": 4, "out_features": 3}, "dataset": "iris",
        "steps": 2, "batch_size": 16}


def quiet(_msg):
    pass


def sweep(tmp_path, base=BASE, grid=None, seeds=1, **kwargs):
    spec = SweepSpec.from_dict({"base": base, "grid": grid or {"lr": [0.1]}, "seeds": seeds}, default_out=tmp_path / "s")
    return run_sweep(spec, progress=False, log=quiet, **kwargs)


def labels(tmp_path):
    with SweepDB(tmp_path / "s" / "sweep.sqlite", create=False) as db:
        return sorted(r["label"] for r in db.rows())


def test_a_different_spec_is_refused_naming_what_differs(tmp_path):
    sweep(tmp_path)
    before = labels(tmp_path)
    with pytest.raises(ValueError, match=r"s holds another sweep \(optimizer \"sgd\" there, \"adam\" here; steps 2 there, 3 here\): its rows would mix with this one's under the same labels; choose another output folder \(--out, or 'out:' in the spec\), or move .*s aside to start over"):
        sweep(tmp_path, base={**BASE, "steps": 3, "optimizer": "adam"})
    with pytest.raises(ValueError, match=r"holds another sweep \(model_args.bias unset there, false here\)"):
        sweep(tmp_path, base={**BASE, "model_args": {**BASE["model_args"], "bias": False}})
    with pytest.raises(ValueError, match=r"holds another sweep \(grid keys lr there, lr, momentum here; momentum 0.9 there, unset here\)"):
        sweep(tmp_path, grid={"lr": [0.1], "momentum": [0.0, 0.5]})
    assert labels(tmp_path) == before  # nothing was added


def test_more_grid_values_more_seeds_or_other_cadences_extend_the_same_sweep(tmp_path):
    sweep(tmp_path)
    summary = sweep(tmp_path, base={**BASE, "log_every": 1, "checkpoint_every": 1}, grid={"lr": [0.1, 0.01]}, seeds=2)
    assert (summary.total, summary.skipped, summary.ran) == (4, 1, 3)
    assert labels(tmp_path) == ["lr=0.01 seed=0", "lr=0.01 seed=1", "lr=0.1 seed=0", "lr=0.1 seed=1"]


def test_a_database_from_before_identities_still_refuses_colliding_labels(tmp_path):
    sweep(tmp_path)
    conn = sqlite3.connect(tmp_path / "s" / "sweep.sqlite")
    conn.execute("DROP TABLE meta")
    conn.commit()
    conn.close()
    with pytest.raises(ValueError, match=r"holds another run labelled 'lr=0.1 seed=0' \(a different config\)"):
        sweep(tmp_path, base={**BASE, "steps": 3})
    assert sweep(tmp_path).skipped == 1  # the same spec is still welcome, and records its identity
    with pytest.raises(ValueError, match=r"holds another sweep \(steps 2 there, 3 here\)"):
        sweep(tmp_path, base={**BASE, "steps": 3})


def test_identity_leaves_out_what_the_grid_varies():
    spec = SweepSpec.from_dict({"base": {**BASE, "epochs": None}, "grid": {"model_args.bias": [True, False], "steps": [1, 2]}})
    ident = identity(spec)
    assert ident["grid"] == ["model_args.bias", "steps"]
    assert "steps" not in ident["fixed"] and "epochs" not in ident["fixed"] and "seed" not in ident["fixed"]
    assert ident["fixed"]["model_args"] == {"in_features": 4, "out_features": 3}
    many = {"fixed": {k: 1 for k in "abcde"}, "grid": []}
    assert differences(many, {"fixed": {k: 2 for k in "abcde"}, "grid": []})[-1] == "2 more"


@pytest.mark.parametrize("base,msg", [
    ({**BASE, "model": "no_such_module_xyz:f"}, r"^run lr=0.1 seed=0: model no_such_module_xyz:f: cannot import 'no_such_module_xyz'"),
    ({**BASE, "dataset": "irs"}, r"^run lr=0.1 seed=0: unknown dataset 'irs' \(did you mean iris\?\)"),
    ({**BASE, "dataset_args": {"seed": -1}}, r"^run lr=0.1 seed=0: dataset 'iris': option seed must be an integer >= 0, got -1"),
    ({**BASE, "batch_size": 500}, r"^run lr=0.1 seed=0: batch_size=500 is larger than the 120 training examples of 'iris'"),
    ({**BASE, "dataset": "cifar10", "dataset_args": {"root": "/nowhere"}}, r"^run lr=0.1 seed=0: CIFAR-10 not found in /nowhere"),
])
def test_runs_that_cannot_start_stop_the_sweep_before_any_row(tmp_path, base, msg):
    with pytest.raises((ValueError, FileNotFoundError), match=msg):
        sweep(tmp_path, base=base)
    assert labels(tmp_path) == []
