"""The fingerprint of a run: what defines it beyond its spec, stored with it and compared.

A run id hashes the spec (algorithm name, env id, seed, budget, resolved hyperparameters, env
kwargs as given). The fingerprint adds the code and settings behind those names, as they are
in the process that computes it (:mod:`rlcompare.store.code_identity` says what is covered):

- ``algo``: the agent class or trainer (and batch trainer) of the algorithm, and its family;
- ``params``: the algorithm's hyperparameter table, ``name -> "kind default"`` (a changed
  default gives a new run id to runs that took it; a run that set the value itself keeps its
  id, and the change is named);
- ``env``: the env's entry point (its code) and registration (step limit, wrappers);
- ``env_settings``: the env's effective constructor settings: the constructor's defaults,
  then the registered kwargs, then the spec's ``env_kwargs`` (a default edited in the
  user's env module shows here, without building the env);
- ``rlcompare``: rlcompare's version and the source of the protocol every run follows (the
  runner, the seed streams, env building).

Only the sweep's driver computes fingerprints, once per algorithm and env per sweep
(:class:`Fingerprints`), and stamps them on the metadata of the runs it stores: a worker
process or Ray node never computes one, so a driver, its workers and a later driver in a
fresh interpreter agree on every stored run (the digests depend on neither the hash seed,
nor file paths, nor line numbers).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from rlcompare.envs.make import effective_env_kwargs, env_spec
from rlcompare.spec.registry import get_algorithm
from rlcompare.store.code_identity import code_digest, digest, target_digest, unit_digest
from rlcompare.versions import VERSION

__all__ = [
    "SCHEME",
    "Fingerprints",
    "code_digest",
    "describe_changes",
    "differences",
    "stale_runs",
]

# Version of the fingerprint's layout: a stored run of another scheme is stale.
SCHEME = 1
# What every run follows whatever its algorithm (units of rlcompare's source): the runner,
# the seed streams, env building and wrappers.
_PROTOCOL_UNITS = ("runner", "seeding", "envs/make", "envs/wrappers")
# Fields of an EnvSpec that change what ``gym.make`` builds (besides entry point and kwargs).
_REGISTRATION = (
    "max_episode_steps",
    "order_enforce",
    "disable_env_checker",
    "apply_api_compatibility",
    "autoreset",
)


def protocol_digest() -> str:
    """rlcompare's version and the hash of the modules every run goes through."""
    return digest([VERSION, *(unit_digest(unit) for unit in _PROTOCOL_UNITS)])


class Fingerprints:
    """Fingerprints of runs, each part computed once per algorithm / env / env kwargs.

    Make one per sweep (or per load): code may change between two sweeps of one process (a
    module reloaded, a notebook cell run again), never within one.
    """

    def __init__(self) -> None:
        self._algo: dict[str, tuple[str, dict[str, str]]] = {}
        self._env: dict[str, str] = {}
        self._settings: dict[tuple[str, str], dict[str, Any]] = {}
        self._protocol: str | None = None

    def of(self, spec: Any) -> dict[str, Any]:
        """The fingerprint of a RunSpec (or of its ``to_dict`` form, as stored).

        Raises:
            SpecError: its algorithm is not registered here, or its env is unknown.
        """
        if isinstance(spec, Mapping):
            algo, env, kwargs = spec["algo"], spec["env"], dict(spec.get("env_kwargs") or {})
        else:
            algo, env, kwargs = spec.algo, spec.env, dict(spec.env_kwargs)
        code, params = self._algorithm(algo)
        if self._protocol is None:
            self._protocol = protocol_digest()
        key = (env, json.dumps(kwargs, sort_keys=True, default=str))
        if key not in self._settings:
            self._settings[key] = effective_env_kwargs(env, kwargs)
        return {
            "scheme": SCHEME,
            "rlcompare": self._protocol,
            "algo": code,
            "params": params,
            "env": self._env_code(env),
            "env_settings": self._settings[key],
        }

    def _algorithm(self, name: str) -> tuple[str, dict[str, str]]:
        if name not in self._algo:
            algorithm = get_algorithm(name)
            target = algorithm.agent if algorithm.agent is not None else algorithm.trainer
            parts = [
                "agent" if algorithm.agent is not None else "trainer",
                target_digest(target),
                target_digest(algorithm.batch_trainer) if algorithm.batch_trainer else None,
                algorithm.family,
            ]
            params = {
                key: f"{param.kind} {json.dumps(param.default, default=str)}"
                for key, param in sorted(algorithm.params.items())
            }
            self._algo[name] = (digest(parts), params)
        return self._algo[name]

    def _env_code(self, env_id: str) -> str:
        if env_id not in self._env:
            spec = env_spec(env_id)
            registration = {field: getattr(spec, field, None) for field in _REGISTRATION}
            wrappers = [
                [w.name, w.entry_point, json.dumps(w.kwargs, sort_keys=True, default=str)]
                for w in getattr(spec, "additional_wrappers", ()) or ()
            ]
            self._env[env_id] = digest([target_digest(spec.entry_point), registration, wrappers])
        return self._env[env_id]


def differences(stored: Mapping[str, Any] | None, current: Mapping[str, Any]) -> list[str]:
    """What differs between a stored run's fingerprint and the current one, in words
    (``algo code``, ``params: default of 'a' 1 -> 5``, ``env settings: sab False -> True``,
    ...); empty when they agree."""
    if not stored:
        return ["no code fingerprint (stored by an rlcompare that did not record one)"]
    if stored.get("scheme") != current.get("scheme"):
        return [f"fingerprint scheme {stored.get('scheme')} -> {current.get('scheme')}"]
    changes = []
    if stored.get("rlcompare") != current.get("rlcompare"):
        changes.append("rlcompare code (its version, runner, seeding or env building)")
    if stored.get("algo") != current.get("algo"):
        changes.append("algo code")
    changes += _mapping_changes(
        "params", stored.get("params") or {}, current.get("params") or {}, "default of "
    )
    if stored.get("env") != current.get("env"):
        changes.append("env code")
    changes += _mapping_changes(
        "env settings", stored.get("env_settings") or {}, current.get("env_settings") or {}
    )
    return changes


_UNSET = object()


def _shown(value: Any) -> str:
    return "(unset)" if value is _UNSET else repr(value)


def _mapping_changes(
    label: str, old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = ""
) -> list[str]:
    """``label: <prefix>'name' old -> new`` for each entry that differs."""
    changed = []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key, _UNSET), new.get(key, _UNSET)
        if before == after:
            continue
        if label == "params":
            before = _UNSET if before is _UNSET else before.partition(" ")[2]
            after = _UNSET if after is _UNSET else after.partition(" ")[2]
            if before == after:  # the kind changed, not the default
                changed.append(f"{label}: kind of {key!r}")
                continue
            changed.append(f"{label}: {prefix}{key!r} {before} -> {after}")
        else:
            shown = key if label == "env settings" else repr(key)
            changed.append(f"{label}: {shown} {_shown(before)} -> {_shown(after)}")
    return changed


def describe_changes(stale: Mapping[str, list[str]], limit: int = 3) -> str:
    """One line per distinct change set: ``<changes> (<n> runs, e.g. <run id>)``."""
    groups: dict[str, list[str]] = {}
    for run_id, changes in stale.items():
        groups.setdefault("; ".join(changes), []).append(run_id)
    lines = [
        f"{what} ({len(ids)} run{'s' if len(ids) != 1 else ''}, e.g. {ids[0]})"
        for what, ids in list(groups.items())[:limit]
    ]
    if len(groups) > limit:
        lines.append(f"... and {len(groups) - limit} other change set(s)")
    return "; ".join(lines) if len(lines) == 1 else "\n  " + "\n  ".join(lines)


def stale_runs(
    metadata: Iterable[Mapping[str, Any]],
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """(stale: ``run_id -> what changed``, unchecked: ``run_id -> why``) of stored runs'
    metadata against the code of this process; a run whose algorithm or env is not known
    here cannot be checked."""
    prints = Fingerprints()
    stale: dict[str, list[str]] = {}
    unchecked: dict[str, str] = {}
    for meta in metadata:
        run_id = meta["run_id"]
        try:
            current = prints.of(meta["spec"])
        except Exception as error:  # an unknown algo or env here: say so, do not fail a load
            unchecked[run_id] = f"{type(error).__name__}: {error}"
            continue
        changes = differences(meta.get("fingerprint"), current)
        if changes:
            stale[run_id] = changes
    return stale, unchecked
