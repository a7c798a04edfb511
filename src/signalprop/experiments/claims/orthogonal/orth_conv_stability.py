"""orth-conv-stability: a small L_orth keeps a convolution nearly isometric at every image
size.

Achour, Malgouyres & Mamalet (JMLR 2022), Theorems 7 and 8 (PAPERS.md section 9): for a
circular convolution on S N x S N inputs (S N >= 2k - 1), the Frobenius orthogonality
error grows with the image, err_F^2 = N^2 L_orth(K), but the spectral one does not:

    L_orth / min(M, C S^2) <= err_s^2 <= alpha L_orth,   err_s = max |sigma^2 - 1|,

with alpha = (2 floor((k - 1) / S) + 1)^2 M in the row case (M <= C S^2) and
(2k - 1)^2 C in the column case, independent of N. Their Section 3.1.3 checks it on
kernels with L_orth <= 0.001 for N from 5 to 1024.

Experiment: for a few non-square architectures (row and column cases, strides 1 and 2),
minimize L_orth from a Glorot-uniform start and keep the kernel the first time L_orth
falls below each of several targets (1e-1 ... 1e-4): layers with small but non-zero
L_orth. For each and for N = 8 ... 128, compute every singular value exactly
(signalprop.measure.conv_spectrum: circular convolutions are block-diagonal in the
Fourier basis), hence err_s and err_F.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from signalprop.experiments._claim import Claim, RunContext, Verdict

REL = 1e-9  # rounding slack on the Theorem 8 inequalities
FROB = 1e-6  # |err_F^2 / (N^2 L_orth) - 1| at most this (Theorem 7)
SMALL = 0.1  # "small but non-zero": 0 < L_orth <= SMALL

CRITERION = (
    f"every layer has 0 < L_orth <= {SMALL:g}, and for every layer and every N in the grid "
    f"(8 to 128): L_orth / min(M, C S^2) <= err_s^2 <= alpha L_orth (Theorem 8, alpha "
    f"independent of N; relative slack {REL:g}) and |err_F^2 / (N^2 L_orth) - 1| <= "
    f"{FROB:g} (Theorem 7); at least 4 layers"
)


def alphas(c: int, m: int, k: int, s: int, d: int = 2) -> tuple[float, float]:
    """Theorem 8's constants (alpha', alpha) for a layer (M, C, k, S) in d dimensions.

    Examples:
        >>> alphas(128, 128, 3, 2)[1] ** 0.5  # the paper's example: sqrt(alpha) <= 34
        33.94112549695428
    """
    low = 1.0 / min(m, c * s ** d)
    if m <= c * s ** d:
        return low, float((2 * ((k - 1) // s) + 1) ** d * m)
    return low, float((2 * k - 1) ** d * c)


def decide(m: dict[str, Any]) -> Verdict:
    """The pre-registered criterion, from each layer's L_orth and its errors per N.

    Examples:
        >>> lay = {"lorth": 1e-3, "alpha": 9.0, "alpha_low": 0.25, "N": [8, 16],
        ...        "err_s": [0.03, 0.031], "err_f2": [0.064, 0.256], "d": 2}
        >>> decide({"layers": [lay] * 4}).reproduced
        True
        >>> decide({"layers": [{**lay, "err_s": [0.03, 0.2]}] * 4}).reproduced
        False
    """
    worst_up, worst_low, worst_frob, bad = 0.0, math.inf, 0.0, []
    for i, lay in enumerate(m["layers"]):
        lo = lay["lorth"]
        if not 0 < lo <= SMALL:
            bad.append({"layer": i, "why": f"L_orth = {lo:.3g} outside (0, {SMALL:g}]"})
            continue
        for n, es, ef in zip(lay["N"], lay["err_s"], lay["err_f2"]):
            up = es * es / (lay["alpha"] * lo)
            low = es * es / (lay["alpha_low"] * lo)
            frob = abs(ef / (n ** lay["d"] * lo) - 1.0)
            worst_up, worst_low = max(worst_up, up), min(worst_low, low)
            worst_frob = max(worst_frob, frob)
            if up > 1 + REL or low < 1 - REL or frob > FROB or not math.isfinite(es):
                bad.append({"layer": i, "N": n, "err_s2_over_alpha_L": up,
                            "err_s2_over_alpha_low_L": low, "frobenius_rel_error": frob})
    growth = [max(lay["err_s"]) / max(min(lay["err_s"]), 1e-300) for lay in m["layers"]]
    n_ok = len(m["layers"]) >= 4
    effect = (f"{len(m['layers'])} layers, N = {min(m['layers'][0]['N']) if m['layers'] else '-'}"
              f"..{max(m['layers'][0]['N']) if m['layers'] else '-'}: err_s^2 reaches at most "
              f"{worst_up:.3g} alpha L_orth and at least {worst_low:.3g} alpha' L_orth "
              f"(bounds: 1); err_F^2 = N^2 L_orth to {worst_frob:.1e}; err_s grew by at most "
              f"{max(growth, default=math.nan):.3g}x over N while err_F grew "
              f"{(max(m['layers'][0]['N']) / min(m['layers'][0]['N'])) if m['layers'] else 0:g}x"
              f"; {len(bad)} violation(s)")
    return Verdict(bool(n_ok and not bad), effect, {
        "max_err_s2_over_alpha_L": worst_up, "min_err_s2_over_alpha_low_L": worst_low,
        "max_frobenius_rel_error": worst_frob, "violations": bad[:20],
        "err_s_growth_over_N": growth})


def _snapshots(c: int, m: int, k: int, s: int, targets: list[float], steps: int, lr: float,
               seed: int) -> list[tuple[float, Any]]:
    """Minimize L_orth with Adam; the kernel the first time L_orth <= each target."""
    import torch

    from signalprop.nn import orth_penalty

    gen = torch.Generator().manual_seed(seed)
    bound = math.sqrt(6.0 / ((c + m) * k * k))
    w = ((torch.rand(m, c, k, k, generator=gen, dtype=torch.float64) * 2 - 1) * bound)
    w.requires_grad_(True)
    opt = torch.optim.Adam([w], lr=lr)
    out, pending = [], sorted(targets, reverse=True)
    for _ in range(steps):
        loss = orth_penalty(w, stride=s)
        while pending and loss.item() <= pending[0]:
            out.append((pending.pop(0), w.detach().clone()))
        if not pending:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    return out


def measure(ctx: RunContext, size: dict[str, Any]) -> dict[str, Any]:
    import torch
    import torch.nn as nn

    from signalprop.measure import conv_spectrum
    from signalprop.nn import orth_penalty

    torch.set_num_threads(1)
    layers = []
    for i, (c, m, k, s) in enumerate(size["configs"]):
        a_low, a_up = alphas(c, m, k, s)
        for target, w in _snapshots(c, m, k, s, size["targets"], size["steps"], size["lr"],
                                    seed=2000 + i):
            conv = nn.Conv2d(c, m, k, stride=s, padding=(k - 1) // 2, bias=False,
                             padding_mode="circular").double()
            with torch.no_grad():
                conv.weight.copy_(w)
            err_s, err_f2 = [], []
            for n in size["N"]:
                sv = conv_spectrum(conv, (c, s * n, s * n), method="fft").singular_values
                dev = sv.square() - 1
                err_s.append(float(dev.abs().max()))
                err_f2.append(float(dev.square().sum()))
            lorth = float(orth_penalty(w, stride=s))
            layers.append({"config": [c, m, k, s], "target": target, "lorth": lorth,
                           "alpha": a_up, "alpha_low": a_low, "N": list(size["N"]),
                           "err_s": err_s, "err_f2": err_f2, "d": 2})
            ctx.log(f"  C={c} M={m} k={k} S={s} L_orth={lorth:.2g}: err_s from "
                    f"{err_s[0]:.3g} (N={size['N'][0]}) to {err_s[-1]:.3g} "
                    f"(N={size['N'][-1]}), sqrt(alpha L_orth) = {math.sqrt(a_up * lorth):.3g}")
    return {"layers": layers, "targets": size["targets"], "steps": size["steps"],
            "lr": size["lr"]}


def figure(m: dict[str, Any], path: Path) -> None:
    from signalprop.plot._style import pyplot, save

    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    cmap = plt.get_cmap("viridis")
    for i, lay in enumerate(m["layers"]):
        col = cmap(i / max(1, len(m["layers"]) - 1))
        ns, lo = lay["N"], lay["lorth"]
        ax1.plot(ns, [e * e / (lay["alpha"] * lo) for e in lay["err_s"]], "-o", ms=3,
                 color=col, lw=1)
        ax2.plot(ns, [f / lo for f in lay["err_f2"]], "--", color=col, lw=1)
        ax2.plot(ns, [e * e / lo for e in lay["err_s"]], "-", color=col, lw=1)
    ax1.axhline(1.0, color="tab:red", lw=1.2, label="Theorem 8 bound (err_s^2 = alpha L_orth)")
    for ax in (ax1, ax2):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("N (input S N x S N)")
        ax.grid(alpha=0.3, which="both")
    ax1.set_ylabel("err_s^2 / (alpha L_orth)")
    ax1.set_title("spectral error stays under the bound at every N")
    ax1.legend(fontsize=8)
    ax2.set_ylabel("error^2 / L_orth")
    ax2.set_title("Frobenius (dashed) grows as N^2; spectral (solid) does not")
    save(fig, path)


CLAIM = Claim(
    name="orth-conv-stability",
    paper="Achour, Malgouyres & Mamalet (JMLR 2022)",
    statement="For convolutions with small but non-zero L_orth, the spectral orthogonality "
              "error max |sigma^2 - 1| stays within Theorem 8's bound sqrt(alpha L_orth) at "
              "every image size N (8 to 128), while the Frobenius error grows as N "
              "(Theorem 7).",
    criterion=CRITERION,
    quick_minutes=1.0,
    sizes={
        "smoke": {"configs": [[4, 2, 3, 1]], "targets": [1e-1, 1e-2], "N": [8, 16],
                  "steps": 2000, "lr": 0.01},
        "quick": {"configs": [[8, 4, 3, 1], [4, 8, 3, 1], [8, 16, 3, 2], [4, 24, 3, 2]],
                  "targets": [1e-1, 1e-2, 1e-3, 1e-4], "N": [8, 16, 32, 64, 128],
                  "steps": 20000, "lr": 0.01},
        "full": {"configs": [[8, 4, 3, 1], [4, 8, 3, 1], [8, 16, 3, 2], [4, 24, 3, 2],
                             [16, 8, 5, 1], [8, 40, 5, 2], [16, 32, 3, 2]],
                 "targets": [1e-1, 1e-2, 1e-3, 1e-4, 1e-5], "N": [8, 16, 32, 64, 128, 256],
                 "steps": 50000, "lr": 0.01},
    },
    measure=measure, decide=decide, figure=figure,
)
