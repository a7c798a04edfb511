"""Draw the picture of docs/compression.md (run: python docs/figures/make_compression_figure.py).

A MobileNetV2-style network (circular padding) trained 20 epochs on digits, compressed at
a budget of 0.7x its CPU latency, the plan's activations replaced and fine-tuned 5
epochs, merged; SPPs at every convolution and Jacobian spectra of the original, the
linearized network before fine-tuning (merged: it is the same function) and after.
"""

from pathlib import Path

import torch
import torch.nn as nn

import signalprop as sp
from signalprop.experiments.claims.compression import depth_dp as claim
from signalprop.experiments.claims.compression._train import accuracy, neg_loss, train

HERE = Path(__file__).resolve().parent


def main() -> None:
    torch.set_num_threads(1)
    data = claim._data()
    (xtr, ytr), (xva, yva), (xte, yte) = data["train"], data["val"], data["test"]
    torch.manual_seed(0)
    net = train(claim._network(claim.SMALL), xtr, ytr, epochs=20, lr=claim.LR, seed=0)
    x = xte[:64]
    plan = sp.convert.depth_compress(net, 0.7, example_input=x,
                                     importance=lambda m: neg_loss(m, xva, yva), repeats=21)
    linear = plan.apply(net, merge=False)
    train(linear, xtr, ytr, epochs=5, lr=claim.FT_LR, seed=1000)
    nets = {"original": plan.baseline().apply(net), "linearized": plan.apply(net),
            "compressed, fine-tuned": plan.apply(linear)}
    spps, jacs = {}, {}
    for name, m in nets.items():
        convs = [n for n, mod in m.named_modules() if isinstance(mod, nn.Conv2d)]
        spps[name] = sp.spp(m, x, blocks=convs, label=name)
        jacs[name] = sp.jacobian_spectrum(m, x[:16], k=10, label=name)
        print(f"{name}: test accuracy {accuracy(m, xte, yte):.1f} %")
    print(plan)
    path = sp.plot.compression(plan, HERE / "compression.png", spp=spps, jacobian=jacs)
    _shrink(path, 0.6)


def _shrink(path: Path, factor: float) -> None:
    """A smaller PNG for the docs (matplotlib depends on Pillow)."""
    from PIL import Image

    img = Image.open(path)
    img.resize((int(img.width * factor), int(img.height * factor)),
               Image.Resampling.LANCZOS).save(path, optimize=True)


if __name__ == "__main__":
    main()
