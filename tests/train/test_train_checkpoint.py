"""Checkpoints: atomic writes, failed writes keep the previous file, weights_only loading."""

import pickle

import pytest
import torch

from signalprop.train import CheckpointError, load_checkpoint, save_checkpoint


class NotATensor:
    pass


def test_round_trip(tmp_path):
    state = {"step": 3, "model": {"w": torch.arange(4.0)}, "rng": [torch.get_rng_state()], "config": "{}"}
    save_checkpoint(tmp_path / "c.pt", state)
    back = load_checkpoint(tmp_path / "c.pt")
    assert back["step"] == 3 and torch.equal(back["model"]["w"], torch.arange(4.0))
    assert torch.equal(back["rng"][0], state["rng"][0])


def test_failed_write_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"step": 1, "w": torch.ones(3)})
    real_save = torch.save

    def torn_save(obj, f):
        f.write(b"partial garbage")  # as if the disk filled up mid-write
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", torn_save)
    with pytest.raises(CheckpointError, match=r"could not write checkpoint .*c.pt \(OSError: .*No space left on device\); the previous checkpoint is intact"):
        save_checkpoint(path, {"step": 2, "w": torch.zeros(3)})
    monkeypatch.setattr(torch, "save", real_save)
    assert load_checkpoint(path)["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]  # no temporary file left


def test_loading_is_weights_only_and_errors_are_clear(tmp_path):
    bad = tmp_path / "evil.pt"
    torch.save({"step": 1, "obj": NotATensor()}, bad)  # a class outside the weights-only allow-list
    with pytest.raises(CheckpointError, match=r"evil.pt cannot be read \(UnpicklingError: only tensors and plain containers are accepted; Unsupported global: GLOBAL test_train_checkpoint.NotATensor\); delete it to start the run over"):
        load_checkpoint(bad)
    (tmp_path / "junk.pt").write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(CheckpointError, match="junk.pt cannot be read"):
        load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "none.pt")
