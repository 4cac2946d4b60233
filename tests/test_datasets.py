"""Offline datasets: a dataset is accepted only by specs of the env settings it was logged on."""

from __future__ import annotations

from pathlib import Path

import pytest

import rlcompare
from rlcompare import RunSpec, SpecError

LAKE = "FrozenLake-v1"
# Every algorithm that takes a `dataset` hyperparameter, with a budget it accepts.
OFFLINE = ("q_learning", "expected_sarsa", "double_q", "dqn", "bc")


@pytest.fixture(scope="module")
def deterministic_lake_logs(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Logs of FrozenLake collected with ``is_slippery=False``."""
    path = tmp_path_factory.mktemp("logs") / "lake_not_slippery.npz"
    rlcompare.collect_demonstrations(
        lambda obs: 2, LAKE, steps=40, seed=0, env_kwargs={"is_slippery": False}
    ).save(path)
    return str(path)


@pytest.mark.parametrize("algo", OFFLINE)
@pytest.mark.parametrize("env_kwargs", [{"is_slippery": True}, {}])
def test_a_dataset_of_other_env_kwargs_is_refused_when_the_spec_is_built(
    algo: str, env_kwargs: dict, deterministic_lake_logs: str
) -> None:
    # {} means the registered default, is_slippery=True: also not what the data was logged on.
    with pytest.raises(SpecError) as error:
        RunSpec(
            algo,
            LAKE,
            0,
            steps=10,
            env_kwargs=env_kwargs,
            hparams={"dataset": deterministic_lake_logs},
        )
    message = str(error.value)
    for word in ("'is_slippery'", "False", "True", deterministic_lake_logs):
        assert word in message, (word, message)


@pytest.mark.parametrize("algo", OFFLINE)
def test_a_dataset_of_the_same_env_settings_is_accepted(
    algo: str, deterministic_lake_logs: str
) -> None:
    spec = RunSpec(
        algo,
        LAKE,
        0,
        steps=10,
        env_kwargs={"is_slippery": False},
        hparams={"dataset": deterministic_lake_logs},
    )
    # The spec holds the logs' content identity, the one recorded in the file.
    identity = rlcompare.Dataset.load(deterministic_lake_logs).content_id
    assert identity.startswith("sha256:")
    assert spec.resolved_hparams["dataset"] == identity


def test_explicit_defaults_match_a_dataset_logged_without_kwargs(tmp_path: Path) -> None:
    path = tmp_path / "lake_default.npz"
    rlcompare.collect_demonstrations(lambda obs: 1, LAKE, steps=20, seed=0).save(path)
    for kwargs in ({}, {"is_slippery": True, "map_name": "4x4"}):
        RunSpec("q_learning", LAKE, 0, steps=5, env_kwargs=kwargs, hparams={"dataset": str(path)})
    with pytest.raises(SpecError, match=r"'map_name'.*'4x4'.*'8x8'"):
        RunSpec(
            "q_learning",
            LAKE,
            0,
            steps=5,
            env_kwargs={"map_name": "8x8"},
            hparams={"dataset": str(path)},
        )


@pytest.mark.parametrize("algo", ["q_learning", "dqn", "bc"])
def test_a_dataset_of_another_env_is_refused_when_the_spec_is_built(
    algo: str, deterministic_lake_logs: str
) -> None:
    with pytest.raises(SpecError, match=r"logged on env 'FrozenLake-v1'.*'FrozenLake8x8-v1'"):
        RunSpec(algo, "FrozenLake8x8-v1", 0, steps=10, hparams={"dataset": deterministic_lake_logs})


def test_the_same_logs_in_another_folder_give_the_same_run_id(tmp_path: Path) -> None:
    logs = rlcompare.collect_demonstrations(lambda obs: 1, LAKE, steps=30, seed=0)
    first, moved = logs.save(tmp_path / "a" / "logs.npz"), logs.save(tmp_path / "b" / "x.npz")
    ids = [
        RunSpec("q_learning", LAKE, 0, steps=5, hparams={"dataset": str(path)}).run_id
        for path in (first, moved)
    ]
    assert ids[0] == ids[1]
    other = rlcompare.collect_demonstrations(lambda obs: 2, LAKE, steps=30, seed=0)
    other_id = RunSpec(
        "q_learning", LAKE, 0, steps=5, hparams={"dataset": str(other.save(tmp_path / "c.npz"))}
    ).run_id
    assert other_id != ids[0]


def test_an_altered_file_is_refused_with_its_name(tmp_path: Path) -> None:
    import json

    import numpy as np

    path = tmp_path / "logs.npz"
    rlcompare.collect_demonstrations(lambda obs: 1, LAKE, steps=30, seed=0).save(path)
    with np.load(path) as data:
        members = {name: data[name] for name in data.files}
    members["rewards"] = members["rewards"] + 1.0  # edited, metadata kept
    np.savez_compressed(path, **members)
    with pytest.raises(SpecError, match=rf"{path.name}.*altered"):
        RunSpec("q_learning", LAKE, 0, steps=5, hparams={"dataset": str(path)})
    # A file saved before content ids (no content_id in its metadata) is hashed on first use.
    meta = json.loads(str(members["meta"]))
    meta.pop("content_id")
    members["meta"] = np.array(json.dumps(meta))
    np.savez_compressed(path, **members)
    spec = RunSpec("q_learning", LAKE, 0, steps=5, hparams={"dataset": str(path)})
    assert spec.resolved_hparams["dataset"].startswith("sha256:")


def test_a_worker_loads_shipped_bytes_without_the_file(tmp_path: Path) -> None:
    from rlcompare.envs import datasets

    logs = rlcompare.collect_demonstrations(lambda obs: 3, LAKE, steps=25, seed=1)
    blob = logs.save(tmp_path / "gone.npz").read_bytes()
    (tmp_path / "gone.npz").unlink()
    unknown = "sha256:" + "0" * 64
    with pytest.raises(SpecError, match="did not travel with this task"):
        datasets.load_dataset(unknown)
    datasets.provide_datasets([(logs.content_id, blob)])
    loaded = datasets.load_dataset(logs.content_id)
    assert loaded.content_id == logs.content_id and len(loaded) == 25
