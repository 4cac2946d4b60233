"""The claims a notebook records for the summary table (notebook 00): short, one each.

Every notebook's ``headline`` records ``evidence: {approach: [claim, ...]}``; the index of
the report shows one line per claim, linked to the notebook's "Headline numbers" section
(:func:`rlcompare.viz.report.comparison_table`). A claim says what was compared and its
number with its 95% CI (``"0.49 [0.31, 0.62]"``, :func:`with_ci`), or the decision of a
verdict (:data:`DECISION_WORDS`).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

# What a verdict decides (rlcompare.analysis.sequential), as a claim quotes it.
DECISION_WORDS = ("better", "worse", "no difference found", "undecided")
# A claim longer than this reads as a paragraph, not a line.
MAX_WORDS = 40
_INTERVAL = re.compile(r"\[-?[\d.]+(e[+-]?\d+)?, -?[\d.]+(e[+-]?\d+)?\]")


def _decimals(size: float) -> int:
    """Decimals that give ``size`` three significant digits (none from 100 on, at most 3)."""
    if size == 0 or not math.isfinite(size):
        return 0
    return min(3, max(0, 2 - math.floor(math.log10(size))))


def _fixed(value: float, decimals: int) -> str:
    if not math.isfinite(value):
        return "n/a"
    return f"{round(value, decimals) + 0.0:.{decimals}f}"  # + 0.0: never "-0"


def number(value: Any) -> str:
    """``value`` with three significant digits in fixed notation (-1531, 10.3, 5.17, 0.488,
    0.077); ``n/a`` where it is not finite."""
    value = float(value)
    return _fixed(value, _decimals(abs(value)))


def with_ci(value: Any, low: Any, high: Any) -> str:
    """``"value [low, high]"``: a number with its interval, all three with the decimals of
    the largest (``0.250 [0.125, 0.375]``, ``-1531 [-1720, -1402]``)."""
    values = [float(v) for v in (value, low, high)]
    decimals = _decimals(max((abs(v) for v in values if math.isfinite(v)), default=0.0))
    point, low_, high_ = (_fixed(v, decimals) for v in values)
    return f"{point} [{low_}, {high_}]"


def iqm_ci(row: Mapping[str, Any] | Any, prefix: str = "iqm") -> str:
    """The IQM of a row of ``rlcompare.analysis.stats.summary`` with its CI
    (``<prefix>, <prefix>_low, <prefix>_high``)."""
    return with_ci(row[prefix], row[f"{prefix}_low"], row[f"{prefix}_high"])


def decisions_claim(what: str, decided: Iterable[tuple[str, str]]) -> str:
    """One claim for the decisions of a verdict: the pairs that differ, or that none does.

    Args:
        what: The comparison (``"final eval return vs dqn, 2+2 runs"``).
        decided: ``(pair, decision)`` for every pair compared, where ``pair`` names the
            first contender (``"no_target"``) and ``decision`` is one of
            :data:`DECISION_WORDS`.
    """
    decided = list(decided)
    named = [f"{pair} {decision}" for pair, decision in decided if decision in DECISION_WORDS[:2]]
    others = Counter(decision for _, decision in decided if decision not in DECISION_WORDS[:2])
    if not named and len(others) == 1:
        every = {1: "the pair", 2: "both pairs"}.get(len(decided), f"all {len(decided)} pairs")
        return f"{what}: {next(iter(others))} for {every}"
    rest = [f"{decision} for {'the other ' if named else ''}{n}" for decision, n in others.items()]
    return f"{what}: {', '.join(named + rest)}"


def verdict_claims(decisions: Any, what: str, by: Iterable[str] = ("env", "b")) -> list[str]:
    """One claim per group of a verdict's decisions (columns ``env, a, b, decision, runs_a,
    runs_b``): ``"<env>, <what> vs <b> (2+2 runs): ..."`` by :func:`decisions_claim`.

    Args:
        decisions: ``Verdict.decisions`` (or its rows for one score).
        what: The score compared (``"final eval return"``).
        by: The columns that make a group; ``env`` and ``b`` name it.
    """
    claims = []
    for _, rows in decisions.groupby(list(by), sort=False):
        first = rows.iloc[0]
        runs = sorted({f"{r.runs_a}+{r.runs_b}" for r in rows.itertuples()})
        label = f"{first['env']}, {what} vs {first['b']} ({'/'.join(runs)} runs, 5% family-wise)"
        claims.append(decisions_claim(label, zip(rows["a"], rows["decision"], strict=True)))
    return claims


def is_short_claim(claim: str) -> bool:
    """Whether ``claim`` reads as one line of evidence: an interval ``[a, b]`` or a decision
    in it, at most :data:`MAX_WORDS` words."""
    quoted = bool(_INTERVAL.search(claim)) or any(word in claim for word in DECISION_WORDS)
    return quoted and len(claim.split()) <= MAX_WORDS
