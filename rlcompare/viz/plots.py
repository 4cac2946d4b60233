"""Figures for comparisons. Each function takes data and an optional ``ax``, and returns
``(fig, ax)``; none trains, reads files or saves (see :func:`rlcompare.viz.figures.save_figure`).

Call :func:`set_theme` once for the house style (seaborn colorblind palette, fonts readable
at a single paper column, ~3.5 in). Colors follow algorithm names (:func:`algo_colors`), so an
algorithm has the same color in every figure.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from rlcompare.analysis import stats
from rlcompare.viz.gridplots import grid_values, policy_arrows
from rlcompare.viz.style import (
    COLUMN_WIDTH,
    CONTEXT_GREY,
    FIGSIZE,
    PALETTE,
    STAT_LABELS,
    algo_colors,
    figure_legend,
    level_colors,
    line_styles,
    metric_label,
    new_axes,
    place_legend,
    set_theme,
)


def _band_lines(
    ax: Axes,
    table: pd.DataFrame,
    hue: str,
    x: str,
    y: str,
    low: pd.Series,
    high: pd.Series,
    highlight: Sequence[Any] | None = None,
    colors: Mapping[Any, Any] | None = None,
) -> None:
    """One line per ``hue`` level with a shaded band between ``low`` and ``high``.

    With ``highlight``, only those levels get colour, band and a legend entry; the others are
    thin grey context lines under them, labelled once as "others".
    """
    levels = list(dict.fromkeys(table[hue]))
    shown = levels if highlight is None else [level for level in levels if level in highlight]
    colors = colors if colors is not None else level_colors(shown, hue)
    styles = line_styles(colors)
    context = [level for level in levels if level not in shown]
    for index, level in enumerate(context):
        rows = (table[hue] == level).to_numpy()
        label = "others" if index == 0 else "_nolegend_"
        ax.plot(table[x][rows], table[y][rows], color=CONTEXT_GREY, linewidth=0.7, label=label)
    for level in shown:
        rows = (table[hue] == level).to_numpy()
        ax.plot(
            table[x][rows],
            table[y][rows],
            color=colors[level],
            linestyle=styles[level].linestyle,
            label=str(level),
        )
        ax.fill_between(
            table[x][rows], low[rows], high[rows], color=colors[level], alpha=0.2, linewidth=0
        )


# ------------------------------------------------------------------------ curves
def learning_curves(
    df: pd.DataFrame,
    metric: str = "eval_return",
    hue: str = "algo",
    steps: Sequence[int] | None = None,
    num_points: int = 50,
    reps: int = 1000,
    random_state: int | None = 0,
    log_scale: bool = False,
    highlight: Sequence[Any] | None = None,
    colors: Mapping[Any, Any] | None = None,
    ax: Axes | None = None,
) -> tuple[Figure, Axes]:
    """IQM learning curve per ``hue`` level with its 95% bootstrap CI band.

    Runs are interpolated onto a common step grid first (:func:`stats.aggregate_curves`): a
    diverged run continues at its worst value to its budget's end, and the runs or groups
    left out are named in a warning.

    Args:
        df: Tidy results table.
        metric: Metric on the y axis.
        hue: Column whose levels get one curve each.
        steps: Step grid; default ``num_points`` steps over the range all runs cover.
        num_points: Grid size when ``steps`` is None.
        reps: Bootstrap replications per group.
        random_state: Bootstrap seed.
        log_scale: Log y axis.
        highlight: Levels drawn in colour with their bands; the rest become grey context lines
            (for figures with more lines than a reader can tell apart).
        colors: ``level -> colour`` (default: :func:`algo_colors` of the levels drawn); pass
            one mapping to every panel of a figure so a level keeps its colour across panels.
        ax: Axes to draw on; a new single-column figure by default.
    """
    curves = stats.aggregate_curves(
        df, metric, by=hue, steps=steps, num_points=num_points, reps=reps, random_state=random_state
    )
    fig, ax = new_axes(ax)
    band = (curves["iqm_low"], curves["iqm_high"])
    _band_lines(ax, curves, hue, "step", "iqm", *band, highlight=highlight, colors=colors)
    if log_scale:
        ax.set_yscale("log")
    ax.set_xlabel("Environment steps")
    ax.set_ylabel(
        f"IQM {metric_label(metric)}" if metric != "q_error" else metric_label(metric) + " (IQM)"
    )
    place_legend(ax, hue)
    return fig, ax


def q_error_convergence(
    df: pd.DataFrame, hue: str = "algo", ax: Axes | None = None, **kwargs: Any
) -> tuple[Figure, Axes]:
    """``q_error`` (max |Q - Q*|) against env steps on a log scale, IQM and CI per level.

    Keyword arguments go to :func:`learning_curves`.
    """
    return learning_curves(df, "q_error", hue=hue, log_scale=True, ax=ax, **kwargs)


def performance_profile(
    profile: pd.DataFrame, hue: str = "algo", ax: Axes | None = None
) -> tuple[Figure, Axes]:
    """Score distributions from :func:`stats.performance_profile`, with CI bands.

    The y axis says which side of tau counted: above it, or below it where the profile's
    metric is lower-is-better (``profile.attrs["higher_is_better"]``).
    """
    fig, ax = new_axes(ax)
    levels = list(dict.fromkeys(profile[hue]))
    colors = level_colors(levels, hue)
    styles = line_styles(colors)
    for level in levels:
        curve = profile[profile[hue] == level]
        ax.plot(
            curve["tau"],
            curve["fraction"],
            color=colors[level],
            linestyle=styles[level].linestyle,
            label=str(level),
        )
        ax.fill_between(
            curve["tau"], curve["low"], curve["high"], color=colors[level], alpha=0.2, linewidth=0
        )
    ax.set_xlabel(r"Score threshold $\tau$")
    side = ">" if profile.attrs.get("higher_is_better", True) else "<"
    ax.set_ylabel(rf"Fraction of runs with score ${side} \tau$")
    ax.set_ylim(-0.02, 1.02)
    place_legend(ax, hue)
    return fig, ax


# ------------------------------------------------------------------ comparisons
def interval_estimates(
    summary: pd.DataFrame,
    metrics: str | Sequence[str] = ("median", "iqm", "mean"),
    ax: Axes | Sequence[Axes] | None = None,
) -> tuple[Figure, Any]:
    """Point estimates and CIs from :func:`stats.summary`, one panel per statistic.

    Args:
        summary: Output of :func:`stats.summary`.
        metrics: Statistic(s) to show (``iqm``, ``mean``, ``median``, ``optimality_gap``).
        ax: One Axes per statistic; new panels side by side by default.

    Returns:
        ``(fig, ax)``: ``ax`` is an Axes for a single statistic, else an array of them.
    """
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    for name in names:
        stats.require_columns(summary, [name, f"{name}_low", f"{name}_high"])
    if ax is None:
        figsize = (max(COLUMN_WIDTH, 1.6 * len(names)), 0.6 + 0.3 * len(summary))
        fig, axes = plt.subplots(
            1, len(names), sharey=True, layout="constrained", figsize=figsize, squeeze=False
        )
        axes = axes[0]
    else:
        axes = np.atleast_1d(np.asarray(ax, dtype=object))
        fig = axes[0].figure
    if len(axes) != len(names):
        raise ValueError(f"got {len(axes)} axes for {len(names)} statistics {names}")
    reserved = {"runs", "tasks"} | {f"{n}{s}" for n in STAT_LABELS for s in ("", "_low", "_high")}
    keys = [c for c in summary.columns if c not in reserved]
    labels = [", ".join(str(row[k]) for k in keys) for _, row in summary.iterrows()]
    colors = (
        list(algo_colors(summary["algo"]).get(a) for a in summary["algo"])
        if "algo" in summary
        else sns.color_palette(PALETTE, len(summary))
    )
    y = np.arange(len(summary))
    for axis, name in zip(axes, names, strict=True):
        low, high = summary[f"{name}_low"].to_numpy(), summary[f"{name}_high"].to_numpy()
        axis.barh(y, high - low, left=low, height=0.6, color=colors, alpha=0.75)
        axis.vlines(summary[name], y - 0.3, y + 0.3, color="black", linewidth=1.2)
        axis.set_xlabel(STAT_LABELS.get(name, name))
        axis.set_yticks(y, labels)
        axis.grid(axis="y", visible=False)
        # Bars stick to the axis edge otherwise, hiding a zero-width interval (an exact value)
        # that sits at the data's edge.
        axis.use_sticky_edges = False
        axis.margins(x=0.15)
        axis.autoscale_view()
    axes[0].invert_yaxis()
    return fig, axes[0] if isinstance(metrics, str) else axes


def probability_of_improvement(
    matrix: pd.DataFrame, ax: Axes | None = None, annotate_ci: bool = True
) -> tuple[Figure, Axes]:
    """Heatmap of P(row algorithm better than column algorithm) from
    :func:`stats.improvement_matrix`: "better" is higher, or lower where the matrix's metric
    is lower-is-better (``matrix.attrs``); the title names the metric when it is known."""
    stats.require_columns(matrix, ["algo_x", "algo_y", "probability", "low", "high"])
    order = sorted(set(matrix["algo_x"]) | set(matrix["algo_y"]))
    table = matrix.pivot(index="algo_x", columns="algo_y", values="probability")
    table = table.reindex(index=order, columns=order)
    text = pd.DataFrame("", index=order, columns=order)
    for _, row in matrix.iterrows():
        ci = f"\n[{row['low']:.2f}, {row['high']:.2f}]" if annotate_ci else ""
        text.loc[row["algo_x"], row["algo_y"]] = f"{row['probability']:.2f}{ci}"
    fig, ax = new_axes(ax, (COLUMN_WIDTH, COLUMN_WIDTH * 0.8))
    sns.heatmap(
        table,
        ax=ax,
        vmin=0,
        vmax=1,
        cmap="RdBu",
        annot=text,
        fmt="",
        square=True,
        cbar_kws={"label": "P(row better than column)"},
        annot_kws={"fontsize": 6},
    )
    ax.grid(False)
    ax.set_xlabel("Algorithm Y")
    ax.set_ylabel("Algorithm X")
    metric = matrix.attrs.get("metric")
    ax.set_title(f"P(X better than Y){f' in {metric}' if metric else ''}")
    return fig, ax


def steps_to_threshold(
    runs: pd.DataFrame, hue: str = "algo", ax: Axes | None = None
) -> tuple[Figure, Axes]:
    """Steps each run needed to reach a threshold (:func:`stats.steps_to_threshold`).

    Filled markers: runs that reached it. Hollow markers at the last observed step: censored
    runs that never did.
    """
    stats.require_columns(runs, [hue, "steps", "reached"])
    fig, ax = new_axes(ax)
    levels = sorted(runs[hue].unique(), key=str)
    colors = level_colors(levels, hue)
    markers = {level: style.marker for level, style in line_styles(colors).items()}
    for i, level in enumerate(levels):
        group = runs[runs[hue] == level].sort_values(
            ["steps", "seed"] if "seed" in runs else "steps"
        )
        # Evenly spread rows instead of random jitter, so the figure is deterministic.
        y = i + np.linspace(-0.25, 0.25, len(group)) if len(group) > 1 else np.full(1, i)
        reached = group["reached"].to_numpy(dtype=bool)
        if reached.any():
            ax.scatter(
                group["steps"][reached],
                y[reached],
                s=18,
                color=colors[level],
                marker=markers[level],
            )
        if (~reached).any():
            ax.scatter(
                group["steps"][~reached],
                y[~reached],
                s=18,
                marker=markers[level],
                facecolors="none",
                edgecolors=colors[level],
                linewidths=1.0,
            )
    ax.set_yticks(range(len(levels)), [str(level) for level in levels])
    ax.set_xlabel("Environment steps to threshold")
    ax.set_ylabel(hue)
    handles = [
        Line2D([], [], marker="o", linestyle="", color="0.3", label="reached"),
        Line2D(
            [],
            [],
            marker="o",
            linestyle="",
            markerfacecolor="none",
            markeredgecolor="0.3",
            label="never reached (last step)",
        ),
    ]
    place_legend(ax, handles=handles, loc="best")
    return fig, ax


# ------------------------------------------------------------------------ layouts
def facets(
    plot: Any, df: pd.DataFrame, col: str = "env", width: float = 2.6, **kwargs: Any
) -> tuple[Figure, np.ndarray]:
    """One panel per level of ``col``, each drawn by ``plot(subset, ax=ax, **kwargs)``.

    The panels share one legend, outside on the right (it covers no curve); panels are titled
    by their level.
    """
    levels = list(dict.fromkeys(df[col]))
    fig, axes = plt.subplots(
        1,
        len(levels),
        figsize=(width * len(levels), FIGSIZE[1]),
        layout="constrained",
        squeeze=False,
    )
    hue = kwargs.get("hue", "algo")
    if "colors" in inspect.signature(plot).parameters and hue in df and "colors" not in kwargs:
        # One colour per level across all panels, not one assignment per panel.
        kwargs["colors"] = level_colors(list(dict.fromkeys(df[hue])), hue)
    for ax, level in zip(axes[0], levels, strict=True):
        plot(df[df[col] == level], ax=ax, **kwargs)
        ax.set_title(str(level))
    title = axes[0][0].get_legend().get_title().get_text() if axes[0][0].get_legend() else None
    figure_legend(fig, axes[0], title=title or None)
    return fig, axes[0]


def episode_curves(
    table: pd.DataFrame,
    hue: str = "algo",
    ylabel: str = "Return per episode",
    ax: Axes | None = None,
) -> tuple[Figure, Axes]:
    """Per-episode curves from :func:`rlcompare.curves.per_episode`, +-1 standard error band."""
    stats.require_columns(table, [hue, "episode", "value", "sem"])
    fig, ax = new_axes(ax)
    band = (table["value"] - table["sem"], table["value"] + table["sem"])
    _band_lines(ax, table, hue, "episode", "value", *band)
    ax.set_xlabel("Episodes")
    ax.set_ylabel(ylabel)
    place_legend(ax, hue)
    return fig, ax


def scaling(
    runs: pd.DataFrame, x: str, y: str = "steps", hue: str = "algo", ax: Axes | None = None
) -> tuple[Figure, Axes]:
    """Cost to reach a threshold against a problem size (bsuite-style scaling), log y.

    Args:
        runs: Output of :func:`stats.steps_to_threshold` (``reached``), with columns ``x``
            (e.g. ``env.size``) and ``y`` (``steps`` or a derived ``episodes``).
        x: Size column. y: Cost column. hue: One line per level.
        ax: Axes to draw on.

    Lines join the medians over the runs that reached the threshold; every run is a marker,
    hollow where it never reached it (plotted at its budget, a lower bound).
    """
    stats.require_columns(runs, [x, y, hue, "reached"])
    fig, ax = new_axes(ax)
    levels = list(dict.fromkeys(runs[hue]))
    colors = level_colors(levels, hue)
    styles = line_styles(colors)
    for level in levels:
        group = runs[runs[hue] == level]
        reached = group["reached"].to_numpy(dtype=bool)
        marker = styles[level].marker
        ax.scatter(
            group[x][reached],
            group[y][reached],
            s=10,
            color=colors[level],
            alpha=0.5,
            marker=marker,
        )
        ax.scatter(
            group[x][~reached],
            group[y][~reached],
            s=10,
            marker=marker,
            facecolors="none",
            edgecolors=colors[level],
            alpha=0.5,
        )
        medians = group[reached].groupby(x)[y].median()
        ax.plot(
            medians.index,
            medians.to_numpy(),
            color=colors[level],
            linestyle=styles[level].linestyle,
            marker=marker,
            markersize=3,
            label=str(level),
        )
    ax.set_yscale("log")
    ax.set_xlabel(x.removeprefix("env."))
    ax.set_ylabel(y.capitalize() + " to solve")
    place_legend(ax, hue)
    return fig, ax


__all__ = [
    "algo_colors",
    "line_styles",
    "figure_legend",
    "episode_curves",
    "facets",
    "grid_values",
    "interval_estimates",
    "learning_curves",
    "performance_profile",
    "policy_arrows",
    "probability_of_improvement",
    "q_error_convergence",
    "scaling",
    "set_theme",
    "steps_to_threshold",
]
