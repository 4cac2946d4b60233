"""RunSpec validation: every bad input fails before training, naming the value and the choices."""

from __future__ import annotations

import dataclasses

import pytest

import rlcompare
from rlcompare import RunSpec, SpecError


def test_algorithms_sorted_and_include_baselines() -> None:
    names = rlcompare.algorithms()
    assert names == sorted(names)
    assert {"random", "q_learning"} <= set(names)


def test_run_id_is_deterministic_readable_and_depends_on_everything() -> None:
    a = RunSpec("random", "FrozenLake-v1", 3, steps=100)
    assert a.run_id == RunSpec("random", "FrozenLake-v1", 3, steps=100).run_id
    assert a.run_id.startswith("FrozenLake-v1__random__3__")
    assert RunSpec("random", "FrozenLake-v1", 3, steps=101).run_id != a.run_id
    assert RunSpec("random", "FrozenLake-v1", 3, steps=100, experiment="x").run_id != a.run_id
    custom = RunSpec("random", "rlcompare/Chain-v0", 0, steps=10)
    assert "/" not in custom.run_id


def test_explicit_defaults_give_the_same_run_id() -> None:
    plain = RunSpec("q_learning", "FrozenLake-v1", 0, steps=100)
    default_gamma = plain.resolved_hparams["gamma"]
    explicit = RunSpec(
        "q_learning", "FrozenLake-v1", 0, steps=100, hparams={"gamma": default_gamma}
    )
    assert plain.run_id == explicit.run_id


def test_spec_is_immutable() -> None:
    spec = RunSpec("q_learning", "FrozenLake-v1", 0, steps=100, hparams={"alpha": 0.5})
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.seed = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        spec.hparams["alpha"] = 0.1  # type: ignore[index]


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"algo": "q_lerning"}, ["'q_lerning'", "q_learning"]),
        ({"env": "CartPol-v1"}, ["'CartPol-v1'", "CartPole-v1"]),
        ({"hparams": {"alpah": 0.1}}, ["'alpah'", "alpha"]),
        ({"hparams": {"alpha": "big"}}, ["'alpha'", "'big'"]),
        ({"hparams": {"alpha": 0.0}}, ["'alpha'", "0.0", "(0"]),
        ({"hparams": {"gamma": 1.5}}, ["'gamma'", "1.5", "[0, 1]"]),
        ({"hparams": {"epsilon": -0.1}}, ["'epsilon'", "-0.1", "[0, 1]"]),
        ({"steps": 0}, ["steps", "0", "positive"]),
        ({"steps": -5}, ["steps", "-5"]),
        ({"steps": None}, ["exactly one of steps / episodes"]),
        ({"episodes": 10}, ["exactly one of steps / episodes"]),
        ({"eval_episodes": 0}, ["eval_episodes", "0"]),
        ({"seed": -1}, ["seed", "-1"]),
        ({"seed": 1.5}, ["seed", "1.5"]),
        ({"env_kwargs": {"is_slipery": False}}, ["'is_slipery'", "is_slippery"]),
        ({"env": "CartPole-v1"}, ["'q_learning'", "CartPole-v1", "Discrete observation"]),
        ({"algo": "random", "hparams": {"alpha": 0.1}}, ["'alpha'", "'random'"]),
    ],
)
def test_bad_input_is_rejected_with_value_and_choices(kwargs: dict, named: list[str]) -> None:
    base = {"algo": "q_learning", "env": "FrozenLake-v1", "seed": 0, "steps": 100}
    with pytest.raises(SpecError) as info:
        RunSpec(**{**base, **kwargs})
    for text in named:
        assert text in str(info.value), (text, str(info.value))


def test_grid_is_a_cartesian_product_with_swept_lists() -> None:
    specs = rlcompare.grid(["random", "q_learning"], ["FrozenLake-v1"], [0, 1, 2], steps=50)
    assert len(specs) == 6
    swept = rlcompare.grid(
        "q_learning", "FrozenLake-v1", 2, hparams={"alpha": [0.1, 0.5]}, steps=50
    )
    assert sorted((s.seed, s.hparams["alpha"]) for s in swept) == [
        (0, 0.1),
        (0, 0.5),
        (1, 0.1),
        (1, 0.5),
    ]
    assert len({s.run_id for s in swept}) == 4


def test_spec_round_trips_through_dict() -> None:
    spec = RunSpec(
        "q_learning",
        "FrozenLake-v1",
        4,
        episodes=7,
        hparams={"alpha": 0.3},
        env_kwargs={"is_slippery": False},
    )
    assert RunSpec.from_dict(spec.to_dict()) == spec


def test_learning_from_a_dataset_needs_a_steps_budget(tmp_path) -> None:
    path = tmp_path / "logs.npz"
    rlcompare.collect_demonstrations(lambda obs: 1, "FrozenLake-v1", steps=20, seed=0).save(path)
    rlcompare.RunSpec("q_learning", "FrozenLake-v1", 0, steps=5, hparams={"dataset": str(path)})
    with pytest.raises(SpecError, match="episodes=3 with dataset.*steps budget"):
        RunSpec("q_learning", "FrozenLake-v1", 0, episodes=3, hparams={"dataset": str(path)})
    with pytest.raises(SpecError, match="'dataset'.*no such file"):
        RunSpec("q_learning", "FrozenLake-v1", 0, steps=3, hparams={"dataset": "/nope.npz"})


def test_grid_keeps_list_valued_hyperparameters_whole() -> None:
    one = rlcompare.grid("dqn", "CartPole-v1", 1, hparams={"net_arch": [32, 32]}, steps=10)
    assert [s.resolved_hparams["net_arch"] for s in one] == [(32, 32)]
    two = rlcompare.grid("dqn", "CartPole-v1", 1, hparams={"net_arch": [[32], [64, 64]]}, steps=10)
    assert sorted(s.resolved_hparams["net_arch"] for s in two) == [(32,), (64, 64)]
