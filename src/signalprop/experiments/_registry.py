"""The registry of claims, and running one claim into its output folder.

Claim modules (``signalprop.experiments.claims``) register themselves on import; the
registry imports them the first time a claim is looked up.
"""

from __future__ import annotations

import difflib
import importlib
import time
from collections.abc import Callable
from pathlib import Path

from signalprop.experiments._claim import MODES, Claim, ClaimResult, RunContext

# The order (what --list and --all follow); claims not listed here come after.
ORDER = ("nf-spp", "skipinit-depth", "bn-batchsize", "nf-vs-bn", "snn-depth",
         "confusion-width-depth", "sgd-noise", "criticality-depth", "adam-nag",
         "orth-conv-existence", "orth-conv-stability", "orth-conv-tradeoff")
RESULT = "result.json"

_REGISTRY: dict[str, Claim] = {}


def register(claim: Claim) -> Claim:
    """Add ``claim`` to the registry and return it (names must be unique).

    Raises:
        ValueError: not a Claim, or a claim of that name is already registered.
    """
    if not isinstance(claim, Claim):
        raise ValueError(f"register expects a Claim, got {type(claim).__name__}")
    if claim.name in _REGISTRY:
        raise ValueError(f"claim {claim.name!r} is already registered")
    _REGISTRY[claim.name] = claim
    return claim


def _load_claims() -> None:
    importlib.import_module("signalprop.experiments.claims")


def list_claims() -> list[Claim]:
    """Every registered claim, in the issue's order.

    Examples:
        >>> [c.name for c in list_claims()][0]
        'nf-spp'
    """
    _load_claims()
    rank = {name: i for i, name in enumerate(ORDER)}
    names = list(_REGISTRY)
    return [_REGISTRY[n] for n in sorted(names, key=lambda n: (rank.get(n, len(ORDER)),
                                                                 names.index(n)))]


def get_claim(name: str) -> Claim:
    """The claim called ``name``.

    Raises:
        ValueError: unknown name (the message lists the valid ones).

    Examples:
        >>> get_claim("nf-spp").paper
        'Brock, De & Smith (ICLR 2021)'
    """
    _load_claims()
    if name not in _REGISTRY:
        valid = [c.name for c in list_claims()]
        close = difflib.get_close_matches(str(name), valid, n=2)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ValueError(f"unknown claim {name!r}{hint}; valid: {', '.join(valid)}")
    return _REGISTRY[name]


def run_claim(name: str, mode: str = "quick", out: str | Path = "out/reproduce",
              workers: int = 1, ray_address: str | None = None, progress: bool = True,
              log: Callable[[str], None] = print) -> ClaimResult:
    """Run one claim: measure, decide with its fixed criterion, write files, log the verdict.

    Writes ``out/<name>/result.json`` (every measurement and the verdict) and the figure
    the claim names; logs the verdict line.

    Args:
        name: a registered claim.
        mode: "smoke", "quick" or "full".
        out: parent folder; the claim writes into ``out/<name>``.
        workers: local processes for training sweeps.
        ray_address: Ray cluster for training sweeps.
        progress: show progress bars.
        log: where one-line messages (and the verdict line) go.

    Returns:
        The :class:`ClaimResult` (``seconds`` is the wall time).

    Raises:
        ValueError: unknown claim or mode, bad workers.
        RuntimeError: the claim returned something else than a ClaimResult for itself, or
            did not write its figure.
    """
    claim = get_claim(name)
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is not allowed; valid: {', '.join(MODES)}")
    folder = Path(out) / claim.name
    folder.mkdir(parents=True, exist_ok=True)
    ctx = RunContext(mode, folder, workers=workers, ray_address=ray_address,
                     progress=progress, log=log)
    log(f"{claim.name} ({mode}): {claim.statement}")
    t0 = time.perf_counter()
    result = claim.result(ctx)
    seconds = time.perf_counter() - t0
    if not isinstance(result, ClaimResult):
        raise RuntimeError(f"claim {claim.name!r} returned {type(result).__name__}, "
                           "not a ClaimResult")
    if result.claim != claim.name or result.mode != mode:
        raise RuntimeError(f"claim {claim.name!r} ({mode}) returned a result for "
                           f"{result.claim!r} ({result.mode})")
    if result.criterion != claim.criterion:
        raise RuntimeError(f"claim {claim.name!r} returned a criterion that differs from "
                           "the registered one")
    if not (folder / result.figure).is_file():
        raise RuntimeError(f"claim {claim.name!r} did not write its figure "
                           f"{folder / result.figure}")
    result.seconds = round(seconds, 2)
    result.save(folder / RESULT)
    log(result.verdict_line())
    return result
