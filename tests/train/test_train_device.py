"""TrainConfig.device: resolving it, refusing a GPU this machine lacks, moving work onto the
device, and checkpoints that resume on either device.

This machine has no GPU: the CUDA branches are checked by mocking what torch reports
(``torch.cuda.is_available``, ``device_count``) and recording the copies a cuda run makes,
never by faking a result. tests/train/test_train_cuda.py trains on a real GPU where there
is one."""

import pytest
import torch
import torch.nn as nn

from signalprop.train import CheckpointError, Placement, TrainConfig, fit, resolve_device
from signalprop.train.device import backend_for, cpu_state

LINEAR = dict(model="torch.nn:Linear", model_args={"in_features": 4, "out_features": 3}, dataset="iris",
              batch_size=16, lr=0.1, steps=6, seed=2, log_every=2)
INTERRUPTIBLE = {**LINEAR, "model": "devinterrupt:build", "model_args": {}}  # conftest's interrupt
NO_GPU = "needs a CUDA GPU, but"


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def two_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


@pytest.mark.parametrize("device", ["cpu", "cuda", "cuda:0", "cuda:12", "auto"])
def test_config_accepts_the_device_names(device):
    assert TrainConfig(steps=1, device=device).device == device


@pytest.mark.parametrize("data,msg", [
    ({"device": "gpu"}, r"device='gpu' is not allowed; valid: cpu, cuda, cuda:N \(GPU number N\), auto"),
    ({"device": "cuda:"}, "device='cuda:' is not allowed"),
    ({"device": "CUDA"}, "device='CUDA' is not allowed"),
    ({"device": 0}, "device=0 is not allowed"),
    ({"amp": "fp16"}, "amp='fp16' is not allowed; valid: bfloat16, float16"),
])
def test_config_refuses_other_devices_and_amp_names(data, msg):
    with pytest.raises(ValueError, match=msg):
        TrainConfig.from_dict({"steps": 1, **data})


def test_device_is_not_part_of_the_run_key_and_old_keys_are_kept():
    cfg = TrainConfig(steps=3)
    assert cfg.run_key() == "828228a0325f"  # the key this config had before devices existed
    assert TrainConfig(steps=3, device="cuda:1").run_key() == cfg.run_key()
    assert TrainConfig(steps=3, amp="bfloat16").run_key() != cfg.run_key()  # amp changes the maths
    assert TrainConfig(steps=3, amp="float16").run_key() != TrainConfig(steps=3, amp="bfloat16").run_key()


def test_resolve_without_a_gpu(no_gpu):
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("auto", local_rank=1) == torch.device("cpu")
    for name in ("cuda", "cuda:1"):
        with pytest.raises(ValueError, match=rf"device='{name}' {NO_GPU} .*; available: cpu \(set device 'cpu', "
                                             r"or 'auto' to use a GPU only where there is one\)"):
            resolve_device(name)
    with pytest.raises(ValueError, match="device='tpu' is not allowed"):
        resolve_device("tpu")


def test_resolve_with_two_gpus(two_gpus):
    assert resolve_device("auto") == resolve_device("cuda") == torch.device("cuda", 0)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(ValueError, match=r"device='cuda:2': this machine has 2 GPU\(s\); available: cpu, cuda, cuda:0, cuda:1"):
        resolve_device("cuda:2")
    # under torchrun: the GPU of this process's LOCAL_RANK
    assert resolve_device("cuda", local_rank=1) == resolve_device("auto", local_rank=1) == torch.device("cuda", 1)
    with pytest.raises(ValueError, match="LOCAL_RANK 2 but the machine has 2 GPU"):
        resolve_device("cuda", local_rank=2)
    with pytest.raises(ValueError, match=r"device='cuda:0': under torchrun \(--ddp\) each process takes the GPU of its LOCAL_RANK"):
        resolve_device("cuda:0", local_rank=0)
    assert resolve_device("cpu", local_rank=1) == torch.device("cpu")


def test_backends():
    assert backend_for(torch.device("cpu")) == "gloo" and backend_for(torch.device("cuda", 1)) == "nccl"


def test_a_cuda_run_without_a_gpu_fails_before_any_file(tmp_path, no_gpu):
    with pytest.raises(ValueError, match=f"device='cuda' {NO_GPU}"):
        fit(TrainConfig(**LINEAR, device="cuda"), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_auto_without_a_gpu_is_the_cpu_run_bit_for_bit(no_gpu):
    cpu = fit(TrainConfig(**LINEAR), progress=False)
    auto = fit(TrainConfig(**LINEAR, device="auto"), progress=False)
    assert cpu.device == auto.device == "cpu" and cpu.metrics == auto.metrics
    for a, b in zip(cpu.model.parameters(), auto.model.parameters()):
        assert torch.equal(a, b)


def test_placement_moves_the_model_and_batches_to_its_device():
    place = Placement(torch.device("meta"))  # a device without data: where things go, no numbers
    model = place.model(nn.Linear(4, 3))
    x, y = place.batch(torch.ones(2, 4), torch.zeros(2, dtype=torch.long))
    assert {p.device.type for p in model.parameters()} == {x.device.type, y.device.type} == {"meta"}
    assert y.dtype == torch.long and model(x).shape == (2, 3)
    cpu_x = torch.ones(2)
    assert Placement(torch.device("cpu")).batch(cpu_x)[0] is cpu_x  # the CPU path copies nothing


def test_cuda_batches_are_pinned_then_copied_without_blocking(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda t: calls.append("pin") or t)
    monkeypatch.setattr(torch.Tensor, "to", lambda t, *a, **k: calls.append(("to", *a, k)) or t)
    place = Placement(torch.device("cuda", 1))
    place.batch(torch.ones(2), torch.zeros(2))
    assert calls == ["pin", ("to", torch.device("cuda", 1), {"non_blocking": True})] * 2


def test_a_run_sends_the_model_once_and_every_batch_through_its_placement(monkeypatch):
    moved = {"model": 0, "batch": 0}
    model_to, batch_to = Placement.model, Placement.batch

    def count(kind, original):
        def spy(self, *args):
            moved[kind] += 1
            return original(self, *args)
        return spy

    monkeypatch.setattr(Placement, "model", count("model", model_to))
    monkeypatch.setattr(Placement, "batch", count("batch", batch_to))
    fit(TrainConfig(**{**LINEAR, "eval_every": 3}), progress=False)
    assert moved == {"model": 1, "batch": 6 + 2}  # six steps, two evaluations (one batch each)


def test_amp_autocasts_the_forward_and_scales_only_float16():
    lin = nn.Linear(4, 3)
    for amp, dtype in ((None, torch.float32), ("bfloat16", torch.bfloat16), ("float16", torch.float16)):
        place = Placement(torch.device("cpu"), amp)
        with place.autocast():
            assert lin(torch.ones(2, 4)).dtype == dtype
        assert (place.scaler() is not None) == (amp == "float16")


def test_bfloat16_trains_close_to_float32():
    full = fit(TrainConfig(**{**LINEAR, "steps": 12}), progress=False)
    half = fit(TrainConfig(**{**LINEAR, "steps": 12, "amp": "bfloat16"}), progress=False)
    assert half.status == "completed"
    # bfloat16 keeps 8 bits of mantissa: the losses agree to a few per cent, not exactly
    assert half.metrics["train_loss"] == pytest.approx(full.metrics["train_loss"], rel=0.05)
    assert half.metrics["train_loss"] != full.metrics["train_loss"]


def test_cpu_state_keeps_the_structure():
    t = torch.ones(2)
    out = cpu_state({"a": t, "b": [t, 3, {"c": (t, "x")}]})
    assert out["b"][1] == 3 and out["b"][2]["c"][1] == "x" and isinstance(out["b"][2]["c"], tuple)
    assert out["a"] is t  # CPU tensors are not copied


def same_weights(a, b):
    return all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters()))


def test_a_checkpoint_written_on_a_gpu_resumes_on_the_cpu(tmp_path, interrupt):
    """A GPU run's checkpoint holds CPU tensors plus its device and GPU RNG state; on the
    CPU the GPU state is left aside and the run continues from the CPU RNG state."""
    cfg = TrainConfig(**INTERRUPTIBLE)
    state = interrupt(cfg, tmp_path / "a", call=4)
    assert state["step"] == 3 and "device" not in state and "cuda_rng" not in state  # CPU: as it always was
    state.update(device="cuda:0", cuda_rng=[torch.zeros(16, dtype=torch.uint8)])
    torch.save(state, tmp_path / "a" / "checkpoint.pt")
    resumed = fit(cfg, tmp_path / "a", resume=True, progress=False)
    whole = fit(cfg, tmp_path / "b", progress=False)
    assert resumed.resumed_from == 3 and resumed.device == "cpu" and same_weights(resumed, whole)


def test_float16_loss_scale_is_checkpointed_and_resume_is_exact(tmp_path, interrupt):
    """Inputs scaled by 100 overflow float16 gradients at the first loss scales: the scaler
    skips those updates (Adam counts fewer steps than the run) and backs off; a resumed run
    must restore the scale to end with the uninterrupted weights."""
    cfg = TrainConfig(**{**INTERRUPTIBLE, "model_args": {"gain": 100.0}, "optimizer": "adam",
                         "lr": 1e-3, "steps": 16, "amp": "float16"})
    state = interrupt(cfg, tmp_path / "a", call=11)
    adam_steps = {int(s["step"]) for s in state["optimizer"]["state"].values()}
    assert state["step"] == 10 and max(adam_steps) < 10 and state["scaler"]["scale"] < 2.0**16
    resumed = fit(cfg, tmp_path / "a", resume=True, progress=False)
    whole = fit(cfg, tmp_path / "b", progress=False)
    assert resumed.status == whole.status == "completed" and same_weights(resumed, whole)


def test_float16_steps_through_gradient_clipping():
    cfg = TrainConfig(**LINEAR, optimizer="nesterov", amp="float16", agc_clipping=0.01)
    assert fit(cfg, progress=False).status == "completed"


@pytest.mark.parametrize("edit,msg", [
    ({"device": "gpu"}, "field 'device' must name a device such as 'cpu' or 'cuda:0', got 'gpu'"),
    ({"cuda_rng": [[1, 2]]}, "field 'cuda_rng' must be a list of uint8 tensors"),
    ({"scaler": 3}, "field 'scaler' must be a GradScaler state dict"),
])
def test_damaged_device_fields_are_named(tmp_path, interrupt, edit, msg):
    cfg = TrainConfig(**INTERRUPTIBLE)
    state = interrupt(cfg, tmp_path, call=3)
    torch.save({**state, **edit}, tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match=msg):
        fit(cfg, tmp_path, resume=True, progress=False)


def test_stochastic_rounding_resumes_only_on_its_kind_of_device(tmp_path):
    cfg = TrainConfig(model="signalprop.models:quant_mlp",
                      model_args={"depth": 1, "width": 8, "in_features": 4, "out_features": 3},
                      dataset="iris", batch_size=16, lr=0.01, steps=4, quantize="sr")
    fit(cfg, tmp_path, progress=False)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    torch.save({**state, "device": "cuda:0"}, tmp_path / "checkpoint.pt")
    with pytest.raises(ValueError, match=r"written on cuda:0 by a quantize='sr' run, whose "
                                         r"stochastic-rounding RNG belongs to that kind of device; "
                                         r"resume it with device 'cuda'"):
        fit(cfg, tmp_path, resume=True, progress=False)
