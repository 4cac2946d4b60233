"""The algorithm registry: one way to register, built-ins included; clear errors for clashes."""

from __future__ import annotations

import gymnasium as gym
import pytest

import rlcompare
from rlcompare import RunSpec, SpecError
from rlcompare.spec import registry
from rlcompare.spec.params import Param
from rlcompare.spec.registry import any_spaces, get_algorithm, register_algorithm

RANDOM_TRAINER = "rlcompare.algos.baselines:train_random"


@pytest.fixture(autouse=True)
def scratch_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test registers into a copy, so its algorithms do not leak into other tests."""
    registry.algorithms()  # built-ins first
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def _discrete_only(obs: gym.Space, act: gym.Space) -> str | None:
    return None if isinstance(act, gym.spaces.Discrete) else f"needs Discrete actions, got {act}"


def _declare(name: str = "coin", **changes):
    declaration = {
        "trainer": RANDOM_TRAINER,
        "params": {"bias": Param(0.5, "float", "probability of action 0", low=0, high=1)},
        "summary": "a user's algorithm",
        "spaces": _discrete_only,
    }
    return register_algorithm(name, **{**declaration, **changes})


def test_a_registered_algorithm_is_validated_and_runs_like_a_built_in() -> None:
    algorithm = _declare()
    assert get_algorithm("coin") is algorithm and "coin" in rlcompare.algorithms()
    assert algorithm.family == "custom"
    assert rlcompare.algorithms(order="registered")[-1] == "coin"  # after the built-ins
    spec = RunSpec("coin", "FrozenLake-v1", 0, steps=30, hparams={"bias": 0.2})
    assert spec.resolved_hparams["bias"] == 0.2
    with pytest.raises(SpecError, match=r"'bias'.*\[0, 1\]"):
        RunSpec("coin", "FrozenLake-v1", 0, steps=30, hparams={"bias": 2.0})
    with pytest.raises(SpecError, match="coin.*Pendulum-v1.*Discrete actions"):
        RunSpec("coin", "Pendulum-v1", 0, steps=30)
    result = rlcompare.run(spec)
    assert result.status == "ok"


def _cell_defined_check():
    """A space check as a notebook cell defines it: a new function object on every run."""

    def check(obs: gym.Space, act: gym.Space) -> str | None:
        return None

    return check


def test_the_same_definition_twice_is_fine_a_different_one_names_the_clash() -> None:
    first = _declare()
    assert _declare() == first  # a re-imported module
    rerun = [_declare("cell", spaces=_cell_defined_check()) for _ in range(2)]  # a re-run cell
    assert rerun[0].check_spaces is not rerun[1].check_spaces
    assert get_algorithm("cell") is rerun[1]  # the latest definition serves
    with pytest.raises(ValueError, match="'coin' is already registered with a different summary"):
        _declare(summary="something else")
    with pytest.raises(ValueError, match="'coin'.*different params"):
        _declare(params={})
    with pytest.raises(ValueError, match="'random' is already registered.*trainer"):
        register_algorithm(
            "random", trainer="mypkg:train", params={}, summary=get_algorithm("random").summary,
            spaces=any_spaces, family="baseline",
        )  # fmt: skip
    assert get_algorithm("coin") == first  # the clashes changed nothing


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"trainer": "mypkg.train"}, ["trainer", "'mypkg.train'", "module:function"]),
        ({"batch_trainer": "a:b:c"}, ["batch_trainer", "'a:b:c'", "module:function"]),
        ({"params": {"bias": 0.5}}, ["params['bias']", "Param"]),
        ({"spaces": "discrete"}, ["spaces", "not callable"]),
        ({"family": "neural"}, ["family", "'neural'", "baseline, tabular, deep, custom"]),
    ],
)
def test_a_malformed_declaration_is_refused_naming_what_is_wrong(changes, words) -> None:
    with pytest.raises(ValueError) as error:
        _declare("broken", **changes)
    for word in words:
        assert word in str(error.value)
    assert "broken" not in registry._REGISTRY


def test_every_built_in_is_declared_the_same_way() -> None:
    families = {}
    for name in rlcompare.algorithms(order="registered"):
        algorithm = get_algorithm(name)
        module, _, function = algorithm.trainer.partition(":")
        assert module.startswith("rlcompare.algos.") and function, name
        assert callable(algorithm.check_spaces), name
        families.setdefault(algorithm.family, []).append(name)
    assert families["baseline"] == ["random"]
    assert {"q_learning", "sarsa", "dyna_q"} <= set(families["tabular"])
    assert {"dqn", "sb3_dqn", "ppo", "bc", "sac", "mpc"} == set(families["deep"])
    # Every algorithm that learns from a dataset checks it when the spec is built.
    takes_dataset = [n for n in rlcompare.algorithms() if "dataset" in get_algorithm(n).params]
    assert {"q_learning", "dqn", "bc"} <= set(takes_dataset)
    assert all(get_algorithm(n).check_spec is not None for n in takes_dataset)
