"""The registry of claims, and running one claim into its output folder.

The built-in claims are the modules listed in ``signalprop.experiments.claims.CLAIMS``;
the registry imports them, in that order, the first time a claim is looked up (a listed
module that is missing raises ``ImportError`` naming it). :func:`register` adds a claim
of one's own after them.
"""

from __future__ import annotations

import difflib
import importlib
import time
from collections.abc import Callable
from pathlib import Path

from signalprop.experiments._claim import MODES, Claim, ClaimResult, RunContext

RESULT = "result.json"
_PACKAGE = "signalprop.experiments.claims"

_REGISTRY: dict[str, Claim] = {}
_loaded = False


def _import_claim(path: str) -> Claim:
    """The ``CLAIM`` of the listed module ``path`` (relative to the claims package)."""
    name = f"{_PACKAGE}.{path}"
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name == name or name.startswith(f"{err.name}."):  # it, or its topic package
            raise ImportError(f"claim module {name} is listed in {_PACKAGE}.CLAIMS but "
                              "does not exist", name=name) from err
        raise
    claim = getattr(module, "CLAIM", None)
    if not isinstance(claim, Claim):
        raise ImportError(f"claim module {name} defines no CLAIM = Claim(...)", name=name)
    return claim


def _load_claims() -> None:
    """Register the built-in claims, in their listed order (once)."""
    global _loaded
    if _loaded:
        return
    from signalprop.experiments.claims import CLAIMS

    claims = [_import_claim(path) for path in CLAIMS]  # all or nothing
    names = [c.name for c in claims]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"{_PACKAGE}.CLAIMS: claim name(s) {twice} defined more than once")
    _REGISTRY.update({c.name: c for c in claims})
    _loaded = True


def register(claim: Claim) -> Claim:
    """Add a claim of one's own to the registry (after the built-in ones) and return it.

    Raises:
        ValueError: not a Claim, or a claim of that name is already registered.

    Examples:
        >>> import dataclasses
        >>> copy = register(dataclasses.replace(get_claim("nf-spp"), name="nf-spp-copy"))
        >>> get_claim("nf-spp-copy") is copy
        True
        >>> try:
        ...     register(copy)
        ... except ValueError as err:
        ...     print(err)
        claim 'nf-spp-copy' is already registered
        >>> del _REGISTRY["nf-spp-copy"]  # leave the registry as it was
    """
    if not isinstance(claim, Claim):
        raise ValueError(f"register expects a Claim, got {type(claim).__name__}")
    _load_claims()
    if claim.name in _REGISTRY:
        raise ValueError(f"claim {claim.name!r} is already registered")
    _REGISTRY[claim.name] = claim
    return claim


def list_claims() -> list[Claim]:
    """Every registered claim: the built-in ones in their listed order, then one's own.

    Examples:
        >>> [c.name for c in list_claims()][0]
        'nf-spp'
    """
    _load_claims()
    return list(_REGISTRY.values())


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
        RuntimeError: the claim's decide returned no Verdict, or its figure was not
            written.

    Examples:
        >>> from signalprop.experiments import Verdict
        >>> toy = register(Claim(
        ...     "toy-sum", "Nobody (2099)", "One plus one exceeds one.", "sum > 1",
        ...     quick_minutes=0.1, sizes={mode: {"n": 1} for mode in MODES},
        ...     measure=lambda ctx, size: {"sum": size["n"] + 1},
        ...     decide=lambda m: Verdict(m["sum"] > 1, f"sum {m['sum']}", {}),
        ...     figure=lambda m, path: path.write_bytes(b"")))  # a real claim draws a PNG
        >>> r = run_claim("toy-sum", "smoke", out="reproduce", progress=False)
        toy-sum (smoke): One plus one exceeds one.
        toy-sum: REPRODUCED -- sum 2 [criterion: sum > 1]
        >>> sorted(p.name for p in Path("reproduce/toy-sum").iterdir())
        ['figure.png', 'result.json']
        >>> del _REGISTRY["toy-sum"]  # leave the registry as it was
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
    if not (folder / result.figure).is_file():
        raise RuntimeError(f"claim {claim.name!r} did not write its figure "
                           f"{folder / result.figure}")
    result.seconds = round(seconds, 2)
    result.save(folder / RESULT)
    log(result.verdict_line())
    return result
