"""The command line: listings, a run with its summary table, bad input as one line and exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from rlcompare import RunSpec, SpecError
from rlcompare.app.cli import build_parser, main, parse_seeds
from rlcompare.app.suite import PROFILES
from rlcompare.spec.params import parse_params
from rlcompare.spec.registry import get_algorithm
from rlcompare.sweeps.executors import EXECUTORS


def test_parse_seeds() -> None:
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("1,4,7") == [1, 4, 7]
    assert parse_seeds("5") == [5]


def _choices_and_defaults(command: str) -> dict[str, tuple]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    return {a.dest: (a.choices, a.default) for a in sub._actions}


def test_flags_take_their_choices_and_defaults_from_the_library() -> None:
    run, suite = _choices_and_defaults("run"), _choices_and_defaults("suite")
    assert tuple(run["executor"][0]) == tuple(suite["executor"][0]) == EXECUTORS
    assert tuple(suite["profile"][0]) == PROFILES
    assert run["eval_episodes"][1] == RunSpec("random", "CartPole-v1", 0, steps=1).eval_episodes


def test_set_values_are_parsed_by_the_param_table_and_validated_by_runspec() -> None:
    table = get_algorithm("dqn").params
    parsed = parse_params(
        table, {"double": "yes", "net_arch": "32,32", "max_grad_norm": "none", "tau": "1"}, "dqn"
    )
    assert parsed == {"double": True, "net_arch": [32, 32], "max_grad_norm": None, "tau": 1}
    spec = RunSpec("dqn", "CartPole-v1", 0, steps=10, hparams=parsed)
    assert spec.resolved_hparams["net_arch"] == (32, 32) and spec.resolved_hparams["tau"] == 1.0
    with pytest.raises(SpecError, match="unknown hyperparameter 'duble' for algo 'dqn'.*double"):
        parse_params(table, {"duble": "true"}, "dqn")


def test_algos_lists_hyperparameters_with_ranges(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["algos"]) == 0
    out = capsys.readouterr().out
    assert "q_learning" in out and "random" in out
    assert "alpha" in out and "(0, 1]" in out


def test_envs_lists_featured_envs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["envs"]) == 0
    out = capsys.readouterr().out
    assert "rlcompare/DynaMaze-v0" in out and "CartPole-v1" in out


def test_run_prints_a_summary_and_show_reads_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "s"
    run = ["run", "--algo", "random,q_learning", "--env", "FrozenLake-v1", "--seeds", "0-2"]
    run += ["--steps", "300", "--env-set", "is_slippery=false", "--store", str(store)]
    run += ["--executor", "serial", "--quiet"]
    # alpha is not a hyperparameter of random: rejected before anything runs
    assert main([*run, "--set", "alpha=0.2"]) == 2
    assert "'alpha'" in capsys.readouterr().err
    assert not store.exists()
    code = main(run)
    assert code == 0
    out = capsys.readouterr().out
    for text in ("q_learning", "random", "mean_low", "mean_high", "wall_time_s"):
        assert text in out
    assert main(["show", str(store)]) == 0
    assert "6 runs (6 ok)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--algo", "q_lerning"], "q_learning"),
        (["--env", "FrozenLake-v9"], "FrozenLake-v1"),
        (["--set", "gamma=2"], "[0, 1]"),
        (["--set", "alpah=0.1"], "alpha"),
        (["--env-set", "slippery=1"], "is_slippery"),
        (["--seeds", "a-b"], "A-B"),
    ],
)
def test_bad_input_exits_2_with_one_line(args: list[str], named: str, tmp_path: Path) -> None:
    base = {"--algo": "q_learning", "--env": "FrozenLake-v1", "--seeds": "0", "--steps": "10"}
    flags = dict(zip(args[::2], args[1::2], strict=True))
    merged = {**base, **{k: v for k, v in flags.items() if k in base}}
    extra = [x for k, v in flags.items() if k not in base for x in (k, v)]
    argv = [x for kv in merged.items() for x in kv] + extra + ["--store", str(tmp_path / "s")]
    result = subprocess.run(
        [sys.executable, "-m", "rlcompare.app.cli", "run", *argv],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert named in lines[0]


# -- issue 32, item 4: `show` prints its table at once, the intervals on request ---------------
# Hand-made runs have no spec to check against this code: the store says so, rightly.
HAND_MADE = pytest.mark.filterwarnings("ignore::rlcompare.store.results.StaleResultWarning")


def _diverged_store(store: Path) -> None:
    """Two algos on one env, 4 seeds each; a's seed 0 diverged after climbing from -5 to 3
    (worst value -5, last value 3), stored as a sweep stores runs."""
    from test_stats import make_tidy
    from test_trust_stats import with_divergence

    from rlcompare.store.results import write_run

    curves = {("a", "E", s): [(0, float(s)), (10, float(s) + 1)] for s in range(1, 4)}
    curves |= {("b", "E", s): [(0, 0.0), (10, 0.5 * s)] for s in range(4)}
    curves[("a", "E", 0)] = [(0, -5.0), (10, 2.0), (20, 3.0)]
    frame = with_divergence(make_tidy(curves), "E__a__0", 25)
    for run_id, rows in frame.groupby("run_id"):
        # The status lives in the run's metadata, which the store adds as a column on load.
        status = str(rows["status"].iloc[0])
        rows = rows.drop(columns="status")
        write_run(store, rows, {"run_id": run_id, "status": status, "fingerprint": "test"})


def _table(out: str) -> dict[str, dict[str, str]]:
    """The rows of the table `show` printed, by algo: {column: text}."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["env", "algo"])
    header = lines[start].split()
    rows = {}
    for line in lines[start + 1 :]:
        cells = line.split()
        if len(cells) != len(header):
            break
        rows[cells[1]] = dict(zip(header, cells, strict=True))
    return rows


@HAND_MADE
def test_show_prints_points_without_intervals_by_default_and_with_them_under_ci(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rlcompare.analysis import stats
    from rlcompare.store.results import load_results

    store = tmp_path / "s"
    _diverged_store(store)
    assert main(["show", str(store)]) == 0
    out = capsys.readouterr().out
    assert "8 runs (1 diverged, 7 ok)" in out
    table = _table(out)
    assert set(table) == {"a", "b"} and "mean_low" not in out and "mean_high" not in out
    assert "point estimates without intervals" in out and "--ci" in out
    # The points are stats.summary's, whose intervals --ci adds.
    points = stats.summary(load_results(store), by=["env", "algo"], reps=50).set_index("algo")
    for algo in ("a", "b"):
        for column in ("runs", "mean", "iqm"):
            assert float(table[algo][column]) == pytest.approx(points.loc[algo, column], abs=5e-4)
    assert main(["show", str(store), "--ci", "--reps", "300"]) == 0
    out = capsys.readouterr().out
    table = _table(out)
    assert "300 replications" in out and "without intervals" not in out
    for algo in ("a", "b"):
        low, mean, high = (float(table[algo][c]) for c in ("mean_low", "mean", "mean_high"))
        assert low <= mean <= high and low < high
    assert main(["show", str(store), "--reps", "0"]) == 2
    assert "--reps 0" in capsys.readouterr().err


@HAND_MADE
def test_show_counts_a_diverged_run_at_its_worst_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "s"
    _diverged_store(store)
    # a: seed 0 at its worst value -5 (not its last value 3), seeds 1-3 at 2, 3, 4.
    for flags in ([], ["--ci", "--reps", "100"]):
        assert main(["show", str(store), *flags]) == 0
        table = _table(capsys.readouterr().out)
        assert float(table["a"]["mean"]) == pytest.approx((-5 + 2 + 3 + 4) / 4, abs=5e-4)
        assert float(table["a"]["iqm"]) == pytest.approx((2 + 3) / 2, abs=5e-4)
        assert float(table["b"]["mean"]) == pytest.approx(0.75, abs=5e-4)


@HAND_MADE
def test_show_without_ci_does_not_import_the_bootstrap(tmp_path: Path) -> None:
    store = tmp_path / "s"
    _diverged_store(store)
    code = (
        "import sys; from rlcompare.app.cli import main; main(['show', sys.argv[1]]); "
        "print(sorted(m for m in ('rliable', 'scipy.stats', 'torch', 'matplotlib') "
        "if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(store)], capture_output=True, text=True, cwd=REPO
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"
