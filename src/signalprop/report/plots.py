"""The report's figures: thin calls into :mod:`signalprop.plot`, one PNG per panel set."""

from __future__ import annotations

from pathlib import Path

from signalprop import plot
from signalprop.report._types import Measurements

#: file name -> (alt text template); the page looks images up by name
ALT = {
    "spp.png": "Forward signal propagation plot of {label}: average squared channel mean, "
               "average channel variance and residual branch variance against block depth"
               "{pred}.",
    "grad_spp.png": "Gradient propagation plot of {label}: gradient variance, squared "
                    "gradient mean and parameter-gradient norm against block depth.",
    "confusion.png": "Histogram of pairwise cosine similarities between per-example "
                     "gradients of {label}, with the minimum and mean marked.",
    "conv_spectra.png": "Largest and smallest singular value and condition number of every "
                        "convolution of {label}, against the layer's position.",
    "fix_spp.png": "Forward signal propagation before and after the fix: {label} and the "
                   "fixed model.",
    "fix_grad_spp.png": "Gradient propagation before and after the fix: {label} and the "
                        "fixed model.",
}


def alt_text(name: str, before: Measurements) -> str:
    """The alt text of image ``name``."""
    pred = " (dashed: the theory's prediction)" if before.prediction is not None else ""
    return ALT[name].format(label=before.label, pred=pred)


def write_all(before: Measurements, after: Measurements | None, out: Path) -> list[Path]:
    """Write the PNGs the page shows into ``out``; returns their paths in page order."""
    shape = before.summary.get("input_shape")
    paths = [plot.spp(before.spp, out / "spp.png", predicted=before.prediction,
                      title=f"Forward signal propagation, input {shape}"
                      + (" (dashed: theory)" if before.prediction is not None else ""))]
    if before.grad is not None:
        paths.append(plot.gradient_spp(before.grad, out / "grad_spp.png",
                                       title=f"Gradient propagation, input {shape}"))
    if before.confusion is not None:
        paths.append(plot.confusion(before.confusion, out / "confusion.png",
                                    title="Gradient confusion: pairwise cosines"))
    if before.conv_spectra is not None:
        paths.append(plot.conv_spectra(before.conv_spectra, out / "conv_spectra.png",
                                       title=f"Convolution spectra, input {shape}"))
    if after is not None:
        paths.append(plot.spp([before.spp, after.spp], out / "fix_spp.png",
                              predicted=[before.prediction, after.prediction],
                              title="Before and after the fix"))
        if before.grad is not None and after.grad is not None:
            paths.append(plot.gradient_spp([before.grad, after.grad], out / "fix_grad_spp.png",
                                           title="Gradients before and after the fix"))
    return paths
