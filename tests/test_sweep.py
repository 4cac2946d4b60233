"""Sweeps: resume, batching, executors agree, kill -9 mid-sweep, two sweeps on one store, and
the process executor's workers kept warm from one sweep to the next."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import gymnasium as gym
import pandas as pd
import psutil
import pytest
from conftest import REPO, NoModelChainEnv, without_wall_time

import rlcompare
from rlcompare import SpecError, StoreError
from rlcompare.spec import registry
from rlcompare.store.results import stored_records, stored_runs
from rlcompare.sweeps import executors
from rlcompare.sweeps.tasks import plan_tasks


def test_sweep_stores_every_run_and_resume_skips_them(store: Path) -> None:
    specs = rlcompare.grid("random", "FrozenLake-v1", 3, steps=200)
    frame = rlcompare.sweep(specs, store, executor="serial", progress=False)
    assert set(frame["run_id"]) == {s.run_id for s in specs}
    stamps = {p.name: p.stat().st_mtime_ns for p in stored_runs(store)}
    again = rlcompare.sweep(specs, store, executor="serial", progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in stored_runs(store)} == stamps
    pd.testing.assert_frame_equal(frame, again)
    with pytest.raises(StoreError, match="already in"):
        rlcompare.sweep(specs, store, executor="serial", resume=False)


def test_metrics_selects_rows_to_return_and_the_store_keeps_all(store: Path) -> None:
    specs = rlcompare.grid("q_learning", "FrozenLake-v1", 2, steps=400, eval_every=100)
    every = rlcompare.sweep(specs, store, executor="serial", progress=False)
    assert {"episode_return", "episode_length", "q_error"} <= set(every["metric"])
    wanted = ["q_error", "policy_regret"]
    some = rlcompare.sweep(specs, store, executor="serial", progress=False, metrics=wanted)
    assert set(some["metric"]) == set(wanted)
    expected = every[every["metric"].isin(wanted)].reset_index(drop=True)
    pd.testing.assert_frame_equal(some, expected)
    assert len(rlcompare.load_results(store)) == len(every)
    with pytest.raises(SpecError, match=r"metrics = \[\] is invalid.*'eval_return'"):
        rlcompare.sweep(specs, store, metrics=[])


def test_executors_give_identical_rows(tmp_path: Path) -> None:
    specs = rlcompare.grid(["random", "q_learning"], "FrozenLake-v1", 3, steps=500)
    serial = rlcompare.sweep(specs, tmp_path / "a", executor="serial", progress=False)
    process = rlcompare.sweep(specs, tmp_path / "b", executor="process", workers=2, progress=False)
    pd.testing.assert_frame_equal(without_wall_time(serial), without_wall_time(process))


def test_seed_batches_become_tasks_for_batched_algorithms() -> None:
    specs = rlcompare.grid(["q_learning", "random"], "FrozenLake-v1", 6, steps=100)
    tasks = plan_tasks(specs, workers=2)
    batched = [t for t in tasks if t[0].algo == "q_learning"]
    singles = [t for t in tasks if t[0].algo == "random"]
    if rlcompare.spec.registry.get_algorithm("q_learning").batch_trainer:
        assert sorted(len(t) for t in batched) == [3, 3]
    assert len(singles) == 6 and all(len(t) == 1 for t in singles)


def test_bad_executor_and_workers_fail_before_running(store: Path) -> None:
    specs = rlcompare.grid("random", "FrozenLake-v1", 1, steps=10)
    with pytest.raises(SpecError, match="'threads'.*serial, process, ray"):
        rlcompare.sweep(specs, store, executor="threads")
    with pytest.raises(SpecError, match="workers = 0"):
        rlcompare.sweep(specs, store, workers=0)
    with pytest.raises(SpecError, match="RunSpec"):
        rlcompare.sweep(["not a spec"], store)
    assert not stored_runs(store)


SWEEP_SCRIPT = """
import sys, rlcompare
specs = rlcompare.grid("random", "CartPole-v1", 8, steps=4000, eval_episodes=3)
rlcompare.sweep(specs, sys.argv[1], executor="serial", progress=False)
"""


def _start_sweep(store: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SWEEP_SCRIPT), str(store)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_kill_minus_nine_mid_sweep_then_resume(store: Path) -> None:
    process = _start_sweep(store)
    deadline = time.time() + 120
    while len(stored_runs(store)) < 2 and time.time() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    survivors = {p.name: p.stat().st_mtime_ns for p in stored_runs(store)}
    assert 2 <= len(survivors) < 8
    partial = rlcompare.load_results(store)  # every file that exists is a whole result
    assert partial["run_id"].nunique() == len(survivors)
    specs = rlcompare.grid("random", "CartPole-v1", 8, steps=4000, eval_episodes=3)
    frame = rlcompare.sweep(specs, store, executor="serial", progress=False)
    assert frame["run_id"].nunique() == 8
    after = {p.name: p.stat().st_mtime_ns for p in stored_runs(store)}
    assert {name: after[name] for name in survivors} == survivors  # never rewritten
    assert not [p for p in store.iterdir() if p.name.endswith(".tmp")]


def test_two_concurrent_sweeps_store_every_run_once(store: Path) -> None:
    first, second = _start_sweep(store), _start_sweep(store)
    for process in (first, second):
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err.decode()
    assert len(stored_runs(store)) == 8
    frame = rlcompare.load_results(store)
    assert frame["run_id"].nunique() == 8
    assert not frame.duplicated(["run_id", "metric", "step", "episode"]).any()


# ------------------------------------------------------------------ warm process workers
def _worker_pids(store: Path) -> set[str]:
    """The pids of the processes that ran a store's runs (recorded in each run's metadata)."""
    return {meta["node"]["pid"] for meta in stored_records(store).values()}


def _pool_workers() -> set[str]:
    """The pids of this process's live pool workers (all, also those that ran no task)."""
    found = set()
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error):
            if child.status() != psutil.STATUS_ZOMBIE and "spawn_main" in " ".join(child.cmdline()):
                found.add(str(child.pid))
    return found


def _process_sweep(specs: list, store: Path) -> pd.DataFrame:
    # Workers up first: a sweep that finds them starting runs its first tasks in the driver.
    executors.start_workers(2, wait_ready=True)
    frame = rlcompare.sweep(specs, store, executor="process", workers=2, progress=False)
    assert not frame.attrs["failed"], frame.attrs["failed"]
    return frame


def test_a_second_process_sweep_runs_on_the_first_ones_workers(tmp_path: Path) -> None:
    """Issue 29 item 6: each sweep started its workers again (about 3 s a sweep)."""
    specs = rlcompare.grid("random", "FrozenLake-v1", 4, steps=50)
    _process_sweep(specs, tmp_path / "first")
    first = _pool_workers()
    assert _worker_pids(tmp_path / "first") <= first
    _process_sweep(specs, tmp_path / "second")
    second = _worker_pids(tmp_path / "second")
    assert second <= first, f"the second sweep started new workers: {second - first}"


def test_a_changed_environment_gets_fresh_workers(tmp_path: Path, monkeypatch) -> None:
    """Workers see the environment (RLCOMPARE_PLUGINS among it) as it was when they started."""
    specs = rlcompare.grid("random", "FrozenLake-v1", 2, steps=50)
    _process_sweep(specs, tmp_path / "before")
    monkeypatch.setenv(registry.PLUGINS_ENV, "json")  # any importable module
    _process_sweep(specs, tmp_path / "after")
    assert not _worker_pids(tmp_path / "before") & _worker_pids(tmp_path / "after")


class _Always:
    """An agent that always takes the action of its class (``choice``)."""

    choice = 0

    def __init__(self, observation_space, action_space, hparams, rng) -> None:
        pass

    def act(self, obs, step):
        return self.choice

    def update(self, *transition) -> None:
        pass

    def greedy_action(self, obs):
        return self.choice


class _Left(_Always):
    choice = 0


class _Right(_Always):
    choice = 1


class _Dies(_Always):
    def __init__(self, *args) -> None:
        os.kill(os.getpid(), signal.SIGKILL)


def test_definitions_made_after_the_workers_started_reach_them(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.delitem(gym.registry, "rlcompare_test/Late-v0", raising=False)
    warm = rlcompare.grid("random", "FrozenLake-v1", 2, steps=50)
    _process_sweep(warm, tmp_path / "warm")
    started = _pool_workers()

    def register(agent: type, length: int) -> None:
        registry._REGISTRY.pop("late", None)  # as a fresh kernel re-running its cells
        rlcompare.register_algorithm("late", agent=agent)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # gymnasium warns that it overrides the env
            gym.register(
                "rlcompare_test/Late-v0",
                entry_point=NoModelChainEnv,
                max_episode_steps=30,
                kwargs={"n_states": length},
            )

    frames = {}
    for agent, length in ((_Left, 3), (_Right, 3), (_Right, 5)):
        register(agent, length)
        specs = rlcompare.grid("late", "rlcompare_test/Late-v0", 2, steps=60)
        name = f"{agent.__name__}-{length}"
        serial = rlcompare.sweep(specs, tmp_path / f"s{name}", executor="serial", progress=False)
        frames[name] = without_wall_time(_process_sweep(specs, tmp_path / f"p{name}"))
        pd.testing.assert_frame_equal(frames[name], without_wall_time(serial))
        assert _worker_pids(tmp_path / f"p{name}") <= started
    # Each change reached the warm workers: always left never ends an episode, always right
    # does in (length - 1) steps.
    lengths = {
        name: set(frame.loc[frame["metric"] == "episode_length", "value"])
        for name, frame in frames.items()
    }
    assert lengths == {"_Left-3": {30.0}, "_Right-3": {2.0}, "_Right-5": {4.0}}


def test_a_pool_broken_by_a_dead_worker_is_replaced(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    rlcompare.register_algorithm("dies", agent=_Dies)
    specs = rlcompare.grid("random", "FrozenLake-v1", 2, steps=50)
    _process_sweep(specs, tmp_path / "before")
    dying = rlcompare.grid("dies", "FrozenLake-v1", 1, steps=50)
    with pytest.warns(UserWarning, match="worker process died"):
        frame = rlcompare.sweep(dying, tmp_path / "dies", executor="process", workers=2)
    assert list(frame.attrs["failed"].values()) == ["worker process died"]
    _process_sweep(specs, tmp_path / "after")
    before, after = _worker_pids(tmp_path / "before"), _worker_pids(tmp_path / "after")
    assert not before & after  # the broken pool's workers are gone, not reused


def test_a_source_edited_on_disk_gets_fresh_workers(tmp_path: Path, monkeypatch) -> None:
    """A warm worker keeps the modules it imported: an edited one needs new workers."""
    (tmp_path / "user_helpers_29.py").write_text("SCALE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "user_helpers_29", raising=False)
    __import__("user_helpers_29")
    specs = rlcompare.grid("random", "FrozenLake-v1", 2, steps=50)
    _process_sweep(specs, tmp_path / "first")
    first = _pool_workers()
    _process_sweep(specs, tmp_path / "unchanged")
    edited = time.time_ns() + 10**9
    os.utime(tmp_path / "user_helpers_29.py", ns=(edited, edited))
    _process_sweep(specs, tmp_path / "edited")
    assert _worker_pids(tmp_path / "unchanged") <= first
    assert not _worker_pids(tmp_path / "edited") & first


def test_an_interrupt_leaves_idle_workers_warm(tmp_path: Path) -> None:
    """Jupyter interrupts a kernel by SIGINT to its process group, workers included."""
    specs = rlcompare.grid("random", "FrozenLake-v1", 2, steps=50)
    _process_sweep(specs, tmp_path / "first")
    first = _pool_workers()
    for pid in first:
        os.kill(int(pid), signal.SIGINT)
    _process_sweep(specs, tmp_path / "second")
    assert _worker_pids(tmp_path / "second") <= first


def test_an_interrupted_sweep_stops_its_running_workers() -> None:
    """Ctrl-C in the driver (or an error writing a result) ends the sweep's running tasks
    instead of leaving the warm workers busy with them."""
    quick = rlcompare.grid("random", "FrozenLake-v1", 1, steps=50)
    endless = rlcompare.grid("random", "CartPole-v1", 1, steps=10**9)
    executors.start_workers(2, wait_ready=True)  # else the driver itself may take `endless`
    outputs = executors.DISPATCH["process"](plan_tasks(quick + endless, 2), 2)
    assert next(outputs)[0][1]["run_id"] == quick[0].run_id
    workers = [
        child for child in psutil.Process().children() if "spawn_main" in " ".join(child.cmdline())
    ]
    assert workers
    try:
        outputs.close()
        _, alive = psutil.wait_procs(workers, timeout=60)
        assert not alive, "a worker still runs the interrupted sweep's task"
    finally:
        for child in workers:
            if child.is_running():
                child.kill()


ORPHANING_SCRIPT = """
import os, sys, rlcompare
from rlcompare.store.results import stored_records
specs = rlcompare.grid("random", "FrozenLake-v1", 2, steps=50)
rlcompare.sweep(specs, sys.argv[1], executor="process", workers=2, progress=False)
print(" ".join({m["node"]["pid"] for m in stored_records(sys.argv[1]).values()}), flush=True)
os.kill(os.getpid(), 9)  # as a kernel killed between two sweeps
"""


def test_warm_workers_end_when_their_driver_is_killed(tmp_path: Path) -> None:
    out = tmp_path / "pids.txt"
    with out.open("w") as stdout:  # not a pipe: a live worker would hold it open
        driver = subprocess.run(
            [sys.executable, "-c", ORPHANING_SCRIPT, str(tmp_path / "store")],
            cwd=REPO, stdout=stdout, stderr=subprocess.DEVNULL, timeout=300,
        )  # fmt: skip
    assert driver.returncode == -signal.SIGKILL
    workers = []
    for pid in out.read_text().split():
        with contextlib.suppress(psutil.NoSuchProcess):  # already gone: as wanted
            workers.append(psutil.Process(int(pid)))
    try:
        _, alive = psutil.wait_procs(workers, timeout=60)
        assert not alive, "warm workers outlived their driver"
    finally:
        for worker in workers:
            if worker.is_running():
                worker.kill()


# ------------------------------------------------------- the driver while workers start
class _WaitsForWorkers(_Always):
    """In the driver, its first run waits until the workers are up (so the rest is theirs)."""

    driver = os.getpid()

    def __init__(self, *args) -> None:
        if os.getpid() == self.driver:
            executors.start_workers(2, wait_ready=True)


def test_a_small_sweep_on_starting_workers_is_run_by_the_driver(tmp_path: Path) -> None:
    """Issue 29 item 6: a sweep of 4 short runs took 13.9 s on the process executor against
    1.7 s serial, most of it starting workers. Now the driver runs tasks while they start."""
    executors.shutdown_workers()
    specs = rlcompare.grid("random", "FrozenLake-v1", 4, steps=50)
    frame = rlcompare.sweep(specs, tmp_path / "p", executor="process", workers=2, progress=False)
    serial = rlcompare.sweep(specs, tmp_path / "s", executor="serial", progress=False)
    pd.testing.assert_frame_equal(without_wall_time(frame), without_wall_time(serial))
    # A worker takes seconds to start (spawn, imports): the first task is the driver's.
    assert str(os.getpid()) in _worker_pids(tmp_path / "p")


def test_once_a_worker_is_up_the_rest_of_the_sweep_goes_to_the_workers(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    rlcompare.register_algorithm("waits", agent=_WaitsForWorkers)
    executors.shutdown_workers()
    specs = rlcompare.grid("waits", "FrozenLake-v1", 8, steps=200)
    frame = rlcompare.sweep(specs, tmp_path / "p", executor="process", workers=2, progress=False)
    assert not frame.attrs["failed"], frame.attrs["failed"]
    ran = [meta["node"]["pid"] for meta in stored_records(tmp_path / "p").values()]
    workers = _pool_workers()
    driver = ran.count(str(os.getpid()))
    assert 1 <= driver < len(ran), ran
    assert set(ran) - {str(os.getpid())} <= workers
    serial = rlcompare.sweep(specs, tmp_path / "s", executor="serial", progress=False)
    pd.testing.assert_frame_equal(without_wall_time(frame), without_wall_time(serial))


def test_a_task_that_killed_its_worker_is_never_retried_in_the_driver(
    tmp_path: Path, monkeypatch
) -> None:
    """The retry of a task whose worker died goes to new workers, even while they start
    (run in the driver, it would end the driver)."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    rlcompare.register_algorithm("dies", agent=_Dies)
    executors.start_workers(2, wait_ready=True)
    dying = rlcompare.grid("dies", "FrozenLake-v1", 1, steps=50)
    with pytest.warns(UserWarning, match="worker process died"):
        frame = rlcompare.sweep(dying, tmp_path / "dies", executor="process", workers=2)
    assert list(frame.attrs["failed"].values()) == ["worker process died"]
