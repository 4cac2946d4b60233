"""One score per run for the studies: the final value of a metric, its AUC, or the steps to
reach a threshold, each with its direction (a diverged run scores at its metric's worst
value, as every statistic of :mod:`rlcompare.analysis.stats` does)."""

from __future__ import annotations

import pandas as pd

from rlcompare.errors import SpecError, choices_text
from rlcompare.runner import schema

SCORES = ("final", "auc", "steps_to_threshold")


def check_score(
    score: str, metric: str | None, threshold: float | None, higher_is_better: bool | None
) -> None:
    """Refuses an unknown score, a threshold score without a threshold, or a metric whose
    direction nobody declared (before any run starts).

    Raises:
        SpecError: Naming the bad value and the valid ones.
    """
    if score not in SCORES:
        raise SpecError(f"score = {score!r} is unknown; {choices_text(SCORES, score)}")
    if score == "steps_to_threshold" and threshold is None:
        raise SpecError("score = 'steps_to_threshold' needs a threshold; got threshold=None")
    known = sorted(schema.LOWER_IS_BETTER | schema.HIGHER_IS_BETTER)
    if metric is not None and higher_is_better is None and metric not in known:
        raise SpecError(
            f"metric = {metric!r} is not a metric rlcompare knows the direction of; "
            f"{choices_text(known, metric)}; for a metric your own code records, pass "
            "higher_is_better"
        )


def run_scores(
    frame: pd.DataFrame,
    score: str,
    metric: str | None,
    threshold: float | None,
    higher_is_better: bool | None,
) -> tuple[pd.Series, str, bool]:
    """One score per run id, the metric it was read from, and its direction."""
    # Here, not at the top: the CLI's parser imports SCORES for every command, and the
    # statistics modules import rliable (about 1 s), which only scoring needs.
    from rlcompare.analysis import curves, stats

    if metric is None:
        # Exact where every run has a model-based value: the test then sees only the
        # spread between seeds, not evaluation noise.
        recorded = frame.loc[frame["metric"] == "expected_eval_return", "run_id"].unique()
        every = set(frame["run_id"].unique())
        metric = "expected_eval_return" if every and every <= set(recorded) else "eval_return"
    if score == "final":
        table = stats.final_scores(frame, metric, higher_is_better=higher_is_better)
        column, higher = "score", schema.higher_is_better(metric, higher_is_better)
    elif score == "auc":
        table = curves.auc(frame, metric, higher_is_better)
        column, higher = "auc", schema.higher_is_better(metric, higher_is_better)
    else:
        table = curves.steps_to_threshold(frame, threshold, metric, higher_is_better)  # type: ignore[arg-type]
        column, higher = "steps", False
    return table.set_index("run_id")[column], metric, higher
