"""The house style in one place: theme, figure sizes, labels and a colour for any algorithm.

Colours follow algorithm names, so an algorithm has the same colour in every figure. The
first algorithms registered (the built-ins, in registration order) own the slots of the
colorblind palette without its grey (grey is for context lines, never for an algorithm);
any other name (a user's algorithm, a relabelled contender) takes the slot given by a stable
hash of its name, moving to the next free slot on a clash within a figure.

The palette has fewer hues than a figure may have lines (its orange, vermillion and brown
are one family to a reader), so :func:`line_styles` gives every line whose hue is within
``NEAR_HUE_DEGREES`` of another's in the same figure its own line style and marker.
"""

from __future__ import annotations

import colorsys
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import matplotlib.pyplot as plt
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from rlcompare.spec.registry import algorithms

COLUMN_WIDTH = 3.5
FIGSIZE = (COLUMN_WIDTH, 2.6)
PALETTE = "colorblind"
# Slots of seaborn's 10-colour colorblind palette that algorithms get, in the order the
# built-ins take them: hues far apart first (blue, orange, green, purple), then the rest,
# yellow last (faint as a line on white).
# Slot 7, grey, is left out: it reads as a background line.
PALETTE_ORDER = (0, 1, 2, 4, 3, 9, 6, 5, 8)
PALETTE_SIZE = len(PALETTE_ORDER)
# Two colours whose hues are closer than this (degrees on the colour wheel) are told apart
# by line style and marker too.
NEAR_HUE_DEGREES = 30.0
LINESTYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D")
# Lines drawn for context only (not highlighted).
CONTEXT_GREY = "0.75"
METRIC_LABELS = {
    "eval_return": "Eval return",
    "episode_return": "Episode return",
    "success_rate": "Success rate",
    "q_error": r"$\max_{s,a} |Q - Q^*|$",
    "policy_regret": "Policy regret",
    "td_error": "TD error",
    "episode_length": "Episode length",
}
# More legend entries than this go outside the axes: inside, they would cover the curves.
MAX_LEGEND_INSIDE = 5
STAT_LABELS = {"iqm": "IQM", "mean": "Mean", "median": "Median", "optimality_gap": "Optimality gap"}


def set_theme(font_scale: float = 1.0) -> None:
    """House style: seaborn ``paper`` context, white grid, colorblind palette, small fonts."""
    size = 8 * font_scale
    sns.set_theme(
        context="paper",
        style="whitegrid",
        palette=PALETTE,
        rc={
            "figure.figsize": FIGSIZE,
            "font.size": size,
            "axes.titlesize": size + 1,
            "axes.labelsize": size,
            "xtick.labelsize": size - 1,
            "ytick.labelsize": size - 1,
            "legend.fontsize": size - 1,
            "legend.title_fontsize": size - 1,
            "lines.linewidth": 1.2,
            "savefig.dpi": 300,
            "savefig.bbox": "tight",
            "pdf.fonttype": 42,
            "ps.fonttype": 42,
        },
    )


def _fixed_slots() -> dict[str, int]:
    """Palette slots owned by the first registered algorithms: built-ins by family (baseline,
    tabular, deep), each family in its registration order, so the slots do not depend on
    which module a process happened to import first."""
    from rlcompare.spec.registry import FAMILIES, get_algorithm

    registered = algorithms(order="registered")
    ranked = sorted(
        registered,
        key=lambda name: (FAMILIES.index(get_algorithm(name).family), registered.index(name)),
    )
    return {name: slot for slot, name in enumerate(ranked[:PALETTE_SIZE])}


def algo_palette() -> list[tuple[float, float, float]]:
    """The colours algorithms get, in slot order (no grey)."""
    colorblind = sns.color_palette(PALETTE, 10)
    return [colorblind[index] for index in PALETTE_ORDER]


def algo_colors(algos: Iterable[str]) -> dict[str, tuple[float, float, float]]:
    """A colour per algorithm name, distinct within one call (up to ``PALETTE_SIZE`` names;
    more share colours, told apart by :func:`line_styles`)."""
    palette = algo_palette()
    fixed = _fixed_slots()
    names = sorted(set(algos), key=str)
    slots = {name: fixed[name] for name in names if name in fixed}
    for name in (n for n in names if n not in slots):
        slot = zlib.crc32(str(name).encode()) % PALETTE_SIZE
        while slot in slots.values() and len(slots) < PALETTE_SIZE:
            slot = (slot + 1) % PALETTE_SIZE
        slots[name] = slot
    return {name: palette[slot] for name, slot in slots.items()}


def level_colors(levels: Sequence[Any], hue: str) -> dict[Any, Any]:
    """Colours for the levels of ``hue``: by algorithm name, or the palette in order."""
    if hue == "algo":
        return algo_colors(levels)
    palette = algo_palette()
    return {level: palette[index % len(palette)] for index, level in enumerate(levels)}


class LineStyle(NamedTuple):
    """How a line (``linestyle``) and its points (``marker``) are drawn."""

    linestyle: str
    marker: str


def _hue_and_saturation(color: Any) -> tuple[float, float]:
    from matplotlib.colors import to_rgb

    hue, _, saturation = colorsys.rgb_to_hls(*to_rgb(color))
    return hue * 360.0, saturation


def near_hue(a: Any, b: Any) -> bool:
    """Whether a reader may take colours ``a`` and ``b`` for one another: hues within
    ``NEAR_HUE_DEGREES``, or both nearly grey."""
    (hue_a, sat_a), (hue_b, sat_b) = _hue_and_saturation(a), _hue_and_saturation(b)
    if sat_a < 0.15 or sat_b < 0.15:
        return sat_a < 0.15 and sat_b < 0.15
    gap = abs(hue_a - hue_b) % 360.0
    return min(gap, 360.0 - gap) < NEAR_HUE_DEGREES


def line_styles(colors: Mapping[Any, Any]) -> dict[Any, LineStyle]:
    """A line style and marker per level of one figure, so that levels of near hue differ.

    Levels are taken in palette order (a built-in before a later name of the same hue, then
    in the mapping's order); each gets the first style that no earlier level of a near hue
    (:func:`near_hue`) holds: solid and circles unless its hue is taken. Pass the figure's
    whole ``level -> colour`` mapping to every panel, so a level keeps its style.
    """
    from matplotlib.colors import to_rgb

    rank = {tuple(round(c, 6) for c in color): i for i, color in enumerate(algo_palette())}
    order = sorted(
        colors, key=lambda level: rank.get(tuple(round(c, 6) for c in to_rgb(colors[level])), 99)
    )
    styles: dict[Any, LineStyle] = {}
    for level in order:
        color = colors[level]
        taken = {
            LINESTYLES.index(style.linestyle)
            for other, style in styles.items()
            if near_hue(colors[other], color)
        }
        index = next((i for i in range(len(LINESTYLES)) if i not in taken), len(taken))
        styles[level] = LineStyle(
            LINESTYLES[index % len(LINESTYLES)], MARKERS[index % len(MARKERS)]
        )
    return {level: styles[level] for level in colors}


def new_axes(ax: Axes | None, figsize: tuple[float, float] = FIGSIZE) -> tuple[Figure, Axes]:
    """``(fig, ax)`` of the given axes, or of a new figure of ``figsize``."""
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
        return fig, ax
    return ax.figure, ax


def metric_label(metric: str) -> str:
    """The axis label of a metric."""
    return METRIC_LABELS.get(metric, metric.replace("_", " ").capitalize())


def place_legend(ax: Axes, title: str | None = None, **kwargs: Any) -> None:
    """The axes' legend: inside (best place) for a few entries, outside on the right for more
    than ``MAX_LEGEND_INSIDE``, where it covers no curve."""
    handles, _ = ax.get_legend_handles_labels()
    count = len(kwargs.get("handles", handles))
    if count > MAX_LEGEND_INSIDE:
        kwargs = {**kwargs, "loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "borderaxespad": 0}
    ax.legend(title=title, frameon=False, **kwargs)


def figure_legend(fig: Figure, axes: Sequence[Axes], title: str | None = None) -> None:
    """One legend for a figure of panels that share their lines: the panels' own legends are
    removed and the union of their entries (first panel first) goes outside, on the right."""
    entries: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    if entries:
        fig.legend(
            list(entries.values()),
            list(entries),
            title=title,
            frameon=False,
            loc="outside right upper",
        )
