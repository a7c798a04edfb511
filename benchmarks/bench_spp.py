"""Cost of spp() relative to a plain no-grad forward of the same model on the same input.

Prints, per model, the median time of each, the median and interquartile range of the
per-pair time ratio (pairs run in alternating order, forward-spp then spp-forward, so
drift and cache warm-up hit both sides alike) and the peak memory allocated during each
call, measured from the torch profiler's allocation timeline (memory held before the
call, i.e. parameters and caches, is not counted: the ratio is that of the working
memory the call adds).

signalprop's residual blocks are measured inside their residual add (no extra pass over
memory). With --paths, the same run also times the two other ways spp() can work:
"hooks", forward hooks reading each block output and branch output once more (what any
other model gets), and "torch", those hooks without the C accelerators (torch
reductions, as on an install without a C compiler).

    python benchmarks/bench_spp.py                       # ResNetV2-600 bn and nf, 64x64, batch 8
    python benchmarks/bench_spp.py --threads 1 --clock cpu --repeats 15
    python benchmarks/bench_spp.py --norms nf --repeats 3 --paths
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.profiler import ProfilerActivity, profile

import signalprop as sp
from signalprop.measure.forward import _moments, _spp


def peak_bytes(fn) -> int:
    """Peak of (bytes allocated - bytes freed) while ``fn`` runs, from profiler events."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    timeline = []
    for e in prof.events():
        usage = e.cpu_memory_usage if e.name == "[memory]" else e.self_cpu_memory_usage
        if usage:
            timeline.append((e.time_range.start, usage))
    timeline.sort()
    current = peak = 0
    for _, usage in timeline:
        current += usage
        peak = max(peak, current)
    return peak


def _quartiles(xs: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(xs, n=4) if len(xs) > 1 else [xs[0]] * 3
    return q[0], q[2]


def compare(
    model: torch.nn.Module, x: torch.Tensor, repeats: int, clock: str = "wall",
    paths: bool = False,
) -> dict[str, float]:
    """Median times, per-pair ratios (median and quartiles) and peak working memory of
    a plain forward versus spp() (and, with ``paths``, spp() through forward hooks with
    and without the C accelerator)."""
    accelerator, fusable = _moments._c_channel_sums, _spp._fusable

    def forward() -> None:
        with torch.no_grad():
            model(x)

    def measure() -> None:
        sp.spp(model, x)

    def measure_hooks() -> None:
        _spp._fusable = lambda block: False  # type: ignore[assignment]
        try:
            sp.spp(model, x)
        finally:
            _spp._fusable = fusable

    def measure_torch() -> None:
        _spp._fusable = lambda block: False  # type: ignore[assignment]
        _moments._c_channel_sums = None
        try:
            sp.spp(model, x)
        finally:
            _spp._fusable, _moments._c_channel_sums = fusable, accelerator

    forward()  # warm-up (NF: builds the standardized-weight cache)
    measure()
    # "cpu": this process's CPU time, robust on a shared machine when torch uses one
    # thread (time other processes take from us is not counted).
    now = time.process_time if clock == "cpu" else time.perf_counter
    calls = {"forward": forward, "spp": measure}
    if paths:
        calls.update(hooks=measure_hooks, torch=measure_torch)
    times: dict[str, list[float]] = {k: [] for k in calls}
    for i in range(repeats):
        order = list(calls) if i % 2 == 0 else list(reversed(calls))
        for name in order:
            t0 = now()
            calls[name]()
            times[name].append(now() - t0)
    out: dict[str, float] = {}
    for name in calls:
        out[f"{name}_s"] = statistics.median(times[name])
        if name != "forward":
            ratios = [b / a for a, b in zip(times["forward"], times[name])]
            out[f"{name}_ratio"] = statistics.median(ratios)
            out[f"{name}_q1"], out[f"{name}_q3"] = _quartiles(ratios)
    m_fwd, m_spp = peak_bytes(forward), peak_bytes(measure)
    out.update(forward_mib=m_fwd / 2**20, spp_mib=m_spp / 2**20, mem_ratio=m_spp / m_fwd)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resnetv2_600")
    ap.add_argument("--norms", default="bn,nf")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="cpu: process CPU time (use with --threads 1 on a busy machine)")
    ap.add_argument("--paths", action="store_true",
                    help="also time spp() through forward hooks, with and without C")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    built = [n for n, ok in (("_cmoments", _moments._c_channel_sums is not None),
                             ("_cfused", sp.measure.fused_add_available())) if ok]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{args.model} input ({args.batch}, 3, {args.size}, {args.size}), train mode, "
          f"{args.clock} clock, {args.repeats} interleaved pairs, "
          f"C accelerators: {', '.join(built) or 'none'}")
    header = (f"{'model':<22}{'forward s':>11}{'spp s':>9}{'time ratio':>12}{'IQR':>15}"
              f"{'fwd peak MiB':>14}{'spp peak MiB':>14}{'mem ratio':>11}")
    if args.paths:
        header += f"{'hooks ratio':>13}{'torch ratio':>13}"
    print(header)
    for norm in args.norms.split(","):
        torch.manual_seed(0)
        model = sp.models.create_model(args.model, norm=norm)  # train mode, as in the paper
        x = torch.randn(args.batch, 3, args.size, args.size)
        r = compare(model, x, args.repeats, args.clock, args.paths)
        iqr = f"{r['spp_q1']:.3f}-{r['spp_q3']:.3f}"
        line = (f"{args.model + ' ' + norm:<22}{r['forward_s']:>11.3f}{r['spp_s']:>9.3f}"
                f"{r['spp_ratio']:>12.3f}{iqr:>15}{r['forward_mib']:>14.1f}"
                f"{r['spp_mib']:>14.1f}{r['mem_ratio']:>11.3f}")
        if args.paths:
            line += f"{r['hooks_ratio']:>13.3f}{r['torch_ratio']:>13.3f}"
        print(line, flush=True)
        del model


if __name__ == "__main__":
    main()
