"""Shared test helpers: headless plotting, no progress bars, subprocess runner, short runs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import gymnasium
import matplotlib
import pytest

import rlcompare

matplotlib.use("Agg")
# Whether this runs in CI, read before the default below: tests that need a tool CI installs
# (chromium, pdflatex) skip without it elsewhere, and fail without it in CI.
IN_CI = bool(os.environ.get("CI"))
os.environ.setdefault("CI", "1")  # progress bars off
REPO = Path(__file__).resolve().parents[1]

WALL_METRICS = ("wall_time_s", "env_steps_per_s", "planning_ms")


class NoModelChainEnv(gymnasium.Env):
    """A Discrete chain that exposes no model (neither P nor tabular_mdp): action 1 moves
    right, 0 left; reaching the last state ends the episode with reward 1. With ``slip`` the
    agent is sent back to state 0 with that probability at each step."""

    def __init__(self, n_states: int = 4, slip: float = 0.0, render_mode: str | None = None):
        self.observation_space = gymnasium.spaces.Discrete(n_states)
        self.action_space = gymnasium.spaces.Discrete(2)
        self.slip = slip
        self._s = 0

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[int, dict]:
        super().reset(seed=seed)
        self._s = 0
        return 0, {}

    def step(self, action: int) -> tuple[int, float, bool, bool, dict]:
        last = self.observation_space.n - 1
        if self.slip and self.np_random.random() < self.slip:
            self._s = 0
        else:
            self._s = min(self._s + 1, last) if action == 1 else max(self._s - 1, 0)
        return self._s, float(self._s == last), self._s == last, False, {}


for _id, _kwargs, _limit in (
    ("rlcompare_test/NoModelChain-v0", {}, 50),
    ("rlcompare_test/NoModelLoop-v0", {"n_states": 3, "slip": 1 / 3}, 30),
):
    if _id not in gymnasium.registry:
        gymnasium.register(
            id=_id, entry_point=NoModelChainEnv, max_episode_steps=_limit, kwargs=_kwargs
        )


def run_python(
    code: str, *, timeout: float = 300, check: bool = True
) -> subprocess.CompletedProcess:
    """Runs ``code`` in a fresh interpreter (fresh RNG state, fresh imports)."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"subprocess failed:\n{result.stdout}\n{result.stderr}")
    return result


def without_wall_time(frame):
    """Rows that must be identical between equal runs (timings excluded)."""
    kept = frame[~frame["metric"].isin(WALL_METRICS)]
    return kept.sort_values(["run_id", "metric", "step", "episode"], kind="stable").reset_index(
        drop=True
    )


def short_run(
    algo: str,
    env: str,
    steps: int,
    *,
    seed: int = 0,
    eval_every: int | None = None,
    eval_episodes: int = 1,
    **hparams: Any,
) -> rlcompare.RunResult:
    """One run of ``algo`` on ``env`` for ``steps`` env steps, evaluated at step 0 and every
    ``eval_every`` steps (by default only at the end), with ``hparams`` as keywords."""
    spec = rlcompare.RunSpec(
        algo,
        env,
        seed,
        steps=steps,
        eval_every=eval_every or steps,
        eval_episodes=eval_episodes,
        hparams=hparams,
    )
    return rlcompare.run(spec)


def assert_engine_matches_step_api(spec: rlcompare.RunSpec) -> Any:
    """Runs ``spec`` through the compiled engine and through ``loop.drive`` on the real env,
    asserts equal rows (timings aside) and equal action values; returns the step path's
    rows."""
    import numpy as np
    import pandas as pd

    from rlcompare.algos.tabular.trainers import train_steps
    from rlcompare.runner.context import RunContext

    engine = rlcompare.run(spec)
    ctx = RunContext(spec)
    try:
        stepped = train_steps(ctx)
        frame = ctx.frame()
    finally:
        ctx.close()
    pd.testing.assert_frame_equal(without_wall_time(engine.frame), without_wall_time(frame))
    np.testing.assert_array_equal(engine.agent.q, stepped.q)
    return frame


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store"


# `make test` runs pytest on pytest-xdist workers. Tests whose node ids start with one of these
# prefixes run on one worker, in order: Ray clusters started on one machine share its temp
# folder (where a plain ray.init() finds the last one started) and its ports, and 00_summary's
# smoke run reads the stores the other notebooks' smoke runs wrote. (xdist's own xdist_group
# marks do not group on pytest 9.2: pytest-dev/pytest-xdist#1386.)
ONE_WORKER = {
    "tests/test_ray.py::": "ray",
    "tests/test_multinode.py::": "ray",
    "tests/test_extension.py::test_main_module_definitions_run_on_ray_like_serial": "ray",
    "tests/test_notebooks.py::test_notebook_runs_under_nbval_with_smoke_profile": "notebooks",
}


def worker_group(nodeid: str) -> str:
    """The scheduling unit of a test: its ``ONE_WORKER`` group, or the test alone."""
    groups = (group for prefix, group in ONE_WORKER.items() if nodeid.startswith(prefix))
    return next(groups, nodeid)


try:
    from xdist.scheduler import LoadScopeScheduling
except ImportError:  # plain pytest: no workers to schedule
    LoadScopeScheduling = None

if LoadScopeScheduling is not None:

    class _GroupedLoad(LoadScopeScheduling):
        """xdist's ``load`` distribution, with each ``ONE_WORKER`` group as one unit."""

        def _split_scope(self, nodeid: str) -> str:
            return worker_group(nodeid)

    # optional: with `-p no:xdist` the hook is unknown, and pytest refuses unknown hooks.
    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
        return _GroupedLoad(config, log) if config.getvalue("dist") == "load" else None
