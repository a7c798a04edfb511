"""``signalprop spp --backward``: gradient propagation panels next to the SPP."""

from __future__ import annotations

import argparse
import math
from typing import Any


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backward", action="store_true",
                   help="also measure gradient propagation (dL/d block output with L = "
                   "<output, Gaussian probe>) and write grad_spp.{png,csv,json}")


def measure(model: Any, x: Any, args: argparse.Namespace, label: str) -> Any:
    """gradient_spp of one model on the SPP's input, with the SPP's blocks and channel axis."""
    from signalprop.cli._common import CLIError
    from signalprop.measure import ForwardError, gradient_spp

    try:
        return gradient_spp(model, x, blocks=args.blocks, channel_dim=args.channel_dim,
                            seed=args.seed, label=label, progress=args.progress)
    except (ValueError, ForwardError) as e:
        raise CLIError(str(e)) from None


def summarize(res: Any) -> str:
    """One line: gradient variance at the first and last block and their ratio."""
    first, last = res.records[0], res.records[-1]
    fv, lv = first.grad_avg_var, last.grad_avg_var
    ratio = fv / lv if fv is not None and lv else math.nan
    bad = res.first_nonfinite
    tail = "" if bad is None else f"; NaN/Inf gradients from {bad.name}"
    return (f"  backward: grad var {_fmt(fv)} at {first.name}, {_fmt(lv)} at {last.name} "
            f"(first/last {ratio:.3g}){tail}")


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.4g}"


def predict(model: Any, res: Any, x: Any) -> Any:
    """chi_1-per-layer prediction for plain networks that provide it (signalprop MLPs)."""
    from signalprop.measure import channel_moments
    from signalprop.results import chi_prediction

    chi_fn = getattr(model, "predicted_gradient_chi", None)
    if not callable(chi_fn) or getattr(model, "sigma_w2", None) is None:
        return None
    inp = channel_moments(x, 1)
    chi = chi_fn(inp.avg_var, inp.avg_sq_mean)
    if len(chi) != len(res.records) - 1:
        return None  # blocks chosen by the caller, not the model's own
    return chi_prediction(res, chi)


def write(results: list[Any], args: argparse.Namespace, title: str,
          predicted: list[Any] | None = None) -> str:
    """Write grad_spp.csv/.json (after every model) and, with ``title``, the figure."""
    from signalprop import plot
    from signalprop.cli._common import write_results

    preds = [p for p in predicted or [] if p is not None]
    write_results(results + preds, args.out, "grad_spp")
    if not title:
        return ""
    fig = plot.gradient_spp(results, args.out / f"grad_spp.{args.format}", title=title,
                            predicted=predicted if preds else None)
    return f"{fig}, {args.out / 'grad_spp.csv'}, {args.out / 'grad_spp.json'}"
