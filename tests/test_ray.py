"""The Ray executor against a real local cluster: same rows as the local executors, and the
faults of issue 8 survived (killed driver, killed worker, raising run, two drivers)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO, without_wall_time

import rlcompare
from rlcompare.store.results import read_metadata, stored_runs

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")


@pytest.fixture(scope="module")
def cluster() -> str:
    """A local Ray cluster with 2 CPUs; yields its address for other drivers. Its own temp
    folder keeps it apart from any other cluster on the machine (Ray's default, /tmp/ray,
    names the last cluster started); a start that Ray gave up on is retried once."""
    from rlcompare.sweeps.ray_executor import start_local

    temp = tempfile.mkdtemp(prefix="rlc-ray-")  # short: Ray's socket paths live under it
    try:
        context = start_local(2, _temp_dir=temp)
        yield context.address_info["gcs_address"]
        ray.shutdown()
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def test_ray_rows_equal_serial_rows(cluster: str, tmp_path: Path) -> None:
    specs = rlcompare.grid(["random", "q_learning"], "FrozenLake-v1", 3, steps=400)
    serial = rlcompare.sweep(specs, tmp_path / "serial", executor="serial", progress=False)
    on_ray = rlcompare.sweep(specs, tmp_path / "ray", executor="ray", progress=False)
    pd.testing.assert_frame_equal(without_wall_time(serial), without_wall_time(on_ray))


class Explodes:
    """An agent that raises in the middle of training (inside the Ray worker)."""

    def __init__(self, observation_space, action_space, hparams, rng) -> None:
        self.action_space = action_space

    def act(self, obs, step):
        if step == 7:
            raise RuntimeError("boom at step 7")
        return 0

    def update(self, *transition) -> None:
        pass

    def greedy_action(self, obs):
        return 0


def test_a_raising_run_is_recorded_failed_and_the_rest_complete(
    cluster: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rlcompare.spec import registry

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    rlcompare.register_algorithm("explodes", agent=Explodes)
    broken = rlcompare.RunSpec("explodes", "FrozenLake-v1", 0, steps=50)
    good = rlcompare.grid("random", "FrozenLake-v1", 2, steps=100)
    with pytest.warns(UserWarning, match="1 run"):
        frame = rlcompare.sweep([broken, *good], tmp_path / "s", executor="ray", progress=False)
    assert frame.attrs["failed"].keys() == {broken.run_id}
    assert "Traceback" in frame.attrs["failed"][broken.run_id]
    assert set(frame["run_id"]) == {s.run_id for s in good}
    meta = read_metadata(tmp_path / "s" / f"{broken.run_id}.parquet")
    assert meta["status"] == "failed" and "boom at step 7" in meta["reason"]


def _kill_one_worker_when_busy(stop: threading.Event, killed: list[int]) -> None:
    while not stop.is_set() and not killed:
        for process in psutil.process_iter(["pid", "cmdline"]):
            if "ray::execute_packed" in " ".join(process.info["cmdline"] or []):
                time.sleep(0.3)  # let it get into the run
                os.kill(process.info["pid"], signal.SIGKILL)
                killed.append(process.info["pid"])
                return
        time.sleep(0.05)


def test_a_killed_worker_is_retried(cluster: str, tmp_path: Path) -> None:
    specs = rlcompare.grid("random", "CartPole-v1", 4, steps=3000, eval_episodes=3)
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_one_worker_when_busy, args=(stop, killed))
    killer.start()
    try:
        frame = rlcompare.sweep(specs, tmp_path / "s", executor="ray", progress=False)
    finally:
        stop.set()
        killer.join()
    assert killed, "no worker was seen running a task"
    assert frame.attrs["failed"] == {}
    assert frame["run_id"].nunique() == 4
    assert len(stored_runs(tmp_path / "s")) == 4


DRIVER = """
import sys, rlcompare
specs = rlcompare.grid("random", "CartPole-v1", 8, steps=3000, eval_episodes=3)
rlcompare.sweep(specs, sys.argv[1], executor="ray", workers=1, progress=False,
                address=sys.argv[2])
"""


def _driver(store: Path, address: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(DRIVER), str(store), address],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_killed_driver_then_rerun_finishes_without_duplicates(cluster: str, tmp_path: Path) -> None:
    store = tmp_path / "s"
    driver = _driver(store, cluster)
    deadline = time.time() + 180
    while len(stored_runs(store)) < 2 and time.time() < deadline:
        time.sleep(0.05)
    driver.kill()
    driver.wait()
    survivors = {p.name: p.stat().st_mtime_ns for p in stored_runs(store)}
    assert 2 <= len(survivors) < 8
    rerun = _driver(store, cluster)
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err.decode()
    after = {p.name: p.stat().st_mtime_ns for p in stored_runs(store)}
    assert len(after) == 8
    assert {name: after[name] for name in survivors} == survivors
    assert rlcompare.load_results(store)["run_id"].nunique() == 8


def test_two_drivers_on_one_store(cluster: str, tmp_path: Path) -> None:
    store = tmp_path / "s"
    drivers = [_driver(store, cluster), _driver(store, cluster)]
    for driver in drivers:
        _, err = driver.communicate(timeout=300)
        assert driver.returncode == 0, err.decode()
    frame = rlcompare.load_results(store)
    assert len(stored_runs(store)) == 8 and frame["run_id"].nunique() == 8
    assert not frame.duplicated(["run_id", "metric", "step", "episode"]).any()


def test_missing_ray_is_one_clear_line() -> None:
    code = (
        "import sys; sys.modules['ray'] = None\n"
        "import rlcompare\n"
        "from rlcompare import SpecError\n"
        "specs = rlcompare.grid('random', 'FrozenLake-v1', 1, steps=10)\n"
        "try:\n    rlcompare.sweep(specs, sys.argv[1], executor='ray')\n"
        "except SpecError as e:\n    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, "/tmp/unused-store"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "pip install 'rlcompare[ray]'" in out.stdout


def test_an_address_of_this_machine_reuses_the_connection(cluster: str) -> None:
    from rlcompare.sweeps.ray_executor import connect, same_endpoint

    _, port = cluster.rsplit(":", 1)
    # Ray reports its node IP; 127.0.0.1 or the hostname name the same cluster.
    assert same_endpoint(f"127.0.0.1:{port}", cluster)
    assert same_endpoint(f"localhost:{port}", cluster)
    assert not same_endpoint(f"127.0.0.1:{int(port) + 1}", cluster)
    assert not same_endpoint(f"192.0.2.254:{port}", "198.51.100.7:" + port)
    job = ray.get_runtime_context().get_job_id()
    connect(f"127.0.0.1:{port}", workers=2)
    assert ray.get_runtime_context().get_job_id() == job  # no reconnect: the same job
