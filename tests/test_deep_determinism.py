"""Same spec, two fresh processes, identical rows: ``dqn`` (with its random switches, and a
stacked batch of seeds), ``ppo``, ``bc`` and ``sb3_dqn`` on CPU."""

from __future__ import annotations

import pandas as pd
from conftest import run_python, without_wall_time

CODE = """
import pandas as pd
import rlcompare
from rlcompare import RunSpec

expert = lambda obs: int(obs[2] + 0.5 * obs[3] > 0)
demos = rlcompare.collect_demonstrations(expert, "CartPole-v1", steps=300, seed=0, epsilon=0.2)
path = demos.save(r"{tmp}/demos.npz")
dqn = dict(learning_starts=100, train_freq=4, gradient_steps=2, target_update_interval=50,
           batch_size=16, net_arch=[16, 16], exploration_fraction=0.5)
specs = [
    RunSpec("dqn", "CartPole-v1", 4, steps=500, eval_every=250, eval_episodes=2, hparams=dqn),
    RunSpec("dqn", "CartPole-v1", 4, steps=400, eval_every=200, eval_episodes=2,
            hparams=dict(dqn, double=True, dueling=True, n_steps=3, prioritized=True,
                         noisy=True)),
    RunSpec("dqn", "CartPole-v1", 4, steps=300, eval_every=150, eval_episodes=2,
            hparams=dict(dqn, exploration="boltzmann")),
    RunSpec("dqn", "CartPole-v1", 4, steps=200, eval_every=100, eval_episodes=2,
            hparams=dict(dqn, dataset=str(path))),
    RunSpec("ppo", "CartPole-v1", 4, steps=192, eval_every=96, eval_episodes=2,
            hparams=dict(n_steps=64, batch_size=32, n_epochs=2)),
    RunSpec("ppo", "Pendulum-v1", 4, steps=128, eval_every=64, eval_episodes=1,
            hparams=dict(n_steps=64, batch_size=32, n_epochs=2)),
    RunSpec("bc", "CartPole-v1", 4, steps=100, eval_every=50, eval_episodes=2,
            hparams=dict(dataset=str(path), batch_size=32)),
    RunSpec("sb3_dqn", "CartPole-v1", 4, steps=300, eval_every=150, eval_episodes=2,
            hparams=dqn),
]
# A stacked batch of seeds (dqn's batch trainer) repeats as exactly.
stacked = [RunSpec("dqn", "CartPole-v1", seed, steps=300, eval_every=150, eval_episodes=2,
                   hparams=dict(dqn, dueling=True, prioritized=True)) for seed in (5, 6)]
frames = [rlcompare.run(spec).frame for spec in specs]
frames += [result.frame for result in rlcompare.run_batch(stacked)]
pd.concat(frames).to_parquet(r"{out}")
"""


def test_deep_runs_repeat_exactly_in_fresh_processes(tmp_path) -> None:
    frames = []
    for index in range(2):
        out = tmp_path / f"run{index}.parquet"
        run_python(CODE.format(tmp=tmp_path, out=out), timeout=300)
        frames.append(pd.read_parquet(out))
    first, second = (without_wall_time(frame) for frame in frames)
    assert set(first["algo"]) == {"dqn", "ppo", "bc", "sb3_dqn"}
    assert (first["metric"] == "td_error").any() and (first["metric"] == "loss").any()
    pd.testing.assert_frame_equal(first, second)
