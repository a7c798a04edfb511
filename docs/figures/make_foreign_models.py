"""Render the figures of docs/foreign-models.md (run from the repository root):

    python docs/figures/make_foreign_models.py

Writes docs/figures/transformer_spp.png and transformer_grad_spp.png (a pre-LN and a
post-LN language model with torch's default initialization, and the pre-LN one with its
residual branches scaled down), and screenshots of the Diagnosis and Model sections of
their reports (report_pre_ln.png, report_post_ln.png; needs Playwright and Debian's
chromium, as the report's browser test; ``--no-reports`` skips them).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch
import torch.nn as nn

import signalprop as sp

FIGURES = Path(__file__).resolve().parent
CHROMIUM = Path("/usr/bin/chromium")


class TinyLM(nn.Module):
    """Token ids -> embedding -> TransformerEncoder -> vocabulary logits (the guide's)."""

    def __init__(self, norm_first: bool, depth: int = 16, width: int = 32,
                 vocab: int = 1000) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        layer = nn.TransformerEncoderLayer(width, 4, 4 * width, dropout=0.0, batch_first=True,
                                           norm_first=norm_first)
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.head = nn.Linear(width, vocab)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.embed(ids)))


def scaled(model: TinyLM) -> TinyLM:
    """Each residual branch's last layer scaled by 1/sqrt(2 depth), as GPT-2 does."""
    depth = len(model.encoder.layers)
    with torch.no_grad():
        for layer in model.encoder.layers:
            layer.self_attn.out_proj.weight.mul_((2 * depth) ** -0.5)
            layer.linear2.weight.mul_((2 * depth) ** -0.5)
    return model


def spp_figures() -> None:
    ids = torch.randint(0, 1000, (8, 16), generator=torch.Generator().manual_seed(0))
    models = {}
    for label, norm_first in (("pre-LN", True), ("post-LN", False)):
        torch.manual_seed(0)
        models[label] = TinyLM(norm_first).eval()
    torch.manual_seed(0)
    models["pre-LN, branches / sqrt(2L)"] = scaled(TinyLM(True).eval())
    fwd = [sp.spp(m, ids, channel_dim=-1, label=k) for k, m in models.items()]
    bwd = [sp.gradient_spp(m, ids, channel_dim=-1, label=k) for k, m in models.items()]
    sp.plot.spp(fwd, FIGURES / "transformer_spp.png",
                title="16-layer language models, torch's default init, channel axis -1")
    sp.plot.gradient_spp(bwd, FIGURES / "transformer_grad_spp.png",
                         title="Gradients of the same models")
    for name in ("transformer_spp.png", "transformer_grad_spp.png"):
        _small(FIGURES / name, colors=128)


def report_screenshots() -> None:
    """The Diagnosis and Model sections of the reports of the pre-LN (GPT-2-style) and
    post-LN (BERT-style) models."""
    from playwright.sync_api import sync_playwright

    ids = torch.randint(0, 1000, (8, 16), generator=torch.Generator().manual_seed(0))
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 820, "height": 800})
        for name, norm_first in (("pre_ln", True), ("post_ln", False)):
            torch.manual_seed(0)
            model = TinyLM(norm_first).eval()
            label = "16-layer " + ("pre-LN" if norm_first else "post-LN") + " LM"
            r = sp.report.build_report(model, ids, Path(tmp) / name, label=label)
            page.goto(r.path.as_uri())
            box = page.locator("#forward").bounding_box()
            path = FIGURES / f"report_{name}.png"
            page.screenshot(path=str(path), full_page=True,
                            clip={"x": 0, "y": 0, "width": 820, "height": box["y"]})
            _small(path)
        browser.close()


def _small(path: Path, colors: int = 64) -> None:
    """A palette PNG (plots and page screenshots have few colours): a third of the size."""
    from PIL import Image

    with Image.open(path) as im:
        im.convert("RGB").quantize(colors=colors).save(path, optimize=True)


if __name__ == "__main__":
    FIGURES.mkdir(parents=True, exist_ok=True)
    spp_figures()
    if "--no-reports" not in sys.argv:
        report_screenshots()
    print(f"wrote {sorted(p.name for p in FIGURES.glob('*.png'))}")
