"""Tests for rlcompare.plots (rendered headless) and rlcompare.viz.figures (saving, provenance)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.quiver import Quiver  # noqa: E402

from rlcompare.analysis import stats  # noqa: E402
from rlcompare.viz import figures, plots

REPS = 50


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def tidy() -> pd.DataFrame:
    """Three algos x three seeds on one env; eval steps differ between seeds."""
    rows = []
    for k, algo in enumerate(("q_learning", "sarsa", "dqn")):
        for seed in range(3):
            for step in (0, 10 + seed, 25, 40):
                rows.append(
                    {
                        "experiment": "t",
                        "run_id": f"E__{algo}__{seed}",
                        "algo": algo,
                        "env": "E",
                        "seed": seed,
                        "step": step,
                        "episode": pd.NA,
                        "metric": "eval_return",
                        "value": (k + 1) * step / 40 + seed / 10,
                    }
                )
                rows.append({**rows[-1], "metric": "q_error", "value": 10.0 / (1 + step * (k + 1))})
    return pd.DataFrame(rows).astype({"episode": "Int64"})


# ----------------------------------------------------------------------- style
def test_algo_colors_are_deterministic_distinct_and_follow_names():
    some = plots.algo_colors(["dqn", "sarsa"])
    more = plots.algo_colors(["q_learning", "sarsa", "dqn", "ppo"])
    assert some["dqn"] == more["dqn"] and some["sarsa"] == more["sarsa"]
    assert plots.algo_colors(["sarsa", "dqn"]) == some
    names = [f"custom_{i}" for i in range(8)] + ["dqn"]
    colors = plots.algo_colors(names)
    assert len(set(colors.values())) == len(names)


def test_set_theme_uses_small_fonts_and_colorblind_palette():
    import seaborn as sns

    with matplotlib.rc_context():
        plots.set_theme()
        assert matplotlib.rcParams["font.size"] <= 9
        assert tuple(matplotlib.rcParams["figure.figsize"]) == pytest.approx((3.5, 2.6))
        cycle = [to_rgba(c["color"]) for c in matplotlib.rcParams["axes.prop_cycle"]]
        assert cycle[:3] == [to_rgba(c) for c in sns.color_palette("colorblind", 3)]


# ---------------------------------------------------------------------- curves
def test_learning_curves_draw_one_iqm_line_and_band_per_algo(tidy):
    fig, ax = plots.learning_curves(tidy, num_points=5, reps=REPS)
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["dqn", "q_learning", "sarsa"]
    assert len(ax.collections) == 3  # CI bands
    assert ax.get_xlabel() == "Environment steps" and "IQM" in ax.get_ylabel()
    expected = stats.aggregate_curves(tidy, num_points=5, reps=REPS)
    dqn = expected[expected["algo"] == "dqn"]
    np.testing.assert_allclose(lines[0].get_ydata(), dqn["iqm"])
    np.testing.assert_array_equal(lines[0].get_xdata(), [0, 10, 20, 30, 40])
    colors = plots.algo_colors(["dqn"])
    assert to_rgba(lines[0].get_color()) == to_rgba(colors["dqn"])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["dqn", "q_learning", "sarsa"]


def _many_algos(tidy: pd.DataFrame, count: int) -> pd.DataFrame:
    """``tidy`` with its runs copied under ``count`` algorithm names."""
    copies = [
        tidy.assign(algo=f"a{i}", run_id=tidy["run_id"] + f"_{i}", value=tidy["value"] + i)
        for i in range(count)
    ]
    return pd.concat(copies, ignore_index=True)


def _legend_outside(ax) -> bool:
    ax.figure.canvas.draw()
    legend = ax.get_legend().get_window_extent()
    return legend.x0 >= ax.get_window_extent().x1


def test_legend_moves_outside_the_axes_past_five_lines(tidy):
    _, few = plots.learning_curves(_many_algos(tidy, 3), num_points=4, reps=REPS)
    _, many = plots.learning_curves(_many_algos(tidy, 8), num_points=4, reps=REPS)
    assert len(many.get_legend().get_texts()) == 8
    assert not _legend_outside(few) and _legend_outside(many)


def test_highlight_colours_a_subset_and_greys_the_rest(tidy):
    frame = _many_algos(tidy, 8)
    _, ax = plots.learning_curves(frame, num_points=4, reps=REPS, highlight=["a1", "a5"])
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["others", "a1", "a5"]
    grey = [line for line in ax.get_lines() if line.get_color() == "0.75"]
    assert len(grey) == 6 and len(ax.collections) == 2  # bands only for the highlighted


def test_facets_share_one_figure_legend(tidy):
    frame = pd.concat([tidy, tidy.assign(env="F", run_id=tidy["run_id"] + "F")])
    fig, axes = plots.facets(plots.learning_curves, frame, col="env", num_points=4, reps=REPS)
    assert [ax.get_legend() for ax in axes] == [None, None]
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["dqn", "q_learning", "sarsa"]


def test_learning_curves_draw_on_given_axes(tidy):
    fig, given = plt.subplots()
    out_fig, out_ax = plots.learning_curves(tidy, num_points=4, reps=REPS, ax=given)
    assert out_ax is given and out_fig is fig


def test_q_error_convergence_is_log_scale(tidy):
    _, ax = plots.q_error_convergence(tidy, num_points=4, reps=REPS)
    assert ax.get_yscale() == "log"
    assert len(ax.get_lines()) == 3 and "Q^*" in ax.get_ylabel()


def test_performance_profile_plot(tidy):
    profile = stats.performance_profile(tidy, np.linspace(0, 3, 7), reps=REPS)
    _, ax = plots.performance_profile(profile)
    assert len(ax.get_lines()) == 3
    assert ax.get_xlabel() and ax.get_ylabel()
    np.testing.assert_allclose(ax.get_lines()[0].get_xdata(), np.linspace(0, 3, 7))


# ----------------------------------------------------------------- comparisons
def test_interval_estimates_one_panel_per_statistic(tidy):
    summary = stats.summary(tidy, reps=REPS)
    fig, axes = plots.interval_estimates(summary, metrics=("iqm", "mean"))
    assert [a.get_xlabel() for a in axes] == ["IQM", "Mean"]
    assert len(axes[0].patches) == 3
    assert list(summary["algo"]) == ["dqn", "q_learning", "sarsa"]
    bar = axes[0].patches[0]
    row = summary.set_index("algo").loc["dqn"]
    assert bar.get_x() == pytest.approx(row["iqm_low"])
    assert bar.get_x() + bar.get_width() == pytest.approx(row["iqm_high"])
    assert [t.get_text() for t in axes[0].get_yticklabels()] == list(summary["algo"])
    _, single = plots.interval_estimates(summary, metrics="median")
    assert single.get_xlabel() == "Median"
    with pytest.raises(ValueError, match="optimality_gap"):
        plots.interval_estimates(summary, metrics="optimality_gap")


def test_probability_of_improvement_heatmap(tidy):
    matrix = stats.improvement_matrix(tidy, reps=REPS)
    _, ax = plots.probability_of_improvement(matrix)
    cells = ax.collections[0].get_array().reshape(3, 3)
    order = [t.get_text() for t in ax.get_yticklabels()]
    assert order == ["dqn", "q_learning", "sarsa"]
    assert cells[0, 1] == 1.0 and cells[1, 0] == 0.0  # dqn beats q_learning everywhere
    assert np.ma.is_masked(cells[0, 0])
    assert any(t.get_text().startswith("1.00\n[1.00, 1.00]") for t in ax.texts)


def test_steps_to_threshold_marks_censored_runs_hollow(tidy):
    runs = stats.steps_to_threshold(tidy, 1.5)
    _, ax = plots.steps_to_threshold(runs)
    scatters = [c for c in ax.collections if isinstance(c, PathCollection)]
    hollow = [c for c in scatters if c.get_facecolors().size == 0]
    filled = [c for c in scatters if c.get_facecolors().size > 0]
    censored = runs[~runs["reached"]]
    assert sum(len(c.get_offsets()) for c in hollow) == len(censored) == 3  # q_learning
    assert sum(len(c.get_offsets()) for c in filled) == 6
    assert sorted(hollow[0].get_offsets()[:, 0]) == sorted(censored["steps"])
    assert ax.get_xlabel() and [t.get_text() for t in ax.get_legend().get_texts()] == [
        "reached",
        "never reached (last step)",
    ]


# ------------------------------------------------------------------ grid worlds
def test_grid_values_accepts_flat_or_2d_and_checks_shape():
    values = np.arange(6.0)
    _, ax = plots.grid_values(values, (2, 3))
    np.testing.assert_array_equal(ax.images[0].get_array(), values.reshape(2, 3))
    assert len(ax.texts) == 6
    _, ax2 = plots.grid_values(values.reshape(2, 3), (2, 3), log=True, annotate=False)
    assert np.ma.is_masked(ax2.images[0].get_array()[0, 0])
    with pytest.raises(ValueError, match=r"\(5,\).*\(6,\) or \(2, 3\)"):
        plots.grid_values(np.zeros(5), (2, 3))


def test_policy_arrows_follow_frozenlake_convention():
    # Row 0: left, down; row 1: right, up (a wall at (1, 1)).
    policy = np.array([0, 1, 2, 3])
    _, ax = plots.policy_arrows(policy, (2, 2), walls=np.array([[0, 0], [0, 1]]))
    quiver = next(c for c in ax.collections if isinstance(c, Quiver))
    np.testing.assert_array_equal(quiver.U, [-1, 0, 1])
    np.testing.assert_array_equal(quiver.V, [0, 1, 0])  # +1 row = down the screen
    np.testing.assert_array_equal(quiver.XY, [[0, 0], [1, 0], [0, 1]])
    bottom, top = ax.get_ylim()
    assert bottom > top  # row 0 drawn at the top
    assert len(ax.patches) == 1


def test_policy_arrows_overlay_on_values_and_reject_bad_actions():
    fig, ax = plots.grid_values(np.zeros(4), (2, 2))
    out_fig, out_ax = plots.policy_arrows(np.zeros((2, 2), int), (2, 2), ax=ax)
    assert out_ax is ax and out_fig is fig
    with pytest.raises(ValueError, match=r"\[4\].*0 \(left\)"):
        plots.policy_arrows(np.array([0, 4, 1, 1]), (2, 2))


# ----------------------------------------------------------------------- figures
@pytest.fixture
def figure():
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    return fig


def test_save_figure_round_trips_provenance(figure, tmp_path):
    params = {"env": "FrozenLake-v1", "eps": 0.1, "note": "a (b) \\ c"}
    paths = figures.save_figure(
        figure,
        "curve",
        formats=("png", "pdf", "svg"),
        directory=tmp_path,
        params=params,
        seeds=np.arange(3),
        caption="Q-learning (eps=0.1) é",
    )
    assert paths == [tmp_path / "curve.png", tmp_path / "curve.pdf", tmp_path / "curve.svg"]
    for path in paths:
        record = figures.read_provenance(path)
        assert record["params"] == params and record["seeds"] == [0, 1, 2]
        assert record["caption"] == "Q-learning (eps=0.1) é"
        assert record["packages"]["numpy"] == np.__version__
        assert record["rlcompare"]
        assert "git_commit" in record
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curve.pdf", "curve.png", "curve.svg"]
    assert (tmp_path / "curve.pdf").read_bytes().startswith(b"%PDF")


def test_save_figure_uses_env_var_directory(figure, tmp_path, monkeypatch):
    monkeypatch.setenv("RLCOMPARE_FIGURES", str(tmp_path / "out"))
    [path] = figures.save_figure(figure, "x", formats=["png"])
    assert path == tmp_path / "out" / "x.png" and path.exists()


@pytest.mark.parametrize(
    ("name", "formats", "message"),
    [
        ("../evil", ("png",), "'../evil' is not a safe file stem"),
        ("a/b", ("png",), "'a/b'"),
        ("ok", ("png", "jpg"), r"'jpg' is invalid; valid: png, pdf, svg"),
    ],
)
def test_save_figure_rejects_bad_names_and_formats(figure, tmp_path, name, formats, message):
    with pytest.raises(ValueError, match=message):
        figures.save_figure(figure, name, formats=formats, directory=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_save_figure_crash_leaves_no_partial_file(figure, tmp_path, monkeypatch):
    def broken(stream, **kwargs):
        stream.write(b"half a figure")
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(figure, "savefig", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        figures.save_figure(figure, "x", directory=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_read_provenance_errors(figure, tmp_path):
    figure.savefig(tmp_path / "plain.png")
    with pytest.raises(ValueError, match="no rlcompare provenance"):
        figures.read_provenance(tmp_path / "plain.png")
    with pytest.raises(ValueError, match="valid formats: png, pdf, svg"):
        figures.read_provenance(tmp_path / "data.csv")


def test_git_commit_is_none_outside_a_repository(tmp_path):
    assert figures.git_commit(tmp_path) is None
    assert figures.git_dirty(tmp_path) is None


def test_write_gallery_lists_every_png_with_caption(figure, tmp_path):
    figures.save_figure(figure, "b_fig", directory=tmp_path, caption="Second", seeds=[1])
    figures.save_figure(figure, "a_fig", formats=["png"], directory=tmp_path, params={"lr": 0.5})
    figure.savefig(tmp_path / "c_plain.png")
    index = figures.write_gallery(tmp_path)
    text = index.read_text()
    assert index == tmp_path / "index.md"
    assert text.index("## a_fig") < text.index("## b_fig") < text.index("## c_plain")
    assert "![Second](b_fig.png)" in text and "[pdf](b_fig.pdf)" in text
    assert '`{"lr": 0.5}`' in text and "seeds: `[1]`" in text
    assert "no provenance recorded" in text


def test_a_level_keeps_its_colour_in_every_panel(tidy):
    # Panel F lacks dqn; colours assigned per panel would shift, per figure they do not.
    other = tidy[tidy["algo"] != "dqn"].assign(env="F", run_id=lambda f: f["run_id"] + "F")
    fig, axes = plots.facets(
        plots.learning_curves, pd.concat([tidy, other]), num_points=4, reps=REPS
    )
    colours = [{line.get_label(): line.get_color() for line in ax.get_lines()} for ax in axes]
    for name in ("q_learning", "sarsa"):
        assert to_rgba(colours[0][name]) == to_rgba(colours[1][name])


def _curves(algos: list[str]) -> pd.DataFrame:
    rows = [
        {"run_id": f"E__{a}__{s}", "algo": a, "env": "E", "seed": s, "step": step}
        | {"episode": pd.NA, "metric": "eval_return", "value": k + step / 40 + s / 10}
        for k, a in enumerate(algos)
        for s in range(2)
        for step in (0, 20, 40)
    ]
    return pd.DataFrame(rows).assign(experiment="t").astype({"episode": "Int64"})


def _hue_gap(a, b) -> float:
    import colorsys

    (ha, _, _), (hb, _, _) = (colorsys.rgb_to_hls(*to_rgba(c)[:3]) for c in (a, b))
    gap = abs(ha - hb) * 360 % 360
    return min(gap, 360 - gap)


@pytest.mark.parametrize(
    "algos",
    [
        ["q_learning", "sarsa", "expected_sarsa", "double_q"],  # notebook 01
        ["q_learning", "dyna_q", "prioritized_sweeping", "certainty_equivalence", "psrl"],
        ["trpo", "ppo", "a2c", "dqn", "sb3_dqn", "double_dueling", "no_target", "no_replay"],
        [f"custom_{i}" for i in range(11)],  # more lines than colours
    ],
)
def test_lines_of_one_figure_are_told_apart(algos):
    fig, ax = plots.learning_curves(_curves(algos), num_points=3, reps=REPS)
    lines = {line.get_label(): line for line in ax.get_lines() if line.get_label() in algos}
    assert sorted(lines) == sorted(algos)
    for i, a in enumerate(algos):
        for b in algos[i + 1 :]:
            ca, cb = lines[a].get_color(), lines[b].get_color()
            rgb_gap = np.linalg.norm(np.subtract(to_rgba(ca)[:3], to_rgba(cb)[:3]))
            if _hue_gap(ca, cb) < 30 or rgb_gap < 0.15:  # near hue, or near-identical
                assert lines[a].get_linestyle() != lines[b].get_linestyle(), (a, b, ca, cb)


def test_q_learning_and_expected_sarsa_get_distinct_hues():
    colours = plots.algo_colors(["q_learning", "sarsa", "expected_sarsa", "double_q"])
    assert _hue_gap(colours["q_learning"], colours["expected_sarsa"]) >= 30


def test_a_registered_algorithm_is_coloured_like_a_builtin_never_grey():
    import colorsys

    import rlcompare
    from rlcompare.viz.style import CONTEXT_GREY

    builtins = rlcompare.algorithms()
    users = ["trpo", "my_agent", "q_lambda", "recurrent_ppo"] + [f"user_{i}" for i in range(30)]
    for name in builtins + users:
        for shown in ([name], [*builtins[:6], name], ["certainty_equivalence", "psrl", name]):
            colour = plots.algo_colors(shown)[name]
            _, _, saturation = colorsys.rgb_to_hls(*colour)
            assert saturation > 0.3 and to_rgba(colour) != to_rgba(CONTEXT_GREY), (name, shown)


def test_saved_figure_is_the_paths_and_shows_no_path_in_a_notebook(figure, tmp_path):
    from IPython.core.formatters import DisplayFormatter

    paths = figures.save_figure(figure, "x", directory=tmp_path, caption="A caption")
    assert paths == [tmp_path / "x.png", tmp_path / "x.pdf"] and paths.caption == "A caption"
    assert DisplayFormatter().format(paths) == ({}, {}), "a notebook displays nothing for it"


def test_colours_do_not_depend_on_what_a_process_imported_first():
    from conftest import run_python

    code = """
        {first}
        from rlcompare.viz.style import algo_colors
        print(algo_colors(["random", "q_learning", "sarsa", "expected_sarsa", "double_q"]))
    """
    plain = run_python(code.format(first="import rlcompare")).stdout
    tabular_first = run_python(code.format(first="import rlcompare.algos.tabular")).stdout
    assert plain == tabular_first
