"""A real two-node Ray cluster on this machine, the second node blind to the driver's files.

The head (no CPUs) and a second node (2 CPUs, custom resource ``far``) run as separate
``ray start`` processes; the second node runs in its own mount namespace with an empty tmpfs
over this test's folder, so it cannot open the datasets or the store that the driver sees.
Every task is pinned to it with ``resources={"far": 1}``. The drivers run as subprocesses
(this file, run as a script), so that this pytest process never attaches to the cluster.

Every process started here is ended by its pid in ``finally`` blocks: the processes each
``ray start`` spawned are found as its descendants and, once orphaned, by this cluster's
unique GCS port in their command line.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
RAY = Path(sys.executable).with_name("ray")
LAKE = "FrozenLake-v1"
SETTINGS = {"is_slippery": False}
# Hang guards, not timings. The cluster's tests run first under `make test`'s xdist workers
# (its largest group), so on a clean clone their Ray workers compile the tabular engine while
# the other worker's tests do the same: a driver took over 120 s there.
START_TIMEOUT_S = 120
DRIVER_TIMEOUT_S = 360


def _skip_reason() -> str | None:
    if shutil.which("unshare") is None:
        return "needs util-linux `unshare` to hide the driver's files from the second node"
    try:
        import ray  # noqa: F401
    except ImportError:
        return "needs Ray: pip install 'rlcompare[ray]'"
    if not RAY.exists():
        return f"needs the `ray` command next to {sys.executable}"
    return None


pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=str(_skip_reason()))


# ------------------------------------------------------------------ specs (driver and test)
def save_logs(data: Path) -> dict[str, str]:
    """Logs of a fixed and of a random policy on the deterministic lake, saved in ``data``."""
    import numpy as np

    import rlcompare

    rng = np.random.default_rng(0)
    policies = {"right": lambda obs: 2, "random": lambda obs: int(rng.integers(4))}
    paths = {}
    for name, policy in policies.items():
        path = data / f"{name}.npz"
        rlcompare.collect_demonstrations(
            policy, LAKE, steps=300, seed=0, env_kwargs=SETTINGS, source=name
        ).save(path)
        paths[name] = str(path)
    return paths


def offline_specs(data: Path) -> list:
    import rlcompare

    logs = sorted(str(p) for p in data.glob("*.npz"))
    common = {"env_kwargs": SETTINGS, "eval_episodes": 2, "experiment": "offline"}
    return rlcompare.grid(
        "q_learning", LAKE, 2, hparams={"dataset": logs}, steps=300, eval_every=150, **common
    ) + rlcompare.grid(
        "bc", LAKE, 1, hparams={"dataset": logs, "batch_size": 32}, steps=20, eval_every=20,
        **common,
    )  # fmt: skip


def online_specs(seeds: int) -> list:
    import rlcompare

    return rlcompare.grid(
        ["random", "sarsa"], LAKE, seeds, steps=300, eval_every=150, eval_episodes=2,
        experiment="online",
    )  # fmt: skip


def long_specs() -> list:
    """Runs of about a second each, one task per run: a sweep long enough to kill a node in."""
    import rlcompare

    return rlcompare.grid(
        "random", LAKE, 10, steps=20_000, eval_every=10_000, eval_episodes=2, experiment="long"
    )


def specs_for(mode: str, data: Path) -> list:
    return {
        "offline": lambda: offline_specs(data) + online_specs(2),
        "long": long_specs,
    }[mode]()


def comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows without wall-clock metrics, in a fixed order."""
    rows = frame[~frame["metric"].isin(["wall_time_s", "env_steps_per_s"])]
    return rows.sort_values(["run_id", "metric", "step", "episode"]).reset_index(drop=True)


def drive(mode: str, root: Path, address: str) -> None:
    """The driver process: one sweep on the cluster, every task pinned to the ``far`` node;
    writes the nodes that ran each run, and the driver's own node, to ``root/<mode>.json``."""
    import ray

    import rlcompare
    from rlcompare.store.results import read_metadata, run_path

    store = root / "store"
    specs = specs_for(mode, root / "data")
    frame = rlcompare.sweep(
        specs, store, executor="ray", address=address, resources={"far": 1}, progress=False
    )
    nodes = {
        spec.run_id: read_metadata(run_path(store, spec.run_id)).get("node", {}) for spec in specs
    }
    report = {
        "driver_node": ray.get_runtime_context().get_node_id(),
        "nodes": nodes,
        "failed": frame.attrs["failed"],
    }
    (root / f"{mode}.json").write_text(json.dumps(report))


# ---------------------------------------------------------------------------- the cluster
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Cluster:
    """A head and a ``far`` node started as ``ray start --block`` processes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.roots: list[subprocess.Popen] = []
        self.seen: set[int] = set()
        self.far: subprocess.Popen | None = None
        # Ray's temp folder of this cluster's own (short: Ray's socket paths live under it),
        # for every node and driver: Ray's default, /tmp/ray, names the last cluster started
        # on the machine. Outside ``root``, which the far node sees empty.
        self.temp = tempfile.mkdtemp(prefix="rlc-ray-")
        # Faster death detection than Ray's default (~30 s), for the node-kill test; the
        # cluster's auth token goes to every node and driver through the environment.
        self.env = {
            **os.environ,
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": secrets.token_hex(32),
            "RAY_health_check_period_ms": "500",
            "RAY_health_check_failure_threshold": "4",
            "RAY_USAGE_STATS_ENABLED": "0",
            # On a loaded 2-core machine the node's agent can take longer than Ray's 30 s to
            # register, and the raylet then aborts its start.
            "RAY_agent_register_timeout_ms": "120000",
            "RAY_TMPDIR": self.temp,
        }

    def _start(self, argv: list[str]) -> subprocess.Popen:
        log = open(self.root / f"node{len(self.roots)}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self.roots.append(process)
        self.seen.add(process.pid)
        return process

    def start_head(self) -> None:
        self._start(
            [
                str(RAY), "start", "--head", f"--port={self.port}", "--num-cpus=0",
                "--include-dashboard=false",
                "--object-store-memory=100000000", "--disable-usage-stats", "--block",
            ]
        )  # fmt: skip

    def start_far(self) -> None:
        """The second node, in its own mount namespace where this test's folder is empty."""
        ray_start = " ".join(
            [
                str(RAY), "start", f"--address={self.address}", "--num-cpus=2",
                "--resources='{\"far\": 2}'",
                "--object-store-memory=100000000", "--disable-usage-stats", "--block",
            ]
        )  # fmt: skip
        unshare = ["unshare", "-m"] if os.geteuid() == 0 else ["unshare", "-r", "-m"]
        script = f"mount -t tmpfs none {self.root} && exec {ray_start}"
        self.far = self._start([*unshare, "sh", "-c", script])

    def _descendants(self, pid: int) -> list[int]:
        import psutil

        try:
            return [child.pid for child in psutil.Process(pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def _ours(self) -> set[int]:
        """Pids of processes this cluster started: descendants of each ``ray start``, and
        orphans whose command line names this cluster's unique GCS address."""
        import psutil

        found = set()
        for process in self.roots:
            found.update(self._descendants(process.pid))
        for proc in psutil.process_iter(["pid", "cmdline"]):
            if any(self.address in part for part in proc.info["cmdline"] or ()):
                found.add(proc.info["pid"])
        found.discard(os.getpid())
        self.seen |= found
        return found

    def kill_far(self) -> None:
        """Kills the far node (its raylet, workers and ``ray start``) by pid, at once."""
        assert self.far is not None
        pids = [self.far.pid, *self._descendants(self.far.pid)]
        for pid in pids:
            _kill(pid)
        self.far.wait(timeout=10)
        self.roots.remove(self.far)
        self.far = None

    def wait_for_far(self) -> None:
        """Until a live node offers the ``far`` resource (asked of the GCS by a subprocess)."""
        probe = (
            "import ray,sys,time\n"
            f"ray.init(address={self.address!r}, log_to_driver=False)\n"
            f"deadline = time.monotonic() + {START_TIMEOUT_S}\n"
            # Totals, not what is free: a resumed sweep's tasks take the node as it joins.
            "far = lambda: sum(n['Resources'].get('far', 0) for n in ray.nodes() if n['Alive'])\n"
            "while far() < 2:\n"
            "    if time.monotonic() > deadline: sys.exit('far node never joined')\n"
            "    time.sleep(0.2)\n"
        )
        subprocess.run(
            [sys.executable, "-c", probe], env=self.env, check=True, timeout=START_TIMEOUT_S + 30
        )

    def stop(self) -> None:
        for _ in range(3):  # ray start respawns nothing once killed, but workers may linger
            pids = self._ours() | {p.pid for p in self.roots}
            for pid in pids:
                _kill(pid)
            for process in self.roots:
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
            if not self._ours():
                break
            time.sleep(0.5)
        # Its address file and logs went to the cluster's own temp folder.
        shutil.rmtree(self.temp, ignore_errors=True)

    def start(self) -> None:
        """Starts the head and the far node and waits until the far node has joined."""
        self.start_head()
        self.start_far()
        self.wait_for_far()


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _driver(mode: str, root: Path, address: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, __file__, mode, str(root), address],
        env={**env, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _finish(process: subprocess.Popen) -> str:
    try:
        output, _ = process.communicate(timeout=DRIVER_TIMEOUT_S)
    finally:
        _kill(process.pid)
    return output.decode(errors="replace")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("multinode")
    (root / "data").mkdir()
    save_logs(root / "data")
    # One run of each kind here first: the nodes' workers then load the compiled engine from
    # numba's cache instead of each compiling it within a driver's timeout.
    import rlcompare

    for spec in {spec.algo: spec for spec in specs_for("offline", root / "data")}.values():
        rlcompare.run(spec)
    nodes = Cluster(root)
    try:
        try:
            nodes.start()
        except subprocess.SubprocessError:
            # Ray gives up on a node slow to start on a loaded machine (a fixed 30 s for
            # the raylet to register, ray-project/ray#65983): one more start, on new ports.
            nodes.stop()
            nodes = Cluster(root)
            nodes.start()
        yield nodes
    finally:
        nodes.stop()


def _serial(specs: list, store: Path) -> pd.DataFrame:
    import rlcompare

    frame = rlcompare.sweep(specs, store, executor="serial", progress=False)
    assert not frame.attrs["failed"]
    return frame


def test_offline_and_online_sweeps_run_on_a_node_that_sees_no_driver_file(
    cluster: Cluster, tmp_path: Path
) -> None:
    root = cluster.root
    driver = _driver("offline", root, cluster.address, cluster.env)
    output = _finish(driver)
    assert driver.returncode == 0, output
    report = json.loads((root / "offline.json").read_text())
    assert report["failed"] == {}
    ran_on = {node.get("ray_node_id") for node in report["nodes"].values()}
    # Every run ran on the far node: one node, not the driver's (which has no CPUs anyway).
    assert len(ran_on) == 1 and None not in ran_on and report["driver_node"] not in ran_on

    import rlcompare

    specs = specs_for("offline", root / "data")
    remote = rlcompare.load_results(root / "store", run_ids=[s.run_id for s in specs])
    assert set(remote["algo"]) == {"q_learning", "bc", "random", "sarsa"}
    pd.testing.assert_frame_equal(
        comparable(remote), comparable(_serial(specs, tmp_path / "serial"))
    )


def test_a_killed_node_mid_sweep_then_restarted_finishes_the_sweep(
    cluster: Cluster, tmp_path: Path
) -> None:
    import rlcompare
    from rlcompare.store.results import stored_statuses

    root = cluster.root
    store = root / "store"
    specs = specs_for("long", root / "data")
    before = set(stored_statuses(store))
    driver = _driver("long", root, cluster.address, cluster.env)
    try:
        deadline = time.monotonic() + DRIVER_TIMEOUT_S
        while len(set(stored_statuses(store)) - before) < 2:  # mid-sweep: some runs stored
            assert driver.poll() is None, "the sweep ended before the node could be killed"
            assert time.monotonic() < deadline, "no run finished on the far node"
            time.sleep(0.1)
        cluster.kill_far()
        cluster.start_far()
        cluster.wait_for_far()
        # The interrupted sweep retries its lost tasks on the restarted node, or records them
        # failed; either way the rerun below finishes the rest.
        _finish(driver)
    finally:
        _kill(driver.pid)
    resumed = _driver("long", root, cluster.address, cluster.env)
    output = _finish(resumed)
    assert resumed.returncode == 0, output
    report = json.loads((root / "long.json").read_text())
    assert report["failed"] == {}
    statuses = stored_statuses(store)
    assert all(statuses[s.run_id] == "ok" for s in specs), statuses
    remote = rlcompare.load_results(store, run_ids=[s.run_id for s in specs])
    pd.testing.assert_frame_equal(
        comparable(remote), comparable(_serial(specs, tmp_path / "serial"))
    )


if __name__ == "__main__":
    drive(sys.argv[1], Path(sys.argv[2]), sys.argv[3])
