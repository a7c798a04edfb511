"""One self-contained HTML page: inline CSS, PNGs as data URIs, real tables, alt text,
readable at phone width. Every value is escaped with :func:`html.escape`."""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from typing import Any

from signalprop import __version__
from signalprop.report import diagnosis as dg
from signalprop.report._types import Measurements, ReportResult
from signalprop.report.plots import alt_text

CSS = """
*{box-sizing:border-box}
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
 color:#1d2430;background:#fafbfc}
main{max-width:64rem;margin:0 auto;padding:1rem}
h1{font-size:1.6rem;margin:.5rem 0}h2{font-size:1.3rem;margin-top:2rem;
 border-bottom:1px solid #d8dde3}h3{font-size:1.1rem}
img{max-width:100%;height:auto;display:block;margin:.5rem 0;background:#fff}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
th,td{border:1px solid #d8dde3;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#eef1f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
pre,code{font:.85rem/1.4 ui-monospace,Menlo,Consolas,monospace}
pre{background:#1d2430;color:#f0f3f6;padding:.6rem;border-radius:4px;white-space:pre-wrap;
 word-break:break-word}
.diag{border-left:5px solid #c0392b;background:#fff;padding:.5rem 1rem;margin:1rem 0}
.ok{border-left:5px solid #2e8b57;background:#fff;padding:.5rem 1rem}
.meta{color:#5b6673;font-size:.9rem}
@media (max-width:40rem){body{font-size:15px}main{padding:.5rem}h1{font-size:1.3rem}}
"""


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}" if math.isfinite(v) else str(v)
    return str(v)


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], caption: str = "") -> str:
    """A real HTML table (numbers right-aligned), wrapped to scroll sideways on phones.

    Examples:
        >>> table(["a"], [[1.5]])[-62:]
        '<tbody><tr><td class="num">1.5</td></tr></tbody></table></div>'
    """
    head = "".join(f"<th scope=\"col\">{escape(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = [f"<td class=\"num\">{escape(_fmt(c))}</td>" if isinstance(c, int | float)
                 and not isinstance(c, bool) else f"<td>{escape(_fmt(c))}</td>" for c in row]
        body.append("<tr>" + "".join(cells) + "</tr>")
    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    return (f"<div class=\"scroll\"><table>{cap}<thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table></div>")


def image(path: Path, alt: str) -> str:
    """An <img> holding the PNG as a base64 data URI (no file or network needed)."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"<img src=\"data:image/png;base64,{data}\" alt=\"{escape(alt)}\">"


def _diagnoses(diags: list[dg.Diagnosis]) -> str:
    if not diags:
        return ("<div class=\"ok\"><p><strong>No problems found at initialization.</strong> "
                "None of the thresholds below was crossed.</p></div>")
    parts = []
    for d in diags:
        where = f" <span class=\"meta\">from block <code>{escape(d.block)}</code></span>" \
            if d.block else ""
        fix = (f"<p>Fix:</p><pre><code>{escape(d.fix_code)}</code></pre>" if d.fix_code else
               "<p>Fix: no automatic fix applies to this model (the text above says why "
               "and what to change by hand).</p>")
        parts.append(
            f"<div class=\"diag\" data-kind=\"{escape(d.kind)}\"><h3>{escape(d.title)}{where}"
            f"</h3><p>{escape(d.message)}</p><p class=\"meta\">Triggered by: "
            f"{escape(d.threshold)}</p>{fix}</div>")
    return "".join(parts)


def _summary(m: Measurements) -> str:
    s = m.summary
    types = ", ".join(f"{k} x{v}" for k, v in s.get("block_types", {}).items()) or "-"
    rows = [
        ("parameters", f"{s.get('parameters', 0):,}"),
        ("depth (blocks measured)", s.get("depth")),
        ("block types", types),
        ("how the blocks were found", s.get("discovery") or "-"),
        ("skip connections (measured on the forward)", s.get("skips") or "-"),
        ("activation", s.get("activation") or "unknown"),
        ("critical sigma_w^2 for it", s.get("critical_sigma_w2")),
        ("mean-field chi_1 of its init", s.get("theory_chi_1")),
        ("input batch", s.get("input") or "x".join(str(d) for d in s.get("input_shape")
                                                    or ())),
        ("channel axis of the block outputs",
         f"{s['channel_dim']} ({s.get('channel_dim_reason', '')})" if "channel_dim" in s
         else "1"),
        ("mode measured", s.get("mode")),
    ]
    rows += [(f"fix: {k}", v) for k, v in (s.get("fixes") or {}).items()]
    return table(["property", "value"], rows)


def _spp_table(m: Measurements) -> str:
    pred = {r.index: r for r in m.prediction.records} if m.prediction is not None else {}
    rows = [(r.index, r.name, r.avg_sq_mean, r.avg_var, r.res_var,
             pred[r.index].avg_var if r.index in pred else None, r.nonfinite)
            for r in m.spp.records]
    return table(["#", "block", "avg squared mean", "avg variance", "residual variance",
                  "predicted variance", "NaN/Inf"], rows)


def _grad_table(m: Measurements) -> str:
    g = m.grad
    if g is None:
        return ""
    rows = [(r.index, r.name, r.grad_avg_sq_mean, r.grad_avg_var, r.param_grad_norm,
             r.nonfinite) for r in g.records]
    return table(["#", "block", "grad squared mean", "grad variance", "param grad norm",
                  "NaN/Inf"], rows)


def _confusion_table(m: Measurements) -> str:
    c = m.confusion
    if c is None:
        return ""
    rows = [("batch size", c.batch_size), ("pairs", c.n_pairs), ("eta", c.eta),
            ("min cosine", c.min_cosine), ("mean cosine", c.mean_cosine),
            ("std cosine", c.std_cosine), ("mean squared gradient norm", c.mean_sq_norm),
            ("examples with zero gradient", c.zero_gradient_examples)]
    rows += [(f"cosine quantile {q:g}", v) for q, v in sorted(c.quantiles.items())]
    return table(["statistic", "value"], rows)


def _jacobian_table(m: Measurements) -> str:
    j = m.jacobian
    if j is None:
        return ""
    rows = [(b, j.top[b][0], j.bottom[b][0], j.condition_number[b], j.mean_sq_sv[b],
             ", ".join(f"{v:.3g}" for v in j.top[b]))
            for b in range(j.batch_size)]
    return (f"<p>Input-output Jacobian of each example ({j.out_dim} x {j.in_dim}); "
            "dynamical isometry means all singular values near 1.</p>"
            + table(["example", "largest sigma", "smallest sigma", "condition number",
                     "mean sigma^2", "top singular values"], rows))


def _conv_table(m: Measurements) -> str:
    cs = m.conv_spectra
    if cs is None:
        return ""
    rows = [(r.index, r.name, "x".join(map(str, r.input_shape)), r.method, r.sigma_max,
             r.sigma_min, r.condition) for r in cs.records]
    return ("<p>Singular values of each convolution as the linear map it applies to its "
            "input (exact for circular padding, pointwise and small layers; otherwise "
            "certified bounds: sigma_max from below, sigma_min from above). Orthogonal "
            "layers have all of them at 1.</p>"
            + table(["#", "layer", "input", "method", "sigma_max", "sigma_min", "condition"],
                    rows))


def _independence_table(m: Measurements) -> str:
    ind = m.independence
    if ind is None:
        return ""
    rows = [(mode, ind.leak[mode], ind.sensitivity.get(mode), ind.first_leak.get(mode) or "-",
             (ind.meta.get("first_leak_type") or {}).get(mode) or "-")
            for mode in ind.leak]
    verdict = "independent" if ind.independent else "NOT independent"
    return (f"<p>Batch {escape(verdict)} (tolerance {ind.tolerance:g}; example {ind.index} "
            f"perturbed in a batch of {ind.batch_size}).</p>"
            + table(["mode", "leak", "sensitivity", "first module that leaks", "its type"],
                    rows))


def _section(title: str, body: str, ident: str) -> str:
    return f"<section id=\"{ident}\"><h2>{escape(title)}</h2>{body}</section>"


def _img(result: ReportResult, name: str) -> str:
    path = result.path.parent / name
    if path not in result.images:
        return ""
    return image(path, alt_text(name, result.before))


def _thresholds() -> str:
    rows = [("mean shift", "MEAN_SHIFT_RATIO", dg.MEAN_SHIFT_RATIO),
            ("variance growth", "VARIANCE_GROWTH_LIMIT", dg.VARIANCE_GROWTH_LIMIT),
            ("exploding / vanishing gradients", "GRADIENT_RATIO_LIMIT", dg.GRADIENT_RATIO_LIMIT),
            ("exploding / vanishing gradients", "GRADIENT_CHI_LIMIT", dg.GRADIENT_CHI_LIMIT)]
    return table(["diagnosis", "constant (signalprop.report.diagnosis)", "value"], rows)


def render(result: ReportResult) -> str:
    """The whole page for ``result`` (written by :func:`~signalprop.report.build_report`)."""
    m = result.before
    notes = "".join(f"<li>{escape(n)}</li>" for n in m.notes)
    parts = [
        _section("Diagnosis", _diagnoses(m.diagnoses), "diagnosis"),
        _section("Model", _summary(m), "model"),
        _section("Forward signal propagation",
                 _img(result, "spp.png") + f"<ul class=\"meta\">{notes}</ul>"
                 + "<details><summary>Per-block values</summary>" + _spp_table(m)
                 + "</details>", "forward"),
    ]
    if m.grad is not None:
        parts.append(_section(
            "Backward (gradient) signal propagation",
            "<p>Loss: &lt;output, fixed Gaussian probe&gt;, so the output gradient has unit "
            "variance.</p>" + _img(result, "grad_spp.png")
            + "<details><summary>Per-block values</summary>" + _grad_table(m) + "</details>",
            "backward"))
    parts.append(_section("Gradient confusion", _img(result, "confusion.png")
                          + _confusion_table(m) or "<p>Not measured.</p>", "confusion"))
    parts.append(_section("Jacobian spectrum", _jacobian_table(m) or "<p>Not measured.</p>",
                          "jacobian"))
    if m.conv_spectra is not None:
        parts.append(_section("Convolution spectra", _img(result, "conv_spectra.png")
                              + "<details><summary>Per-layer values</summary>"
                              + _conv_table(m) + "</details>", "conv-spectra"))
    parts.append(_section("Batch independence",
                          _independence_table(m) or "<p>Not checked.</p>", "independence"))
    if result.fix_summary:
        fixed = result.after
        head, _, detail = result.fix_summary.partition("\n")
        body = f"<pre><code>{escape(head)}</code></pre>"
        if detail:
            body += ("<details><summary>What the fix changed</summary>"
                     f"<pre><code>{escape(detail)}</code></pre></details>")
        if fixed is not None:
            body += (_img(result, "fix_spp.png") + _img(result, "fix_grad_spp.png")
                     + "<h3>Diagnosis after the fix</h3>" + _diagnoses(fixed.diagnoses)
                     + "<details><summary>Fixed model, per-block values</summary>"
                     + _spp_table(fixed) + "</details>")
        parts.append(_section("The fix, before and after", body, "fix"))
    parts.append(_section("Thresholds", _thresholds(), "thresholds"))
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>signalprop report: {escape(m.label)}</title>"
        # a data URI favicon: otherwise browsers request /favicon.ico
        "<link rel=\"icon\" href=\"data:,\">"
        f"<style>{CSS}</style></head><body><main>"
        f"<h1>Signal propagation report: {escape(m.label)}</h1>"
        f"<p class=\"meta\">signalprop {escape(__version__)}, {escape(stamp)}, built in "
        f"{result.seconds:.1f} s. All measurements at initialization.</p>"
        + "".join(parts) + "</main></body></html>\n"
    )
