"""run(): the tidy schema, the eval schedule, budgets, and determinism across processes."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest
from conftest import run_python, without_wall_time

import rlcompare
from rlcompare import RunSpec

SCHEMA = ["experiment", "run_id", "algo", "env", "seed", "step", "episode", "metric", "value"]


@pytest.mark.parametrize("algo", ["random", "q_learning"])
def test_run_produces_the_tidy_schema(algo: str) -> None:
    spec = RunSpec(
        algo,
        "FrozenLake-v1",
        1,
        steps=400,
        eval_every=100,
        eval_episodes=5,
        env_kwargs={"is_slippery": False},
        experiment="schema",
    )
    result = rlcompare.run(spec)
    frame = result.frame
    assert result.status == "ok"
    assert list(frame.columns[: len(SCHEMA)]) == SCHEMA
    assert (frame["run_id"] == spec.run_id).all() and (frame["experiment"] == "schema").all()
    assert "env.is_slippery" in frame.columns
    assert all(f"hp.{name}" in frame.columns for name in spec.resolved_hparams)
    metrics = set(frame["metric"])
    assert {
        "episode_return",
        "episode_length",
        "eval_return",
        "success_rate",
        "wall_time_s",
        "env_steps_per_s",
    } <= metrics
    evals = frame[frame["metric"] == "eval_return"]
    assert list(evals["step"]) == [0, 100, 200, 300, 400]
    episodes = frame[frame["metric"] == "episode_length"]
    assert episodes["episode"].tolist() == list(range(1, len(episodes) + 1))
    # the cumulative step of each episode is the running sum of the episode lengths
    assert episodes["step"].tolist() == episodes["value"].cumsum().astype(int).tolist()
    assert frame["episode"].isna().sum() == (~frame["metric"].str.startswith("episode_")).sum()


def test_episode_budget_is_exact() -> None:
    result = rlcompare.run(
        RunSpec("random", "CliffWalking-v1", 0, episodes=7, env_kwargs={"max_episode_steps": 50})
    )
    lengths = result.frame[result.frame["metric"] == "episode_length"]
    assert len(lengths) == 7


def test_same_spec_same_rows_in_two_fresh_processes(tmp_path) -> None:
    code = """
        import sys, rlcompare
        spec = rlcompare.RunSpec("{algo}", "FrozenLake-v1", 5, steps=3000, eval_every=1000)
        rlcompare.run(spec).frame.to_parquet(sys.argv[-1] if False else "{out}")
    """
    frames = []
    for index in range(2):
        for algo in ("random", "q_learning"):
            out = tmp_path / f"{algo}{index}.parquet"
            run_python(code.format(algo=algo, out=out))
        frames.append(
            pd.concat(
                [
                    pd.read_parquet(tmp_path / f"{a}{index}.parquet")
                    for a in ("random", "q_learning")
                ]
            )
        )
    pd.testing.assert_frame_equal(without_wall_time(frames[0]), without_wall_time(frames[1]))


def test_import_is_light() -> None:
    out = run_python(
        "import sys, rlcompare; rlcompare.algorithms(); "
        "print(sorted(m for m in ('torch', 'stable_baselines3', 'ray') if m in sys.modules))"
    )
    assert out.stdout.strip() == "[]"


def test_run_batch_of_mixed_specs_equals_each_run_alone() -> None:
    # Different env kwargs, algorithms and hyperparameters in one call: each result must be
    # the run of its own spec (a batch trainer only ever sees seed-only-differing specs).
    specs = [
        *rlcompare.grid(
            "q_learning", "rlcompare/DeepSea-v0", 2, env_kwargs={"size": [4, 6]}, episodes=30
        ),
        *rlcompare.grid("sarsa", "FrozenLake-v1", 2, hparams={"alpha": [0.1, 0.5]}, steps=300),
        rlcompare.RunSpec("random", "FrozenLake-v1", 0, steps=100),
    ]
    batch = rlcompare.run_batch(specs[::-1])[::-1]
    assert [result.spec for result in batch] == specs
    for spec, result in zip(specs, batch, strict=True):
        alone = rlcompare.run(spec).frame
        pd.testing.assert_frame_equal(without_wall_time(result.frame), without_wall_time(alone))


def test_wall_time_of_a_batched_run_counts_only_its_own_training(monkeypatch) -> None:
    # A fake clock that ticks once per reading: a run's wall_time_s then counts the readings
    # since its own start, the same alone as third in a batch (it counted the whole batch).
    ticks = iter(range(10**6))
    monkeypatch.setattr(
        rlcompare.runner.context, "time", SimpleNamespace(perf_counter=lambda: next(ticks))
    )
    specs = rlcompare.grid("q_learning", "FrozenLake-v1", 3, steps=300, eval_every=100)

    def wall_times(frame: pd.DataFrame) -> list[float]:
        return frame.loc[frame["metric"] == "wall_time_s", "value"].tolist()

    batch = rlcompare.run_batch(specs)
    for spec, result in zip(specs, batch, strict=True):
        assert wall_times(result.frame) == wall_times(rlcompare.run(spec).frame)
