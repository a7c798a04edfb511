"""Reproductions: each paper's headline claim, re-checked on CPU-sized tasks.

A claim is registered with its statement and a criterion fixed in advance;
``run_claim(name, mode)`` runs it ("smoke", "quick" or "full"), writes a figure and
``result.json`` into ``out/<name>/`` and returns a :class:`ClaimResult` whose verdict line
says REPRODUCED or NOT REPRODUCED with the measured effect.

Example:
    >>> from signalprop.experiments import list_claims
    >>> "nf-spp" in [c.name for c in list_claims()]
    True
"""

from signalprop.experiments._claim import (
    MODES,
    Claim,
    ClaimResult,
    RunContext,
    Superseded,
    Verdict,
)
from signalprop.experiments._registry import get_claim, list_claims, register, run_claim
from signalprop.experiments._stats import diff_se, mean_se, separated
from signalprop.experiments.summary import find_results, summary_markdown, write_summary

__all__ = [
    "MODES",
    "Claim",
    "ClaimResult",
    "RunContext",
    "Superseded",
    "Verdict",
    "diff_se",
    "find_results",
    "get_claim",
    "list_claims",
    "mean_se",
    "register",
    "run_claim",
    "separated",
    "summary_markdown",
    "write_summary",
]
