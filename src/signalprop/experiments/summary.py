"""The markdown summary table of reproduced claims, built from their result.json files.

Nothing is re-run: ``summary_markdown(find_results(folder))`` reads what ``run_claim``
wrote (``<folder>/<claim>/result.json``) and lists every registered claim, with "not
run" where no result was found.
"""

from __future__ import annotations

import json
from pathlib import Path

from signalprop.experiments._claim import ClaimResult
from signalprop.experiments._registry import RESULT, list_claims

SUMMARY = "SUMMARY.md"
_HEADER = ("claim", "paper", "verdict", "measured effect", "criterion", "mode", "minutes")
_HISTORY_HEADER = ("claim", "earlier design", "verdict", "measured effect", "criterion",
                   "why the design changed")


def find_results(folder: str | Path) -> list[ClaimResult]:
    """Claim results under ``folder`` (``folder/<claim>/result.json`` and deeper, skipping
    the per-run ``result.json`` files of training sweeps), in the registry's order.

    Raises:
        ValueError: ``folder`` is not a directory.

    Examples:
        >>> ClaimResult("nf-spp", "smoke", True, "d = 2", "d > 1").save("out/nf-spp/result.json")
        PosixPath('out/nf-spp/result.json')
        >>> [(r.claim, r.mode, r.reproduced) for r in find_results("out")]
        [('nf-spp', 'smoke', True)]
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"no results folder at {folder}: run 'signalprop reproduce' first")
    found = []
    for path in sorted(folder.rglob(RESULT)):
        if "sweeps" in path.relative_to(folder).parts:
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and "reproduced" in data and "claim" in data:
            found.append(ClaimResult.from_dict(data))
    rank = {c.name: i for i, c in enumerate(list_claims())}
    return sorted(found, key=lambda r: (rank.get(r.claim, len(rank)), r.claim, r.mode))


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def summary_markdown(results: list[ClaimResult], title: str = "Reproductions") -> str:
    """A markdown page: one table row per result, a "not run" row per registered claim
    without one, and a "History" table of the earlier designs the claims keep
    (``Claim.history``), with the verdict each got and why it changed.

    Args:
        results: claim results (e.g. from :func:`find_results`).
        title: the page's heading.

    Returns:
        The markdown text.

    Examples:
        >>> r = ClaimResult("nf-spp", "quick", True, "d = 2", "d > 1", seconds=90)
        >>> print(summary_markdown([r]).splitlines()[6])
        | nf-spp | Brock, De & Smith (ICLR 2021) | **REPRODUCED** | d = 2 | d > 1 | quick | 1.5 |
    """
    claims = {c.name: c for c in list_claims()}
    lines = [
        f"# {title}",
        "",
        "`signalprop reproduce` re-checks each paper's headline claim on CPU-sized tasks. "
        "Each criterion is fixed in code before the run and is never changed after seeing "
        "a result; verdicts are as measured. Regenerate with `make reproduce`.",
        "",
        "| " + " | ".join(_HEADER) + " |",
        "|" + "---|" * len(_HEADER),
    ]
    seen = set()
    for r in results:
        seen.add(r.claim)
        paper = claims[r.claim].paper if r.claim in claims else ""
        verdict = "**REPRODUCED**" if r.reproduced else "**NOT REPRODUCED**"
        cells = [r.claim, paper, verdict, r.effect, r.criterion, r.mode,
                 f"{r.seconds / 60:.1f}"]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    for name, claim in claims.items():
        if name not in seen:
            cells = [name, claim.paper, "not run", "", claim.criterion, "", ""]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines += ["", "Minutes are wall time on the machine that ran them (not a benchmark). "
              "Each claim's figure and every measurement are in "
              "`out/reproduce/<claim>/` after a run. The claims and their criteria:", "",
              "```python", "from signalprop.experiments import list_claims",
              "for claim in list_claims():", "    print(claim.name, '--', claim.criterion)",
              "```", ""]
    return "\n".join(lines + _history(list(claims.values())))


def _history(claims: list) -> list[str]:
    """The "History" section: one row per superseded design of every claim that has one."""
    rows = [(c.name, h) for c in claims for h in c.history]
    if not rows:
        return []
    lines = ["## History", "",
             "Earlier designs of the claims above, with the verdict each got as measured "
             "and why the design changed (a design flaw found after a run is fixed and "
             "rerun; the old verdict stays here).", "",
             "| " + " | ".join(_HISTORY_HEADER) + " |", "|" + "---|" * len(_HISTORY_HEADER)]
    for name, h in rows:
        verdict = f"**{h.verdict}**"
        cells = [name, h.design, verdict, h.effect, h.criterion, h.why_changed]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return lines + [""]


def write_summary(folder: str | Path, path: str | Path | None = None) -> Path:
    """Write the summary of the results under ``folder`` to ``path``
    (default ``folder/SUMMARY.md``) and return the path.

    Examples:
        >>> ClaimResult("nf-spp", "smoke", True, "d = 2", "d > 1").save("out/nf-spp/result.json")
        PosixPath('out/nf-spp/result.json')
        >>> path = write_summary("out")
        >>> path
        PosixPath('out/SUMMARY.md')
        >>> print(path.read_text().splitlines()[6])
        | nf-spp | Brock, De & Smith (ICLR 2021) | **REPRODUCED** | d = 2 | d > 1 | smoke | 0.0 |
    """
    text = summary_markdown(find_results(folder))
    path = Path(path) if path is not None else Path(folder) / SUMMARY
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
