"""Sweeps: resume, batching, executors agree, kill -9 mid-sweep, two sweeps on one store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO, without_wall_time

import rlcompare
from rlcompare import SpecError, StoreError
from rlcompare.store.results import stored_runs
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
