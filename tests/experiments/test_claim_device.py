"""Where a claim's training runs: a size's ``device`` reaches every run of its sweeps; the
claims that train through the sweep runner use a GPU where there is one at ``--full`` and
stay on the CPU at smoke and quick size."""

from pathlib import Path

from signalprop.experiments import RunContext, list_claims

from .conftest import make_fake_claim

BASE = {"model": "torch.nn:Linear", "model_args": {"in_features": 4, "out_features": 3},
        "dataset": "iris", "steps": 2, "batch_size": 16}
# the claims whose measure trains through RunContext.sweep
SWEEP_CLAIMS = {"skipinit-depth", "bn-batchsize", "nf-vs-bn", "snn-depth", "confusion-width-depth",
                "sgd-noise", "criticality-depth"}


def quiet(line):
    pass


def test_a_sizes_device_goes_to_the_context_not_to_measure(tmp_path: Path) -> None:
    claim = make_fake_claim(
        sizes={"smoke": {"n": 1}, "quick": {"n": 2}, "full": {"n": 3, "device": "auto"}},
        measure=lambda ctx, size: {"size": size["n"], "keys": sorted(size), "device": ctx.device})
    for mode, device in (("smoke", None), ("full", "auto")):
        m = claim.result(RunContext(mode, tmp_path, progress=False, log=quiet)).measurements
        assert (m["keys"], m["device"]) == (["n"], device)


def test_the_contexts_device_reaches_runs_that_name_none(tmp_path: Path) -> None:
    ctx = RunContext("full", tmp_path, progress=False, log=quiet, device="auto")
    rows = ctx.sweep("auto", BASE, {"lr": [0.1]}, seeds=[0])
    assert rows[0]["config"]["device"] == "auto" and rows[0]["result"]["status"] == "completed"
    own = ctx.sweep("own", {**BASE, "device": "cpu"}, {"lr": [0.1]}, seeds=[0])
    assert own[0]["config"]["device"] == "cpu"  # a run's own device wins


def test_full_sizes_use_a_gpu_where_there_is_one_and_the_others_the_cpu() -> None:
    claims = {c.name: c for c in list_claims()}
    assert SWEEP_CLAIMS <= set(claims)
    for name, claim in claims.items():
        for mode in ("smoke", "quick"):
            assert claim.sizes[mode].get("device", "cpu") == "cpu", (name, mode)
        if name in SWEEP_CLAIMS:
            assert claim.sizes["full"]["device"] == "auto", name
