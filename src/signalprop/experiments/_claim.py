"""A reproducible claim: what a paper says, the test fixed in advance, and its result.

A :class:`Claim` holds the statement, the pre-registered criterion (in words) and four
parts: its ``sizes`` per mode (data), ``measure`` (runs the experiment), ``decide`` (the
criterion in code, a pure function of the measurements, returning a :class:`Verdict`)
and ``figure``. ``Claim.result(ctx)`` runs them into a :class:`ClaimResult`.
:class:`RunContext` carries the mode (how big the experiment is) and how to parallelize
training sweeps.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from signalprop.results import Result
from signalprop.results._base import decode, encode

MODES = ("smoke", "quick", "full")


def as_stored(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` as ``result.json`` gives it back: through strict JSON and back (keys become
    strings, tuples lists; NaN and Inf survive).

    Examples:
        >>> as_stored({1: (2.0, float("inf"))})
        {'1': [2.0, inf]}
    """
    return decode(dict[str, Any], json.loads(json.dumps(encode(data), allow_nan=False)))


@dataclass(frozen=True)
class Verdict:
    """What a claim's ``decide`` concludes from its measurements.

    Attributes:
        reproduced: whether the pre-registered criterion holds.
        effect: the measured effect in words, with its numbers (one line).
        details: the intermediate quantities the criterion judged (stored in
            ``result.json`` beside the measurements).

    Examples:
        >>> Verdict(False, "d = 0.1 +- 0.2").reproduced
        False
    """

    reproduced: bool
    effect: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Superseded:
    """An earlier design of a claim, with the verdict it got and why the design changed.

    A design flaw found after a run is fixed and rerun, never hidden: the old verdict is
    kept in the claim's ``history`` and listed under "History" on the results page.

    Attributes:
        design: which design, and when it was measured ("digits, lr 0.1 for all; 2026-11-30").
        verdict: "REPRODUCED" or "NOT REPRODUCED", as measured.
        effect: the measured effect it printed.
        criterion: its criterion.
        why_changed: what was wrong with the design (not with the result).

    Examples:
        >>> old = Superseded("v1 (2099-01-01)", "NOT REPRODUCED", "d = 0.1", "d > 1",
        ...                  "the task was saturated")
        >>> old.verdict
        'NOT REPRODUCED'
    """

    design: str
    verdict: str
    effect: str
    criterion: str
    why_changed: str

    def __post_init__(self) -> None:
        if self.verdict not in ("REPRODUCED", "NOT REPRODUCED"):
            raise ValueError(f"verdict must be 'REPRODUCED' or 'NOT REPRODUCED', "
                             f"got {self.verdict!r}")
        for attr in ("design", "effect", "criterion", "why_changed"):
            if not str(getattr(self, attr)).strip():
                raise ValueError(f"Superseded.{attr} must not be empty")


@dataclass(frozen=True)
class Claim:
    """A paper's headline claim and the test that decides whether it reproduces.

    A claim is four pieces, each testable alone:

    * ``sizes``: the experiment's size per mode, as data (``sizes[mode]`` is a dict);
    * ``measure(ctx, size) -> measurements``: runs the experiment and returns every
      number it measured (JSON-able; stored in ``result.json``);
    * ``decide(measurements) -> Verdict``: the pre-registered criterion, a pure function
      of the measurements (so it can be re-applied to a stored ``result.json`` and tested
      on hand-made measurements: a null that must fail, the claimed effect that must pass);
    * ``figure(measurements, path)``: draws what the criterion judges, from the
      measurements only.

    Attributes:
        name: kebab-case name used on the command line ("nf-spp").
        paper: the source ("Brock, De & Smith (ICLR 2021)").
        statement: the claim, one sentence.
        criterion: the pre-registered test in words, fixed in code before any run and
            never tuned after seeing a result.
        sizes: mode ("smoke", "quick", "full") -> the experiment's size parameters. A
            size may name a ``device`` (a ``TrainConfig`` device, e.g. ``"auto"`` for
            ``full``): its training sweeps run there (see :class:`RunContext`); measure
            does not see that key.
        measure: ``measure(ctx, size) -> dict``.
        decide: ``decide(measurements) -> Verdict``.
        figure: ``figure(measurements, path) -> None``.
        quick_minutes: expected ``quick`` wall time on 2 quiet cores.
        history: earlier designs of this claim and their verdicts (:class:`Superseded`),
            oldest first.

    Examples:
        >>> def measure(ctx, size):
        ...     return {"ratio": 2.0 * size["n"]}
        >>> def decide(m):
        ...     return Verdict(m["ratio"] > 1, f"ratio {m['ratio']:g}", {"margin": m["ratio"] - 1})
        >>> def figure(m, path):
        ...     path.write_bytes(b"")  # a real claim draws what decide() judges
        >>> claim = Claim("toy-ratio", "Nobody (2099)", "The ratio exceeds one.", "ratio > 1",
        ...               quick_minutes=0.1, sizes={"smoke": {"n": 1}, "quick": {"n": 2},
        ...                                         "full": {"n": 4}},
        ...               measure=measure, decide=decide, figure=figure)
        >>> claim.result(RunContext("smoke", Path("."), log=print)).verdict_line()
        'toy-ratio: REPRODUCED -- ratio 2 [criterion: ratio > 1]'
    """

    name: str
    paper: str
    statement: str
    criterion: str
    quick_minutes: float
    sizes: dict[str, dict[str, Any]] = field(default_factory=dict)
    measure: Callable[[RunContext, dict[str, Any]], dict[str, Any]] | None = None
    decide: Callable[[dict[str, Any]], Verdict] | None = None
    figure: Callable[[dict[str, Any], Path], None] | None = None
    history: tuple[Superseded, ...] = ()

    def __post_init__(self) -> None:
        if not self.name or self.name != self.name.lower() or " " in self.name or "_" in self.name:
            raise ValueError(f"claim name must be kebab-case such as 'nf-spp', got {self.name!r}")
        for attr in ("paper", "statement", "criterion"):
            if not str(getattr(self, attr)).strip():
                raise ValueError(f"claim {self.name!r}: {attr} must not be empty")
        for attr in ("measure", "decide", "figure"):
            if not callable(getattr(self, attr)):
                raise ValueError(f"claim {self.name!r}: {attr} must be callable, got "
                                 f"{getattr(self, attr)!r}")
        if set(self.sizes) != set(MODES):
            raise ValueError(f"claim {self.name!r}: sizes must have one entry per mode "
                             f"{MODES}, got {sorted(self.sizes)}")
        if not (self.quick_minutes > 0 and math.isfinite(self.quick_minutes)):
            raise ValueError(f"claim {self.name!r}: quick_minutes must be > 0, "
                             f"got {self.quick_minutes!r}")
        if not all(isinstance(h, Superseded) for h in self.history):
            raise ValueError(f"claim {self.name!r}: history must hold Superseded entries")

    def result(self, ctx: RunContext) -> ClaimResult:
        """Measure at ``ctx.mode``'s size, decide, draw ``ctx.out / "figure.png"``.

        Raises:
            RuntimeError: ``decide`` returned something else than a :class:`Verdict`.
        """
        assert self.measure and self.decide and self.figure  # checked in __post_init__
        size = dict(self.sizes[ctx.mode])
        device = size.pop("device", None)
        if device is not None:
            ctx = replace(ctx, device=device)
        measurements = self.measure(ctx, size)
        # decide on what result.json will hold, so a stored result re-decides identically
        measurements = as_stored(measurements)
        verdict = self.decide(measurements)
        if not isinstance(verdict, Verdict):
            raise RuntimeError(f"claim {self.name!r}: decide returned "
                               f"{type(verdict).__name__}, not a Verdict")
        self.figure(measurements, ctx.out / "figure.png")
        return ClaimResult(claim=self.name, mode=ctx.mode, reproduced=verdict.reproduced,
                           effect=verdict.effect, criterion=self.criterion,
                           measurements={**measurements, "decision": verdict.details},
                           figure="figure.png")


@dataclass
class RunContext:
    """How one claim runs: its mode, its output folder, parallelism, logging.

    Attributes:
        mode: "smoke" (seconds; checks the pipeline), "quick" (minutes; decides) or
            "full" (closer to the paper).
        out: this claim's output folder (created by ``run_claim``).
        workers: local processes for training sweeps.
        ray_address: run training sweeps as Ray tasks on this cluster instead.
        progress: show progress bars.
        log: where one-line messages go.
        device: where training sweeps run, for runs whose config names no device
            (None: the TrainConfig default, cpu); set from the size's ``device``.

    Examples:
        >>> ctx = RunContext("smoke", Path("out/nf-spp"), progress=False)
        >>> ctx.mode, ctx.out.name, ctx.workers
        ('smoke', 'nf-spp', 1)
    """

    mode: str
    out: Path
    workers: int = 1
    ray_address: str | None = None
    progress: bool = True
    log: Callable[[str], None] = print
    device: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode={self.mode!r} is not allowed; valid: {', '.join(MODES)}")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise ValueError(f"workers must be an integer >= 1, got {self.workers!r}")
        self.out = Path(self.out)

    def sweep(self, name: str, base: dict[str, Any], grid: dict[str, list[Any]],
              seeds: list[int]) -> list[dict[str, Any]]:
        """Run a grid of training runs with :func:`signalprop.sweep.run_sweep`.

        Runs go to ``out/sweeps/<name>`` (resumable: finished runs are skipped), in this
        process or on ``workers`` processes / Ray, on the context's ``device`` unless
        ``base`` names one.

        Args:
            name: the sweep's folder name.
            base: TrainConfig keys shared by every run.
            grid: config keys (dotted for ``model_args.x``) -> list of values.
            seeds: seeds run at every grid point.

        Returns:
            One dict per run, in grid order: ``{"label", "config" (TrainConfig dict),
            "result" (status, step, total_steps, metrics, seconds, error), "history"
            (path of metrics.jsonl)}``. ``result["status"]`` is "completed" or "diverged".

        Raises:
            RuntimeError: a run failed with an exception (its error is in the message).
        """
        from signalprop.sweep import SweepDB, SweepSpec, run_sweep

        out = (self.out / "sweeps" / name).resolve()
        if self.device is not None and "device" not in base:
            base = {**base, "device": self.device}
        spec = SweepSpec.from_dict({"name": name, "out": str(out), "base": base,
                                    "grid": grid, "seeds": list(seeds)})
        run_sweep(spec, workers=self.workers, ray_address=self.ray_address,
                  progress=self.progress, log=self.log)
        with SweepDB(out / "sweep.sqlite", create=False) as db:
            rows = {row["run_id"]: row for row in db.rows()}
        results = []
        for run in spec.runs():
            row = rows[run.run_id]
            if row["status"] not in ("completed", "diverged"):
                raise RuntimeError(f"sweep {name}: run {run.label} ended {row['status']}: "
                                   f"{row['error'] or 'no error recorded'} (see {out})")
            metrics = decode(dict[str, Any], json.loads(row["metrics"] or "{}"))
            results.append({
                "label": run.label,
                "config": run.config.to_dict(),
                "result": {"status": row["status"], "step": row["step"],
                           "total_steps": row["total_steps"], "metrics": metrics,
                           "seconds": row["seconds"], "error": row["error"]},
                "history": row["history"],
            })
        return results


@dataclass
class ClaimResult(Result):
    """The outcome of one claim run: the verdict, the effect in words, every number.

    ``save(path)`` writes it atomically (a temporary file, renamed); ``load(path)`` reads
    it back, and a missing or unknown key raises ``ValueError`` naming the file.

    Attributes:
        claim: the claim's name.
        mode: the mode it ran in.
        reproduced: the pre-registered criterion's verdict.
        effect: the measured effect in words with numbers.
        criterion: the criterion, copied from the claim.
        measurements: every number measured (JSON-able; NaN/Inf allowed).
        figure: file name of the figure inside the claim's output folder.
        seconds: wall time of the run.

    Examples:
        >>> r = ClaimResult("nf-spp", "smoke", True, "d = 2", "d > 1", {"d": 2.0})
        >>> r.save("result.json")
        PosixPath('result.json')
        >>> ClaimResult.load("result.json").measurements
        {'d': 2.0}
    """

    claim: str
    mode: str
    reproduced: bool
    effect: str
    criterion: str
    measurements: dict[str, Any] = field(default_factory=dict)
    figure: str = "figure.png"
    seconds: float = 0.0

    def verdict_line(self) -> str:
        """``"<claim>: REPRODUCED -- <effect> [criterion: <criterion>]"``.

        Examples:
            >>> ClaimResult("x", "smoke", False, "d = 0.1", "d > 1").verdict_line()
            'x: NOT REPRODUCED -- d = 0.1 [criterion: d > 1]'
        """
        verdict = "REPRODUCED" if self.reproduced else "NOT REPRODUCED"
        return f"{self.claim}: {verdict} -- {self.effect} [criterion: {self.criterion}]"
