"""LinearRNN2d's wavefront forward against a 3x3 convolution of the same width.

The recurrence visits the H + W - 1 antidiagonals of the grid in order, all nodes of one
in parallel: O(N C H W) work (a few multiply-adds per node and channel) in H + W - 1
sequential steps of O(N C H) each. A 3x3 convolution of width C does 9 C^2 multiply-adds
per node in one call. Printed: CPU time per forward (no autograd graph; medians of
interleaved runs, as bench_toolkit.py), the ratio rnn / conv (target <= 10), the same for
the differentiable path (a forward that records the autograd graph, against the conv's),
and the largest difference to the naive double loop over nodes (must be ~1e-6 in float32).

    python benchmarks/bench_linear_rnn2d.py                 # 64 x 64 grid, 32 channels
    python benchmarks/bench_linear_rnn2d.py --batch 1 --size 32 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics

import torch
from bench_toolkit import interleaved  # CPU times, run in turn after a warm-up

from signalprop.nn import LinearRNN2d


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64, help="grid side H = W")
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--mode", default="P", choices=("naive", "P", "D"))
    args = ap.parse_args()
    torch.manual_seed(0)
    c, n = args.channels, args.size
    x = torch.randn(args.batch, c, n, n)
    rnn = LinearRNN2d(c, args.mode, transition=0.6)
    conv = torch.nn.Conv2d(c, c, 3, padding=1)

    def no_grad(f: torch.nn.Module) -> None:
        with torch.no_grad():
            f(x)

    xg = x.clone().requires_grad_(True)
    times = interleaved({"rnn": lambda: no_grad(rnn), "conv": lambda: no_grad(conv),
                         "rnn graph": lambda: rnn(xg), "conv graph": lambda: conv(xg)},
                        args.repeats)
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    print(f"LinearRNN2d({c}, mode={args.mode!r}) vs Conv2d({c}, {c}, 3) on "
          f"{args.batch} x {c} x {n} x {n}, {torch.get_num_threads()} threads")
    for k in ("rnn", "conv", "rnn graph", "conv graph"):
        print(f"  {k:11s} {med[k]:8.2f} ms CPU")
    for a, b in (("rnn", "conv"), ("rnn graph", "conv graph")):
        r = statistics.median(p / q for p, q in zip(times[a], times[b]))
        print(f"  {a} / {b}: {r:.2f} x  (target <= 10)")
    small = x[:1, :4, :24, :24]
    ref = LinearRNN2d(4, args.mode, transition=0.6)
    with torch.no_grad():
        diff = (ref(small) - ref.forward_loop(small)).abs().max().item()
    print(f"  wavefront vs double loop (1 x 4 x 24 x 24): max |diff| = {diff:.2e}")


if __name__ == "__main__":
    main()
