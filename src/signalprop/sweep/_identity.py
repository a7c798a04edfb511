"""Which sweep a database holds, so that two different specs never share one.

A sweep's identity is what every one of its runs shares: the config fields the grid does
not vary (model, data, optimizer, ...; not the seed, output cadences or device) and the names
of the grid keys. Labels such as ``lr=0.1 seed=0`` name a run only within one identity:
two specs with the same grid keys but another base would put different runs under the
same labels. Adding values to the grid or more seeds keeps the identity, so a sweep can
be extended in place.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from signalprop.sweep.spec import SweepSpec

META_KEY = "spec"


def identity(spec: SweepSpec) -> dict[str, Any]:
    """``{"fixed": {...}, "grid": [keys]}`` of ``spec`` (JSON-able, canonical).

    Examples:
        >>> spec = SweepSpec.from_dict({"base": {"model": "torch.nn:Linear", "dataset":
        ...     "iris", "steps": 5}, "grid": {"lr": [0.1, 0.01]}})
        >>> ident = identity(spec)
        >>> ident["grid"], ident["fixed"]["steps"], "lr" in ident["fixed"]
        (['lr'], 5, False)
    """
    fixed = spec.runs()[0].config.key_fields()  # not the device: a sweep may move machines
    fixed.pop("seed")
    for key in spec.grid:
        head, dot, sub = key.partition(".")
        if dot:
            fixed[head].pop(sub, None)
        else:
            fixed.pop(key, None)
        if head in ("epochs", "steps"):  # the grid sets the run length either way
            fixed.pop("epochs", None)
            fixed.pop("steps", None)
    return {"fixed": fixed, "grid": sorted(spec.grid)}


def _flat(d: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in d.items():
        if key in ("model_args", "dataset_args") and isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


def differences(old: dict[str, Any], new: dict[str, Any], limit: int = 3) -> list[str]:
    """What differs between two identities, in words ("steps 5 there, 10 here").

    Examples:
        >>> differences({"fixed": {"lr": 0.1}, "grid": ["seed"]},
        ...             {"fixed": {"lr": 0.2}, "grid": ["seed"]})
        ['lr 0.1 there, 0.2 here']
    """
    out = []
    if old["grid"] != new["grid"]:
        out.append(f"grid keys {', '.join(old['grid']) or 'none'} there, "
                   f"{', '.join(new['grid']) or 'none'} here")
    a, b = _flat(old["fixed"]), _flat(new["fixed"])

    def shown(d: dict[str, Any], key: str) -> str:
        return json.dumps(d[key]) if key in d else "unset"

    for key in [*a, *(k for k in b if k not in a)]:
        if key not in a or key not in b or a[key] != b[key]:
            out.append(f"{key} {shown(a, key)} there, {shown(b, key)} here")
    return out[:limit] + ([f"{len(out) - limit} more"] if len(out) > limit else [])


def check_same_sweep(stored: str | None, spec: SweepSpec, rows: list[dict[str, Any]],
                     out: Path) -> None:
    """Refuse to run ``spec`` into ``out`` when its database holds another sweep.

    ``stored`` is the identity saved in the database (None: a database written before
    identities were saved; then colliding labels are what is checked).

    Raises:
        ValueError: the identities differ (naming the first differences), or a label of
            ``spec`` already names a different run in the database.
    """
    advice = (f"choose another output folder (--out, or 'out:' in the spec), or move {out} "
              "aside to start over")
    if stored is not None:
        diff = differences(json.loads(stored)["identity"], identity(spec))
        if diff:
            raise ValueError(f"{out} holds another sweep ({'; '.join(diff)}): its rows would "
                             f"mix with this one's under the same labels; {advice}")
    taken = {row["label"]: row["run_id"] for row in rows}
    for run in spec.runs():
        if taken.get(run.label, run.run_id) != run.run_id:
            raise ValueError(f"{out} holds another run labelled {run.label!r} (a different "
                             f"config): the sweeps would mix under the same labels; {advice}")


def stored_form(spec: SweepSpec) -> str:
    """What the database keeps under ``META_KEY``: the spec's name and identity (JSON)."""
    return json.dumps({"name": spec.name, "identity": identity(spec)}, sort_keys=True)
