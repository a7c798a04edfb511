"""Draw the pictures of docs/sequence.md (run: python docs/figures/make_sequence_figures.py;
about a minute on one core: it trains four small counting transformers)."""

from pathlib import Path

import torch

import signalprop as sp
from signalprop import theory
from signalprop.experiments.claims.sequence.counting_ood import VARIANTS, fit_counter

HERE = Path(__file__).resolve().parent
E, SCORE_MEAN, SCORE_STD, VALUE_MEAN, VALUE_STD = 16, 0.5, 1.0, 0.5, 1.0


def controlled(normalize: str) -> sp.nn.SelfAttention:
    """One head whose scores and values are independent Gaussians of known moments (the
    same construction as docs/sequence.md)."""
    attn = sp.nn.SelfAttention(E, 1, bias=False, normalize=normalize, norm="none",
                               residual=False)
    with torch.no_grad():
        attn.in_proj_weight.zero_()
        wq, wk, wv = attn.in_proj_weight.view(3, E, E)
        wq[0, 0] = SCORE_STD * E**0.5
        wk[0, 1], wk[0, 0] = 1.0, SCORE_MEAN / SCORE_STD
        wv[:, 0] = VALUE_MEAN
        wv[:, 2:] = torch.randn(E, E - 2)
        wv[:, 2:] *= VALUE_STD / wv[:, 2:].norm(dim=1, keepdim=True)
        attn.out_proj.weight.copy_(torch.eye(E))
    return attn


def tokens(length: int) -> torch.Tensor:
    x = torch.randn(16, length, E)
    x[..., 0] = 1.0
    return x


def length_spp_figure() -> None:
    lengths = [2, 4, 8, 16, 32, 64, 128, 256, 512]
    measured, predicted = [], []
    for normalize in theory.NORMALIZATIONS:
        attn = controlled(normalize)
        measured.append(sp.measure.length_spp(attn, tokens, lengths, blocks=[attn],
                                              label=normalize))
        predicted.append(theory.attention_sum(
            lengths, normalize, score_mean=SCORE_MEAN, score_std=SCORE_STD,
            value_mean=VALUE_MEAN, value_std=VALUE_STD, name="<model>"))
    fig = sp.plot.length_spp(measured, predicted=predicted,
                             title="attention output at initialization: measured (dots), "
                                   "predicted (dashed)")
    fig.savefig(HERE / "sequence_length_spp.png", dpi=80)


def counting_figure() -> None:
    lengths = [4, 9, 16, 36, 100, 400]
    results = []
    for variant in VARIANTS:  # the claim's models, trained a little shorter
        job = {"variant": variant, "lr": 3e-3, "seed": 0, "steps": 2000, "batch": 50,
               "num_train": 20000, "num_val": 8, "num_ood": 1, "ood_length": 400}
        net, _, _ = fit_counter(job)
        results.append(sp.measure.length_spp(
            net, lambda n: sp.data.count_batch(n, 32, generator=torch.Generator()
                                               .manual_seed(n)),
            lengths, blocks=["layers.0.attn"], label=variant))
    fig = sp.plot.length_spp(results, title="trained counting transformers (trained on "
                                            "<= 36 tokens)")
    fig.savefig(HERE / "sequence_counting.png", dpi=80)


def spatial_jacobian_figure() -> None:
    results = []
    for mode in ("naive", "P", "D"):
        rnn = sp.nn.LinearRNN2d(4, mode, transition=0.6, direct=0.0).double()
        x = torch.zeros(1, 4, 32, 32, dtype=torch.float64)
        results.append(sp.spatial_jacobian(rnn, x, source=(0, 0), label=mode))
    fig = sp.plot.spatial_jacobian(results, titles=[
        "naive (all transitions 0.6)", "P-mode (0.5 each: sums of 1)",
        "D-mode (no right-to-down turn)"])
    fig.savefig(HERE / "sequence_spatial_jacobian.png", dpi=80)


def main() -> None:
    torch.manual_seed(0)
    length_spp_figure()
    spatial_jacobian_figure()
    counting_figure()


if __name__ == "__main__":
    main()
