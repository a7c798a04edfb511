"""Cost of measuring a foreign model's structure (which blocks add a skip connection).

spp() and gradient_spp() on a model signalprop does not know run one extra forward with
autograd recording, on the first two examples, and read the graph
(:func:`signalprop.measure._structure.probe_structure`). This prints, per model, the
median time of a plain no-grad forward of the whole batch, of the probe, and of spp(), and
the ratios probe / forward and probe / spp (pairs alternate their order).

    python benchmarks/bench_structure.py                     # batch 32, medium models
    python benchmarks/bench_structure.py --batch 8 --repeats 3 --small   # a smoke run
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch
import torch.nn as nn

import signalprop as sp
from signalprop.measure._structure import probe_structure


class Block(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.conv2(torch.relu(self.conv1(x))))


def models(small: bool, batch: int) -> dict[str, tuple[nn.Module, object, int]]:
    depth, width, seq = (4, 32, 16) if small else (24, 256, 128)
    cnn = nn.Sequential(nn.Conv2d(3, width // 4, 3, padding=1),
                        *[Block(width // 4) for _ in range(depth)])
    layer = nn.TransformerEncoderLayer(width, 8, 4 * width, dropout=0.0, batch_first=True,
                                       norm_first=True)
    enc = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
    out = {
        "residual CNN": (cnn.eval(), torch.randn(batch, 3, 32, 32), 1),
        "pre-LN encoder": (enc.eval(), torch.randn(batch, seq, width), -1),
    }
    try:
        import transformers as tf

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cfg = tf.GPT2Config(vocab_size=1000, n_positions=seq, n_embd=width, n_layer=depth,
                                n_head=8, bos_token_id=0, eos_token_id=0)
        out["HF GPT-2"] = (tf.GPT2LMHeadModel(cfg).eval(),
                           torch.randint(0, 1000, (batch, seq)), -1)
    except ImportError:
        pass
    return out


def median_time(fn, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--small", action="store_true", help="tiny models (a smoke run)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"{'model':<16} {'forward s':>10} {'probe s':>9} {'spp s':>8} "
          f"{'probe/fwd':>10} {'probe/spp':>10}")
    for name, (model, x, cdim) in models(args.small, args.batch).items():
        def forward(model=model, x=x):
            with torch.no_grad():
                model(x)
        calls = {"fwd": forward,
                 "probe": lambda model=model, x=x: probe_structure(model, x),
                 "spp": lambda model=model, x=x, cdim=cdim: sp.spp(model, x, channel_dim=cdim)}
        for fn in calls.values():  # warm-up
            fn()
        times = {k: [] for k in calls}
        for r in range(args.repeats):
            order = list(calls) if r % 2 == 0 else list(reversed(calls))
            for k in order:
                times[k] += median_time(calls[k], 1)
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"{name:<16} {med['fwd']:>10.4f} {med['probe']:>9.4f} {med['spp']:>8.4f} "
              f"{med['probe'] / med['fwd']:>10.2f} {med['probe'] / med['spp']:>10.2f}")


if __name__ == "__main__":
    main()
