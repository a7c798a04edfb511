"""Draw the pictures of docs/regions.md (run: python docs/figures/make_region_figures.py)."""

from pathlib import Path

import torch
import torch.nn as nn

import signalprop as sp
from signalprop.data import load_dataset
from signalprop.experiments.claims.regions.region_density import _network

HERE = Path(__file__).resolve().parent


def main() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(),
                        nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 1))
    r = sp.plane_regions(net, torch.zeros(1, 2), bounds=(-3, 3, -3, 3))
    fig = sp.plot.plane_regions(r, title=f"2-16-16-16-1 at initialization: {r.count} regions")
    fig.savefig(HERE / "regions_plane.png", dpi=80)

    tern = sp.models.ternary_region_net([3, 3])
    line = sp.linear_regions(tern, torch.zeros(1, 1), end=torch.full((1, 1), 3.0))
    fig = sp.plot.linear_regions(line, title="ternary construction, teeth [3, 3]: 9 pieces")
    fig.savefig(HERE / "regions_ternary.png", dpi=80)

    x = load_dataset("digits").test.x[:16].reshape(16, -1)
    results = []
    for kind in ("gaussian", "ternary"):
        for depth in (1, 2, 4, 8):
            for width in (16, 32, 64):
                d = sp.region_density(_network(kind, depth, width, 0).eval(), x, n_lines=4,
                                      length=4.0, label=f"{kind}, width {width}")
                results.append(d)
    fig = sp.plot.region_density(results, x="neurons",
                                 title="digits, lines of length 4 through 16 test images")
    fig.savefig(HERE / "regions_density.png", dpi=80)


if __name__ == "__main__":
    main()
