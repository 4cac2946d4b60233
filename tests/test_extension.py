"""The public extension API as a user meets it: an agent and an env of their own, defined in a
script's ``__main__`` (no main guard) or a notebook cell, on every executor; the README quick
start run as a script; and every bad declaration refused with its name before training."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
from pathlib import Path

import gymnasium as gym
import nbformat
import numpy as np
import pandas as pd
import pytest
from conftest import REPO

import rlcompare
from rlcompare import Param, SpecError
from rlcompare.envs.model import TabularMDP
from rlcompare.spec import registry

# A user's script: an env and an agent defined in __main__, registered, swept on the
# executors named on the command line, rows written as JSON. No `if __name__ == "__main__"`.
USER_SCRIPT = '''
import json, sys
import gymnasium as gym
import numpy as np
import rlcompare

print("SCRIPT BODY RAN", flush=True)


class Corridor(gym.Env):
    """Walk right to the goal; the env says whether an episode succeeded."""

    def __init__(self, length=4):
        self.length = length
        self.observation_space = gym.spaces.Discrete(length)
        self.action_space = gym.spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = 0
        return 0, {}

    def step(self, action):
        self.pos = max(0, min(self.length - 1, self.pos + (1 if action == 1 else -1)))
        done = self.pos == self.length - 1
        return self.pos, float(done), done, False, {"is_success": done}


gym.register("Corridor-v0", entry_point=Corridor, max_episode_steps=20)


class Eager:
    """Q-learning written by a user, randomness from the rng it is given."""

    def __init__(self, observation_space, action_space, hparams, rng):
        self.q = np.zeros((observation_space.n, action_space.n))
        self.rng, self.eps, self.n = rng, hparams["eps"], action_space.n

    def act(self, obs, step):
        if self.rng.random() < self.eps:
            return int(self.rng.integers(self.n))
        return int(np.argmax(self.q[obs]))

    def update(self, obs, action, reward, next_obs, terminated, truncated, step):
        target = reward + (0.0 if terminated else 0.9 * self.q[next_obs].max())
        self.q[obs, action] += 0.5 * (target - self.q[obs, action])

    def greedy_action(self, obs):
        return int(np.argmax(self.q[obs]))


rlcompare.register_algorithm(
    "eager", agent=Eager, params={"eps": rlcompare.Param(0.3, float, "exploration", low=0, high=1)}
)
specs = rlcompare.grid(["eager", "q_learning"], "Corridor-v0", seeds=2, steps=300)
COLUMNS = ["run_id", "step", "metric", "value"]
out = {}
for executor in sys.argv[2:]:
    frame = rlcompare.sweep(specs, f"{sys.argv[1]}/{executor}", executor=executor, workers=2)
    frame = frame[~frame["metric"].isin(["wall_time_s", "env_steps_per_s"])]
    out[executor] = {
        "failed": frame.attrs["failed"],
        "rows": frame.sort_values(COLUMNS)[COLUMNS].astype(str).values.tolist(),
    }
if "ray" in sys.argv[2:]:
    import ray
    ray.shutdown()
json.dump(out, open(f"{sys.argv[1]}/rows.json", "w"))
'''


def _run_script(tmp_path: Path, *executors: str) -> tuple[dict, str]:
    script = tmp_path / "my_experiment.py"
    script.write_text(USER_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path), *executors],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env={**__import__("os").environ, "RAY_ADDRESS": ""},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((tmp_path / "rows.json").read_text()), done.stdout


def test_main_module_definitions_run_on_process_executor_like_serial(tmp_path):
    out, stdout = _run_script(tmp_path, "serial", "process")
    assert stdout.count("SCRIPT BODY RAN") == 1, "workers must not re-run the user's script"
    assert out["serial"]["failed"] == {} and out["process"]["failed"] == {}
    assert out["process"]["rows"] == out["serial"]["rows"]
    metrics = {row[2] for row in out["serial"]["rows"]}
    assert {"eval_return", "success_rate", "episode_return"} <= metrics


@pytest.mark.timeout(600)
def test_main_module_definitions_run_on_ray_like_serial(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    # The script's local cluster gets a temp folder of its own (short: Ray's socket paths
    # live under it), apart from any other cluster on this machine.
    temp = tempfile.mkdtemp(prefix="rlc-ray-")
    monkeypatch.setenv("RAY_TMPDIR", temp)
    try:
        out, stdout = _run_script(tmp_path, "serial", "ray")
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    assert out["ray"]["failed"] == {}
    assert out["ray"]["rows"] == out["serial"]["rows"]


def _readme_quickstart() -> str:
    text = (REPO / "README.md").read_text()
    block = re.search(r"## Quick start\s+```python\n(.*?)```", text, re.S)
    assert block, "README has a Python quick start"
    return block.group(1)


def test_readme_quick_start_runs_as_a_script(tmp_path):
    script = tmp_path / "quickstart.py"
    script.write_text(_readme_quickstart())
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=600, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "worker process died" not in done.stderr
    assert "iqm" in done.stdout and "double_q" in done.stdout and "q_learning" in done.stdout
    stored = list((tmp_path / "data" / "quickstart").glob("*.parquet"))
    assert len(stored) == 20


def test_notebook_cell_definitions_run_on_the_process_executor(tmp_path):
    from nbclient import NotebookClient

    cells = [
        "import numpy as np\nimport rlcompare",
        textwrap.dedent(
            '''
            class Lazy:
                """Always the same action."""
                def __init__(self, observation_space, action_space, hparams, rng):
                    self.action = hparams["action"]
                def act(self, obs, step):
                    return self.action
                def update(self, *transition):
                    pass
                def greedy_action(self, obs):
                    return self.action
            rlcompare.register_algorithm(
                "lazy", agent=Lazy, params={"action": rlcompare.Param(1, int, "the action")}
            )
            specs = rlcompare.grid("lazy", "FrozenLake-v1", seeds=2, steps=200,
                                   hparams={"action": [1, 2]})
            serial = rlcompare.sweep(specs, "serial", executor="serial")
            process = rlcompare.sweep(specs, "process", executor="process", workers=2)
            keep = lambda f: f[f["metric"] == "eval_return"].sort_values(["run_id", "step"])
            same = keep(serial)[["run_id", "step", "value"]].values.tolist() == keep(
                process)[["run_id", "step", "value"]].values.tolist()
            print("RESULT", same, len(process["run_id"].unique()), process.attrs["failed"])
            '''
        ),
    ]
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    NotebookClient(
        notebook, timeout=300, kernel_name="rlcompare", resources={"metadata": {"path": tmp_path}}
    ).execute()
    printed = "".join(o.get("text", "") for o in notebook.cells[1].outputs)
    assert "RESULT True 4 {}" in printed, printed


# ------------------------------------------------------------------ a user env with a model
class TwoStep(gym.Env):
    """s0 -a1-> s1 -a1-> goal (reward 1); a0 stays. Exposes its model like our envs."""

    observation_space = gym.spaces.Discrete(3)
    action_space = gym.spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.s = 0
        return 0, {}

    def step(self, action):
        self.s = min(self.s + int(action), 2)
        done = self.s == 2
        return self.s, float(done), done, False, {"is_success": done}

    def tabular_mdp(self) -> TabularMDP:
        table = {
            s: {
                a: [(1.0, min(s + a, 2), float(min(s + a, 2) == 2), min(s + a, 2) == 2)]
                for a in (0, 1)
            }
            for s in range(3)
        }
        return TabularMDP.from_transitions(
            table, np.array([1.0, 0.0, 0.0]), n_states=3, n_actions=2, name="TwoStep"
        )


def test_a_user_env_with_a_model_gets_ground_truth_and_success_rows():
    if "test/TwoStep-v0" not in gym.registry:
        gym.register("test/TwoStep-v0", entry_point=TwoStep, max_episode_steps=10)
    spec = rlcompare.RunSpec(
        "q_learning", "test/TwoStep-v0", 0, steps=300, hparams={"gamma": 0.9}, eval_every=100
    )
    frame = rlcompare.run(spec).frame
    metrics = set(frame["metric"])
    assert {"q_error", "policy_regret", "success_rate"} <= metrics
    final = frame[frame["step"] == frame["step"].max()].set_index("metric")["value"]
    assert final["success_rate"] == 1.0 and final["policy_regret"] == pytest.approx(0.0)
    assert rlcompare.value_iteration(rlcompare.tabular_mdp("test/TwoStep-v0"), 0.9).v[0] == (
        pytest.approx(0.9)
    )


# ---------------------------------------------------------------------------- bad input
@pytest.fixture
def scratch_registry(monkeypatch):
    """Registrations made by a test vanish after it."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


class Complete:
    def __init__(self, observation_space, action_space, hparams, rng):
        self.space = action_space

    def act(self, obs, step):
        return 0

    def update(self, *transition):
        pass

    def greedy_action(self, obs):
        return 0


def test_an_agent_missing_a_method_is_refused_naming_it(scratch_registry):
    class NoGreedy:
        def act(self, obs, step):
            return 0

        def update(self, *transition):
            pass

    with pytest.raises(ValueError, match=r"NoGreedy has no 'greedy_action' method"):
        rlcompare.register_algorithm("no_greedy", agent=NoGreedy)


def test_a_name_registered_twice_with_different_definitions_is_refused(scratch_registry):
    rlcompare.register_algorithm("twice", agent=Complete)
    rlcompare.register_algorithm("twice", agent=Complete)  # the same definition: fine

    class Other(Complete):
        pass

    with pytest.raises(ValueError, match=r"'twice' is already registered with a different agent"):
        rlcompare.register_algorithm("twice", agent=Other)


def test_decorator_form_registers_and_returns_the_class(scratch_registry):
    @rlcompare.register_algorithm("decorated", params={"x": Param(1, int, "x")})
    class Decorated(Complete):
        """A decorated agent."""

    assert Decorated.__name__ == "Decorated"
    algorithm = registry.get_algorithm("decorated")
    assert algorithm.agent is Decorated and algorithm.summary == "A decorated agent."
    result = rlcompare.run(rlcompare.RunSpec("decorated", "FrozenLake-v1", 0, steps=50))
    assert result.status == "ok" and "eval_return" in set(result.frame["metric"])


def test_an_agent_that_cannot_travel_is_refused_before_training(scratch_registry, tmp_path):
    class Locked(Complete):
        lock = threading.Lock()  # cannot be pickled, so cannot reach a worker process

    rlcompare.register_algorithm("locked", agent=Locked)
    specs = rlcompare.grid("locked", "FrozenLake-v1", seeds=2, steps=50)
    with pytest.raises(SpecError, match=r"algo locked .*cannot be sent to process workers.*serial"):
        rlcompare.sweep(specs, tmp_path / "s", executor="process", progress=False)
    assert not list((tmp_path / "s").glob("*.parquet")), "nothing trained or stored"
    serial = rlcompare.sweep(specs, tmp_path / "t", executor="serial", progress=False)
    assert serial.attrs["failed"] == {} and serial["run_id"].nunique() == 2


def test_bad_hyperparameters_of_a_user_agent_are_refused_when_the_spec_is_built(
    scratch_registry,
):
    rlcompare.register_algorithm(
        "bounded", agent=Complete, params={"p": Param(0.5, float, "p", low=0.0, high=1.0)}
    )
    with pytest.raises(SpecError, match=r"'p' of 'bounded' = 2.0"):
        rlcompare.RunSpec("bounded", "FrozenLake-v1", 0, steps=10, hparams={"p": 2.0})
    with pytest.raises(SpecError, match=r"unknown hyperparameter 'q'.*valid: p"):
        rlcompare.RunSpec("bounded", "FrozenLake-v1", 0, steps=10, hparams={"q": 1})


def test_module_env_ids_resolve_or_name_the_module(tmp_path, monkeypatch):
    (tmp_path / "user_envs.py").write_text(
        "import gymnasium as gym\n"
        "gym.register('UserLake-v0', entry_point='gymnasium.envs.toy_text:FrozenLakeEnv',"
        " max_episode_steps=20)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = rlcompare.RunSpec("random", "user_envs:UserLake-v0", 0, steps=40)
    assert rlcompare.run(spec).status == "ok"
    with pytest.raises(SpecError, match=r"module 'no_such_module' does not import"):
        rlcompare.RunSpec("random", "no_such_module:UserLake-v0", 0, steps=40)
    with pytest.raises(SpecError, match=r"module 'user_envs' registers no env 'Nope-v0'"):
        rlcompare.RunSpec("random", "user_envs:Nope-v0", 0, steps=40)


def test_a_worker_without_a_module_env_records_failed_runs_with_the_reason(tmp_path):
    from rlcompare.sweeps.tasks import execute_packed, pack

    (tmp_path / "only_here.py").write_text(
        "import gymnasium as gym\n"
        "gym.register('OnlyHere-v0', entry_point='gymnasium.envs.toy_text:FrozenLakeEnv')\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        specs = rlcompare.grid("random", "only_here:OnlyHere-v0", seeds=1, steps=20)
        blob = pack(specs)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("only_here", None)
    # A worker whose sys.path lacks the module (a Ray node without the file).
    (tmp_path / "only_here.py").unlink()
    (output,) = execute_packed(specs, blob)
    frame, metadata = output
    assert frame.empty and metadata["status"] == "failed"
    assert "module 'only_here' does not import" in metadata["reason"]


def test_plugins_load_from_the_cli_and_reach_the_registry(tmp_path):
    (tmp_path / "my_plugin.py").write_text(
        "import rlcompare\n"
        "from rlcompare.algos.baselines import RandomAgent\n"
        "class Always:\n"
        "    def __init__(self, obs_space, act_space, hparams, rng): pass\n"
        "    def act(self, obs, step): return 0\n"
        "    def update(self, *t): pass\n"
        "    def greedy_action(self, obs): return 0\n"
        "rlcompare.register_algorithm('always_zero', agent=Always, summary='action 0 always')\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "rlcompare.app.cli", "--plugin", "my_plugin", "algos"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**__import__("os").environ, "PYTHONPATH": str(tmp_path)},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "always_zero" in done.stdout and "action 0 always" in done.stdout
    missing = subprocess.run(
        [sys.executable, "-m", "rlcompare.app.cli", "--plugin", "not_a_module", "algos"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 2
    assert "plugin module 'not_a_module' does not import" in missing.stderr


def test_the_extension_api_is_public():
    for name in ("Agent", "Param", "register_algorithm"):
        assert name in rlcompare.__all__ and hasattr(rlcompare, name)
    assert pd.api.types.is_list_like(rlcompare.algorithms(order="registered"))
