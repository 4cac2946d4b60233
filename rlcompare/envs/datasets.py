"""Logged transitions: collect them from any policy, save, load, learn from them offline.

A dataset is known to runs by its content, not by where its file lives: ``content_id`` (a
``"sha256:<hex>"`` digest of its arrays and env settings) is recorded in the file when it is
saved and is what a RunSpec holds, so the same logs give the same run id in any folder. The
driver resolves a path to that identity once (:func:`resolve_dataset`, which also keeps a
process-local catalogue identity -> path); a worker gets the bytes with its task
(:func:`provide_datasets`) and opens no driver-side path. Every loader goes through
:func:`load_dataset`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from rlcompare.envs.make import effective_env_kwargs, make_env
from rlcompare.errors import SpecError
from rlcompare.seeding import RunSeeds

_ARRAYS = ("observations", "actions", "rewards", "next_observations", "terminated", "truncated")
CONTENT_PREFIX = "sha256:"
# Fields of the stored metadata that are Dataset attributes (content_id is derived).
_META_FIELDS = ("env", "env_kwargs", "source")


@dataclass(frozen=True)
class Dataset:
    """Transitions logged by one policy on one env (arrays share their first dimension N).

    Attributes:
        observations: (N, *obs_shape) observations (int indices for Discrete spaces).
        actions: (N, *act_shape) actions taken.
        rewards: (N,) rewards.
        next_observations: (N, *obs_shape) observations after each action.
        terminated: (N,) bool, the episode ended in a terminal state (no bootstrapping).
        truncated: (N,) bool, the episode was cut by a time limit (bootstrap through it).
        episode_returns: (E,) undiscounted return of each finished episode: the
            demonstrator's own score.
        env: Env id the data came from.
        env_kwargs: Its kwargs.
        source: Free text naming the policy that produced the data.
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    episode_returns: np.ndarray
    env: str
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""

    def __len__(self) -> int:
        return len(self.rewards)

    @property
    def mean_return(self) -> float:
        """The demonstrator's mean episode return (NaN when no episode finished)."""
        return float(np.mean(self.episode_returns)) if len(self.episode_returns) else float("nan")

    @cached_property
    def content_id(self) -> str:
        """``"sha256:<hex>"`` of the arrays (dtype, shape, bytes) and the env settings: the
        dataset's identity in a RunSpec. It does not depend on the file (zip timestamps,
        compression), so the same logs saved twice, or moved, keep their identity."""
        digest = hashlib.sha256()
        meta = {"env": self.env, "env_kwargs": dict(self.env_kwargs), "source": self.source}
        digest.update(json.dumps(meta, sort_keys=True, default=str).encode())
        for name in (*_ARRAYS, "episode_returns"):
            array = np.ascontiguousarray(getattr(self, name))
            digest.update(f"|{name}|{array.dtype.str}|{array.shape}|".encode())
            digest.update(array.tobytes())
        return CONTENT_PREFIX + digest.hexdigest()

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Writes an ``.npz`` atomically (temporary file, fsync, rename), its ``content_id``
        recorded in the metadata."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "env": self.env,
            "env_kwargs": dict(self.env_kwargs),
            "source": self.source,
            "content_id": self.content_id,
        }
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as handle:
            np.savez_compressed(
                handle,
                episode_returns=self.episode_returns,
                meta=np.array(json.dumps(meta)),
                **{name: getattr(self, name) for name in _ARRAYS},
            )
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Dataset:
        """Reads a file written by ``save`` (any version) and checks it was not altered since.

        Raises:
            SpecError: no such file, or its content no longer matches its recorded content_id.
        """
        path = Path(path)
        if not path.is_file():
            raise SpecError(f"dataset file {str(path)!r} does not exist")
        return cls.from_bytes(path.read_bytes(), name=str(path))

    @classmethod
    def from_bytes(cls, blob: bytes, name: str = "<bytes>") -> Dataset:
        """Reads the bytes of a file written by ``save``; ``name`` is used in errors."""
        with np.load(io.BytesIO(blob), allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            arrays = {key: data[key] for key in _ARRAYS}
            returns = data["episode_returns"]
        dataset = cls(
            **arrays, episode_returns=returns, **{k: meta[k] for k in _META_FIELDS if k in meta}
        )
        recorded = meta.get("content_id")  # files saved before content ids have none
        if recorded is not None and recorded != dataset.content_id:
            raise SpecError(
                f"dataset file {name!r} was altered since it was saved: its content is "
                f"{dataset.content_id}, its metadata records {recorded}; valid: the file as "
                "Dataset.save wrote it (save the logs again)"
            )
        return dataset


# Process-local state. The driver's catalogue maps identities it resolved to their files;
# a worker's shipped blobs and parsed datasets come from the tasks it was given.
_CATALOGUE: dict[str, Path] = {}
_RESOLVED: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> content_id
_SHIPPED: dict[str, bytes] = {}
_LOADED: dict[str, Dataset] = {}


def is_content_id(value: Any) -> bool:
    """Whether ``value`` is a dataset identity (``"sha256:<64 hex>"``) rather than a path."""
    return (
        isinstance(value, str)
        and value.startswith(CONTENT_PREFIX)
        and len(value) == len(CONTENT_PREFIX) + 64
    )


def resolve_dataset(ref: str | os.PathLike[str]) -> str:
    """The content_id of a dataset named by path (or by an identity this process knows),
    recorded in the catalogue so that the driver can ship it to workers.

    A file is read and checked once per (path, size, mtime): building a grid of many specs
    on one file hashes it once.

    Raises:
        SpecError: a missing or altered file (named), or an identity this process never saw.
    """
    if is_content_id(ref):
        if ref in _CATALOGUE or ref in _SHIPPED or ref in _LOADED:
            return str(ref)
        raise SpecError(
            f"dataset {ref!r} is not known in this process; valid: the path of a file written "
            "by rlcompare.Dataset.save (its identity is computed from it)"
        )
    path = Path(ref)
    if not path.is_file():
        raise SpecError(
            f"hyperparameter 'dataset' = {str(ref)!r}: no such file; valid: a path written by "
            "rlcompare.Dataset.save, or None"
        )
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    identity = _RESOLVED.get(key)
    if identity is None:
        dataset = Dataset.load(path)
        identity = dataset.content_id
        _RESOLVED[key] = identity
        _LOADED.setdefault(identity, dataset)
    _CATALOGUE[identity] = path.resolve()
    return identity


def dataset_bytes(identity: str) -> bytes:
    """The bytes to ship to workers for a dataset this process resolved."""
    if identity in _SHIPPED:
        return _SHIPPED[identity]
    path = _CATALOGUE.get(identity)
    if path is None:
        resolve_dataset(identity)  # raises: unknown here
    blob = Path(path).read_bytes()  # type: ignore[arg-type]
    if Dataset.from_bytes(blob, str(path)).content_id != identity:
        raise SpecError(
            f"dataset file {str(path)!r} changed since the sweep was planned: its content no "
            f"longer is {identity}; valid: leave logs unchanged while a sweep runs"
        )
    return blob


def provide_datasets(blobs: Iterable[tuple[str, bytes]]) -> None:
    """Makes shipped datasets (``(identity, file bytes)`` pairs) loadable in this process."""
    for identity, blob in blobs:
        _SHIPPED.setdefault(identity, blob)


def load_dataset(ref: str | os.PathLike[str]) -> Dataset:
    """The Dataset a run names: by identity from what its task carried, else from the
    driver's catalogue; a path is resolved first. Parsed once per process.

    Raises:
        SpecError: naming the dataset when it is unknown here, missing or altered.
    """
    identity = str(ref) if is_content_id(ref) else resolve_dataset(ref)
    dataset = _LOADED.get(identity)
    if dataset is not None:
        return dataset
    if identity in _SHIPPED:
        dataset = Dataset.from_bytes(_SHIPPED[identity], identity)
    elif identity in _CATALOGUE:
        dataset = Dataset.load(_CATALOGUE[identity])
    else:
        raise SpecError(
            f"dataset {identity!r} did not travel with this task and is not in this process's "
            "catalogue; valid: run it through rlcompare.sweep (which ships it), or name its "
            "file by path"
        )
    if dataset.content_id != identity:
        raise SpecError(
            f"dataset {identity!r}: the file found for it now holds {dataset.content_id}; "
            "valid: leave logs unchanged while a sweep runs"
        )
    _LOADED[identity] = dataset
    return dataset


def logged_env(path: str | os.PathLike[str]) -> tuple[str, dict[str, Any]]:
    """``(env id, env kwargs)`` a dataset (path or identity) was logged on.

    Raises:
        SpecError: no such file, or an unknown identity.
    """
    dataset = load_dataset(path)
    return dataset.env, dict(dataset.env_kwargs or {})


def check_logged_on(
    path: str | os.PathLike[str], env_id: str, env_kwargs: Mapping[str, Any] | None = None
) -> None:
    """Refuses a dataset logged on another env, or on the same env with other settings:
    learning from it would score one MDP's data against another's evaluation.

    Settings are compared in full (constructor defaults and the registered step limit
    included), so ``{}`` and the defaults spelled out are the same settings.

    Raises:
        SpecError: naming the env id, or each differing kwarg with both values.
    """
    logged_id, logged_kwargs = logged_env(path)
    if logged_id != env_id:
        raise SpecError(
            f"dataset {str(path)!r} was logged on env {logged_id!r}; valid: a dataset of env "
            f"{env_id!r}"
        )
    logged = effective_env_kwargs(logged_id, logged_kwargs)
    wanted = effective_env_kwargs(env_id, env_kwargs)
    differ = [
        f"{name!r}: dataset {logged.get(name)!r}, spec {wanted.get(name)!r}"
        for name in sorted({*logged, *wanted})
        if logged.get(name) != wanted.get(name)
    ]
    if differ:
        raise SpecError(
            f"dataset {str(path)!r} was logged on env {env_id!r} with other settings ("
            + "; ".join(differ)
            + f"); valid: env_kwargs matching the dataset's {logged_kwargs!r}, or a dataset "
            "logged with these env_kwargs"
        )


def as_policy(policy: Any) -> Callable[[Any], Any]:
    """Turns an agent, a run result, an SB3 model or a callable into ``obs -> action``."""
    policy = getattr(policy, "agent", policy)  # a RunResult
    if hasattr(policy, "greedy_action"):
        return policy.greedy_action
    if hasattr(policy, "predict"):
        return lambda obs: policy.predict(obs, deterministic=True)[0]
    if callable(policy):
        return policy
    raise SpecError(
        f"policy {policy!r} is not usable; valid: an agent with greedy_action or predict, "
        "a RunResult, or a callable obs -> action"
    )


def collect_demonstrations(
    policy: Any,
    env: str,
    *,
    episodes: int | None = None,
    steps: int | None = None,
    seed: int,
    env_kwargs: Mapping[str, Any] | None = None,
    epsilon: float = 0.0,
    source: str = "",
) -> Dataset:
    """Rolls out ``policy`` on ``env`` and logs every transition.

    Args:
        policy: A trained agent, a RunResult, an SB3 model or a callable ``obs -> action``.
        env: Env id.
        episodes: Number of whole episodes to log (exactly one of episodes / steps).
        steps: Number of transitions to log.
        seed: Seeds the env and the epsilon coin; the same seed gives the same dataset.
        env_kwargs: Env constructor kwargs.
        epsilon: Share of actions replaced by uniform random ones (mixed-quality logs).
        source: Label kept with the data.
    """
    if (episodes is None) == (steps is None):
        raise SpecError(f"give exactly one of episodes / steps, got {episodes=}, {steps=}")
    budget = episodes if episodes is not None else steps
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise SpecError(f"budget {budget!r} is invalid; valid: a positive int")
    if not 0.0 <= epsilon <= 1.0:
        raise SpecError(f"epsilon = {epsilon!r} is out of range; valid: float in [0, 1]")
    act = as_policy(policy)
    seeds = RunSeeds(seed)
    rng = seeds.rng("demonstrations")
    environment = make_env(env, env_kwargs)
    environment.action_space.seed(seeds.int_seed("action_space"))
    logged: dict[str, list[Any]] = {name: [] for name in _ARRAYS}
    returns: list[float] = []
    obs, _ = environment.reset(seed=seeds.int_seed("env"))
    total = 0.0
    while (len(returns) if episodes is not None else len(logged["rewards"])) < budget:
        action = environment.action_space.sample() if rng.random() < epsilon else act(obs)
        next_obs, reward, terminated, truncated, _ = environment.step(action)
        for name, value in zip(
            _ARRAYS, (obs, action, reward, next_obs, terminated, truncated), strict=True
        ):
            logged[name].append(value)
        total += float(reward)
        obs = next_obs
        if terminated or truncated:
            returns.append(total)
            total = 0.0
            obs, _ = environment.reset()
    environment.close()
    return Dataset(
        **{name: np.asarray(values) for name, values in logged.items()},
        episode_returns=np.asarray(returns, dtype=np.float64),
        env=env,
        env_kwargs=dict(env_kwargs or {}),
        source=source,
    )
