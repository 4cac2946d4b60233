"""Trust, round 3 (issue 27, items 8 and 9): a stored run is identified by its spec and by the
code that defines it (algorithm, hyperparameter table, env and its effective settings), so a
sweep never returns runs made by other code as current; a failed run keeps its rows and the
first frame of user code that raised, and is not re-run forever."""

from __future__ import annotations

import importlib
import json
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
from conftest import run_python

import rlcompare
from rlcompare import Param, StoreError
from rlcompare.spec import registry
from rlcompare.store.results import read_metadata, run_path, stored_runs, write_run

ENV_MODULE = """
import gymnasium as gym
from gymnasium.envs.toy_text.frozen_lake import FrozenLakeEnv


class UserLake(FrozenLakeEnv):
    def __init__(self, render_mode=None, slippery={slippery}):
        super().__init__(render_mode=render_mode, is_slippery=slippery)


gym.register("Lake_{module}-v0", entry_point="{module}:UserLake", max_episode_steps=30)
"""

AGENT_MODULE = """
import rlcompare

BUILT = []


class Stubborn:
    def __init__(self, observation_space, action_space, hparams, rng):
        BUILT.append(1)
        self.rng = rng

    def act(self, obs, step):
        return int(self.rng.integers(4))

    def update(self, *transition):
        if transition[-1] >= {fail_at}:
            raise RuntimeError("agent gave up at step " + str(transition[-1]))

    def greedy_action(self, obs):
        return {greedy}


rlcompare.register_algorithm(
    "{name}", agent=Stubborn, params={{"unused": rlcompare.Param(1, int, "not read")}}
)
"""


@pytest.fixture
def scratch_registry(monkeypatch):
    """Registrations made by a test vanish after it."""
    registry.algorithms()
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


@pytest.fixture
def user_modules(tmp_path, monkeypatch):
    """Writes (and rewrites) modules into a folder on sys.path; imports or reloads them."""
    folder = tmp_path / "user_code"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    names: list[str] = []

    def write(name: str, source: str):
        (folder / f"{name}.py").write_text(textwrap.dedent(source))
        importlib.invalidate_caches()
        if name in sys.modules:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # gymnasium: "Overriding environment"
                return importlib.reload(sys.modules[name])
        names.append(name)
        return importlib.import_module(name)

    write.folder = folder  # type: ignore[attr-defined]
    yield write
    for name in names:
        sys.modules.pop(name, None)


def _stamps(store: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in stored_runs(store)}


def _env(user_modules, name: str, slippery: bool) -> str:
    user_modules(name, ENV_MODULE.format(slippery=slippery, module=name))
    return f"{name}:Lake_{name}-v0"


def _agent(user_modules, name: str, *, greedy: int = 0, fail_at: int = 10**9):
    return user_modules(name, AGENT_MODULE.format(greedy=greedy, fail_at=fail_at, name=name))


# ------------------------------------------------------------------ A: stale stored runs
def test_an_env_default_changed_between_sweeps_is_recomputed_and_said(tmp_path, user_modules):
    env = _env(user_modules, "fp_env_a", slippery=False)
    specs = rlcompare.grid("random", env, seeds=2, steps=60, eval_episodes=2)
    store = tmp_path / "s"
    rlcompare.sweep(specs, store, executor="serial", progress=False)
    before = _stamps(store)
    _env(user_modules, "fp_env_a", slippery=True)  # the user edits the module's default
    with pytest.warns(
        UserWarning, match=r"2 stored run\(s\).*env settings: slippery False -> True"
    ):
        again = rlcompare.sweep(specs, store, executor="serial", progress=False)
    after = _stamps(store)
    assert set(after) == set(before)
    assert all(after[name] != before[name] for name in before), "stale runs were recomputed"
    meta = read_metadata(run_path(store, specs[0].run_id))
    assert meta["fingerprint"]["env_settings"]["slippery"] is True
    assert set(again["run_id"]) == {s.run_id for s in specs}


def test_on_stale_error_names_the_run_what_changed_and_how_to_proceed(tmp_path, user_modules):
    env = _env(user_modules, "fp_env_b", slippery=False)
    specs = rlcompare.grid("random", env, seeds=1, steps=40, eval_episodes=1)
    store = tmp_path / "s"
    rlcompare.sweep(specs, store, executor="serial", progress=False)
    before = _stamps(store)
    _env(user_modules, "fp_env_b", slippery=True)
    with pytest.raises(StoreError) as info:
        rlcompare.sweep(specs, store, executor="serial", progress=False, on_stale="error")
    message = str(info.value)
    assert specs[0].run_id in message
    assert "env settings: slippery False -> True" in message
    assert "on_stale='rerun'" in message
    assert _stamps(store) == before, "refused: nothing trained, nothing rewritten"
    with pytest.raises(rlcompare.SpecError, match=r"on_stale = 'maybe'.*rerun, error, keep"):
        rlcompare.sweep(specs, store, executor="serial", on_stale="maybe")
    with pytest.raises(rlcompare.SpecError, match=r"retry_failed = 'yes'.*True, False"):
        rlcompare.sweep(specs, store, executor="serial", retry_failed="yes")


def test_load_results_marks_runs_made_by_other_code_stale(tmp_path, user_modules):
    env = _env(user_modules, "fp_env_c", slippery=False)
    specs = rlcompare.grid("random", env, seeds=2, steps=40, eval_episodes=1)
    specs += rlcompare.grid("random", "FrozenLake-v1", seeds=1, steps=40, eval_episodes=1)
    store = tmp_path / "s"
    rlcompare.sweep(specs, store, executor="serial", progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fresh = rlcompare.load_results(store)
    assert "stale" not in fresh
    _env(user_modules, "fp_env_c", slippery=True)
    with pytest.warns(UserWarning, match=r"2 of 3 runs.*other code.*slippery False -> True"):
        loaded = rlcompare.load_results(store)
    stale = loaded.groupby("run_id")["stale"].first()
    assert stale.to_dict() == {s.run_id: s.env == env for s in specs}
    assert set(loaded.attrs["stale"]) == {s.run_id for s in specs if s.env == env}
    with pytest.warns(UserWarning, match="returned marked stale"):
        kept = rlcompare.sweep(specs, store, executor="serial", progress=False, on_stale="keep")
    assert kept.groupby("run_id")["stale"].first().to_dict() == stale.to_dict()


def test_an_edited_agent_class_is_recomputed_and_an_unchanged_one_reused(
    tmp_path, user_modules, scratch_registry
):
    module = _agent(user_modules, "fp_agent_a", greedy=0)
    specs = rlcompare.grid("fp_agent_a", "FrozenLake-v1", seeds=2, steps=60, eval_episodes=1)
    store = tmp_path / "s"
    rlcompare.sweep(specs, store, executor="serial", progress=False)
    assert len(module.BUILT) == 2
    before = _stamps(store)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # unchanged code: no word, no training
        rlcompare.sweep(specs, store, executor="serial", progress=False)
    assert len(module.BUILT) == 2 and _stamps(store) == before
    module = _agent(user_modules, "fp_agent_a", greedy=1)  # the user edits the class
    with pytest.raises(StoreError, match=r"algo code"):
        rlcompare.sweep(specs, store, executor="serial", progress=False, on_stale="error")
    with pytest.warns(UserWarning, match=r"algo code"):
        rlcompare.sweep(specs, store, executor="serial", progress=False)
    assert len(module.BUILT) == 2, "both runs trained again with the edited class"
    assert all(_stamps(store)[n] != before[n] for n in before)


class Still:
    """Always action 0."""

    def __init__(self, observation_space, action_space, hparams, rng):
        pass

    def act(self, obs, step):
        return 0

    def update(self, *transition):
        pass

    def greedy_action(self, obs):
        return 0


def test_a_param_table_change_is_named(tmp_path, scratch_registry):
    """A default changed in the table leaves the run id of a spec that sets the value itself
    alone; the sweep names the change (runs that took the default get a new run id)."""
    rlcompare.register_algorithm("fp_params", agent=Still, params={"a": Param(1, int)})
    spec = rlcompare.RunSpec("fp_params", "FrozenLake-v1", 0, steps=30, hparams={"a": 1})
    store = tmp_path / "s"
    rlcompare.sweep([spec], store, executor="serial", progress=False)
    registry._REGISTRY.pop("fp_params")
    rlcompare.register_algorithm("fp_params", agent=Still, params={"a": Param(5, int)})
    again = rlcompare.RunSpec("fp_params", "FrozenLake-v1", 0, steps=30, hparams={"a": 1})
    assert again.run_id == spec.run_id
    with pytest.raises(StoreError, match=r"params: default of 'a' 1 -> 5"):
        rlcompare.sweep([again], store, executor="serial", progress=False, on_stale="error")


SAME_CODE_CHECK = """
import json, sys
sys.path.insert(0, {folder!r})
import rlcompare
import {agent}
from rlcompare.store.fingerprint import Fingerprints
spec = rlcompare.RunSpec({agent!r}, {env!r}, 0, steps=40, eval_episodes=1)
print("FP", json.dumps(Fingerprints().of(spec), sort_keys=True))
frame = rlcompare.sweep([spec], {store!r}, executor="serial", progress=False)
print("RUNS", frame["run_id"].nunique())
"""


def test_process_workers_and_a_fresh_driver_agree_on_the_fingerprint(
    tmp_path, user_modules, scratch_registry
):
    """Runs stored by a process-executor sweep are reused by a sweep in a fresh interpreter
    (other hash seed, other imports order): no recompute, the same fingerprint."""
    env = _env(user_modules, "fp_env_d", slippery=False)
    _agent(user_modules, "fp_agent_d")
    specs = rlcompare.grid("fp_agent_d", env, seeds=2, steps=40, eval_episodes=1)
    store = tmp_path / "s"
    rlcompare.sweep(specs, store, executor="process", workers=2, progress=False)
    before = _stamps(store)
    stored = read_metadata(run_path(store, specs[0].run_id))["fingerprint"]
    code = SAME_CODE_CHECK.format(
        folder=str(user_modules.folder), agent="fp_agent_d", env=env, store=str(store)
    )
    done = run_python(code)
    assert "RUNS 1" in done.stdout
    fresh = json.loads(done.stdout.split("FP ", 1)[1].splitlines()[0])
    assert fresh == stored
    assert _stamps(store) == before, "a fresh driver reused the stored runs"
    assert "stored run" not in done.stderr


NOTEBOOK_CELL = '''
BIAS = {bias}
ACTIONS = frozenset({{"left", "right", "up"}})


def helper(x):
    return x + BIAS


class CellAgent:
    """Defined in a notebook cell: no file behind it."""

    def __init__(self, observation_space, action_space, hparams, rng):
        self.n = action_space.n

    def act(self, obs, step):
        return helper(step) % self.n if "left" in ACTIONS else 0

    def update(self, *transition):
        pass

    def greedy_action(self, obs):
        return 0
'''


def _cell_class(bias: int):
    namespace: dict = {"__name__": "__main__"}
    # dont_inherit: this module's ``from __future__ import annotations`` is no part of a cell
    exec(compile(NOTEBOOK_CELL.format(bias=bias), "<cell-1>", "exec", dont_inherit=True), namespace)
    return namespace["CellAgent"]


def test_code_without_a_file_is_fingerprinted_by_its_code_objects_and_what_they_use():
    import inspect

    from rlcompare.store.fingerprint import code_digest

    first = _cell_class(1)
    with pytest.raises((OSError, TypeError)):
        inspect.getsource(first)  # as for a class of a notebook cell without its source
    assert code_digest(first) == code_digest(_cell_class(1))
    assert code_digest(first) != code_digest(_cell_class(2)), "a helper's constant changed"
    code = f"""
import textwrap
NOTEBOOK_CELL = {NOTEBOOK_CELL!r}
namespace = {{"__name__": "__main__"}}
exec(compile(NOTEBOOK_CELL.format(bias=1), "<cell-7>", "exec"), namespace)
from rlcompare.store.fingerprint import code_digest
print("DIGEST", code_digest(namespace["CellAgent"]))
"""
    done = run_python(code)
    assert f"DIGEST {code_digest(first)}" in done.stdout, "the same in another interpreter"


# ------------------------------------------------------------------ B: failed runs
def test_a_failed_run_keeps_its_rows_and_the_first_user_frame(
    tmp_path, user_modules, scratch_registry
):
    _agent(user_modules, "fp_agent_f", fail_at=45)
    spec = rlcompare.RunSpec("fp_agent_f", "FrozenLake-v1", 0, steps=80, eval_every=20)
    store = tmp_path / "s"
    with pytest.warns(UserWarning, match=r"1 run\(s\) failed.*agent gave up at step 45"):
        frame = rlcompare.sweep([spec], store, executor="serial", progress=False)
    meta = read_metadata(run_path(store, spec.run_id))
    assert meta["status"] == "failed"
    where = meta["error_frame"]
    assert where["file"].endswith("fp_agent_f.py") and where["function"] == "update"
    assert "raise RuntimeError" in where["line"]
    assert "fp_agent_f.py" in frame.attrs["failed"][spec.run_id]
    import pyarrow.parquet as pq

    rows = pq.read_table(run_path(store, spec.run_id)).to_pandas()
    evals = sorted(rows.loc[rows["metric"] == "eval_return", "step"])
    assert evals == [0, 20, 40], "the evaluations made before the error are kept"
    assert rlcompare.load_results(store).empty, "failed rows are not analysed by default"
    kept = rlcompare.load_results(store, include_failed=True)
    assert set(kept["status"]) == {"failed"} and len(kept) == len(rows)


def test_a_deterministic_failure_is_reported_not_rerun_until_asked_or_code_changes(
    tmp_path, user_modules, scratch_registry
):
    module = _agent(user_modules, "fp_agent_g", fail_at=30)
    spec = rlcompare.RunSpec("fp_agent_g", "FrozenLake-v1", 0, steps=60)
    store = tmp_path / "s"
    with pytest.warns(UserWarning, match="failed"):
        rlcompare.sweep([spec], store, executor="serial", progress=False)
    assert len(module.BUILT) == 1
    with pytest.warns(UserWarning, match=r"1 run\(s\) failed.*retry_failed=True"):
        again = rlcompare.sweep([spec], store, executor="serial", progress=False)
    assert len(module.BUILT) == 1, "the stored failure was reported, not re-run"
    assert "agent gave up at step 30" in again.attrs["failed"][spec.run_id]
    with pytest.warns(UserWarning, match="failed"):
        rlcompare.sweep([spec], store, executor="serial", progress=False, retry_failed=True)
    assert len(module.BUILT) == 2, "retry_failed=True runs it again"
    module = _agent(user_modules, "fp_agent_g", fail_at=10**9)  # the user fixes the bug
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fixed = rlcompare.sweep([spec], store, executor="serial", progress=False)
    assert len(module.BUILT) == 1, "its code changed: run again"
    assert fixed.attrs["failed"] == {} and set(fixed["status"]) == {"ok"}


def test_a_worker_that_died_is_retried_by_the_next_sweep(tmp_path):
    from rlcompare.sweeps.tasks import failed_output

    spec = rlcompare.RunSpec("random", "FrozenLake-v1", 0, steps=30)
    store = tmp_path / "s"
    ((rows, meta),) = failed_output([spec], "worker process died")
    write_run(store, rows, meta)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frame = rlcompare.sweep([spec], store, executor="serial", progress=False)
    assert frame.attrs["failed"] == {} and set(frame["status"]) == {"ok"}
