"""Regenerate the figures of docs/orthogonal.md (about a minute on one core):

    python docs/figures/make_orthogonal.py
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

import signalprop as sp
from signalprop.experiments._claim import RunContext
from signalprop.experiments.claims.orthogonal import orth_conv_stability as stability
from signalprop.plot._style import pyplot, save

OUT = Path(__file__).resolve().parent


def _curves(c: int, m: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    conv = nn.Conv2d(c, m, 3, padding=1, padding_mode="circular", bias=False).double()
    shape = (c, 16, 16)
    curves = {"Kaiming-uniform init": sp.conv_spectrum(conv, shape).singular_values}
    opt = torch.optim.Adam(conv.parameters(), lr=0.01)
    for step in range(1, 3001):
        opt.zero_grad()
        loss = sp.nn.orth_penalty(conv)
        loss.backward()
        opt.step()
        if step in (100, 3000):
            vals = sp.conv_spectrum(conv, shape).singular_values
            curves[f"{step} Adam steps on L_orth (L_orth {loss.item():.1e})"] = vals
    ortho = sp.nn.OrthoConv2d(c, m, 3, dtype=torch.float64)
    curves["OrthoConv2d (BCOP)"] = sp.conv_spectrum(ortho, shape).singular_values
    return curves


def spectra_figure() -> None:
    """Sorted singular values of 3x3 circular convs on 16 x 16 inputs: random init, after
    minimizing L_orth part way and longer, and an OrthoConv2d; the square case M = C
    (Achour et al.'s hard case) and a column-orthogonal one."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, (c, m, note) in zip(axes, ((16, 16, "square M = C S^2: the hard case"),
                                       (16, 24, "M > C S^2: column-orthogonal"))):
        for label, vals in _curves(c, m).items():
            ax.plot(range(len(vals)), vals.numpy(), label=label, lw=1.4)
        ax.axhline(1.0, color="0.5", lw=0.8)
        ax.set_xlabel(f"index of the singular value (descending), {c * 256} in all")
        ax.set_ylabel("singular value")
        ax.set_title(f"3x3 circular conv {c} -> {m}, 16 x 16 input\n{note}", fontsize=10)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    save(fig, OUT / "orth_spectrum.png", dpi=110)


def resnet_figure() -> None:
    torch.manual_seed(0)
    model = sp.models.create_model("resnetv2_50", norm="nf", stem="cifar", width=0.25)
    res = sp.conv_spectra(model, torch.randn(1, 3, 32, 32), label="ResNetV2-50 NF, width 1/4")
    sp.plot.conv_spectra(res, OUT / "conv_spectra_resnet.png",
                         title="Convolution spectra of an NF ResNetV2-50 (width 1/4) at init, "
                               "32 x 32 input")


def stability_figure() -> None:
    size = dict(stability.CLAIM.sizes["quick"])
    size["configs"] = [[8, 4, 3, 1], [8, 16, 3, 2]]
    m = stability.measure(RunContext("quick", OUT, progress=False, log=lambda s: None), size)
    stability.figure(m, OUT / "orth_stability.png")


if __name__ == "__main__":
    torch.set_num_threads(1)
    spectra_figure()
    resnet_figure()
    stability_figure()
    print("wrote", *sorted(p.name for p in OUT.glob("*.png")))
