"""``signalprop theory``: mean-field predictions for an activation, printed as a table."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import numpy as np

from signalprop.cli._common import CLIError, parse_list, prepare_out

EXAMPLES = """\
examples:
  signalprop theory tanh                          # at the critical point (sigma_b^2 = 0)
  signalprop theory tanh --sigma-w2 1.5 --sigma-b2 0.05 --depth 20
  signalprop theory leaky_relu --param negative_slope=0.2
  signalprop theory selu --sigma-w2 1 --phase-diagram selu_phase.png
"""


def _params(items: list[str]) -> dict[str, float]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not key.strip():
            raise CLIError(f"--param expects NAME=NUMBER, e.g. negative_slope=0.2; got {item!r}")
    return out


def _range(text: str, name: str) -> tuple[float, float]:
    parts = parse_list(text)
    try:
        lo, hi = (float(p) for p in parts)
    except ValueError:
        raise CLIError(f"{name} expects LOW,HIGH such as 0.5,4; got {text!r}") from None
    if not lo < hi:
        raise CLIError(f"{name} expects LOW < HIGH, got {text!r}")
    return lo, hi


def register(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "theory",
        help="predict signal propagation for an activation (mean-field theory)",
        description="Fixed points, susceptibilities, depth scales and the critical "
        "initialization of a deep random network with this activation.",
        epilog=EXAMPLES,
    )
    p.add_argument("activation", metavar="ACT",
                   help="activation name (see signalprop.theory.activation_names())")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="activation parameter, e.g. negative_slope=0.2 (repeatable)")
    p.add_argument("--sigma-w2", type=float, default=None,
                   help="weight variance times fan-in (default: the critical value)")
    p.add_argument("--sigma-b2", type=float, default=0.0, help="bias variance")
    p.add_argument("--q0", type=float, default=1.0, help="input pre-activation variance")
    p.add_argument("--depth", type=int, default=None, metavar="L",
                   help="also print the per-layer q_l, c_l and gradient scale for L layers")
    p.add_argument("--c0", type=float, default=0.5,
                   help="input correlation for the --depth table")
    p.add_argument("--phase-diagram", default=None, metavar="PATH",
                   help="write a phase diagram (xi_c over sigma_w^2 x sigma_b^2) to PATH")
    p.add_argument("--sw-range", default="0.5,4", help="sigma_w^2 range of the phase diagram")
    p.add_argument("--sb-range", default="0,0.5", help="sigma_b^2 range of the phase diagram")
    p.add_argument("--grid", type=int, default=100, help="phase-diagram points per axis")
    p.set_defaults(func=run)
    return p


def _fmt(x: float) -> str:
    return "inf" if math.isinf(x) else f"{x:.6g}"


def run(args: argparse.Namespace) -> int:
    from signalprop import theory

    try:
        act = theory.get_activation(args.activation, **_params(args.param))
        gam = theory.gamma(act)
        cls = theory.universality_class(act)
        try:
            crit: Any = theory.critical_point(act, args.sigma_b2, q0=args.q0)
        except ValueError as e:
            if args.sigma_w2 is None:
                raise
            crit = e
        sw = crit.sigma_w2 if args.sigma_w2 is None else args.sigma_w2
        mf = theory.mean_field(act, sw, args.sigma_b2, q0=args.q0)
    except ValueError as e:
        raise CLIError(str(e)) from None
    rows = [
        ("activation", act.name + "".join(f" {k}={v:g}" for k, v in act.params.items())),
        ("sigma_w^2", _fmt(mf.sigma_w2)), ("sigma_b^2", _fmt(mf.sigma_b2)),
        ("phase", mf.phase), ("q*", _fmt(mf.q_star)), ("c*", _fmt(mf.c_star)),
        ("chi_1", _fmt(mf.chi_1)), ("chi_par", _fmt(mf.chi_par)), ("chi_c", _fmt(mf.chi_c)),
        ("xi_q", _fmt(mf.xi_q)), ("xi_c", _fmt(mf.xi_c)), ("xi_grad", _fmt(mf.xi_grad)),
        ("critical sigma_w^2",
         _fmt(crit.sigma_w2) if not isinstance(crit, Exception) else f"none ({crit})"),
        ("gamma", _fmt(gam)), ("class", cls),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    if args.depth is not None:
        try:
            prop = theory.propagate(act, args.depth, sw, args.sigma_b2, q0=args.q0, c0=args.c0)
        except ValueError as e:
            raise CLIError(str(e)) from None
        print(f"\n{'layer':>5}  {'q_l':>12}  {'c_l':>10}  {'grad scale':>12}")
        for layer in range(args.depth + 1):
            c = prop.c[layer] if prop.c is not None else float("nan")
            q, g = prop.q[layer], prop.grad_scale[layer]
            print(f"{layer:>5}  {q:>12.6g}  {c:>10.6f}  {g:>12.6g}")
    if args.phase_diagram:
        if args.grid < 2:
            raise CLIError(f"--grid must be >= 2, got {args.grid}")
        sw_lo, sw_hi = _range(args.sw_range, "--sw-range")
        sb_lo, sb_hi = _range(args.sb_range, "--sb-range")
        from signalprop.plot.phase import phase_diagram as plot_phase

        try:
            pd = theory.phase_diagram(act, np.linspace(sw_lo, sw_hi, args.grid),
                                      np.linspace(sb_lo, sb_hi, args.grid), q0=args.q0)
        except ValueError as e:
            raise CLIError(str(e)) from None
        prepare_out(Path(args.phase_diagram).parent, "--phase-diagram")
        plot_phase(pd, args.phase_diagram)
        print(f"\nphase diagram written to {args.phase_diagram}")
    return 0
