"""``dqn``'s stacked batch trainer: a batch of seeds gives each seed its single-run rows, bit
for bit, in every variant; specs that differ in more than the seed are never mixed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import without_wall_time

import rlcompare
from rlcompare import RunSpec
from rlcompare.algos.deep import stacked, stacked_trainer
from rlcompare.spec.registry import get_algorithm

SEEDS = (0, 1, 2)
# Small and short, but every phase of a run: random warm-up, training with several gradient
# steps per phase, target syncs, epsilon decay, several evaluations.
BASE = {
    "learning_starts": 60,
    "batch_size": 16,
    "train_freq": 2,
    "gradient_steps": 2,
    "target_update_interval": 40,
    "exploration_fraction": 0.5,
    "net_arch": [32, 32],
    "learning_rate": 1e-2,
}

VARIANTS = {
    "plain": {},
    "one_step_per_env_step": {"train_freq": 1, "gradient_steps": 1, "batch_size": 64},
    "double": {"double": True},
    "dueling": {"dueling": True},
    "n_step": {"n_steps": 3},
    "prioritized": {"prioritized": True},
    "noisy": {"noisy": True},
    "boltzmann": {"exploration": "boltzmann"},
    "no_target_network": {"target_network": False},
    "no_replay": {"replay": False},
    # Training from the second step: a first phase of 1-3 distinct next observations (a
    # product of so few rows rounds differently: those seeds' targets go alone).
    "early_start": {"learning_starts": 1, "batch_size": 2, "net_arch": [256, 256]},
    "early_start_dueling": {
        "learning_starts": 1,
        "batch_size": 3,
        "dueling": True,
        "net_arch": [256, 256],
    },
    # Products under 400 multiply-adds, which torch's bmm rounds its own way: seed by seed.
    "tiny_network": {"net_arch": [16], "batch_size": 4},
    "polyak_and_all_steps": {"tau": 0.1, "target_update_interval": 1, "gradient_steps": -1},
    "everything": {
        "double": True,
        "dueling": True,
        "n_steps": 3,
        "prioritized": True,
        "noisy": True,
    },
}


def _specs(hparams: dict, env: str = "CartPole-v1", seeds=SEEDS, **budget: int) -> list[RunSpec]:
    budget = budget or {"steps": 300}
    return [
        RunSpec(
            "dqn", env, seed, eval_every=100, eval_episodes=2, hparams={**BASE, **hparams}, **budget
        )
        for seed in seeds
    ]


def _probe(env: str) -> list:
    space = rlcompare.envs.make.env_info(env, {}).observation_space
    space.seed(0)
    return [space.sample() for _ in range(32)]


@pytest.fixture
def paths(monkeypatch) -> dict[str, int]:
    """Counts the gradient steps run stacked and the phases run seed by seed."""
    calls = {"stacked": 0, "one_by_one": 0}

    def counted(name: str, fn):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)

        return wrapper

    trainer = stacked.StackedTrainer
    monkeypatch.setattr(trainer, "_step", counted("stacked", trainer._step))
    monkeypatch.setattr(trainer, "_one_by_one", counted("one_by_one", trainer._one_by_one))
    return calls


def _assert_batch_equals_alone(specs: list[RunSpec]) -> list[rlcompare.RunResult]:
    batch = rlcompare.run_batch(specs)
    probe = _probe(specs[0].env)
    for spec, result in zip(specs, batch, strict=True):
        alone = rlcompare.run(spec)
        assert result.status == alone.status
        pd.testing.assert_frame_equal(
            without_wall_time(result.frame), without_wall_time(alone.frame)
        )
        if result.agent is None:
            continue
        mine, theirs = result.agent.learner, alone.agent.learner
        assert torch.equal(mine.params, theirs.params)
        assert not result.agent.defer_training  # it trains on alone, as a single run's agent
        assert mine.gradient_steps == theirs.gradient_steps > 0
        assert [result.agent.greedy_action(obs) for obs in probe] == [
            alone.agent.greedy_action(obs) for obs in probe
        ]
    return batch


def test_dqn_registers_the_stacked_batch_trainer() -> None:
    assert get_algorithm("dqn").batch_trainer == "rlcompare.algos.deep.stacked_trainer:train_batch"


def test_a_batch_trains_one_stacked_model(paths) -> None:
    # Every gradient step of the batch is one stacked step (phases after step 60, every 2
    # env steps, 2 gradient steps each), none seed by seed.
    rlcompare.run_batch(_specs({}))
    assert paths == {"stacked": (300 - 60) // 2 * 2, "one_by_one": 0}


def test_the_seeds_of_a_batch_record_their_shares_of_its_wall_time() -> None:
    """Per-run costs add up to the time spent, so a stacked seed compares with a run alone
    (before, every seed recorded the whole batch's time: 4 seeds summed to ~4x it). No time
    threshold: each share is at most the batch's time over its seeds, by construction."""
    import time

    specs = _specs({"train_freq": 1, "gradient_steps": 1}, seeds=(0, 1, 2, 3), steps=800)
    began = time.perf_counter()
    batch = rlcompare.run_batch(specs)
    spent = time.perf_counter() - began
    walls = [r.frame.loc[r.frame["metric"] == "wall_time_s", "value"].iloc[-1] for r in batch]
    assert sum(walls) <= spent
    assert all(0 < wall <= spent / len(specs) for wall in walls)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_each_seed_of_a_stacked_batch_is_its_run_alone(variant: str, paths) -> None:
    _assert_batch_equals_alone(_specs(VARIANTS[variant]))
    assert paths["stacked"] > 0


def test_discrete_observations_and_an_episodes_budget(paths) -> None:
    # Seeds finish their episodes at different steps: the rest go on without them.
    _assert_batch_equals_alone(_specs({"learning_starts": 30}, env="FrozenLake-v1", episodes=40))
    assert paths["stacked"] > 0 and paths["one_by_one"] > 0


def test_offline_from_a_dataset(tmp_path, paths) -> None:
    expert = lambda obs: int(obs[2] + 0.5 * obs[3] > 0)  # noqa: E731
    demos = rlcompare.collect_demonstrations(expert, "CartPole-v1", steps=300, seed=0, epsilon=0.2)
    path = str(demos.save(tmp_path / "demos.npz"))
    for extra in ({}, {"prioritized": True, "n_steps": 3, "double": True}):
        _assert_batch_equals_alone(_specs({"dataset": path, **extra}, steps=150))
    assert paths == {"stacked": 2 * 150, "one_by_one": 0}


def test_a_seed_that_diverges_leaves_the_others_as_they_run_alone(paths) -> None:
    # At this learning rate seed 1 diverges at step 230 here and seeds 0 and 2 do not: the
    # batch drops seed 1 and trains the others on, each still its run alone.
    hparams = {"learning_rate": 3e11, "max_grad_norm": None, "gamma": 0.99}
    batch = _assert_batch_equals_alone(_specs(hparams, steps=400))
    assert {result.status for result in batch} == {"ok", "diverged"}
    assert paths["stacked"] > 0 and paths["one_by_one"] > 0


def test_mixed_specs_are_never_stacked_together(monkeypatch) -> None:
    # Two hyperparameter settings and two envs, seeds interleaved: run_batch groups by
    # everything but the seed, and each batch trainer call sees one setting only.
    seen = []
    original = stacked_trainer.train_batch

    def spy(ctxs):
        seen.append({rlcompare.runner.runs.seed_batch_key(ctx.spec) for ctx in ctxs})
        return original(ctxs)

    monkeypatch.setattr(stacked_trainer, "train_batch", spy)
    specs = [
        *_specs({}, steps=200),
        *_specs({"double": True, "learning_rate": 3e-3}, steps=200),
        *_specs({}, env="FrozenLake-v1", steps=200),
    ]
    order = list(np.random.default_rng(0).permutation(len(specs)))
    shuffled = [specs[i] for i in order]
    batch = rlcompare.run_batch(shuffled)
    assert len(seen) == 3 and all(len(keys) == 1 for keys in seen)
    for spec, result in zip(shuffled, batch, strict=True):
        assert result.spec == spec
        pd.testing.assert_frame_equal(
            without_wall_time(result.frame), without_wall_time(rlcompare.run(spec).frame)
        )


def test_a_sweep_stacks_its_seeds_and_stores_each_runs_own_rows(tmp_path, paths) -> None:
    # No change to the user's code: a sweep hands the seeds to the batch trainer together.
    specs = _specs({"prioritized": True}, steps=200)
    frame = rlcompare.sweep(specs, tmp_path, executor="serial", progress=False)
    assert paths["stacked"] > 0 and paths["one_by_one"] == 0
    for spec in specs:
        stored = frame[frame["run_id"] == spec.run_id].drop(columns="status", errors="ignore")
        alone = rlcompare.run(spec).frame
        pd.testing.assert_frame_equal(
            without_wall_time(stored)[list(alone.columns)].reset_index(drop=True),
            without_wall_time(alone),
            check_dtype=False,
        )
