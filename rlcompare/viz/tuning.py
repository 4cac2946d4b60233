"""Figures of a tuning study: performance against each hyperparameter's value, and the
sensitivity of each algorithm (Adkins et al., NeurIPS 2024). Plots read tables
(``TuneResult.curves()``, ``TuneResult.sensitivity()``) and never train or save."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from rlcompare.viz.style import algo_colors

CURVE_COLUMNS = ("algo", "env", "param", "value", "log", "iqm", "iqm_low", "iqm_high")


def sensitivity_curves(
    curves: pd.DataFrame, value: str = "iqm", width: float = 3.0, height: float = 2.2
) -> tuple[Figure, np.ndarray]:
    """Performance of every configuration against each hyperparameter's value, with 95% CIs
    over tuning seeds: one panel per (algorithm, hyperparameter), one row per algorithm and
    env for scores (each env keeps its own units), one row per algorithm with a colour per env
    for normalised performance (comparable across envs).

    Args:
        curves: ``TuneResult.curves()``: one row per (algo, env, config, param) with
            ``value, log, iqm, iqm_low, iqm_high`` (and ``normalised``).
        value: ``iqm`` (the score, with its CI) or ``normalised`` (per-env normalised
            performance; no CI).
        width: Width of a panel (inches).
        height: Height of a panel (inches).

    Returns:
        ``(fig, axes)``, axes of shape (rows x most hyperparameters of one algorithm).
    """
    missing = [c for c in CURVE_COLUMNS if c not in curves]
    if missing:
        raise ValueError(f"curves lacks column(s) {missing}; valid: TuneResult.curves()")
    if value not in ("iqm", "normalised"):
        raise ValueError(f"value = {value!r} is invalid; valid: iqm, normalised")
    algos = list(dict.fromkeys(curves["algo"]))
    envs = sorted(curves["env"].unique())
    rows = [(a, e) for a in algos for e in envs] if value == "iqm" else [(a, None) for a in algos]
    params = {a: list(dict.fromkeys(curves.loc[curves["algo"] == a, "param"])) for a in algos}
    cols = max(len(p) for p in params.values())
    fig, axes = plt.subplots(
        len(rows), cols, figsize=(width * cols, height * len(rows)), squeeze=False
    )
    colors = algo_colors(envs)
    for row, (algo, only) in enumerate(rows):
        for col in range(cols):
            ax = axes[row, col]
            if col >= len(params[algo]):
                ax.set_visible(False)
                continue
            param = params[algo][col]
            shown = curves[(curves["algo"] == algo) & (curves["param"] == param)]
            if only is not None:
                shown = shown[shown["env"] == only]
            for env, points in shown.groupby("env", sort=True):
                _points(ax, points.sort_values("value"), value, colors[env], str(env))
            if shown["log"].any():
                ax.set_xscale("log")
            where = f" on {only}" if only is not None else ""
            ax.set_title(f"{algo}: {param}{where}", fontsize=8)
            ax.set_xlabel(param)
            ax.set_ylabel("IQM score" if value == "iqm" else "normalised")
    if only is None:
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="upper center", ncol=min(4, len(labels)), fontsize=8)
        fig.tight_layout(rect=(0, 0, 1, 0.95))
    else:
        fig.tight_layout()
    return fig, axes


def _points(ax: Axes, points: pd.DataFrame, value: str, color: object, label: str) -> None:
    y = points[value].to_numpy(dtype=float)
    if value == "iqm":
        below = y - points["iqm_low"].to_numpy(dtype=float)
        above = points["iqm_high"].to_numpy(dtype=float) - y
        ax.errorbar(
            points["value"],
            y,
            yerr=[below, above],
            fmt="o",
            ms=4,
            color=color,
            alpha=0.8,
            label=label,
            capsize=2,
        )
    else:
        ax.plot(points["value"], y, "o", ms=4, color=color, alpha=0.8, label=label)


def sensitivity_bars(table: pd.DataFrame, ax: Axes | None = None) -> tuple[Figure, Axes]:
    """Per algorithm, normalised performance tuned per env, tuned across envs and at its
    defaults; the gap between the first two is the sensitivity (Adkins et al.).

    Args:
        table: ``TuneResult.sensitivity()``.
        ax: Axes to draw on (a new figure when None).
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(table), 3.2))
    else:
        fig = ax.figure
    kinds = [
        ("per_env_tuned", "tuned per env"),
        ("across_envs_tuned", "one setting"),
        ("default", "defaults"),
    ]
    x = np.arange(len(table))
    width = 0.8 / len(kinds)
    for i, (column, label) in enumerate(kinds):
        ax.bar(x + (i - 1) * width, table[column].to_numpy(dtype=float), width, label=label)
    for xi, (per_env, sensitivity) in enumerate(
        zip(table["per_env_tuned"], table["sensitivity"], strict=True)
    ):
        ax.annotate(
            f"{sensitivity:.2f}", (xi - width, per_env), ha="center", va="bottom", fontsize=8
        )
    ax.set_xticks(x, table["algo"])
    ax.set_ylabel("normalised performance (mean over envs)")
    shown = table[[c for c, _ in kinds]].to_numpy(dtype=float)
    ax.set_ylim(min(0.0, float(np.nanmin(shown))), max(1.0, float(np.nanmax(shown))) * 1.1)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("sensitivity = tuned per env - one setting", fontsize=9)
    return fig, ax


__all__ = ["sensitivity_bars", "sensitivity_curves"]
