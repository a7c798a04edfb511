"""Sweep specifications: a base config, a grid over any config fields, and seeds.

A spec file (YAML, or JSON) looks like::

    name: lr-by-depth                 # optional (default: the file name)
    out: runs/lr-by-depth             # optional (default: next to the spec, named after it)
    base:                             # any TrainConfig keys
      model: resnetv2_50
      model_args: {name_or_depths: [1, 1], stem: cifar, norm: nf, num_classes: 10}
      dataset: gaussian
      dataset_args: {input_shape: [3, 8, 8]}
      steps: 200
      device: auto                    # optional: a GPU where there is one (default cpu)
    grid:                             # every combination of these values
      lr: [0.1, 0.03, 0.01]
      model_args.width: [0.125, 0.25]
    seeds: [0, 1, 2]                  # or a count: 3 means 0, 1, 2

The sweep is the Cartesian product grid x seeds; each run is identified by the hash of
its full config (``TrainConfig.run_key``), so reordering the grid changes nothing.
"""

from __future__ import annotations

import difflib
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from signalprop.train.config import PLACEMENT_FIELDS, TrainConfig, check_key, read_mapping

SPEC_KEYS = ("name", "out", "base", "grid", "seeds")


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: its id, a readable label and its config.

    Examples:
        >>> spec = SweepSpec.from_dict({"base": {"model": "torch.nn:Linear",
        ...     "dataset": "iris", "steps": 10}, "grid": {"lr": [0.1, 0.01]}})
        >>> run = spec.runs()[1]
        >>> run.label, run.config.lr, run.run_id == run.config.run_key()
        ('lr=0.01 seed=0', 0.01, True)
    """

    run_id: str
    label: str
    config: TrainConfig


@dataclass
class SweepSpec:
    """A parsed, validated sweep: ``runs()`` lists every run in grid order.

    Examples:
        >>> spec = SweepSpec.from_dict({"base": {"model": "torch.nn:Linear",
        ...     "dataset": "iris", "steps": 10}, "grid": {"lr": [0.1, 0.01]}, "seeds": 2},
        ...     default_name="lr", default_out=Path("sweeps/lr"))
        >>> spec.name, spec.out, spec.seeds, len(spec.runs())
        ('lr', PosixPath('sweeps/lr'), [0, 1], 4)
    """

    name: str
    out: Path
    base: dict[str, Any]
    grid: dict[str, list[Any]]
    seeds: list[int]

    @classmethod
    def from_dict(cls, data: dict[str, Any], default_name: str = "sweep",
                  default_out: Path | None = None) -> SweepSpec:
        """Validate a spec mapping. Unknown keys, unknown config fields, empty or
        non-list grid values, no model or no dataset, bad seeds and invalid configs raise
        ``ValueError`` naming them."""
        unknown = [k for k in data if k not in SPEC_KEYS]
        if unknown:
            close = difflib.get_close_matches(str(unknown[0]), SPEC_KEYS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ValueError(f"unknown sweep key {unknown[0]!r}{hint}; valid keys: "
                             f"{', '.join(SPEC_KEYS)}")
        base = data.get("base") or {}
        grid = data.get("grid") or {}
        for key, value in (("base", base), ("grid", grid)):
            if not isinstance(value, dict):
                raise ValueError(f"sweep {key!r} must be a mapping of config keys to "
                                 f"{'values' if key == 'base' else 'lists of values'}, "
                                 f"got {value!r}")
        for key in base:
            check_key(key)
        for key, values in grid.items():
            if key == "seed":
                raise ValueError("grid key 'seed': list the seeds under 'seeds' instead")
            if key in PLACEMENT_FIELDS:
                raise ValueError(f"grid key {key!r}: it says where runs execute, not what "
                                 f"they compute (runs differing only in it are one run); "
                                 f"set it under 'base'")
            check_key(key)
            if not isinstance(values, list) or not values:
                raise ValueError(f"grid key {key!r} must map to a non-empty list of values, "
                                 f"got {values!r}")
        for key in ("model", "dataset"):
            if key not in base and key not in grid:
                raise ValueError(f"the sweep names no {key}: set base.{key} (or list "
                                 f"several under grid.{key})")
        seeds = parse_seeds(data.get("seeds", [0]))
        name = str(data.get("name") or default_name)
        out = Path(data["out"]) if data.get("out") else (default_out or Path("runs") / name)
        spec = cls(name, out, dict(base), {k: list(v) for k, v in grid.items()}, list(seeds))
        spec.runs()  # validates every config before anything runs
        return spec

    @classmethod
    def from_file(cls, path: str | Path) -> SweepSpec:
        """Read a YAML/JSON spec; ``out`` defaults to ``<spec folder>/<spec name>``,
        and a relative ``out`` is taken relative to the spec's folder."""
        path = Path(path)
        data = read_mapping(path)
        spec = cls.from_dict(data, default_name=path.stem, default_out=path.parent / path.stem)
        if not spec.out.is_absolute() and data.get("out"):
            spec.out = path.parent / spec.out
        return spec

    def runs(self) -> list[RunSpec]:
        """Every (grid point, seed) as a :class:`RunSpec`; duplicates are rejected."""
        keys = list(self.grid)
        out, seen = [], set()
        for values in itertools.product(*(self.grid[k] for k in keys)):
            point = dict(zip(keys, values))
            for seed in self.seeds:
                changes = {**self.base, **point, "seed": seed}
                if "epochs" not in changes and "steps" not in changes:
                    changes["epochs"] = 1
                if "steps" in point:
                    changes.pop("epochs", None)
                if "epochs" in point:
                    changes.pop("steps", None)
                try:
                    cfg = TrainConfig.from_dict(changes)
                except (ValueError, TypeError) as e:
                    where = ", ".join(f"{k}={v!r}" for k, v in point.items()) or "base"
                    raise ValueError(f"invalid run ({where}, seed={seed}): {e}") from None
                label = " ".join([*(f"{k}={_short(v)}" for k, v in point.items()),
                                  f"seed={seed}"])
                run_id = cfg.run_key()
                if run_id in seen:
                    raise ValueError(f"the grid produces the same run twice ({label})")
                seen.add(run_id)
                out.append(RunSpec(run_id, label, cfg))
        return out


def parse_seeds(value: Any) -> list[int]:
    """A sweep's ``seeds``: a count ``n`` (seeds 0 .. n-1) or a list of distinct seeds.

    Raises:
        ValueError: anything else, naming what is allowed and what was given.

    Examples:
        >>> parse_seeds(3), parse_seeds([7, 1])
        ([0, 1, 2], [7, 1])
        >>> parse_seeds(-2)
        Traceback (most recent call last):
        ...
        ValueError: seeds must be a count >= 1 (3 means seeds 0, 1, 2) or a non-empty list of ...
    """
    allowed = ("seeds must be a count >= 1 (3 means seeds 0, 1, 2) or a non-empty list of "
               "distinct integers >= 0")
    if isinstance(value, bool):
        raise ValueError(f"{allowed}, got {value!r}")
    if isinstance(value, int):
        if value < 1:
            raise ValueError(f"{allowed}, got the count {value!r}")
        return list(range(value))
    if not isinstance(value, list) or not value:
        raise ValueError(f"{allowed}, got {value!r}")
    bad = [s for s in value if isinstance(s, bool) or not isinstance(s, int) or s < 0]
    if bad:
        raise ValueError(f"{allowed}, got {value!r} (not allowed: {bad[0]!r})")
    repeated = sorted({s for s in value if value.count(s) > 1})
    if repeated:
        raise ValueError(f"{allowed}, got {value!r} (repeated: {repeated[0]})")
    return list(value)


def _short(value: Any) -> str:
    return str(value).replace(" ", "")
