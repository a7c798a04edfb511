"""Regenerate ``gaussian_reference.json``: high-precision Gaussian expectations by mpmath.

The activations are written here again, independently of signalprop's registry. In the
one-dimensional references derivatives come from ``mpmath.diff`` (numerical
differentiation at 30 digits); the two-dimensional ones (nested ``mpmath.quad``, tanh-sinh,
split at every kink, 15 digits) use derivatives written out by hand below, because
``mpmath.diff`` inside a nested quadrature is too slow. Nothing is shared with the code
under test.

Run (about an hour on one core; the 2-D part dominates):
    PYTHONPATH=src python tests/theory/data/make_reference.py [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
from pathlib import Path

import mpmath as mp

LAM = mp.mpf("1.0507009873554804934193349852946")
ALP = mp.mpf("1.6732632423543772848170429916717")


def _acts() -> dict:
    z = mp.mpf(0)
    return {
        "relu": (lambda x: x if x > 0 else z, [0]),
        "leaky_relu:negative_slope=0.2": (lambda x: x if x > 0 else mp.mpf("0.2") * x, [0]),
        "abs": (lambda x: abs(x), [0]),
        "identity": (lambda x: x, []),
        "gelu": (lambda x: x * mp.ncdf(x), []),
        "silu": (lambda x: x / (1 + mp.exp(-x)), []),
        "tanh": (mp.tanh, []),
        "erf": (mp.erf, []),
        "sigmoid": (lambda x: 1 / (1 + mp.exp(-x)), []),
        "elu": (lambda x: x if x > 0 else mp.expm1(x), [0]),
        "elu:alpha=0.5": (lambda x: x if x > 0 else mp.mpf("0.5") * mp.expm1(x), [0]),
        "selu": (lambda x: LAM * (x if x > 0 else ALP * mp.expm1(x)), [0]),
        "celu:alpha=2.0": (lambda x: x if x > 0 else 2 * mp.expm1(x / 2), [0]),
        "softplus": (lambda x: mp.log1p(mp.exp(x)), []),
        "softplus:beta=3.0": (lambda x: mp.log1p(mp.exp(3 * x)) / 3, []),
        "mish": (lambda x: x * mp.tanh(mp.log1p(mp.exp(x))), []),
        "relu6": (lambda x: min(max(x, z), mp.mpf(6)), [0, 6]),
    }


Q_1D = ["1e-4", "1e-2", "0.3", "1", "3", "10", "100"]
# (q, c) pairs for the two-dimensional expectations; |c| = 1 is checked through 1-D ones.
QC_2D = [("0.5", "-0.6"), ("2", "0.9"), ("10", "0.99")]
# Parameterised variants share the 2-D code path with their defaults: 1-D references only.
SKIP_2D = ("elu:alpha=0.5", "celu:alpha=2.0", "softplus:beta=3.0")


def _sig(x):
    return 1 / (1 + mp.exp(-x))


def _mish_d(x):
    sp = mp.log1p(mp.exp(x))
    return mp.tanh(sp) + x * mp.sech(sp) ** 2 * _sig(x)


# Hand-written derivatives for the 2-D references (checked against mpmath.diff in
# tests/theory/test_activations.py through the registry's own derivatives).
_D = {
    "gelu": lambda x: mp.ncdf(x) + x * mp.npdf(x),
    "silu": lambda x: _sig(x) * (1 + x * (1 - _sig(x))),
    "tanh": lambda x: 1 - mp.tanh(x) ** 2,
    "sigmoid": lambda x: _sig(x) * (1 - _sig(x)),
    "elu": lambda x: mp.mpf(1) if x > 0 else mp.exp(x),
    "elu:alpha=0.5": lambda x: mp.mpf(1) if x > 0 else mp.exp(x) / 2,
    "selu": lambda x: LAM if x > 0 else LAM * ALP * mp.exp(x),
    "celu:alpha=2.0": lambda x: mp.mpf(1) if x > 0 else mp.exp(x / 2),
    "softplus": _sig,
    "softplus:beta=3.0": lambda x: _sig(3 * x),
    "mish": _mish_d,
    "relu6": lambda x: mp.mpf(1) if 0 < x < 6 else mp.mpf(0),
}


def _deriv(f, kinks):
    # One-sided differences pointing away from the nearest kink: quadrature nodes crowd
    # towards the kinks (interval ends), where a central difference would straddle one.
    def d(x):
        if not kinks:
            return mp.diff(f, x)
        k = min(kinks, key=lambda k: abs(x - k))
        return mp.diff(f, x, direction=1 if x >= k else -1)

    return d


def _pts(kinks, s, shift=0):
    return sorted({-mp.inf, mp.inf, mp.mpf(0), *[(mp.mpf(k) - shift) / s for k in kinks]})


def _e1(f, kinks, q):
    s = mp.sqrt(q)
    return mp.quad(lambda t: f(s * t) * mp.npdf(t), _pts(kinks, s))


def _e2(f, g, kinks, q, c):
    s = mp.sqrt(q)
    sig = s * mp.sqrt(1 - c * c)

    def inner(z1):
        m = s * c * z1
        return mp.quad(lambda t: g(m + sig * t) * mp.npdf(t), _pts(kinks, sig, m))

    outer = _pts(kinks, s) + [mp.mpf(k) / (s * c) for k in kinks]
    return mp.quad(lambda t: f(s * t) * inner(t) * mp.npdf(t), sorted(set(outer)))


def _one_d(name: str) -> dict:
    mp.mp.dps = 30
    f, kinks = _acts()[name]
    d = _deriv(f, kinks)
    out = {}
    for qs in Q_1D:
        q = mp.mpf(qs)
        s = mp.sqrt(q)
        out[qs] = {
            "phi": float(_e1(f, kinks, q)),
            "phi2": float(_e1(lambda x: f(x) ** 2, kinks, q)),
            "dphi2": float(_e1(lambda x: d(x) ** 2, kinks, q)),
            # d/dq E[phi^2] = E[phi(u)^2 (u^2 - q)] / (2 q^2), no derivative needed.
            "phi2_dq": float(mp.quad(lambda t, s=s: f(s * t) ** 2 * (t * t - 1) * mp.npdf(t),
                                     _pts(kinks, s)) / (2 * q)),
            "phi_phi_m1": float(_e1(lambda x: f(x) * f(-x), kinks + [-k for k in kinks], q)),
            "dphi_dphi_m1": float(_e1(lambda x: d(x) * d(-x), kinks + [-k for k in kinks], q)),
        }
    return {"name": name, "one_d": out}


def _two_d(job: tuple[str, str, str, str]) -> dict:
    name, which, qs, cs = job
    mp.mp.dps = 15
    f, kinks = _acts()[name]
    h = f if which == "phi_phi" else _D[name]
    val = _e2(h, h, kinks, mp.mpf(qs), mp.mpf(cs))
    return {"name": name, "which": which, "q": qs, "c": cs, "value": float(val)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--out", default=str(Path(__file__).with_name("gaussian_reference.json")))
    ap.add_argument("--cases", default="0.5:-0.6,2:0.9,10:0.99",
                    help="q:c pairs of the 2-D references")
    args = ap.parse_args()
    out = Path(args.out)
    # Resumable: finished entries in an existing file are kept.
    data = json.loads(out.read_text()) if out.exists() else {"one_d": {}, "two_d": []}
    data["generator"] = f"tests/theory/data/make_reference.py (mpmath {mp.__version__})"
    names = [n for n in _acts() if n not in data["one_d"]]
    done = {(r["name"], r["which"], r["q"], r["c"]) for r in data["two_d"]}
    cases = [tuple(x.split(":")) for x in args.cases.split(",")]
    numeric = [n for n in _acts() if n.split(":")[0] not in
               ("relu", "leaky_relu", "abs", "identity", "erf") and n not in SKIP_2D]
    jobs2 = [(n, w, q, c) for n in numeric for w in ("phi_phi", "dphi_dphi") for q, c in cases
             if (n, w, q, c) not in done]

    def save() -> None:
        data["two_d"].sort(key=lambda r: (r["name"], r["which"], float(r["q"]), float(r["c"])))
        out.write_text(json.dumps(data, indent=1) + "\n")

    with multiprocessing.Pool(args.jobs) as pool:
        for r in pool.imap_unordered(_one_d, names):
            data["one_d"][r["name"]] = r["one_d"]
            save()
        for i, r in enumerate(pool.imap_unordered(_two_d, jobs2)):
            data["two_d"].append(r)
            save()
            print(f"{i + 1}/{len(jobs2)} {r}", flush=True)


if __name__ == "__main__":
    main()
