"""The theory's forward SPP for the models that have one (signalprop ResNetV2 and MLP)."""

from __future__ import annotations

from typing import Any

from signalprop.results import SPPResult

NO_PREDICTION = ("no theory prediction for {name}: signalprop predicts the SPP of its "
                 "ResNetV2 presets and of MLPs with a Gaussian initialization")


def predicted_spp(model: Any, measured: SPPResult, x: Any) -> tuple[SPPResult | None, str]:
    """The predicted schedule matching ``measured``, or None with the reason.

    ResNetV2 predictions start from the measured stem statistics; MLP predictions from
    the input's statistics.

    Args:
        model: the measured model.
        measured: its forward SPP on ``x``.
        x: the input batch.

    Returns:
        ``(prediction or None, a one-line note)``.

    Examples:
        >>> import torch, signalprop as sp
        >>> net = sp.models.mlp(depth=3, width=64)
        >>> x = torch.randn(16, 64)
        >>> pred, note = predicted_spp(net, sp.spp(net, x), x)
        >>> len(pred.records), pred.kind
        (3, 'predicted')
    """
    from signalprop.measure import channel_moments
    from signalprop.models import MLP, ResNetV2

    label = f"{measured.label} (predicted)"
    if isinstance(model, ResNetV2):
        stem = measured.records[0]
        pred = model.predicted_spp(tuple(x.shape[-2:]), stem_var=stem.avg_var,
                                   stem_sq_mean=stem.avg_sq_mean, label=label)
    elif isinstance(model, MLP) and model.sigma_w2 is not None:
        inp = channel_moments(x, 1)
        pred = model.predicted_spp(inp.avg_var, inp.avg_sq_mean, batch_size=x.shape[0],
                                   label=label)
    else:
        return None, NO_PREDICTION.format(name=type(model).__name__)
    worst = max((abs(m.avg_var / p.avg_var - 1)
                 for m, p in zip(measured.records[1:], pred.records[1:])
                 if m.nonfinite == 0 and p.avg_var > 0), default=float("nan"))
    return pred, (f"theory: average variance within {100 * worst:.0f}% of the prediction "
                  "at every block")
