"""Speed of ``rlcompare.envs.hardness.diameter``: policy iteration against value iteration.

The diameter is the largest smallest expected hitting time between two states. Value
iteration on every target's hitting times (what ``diameter`` did first, kept below as the
reference) needs of the order of D log(1 / tol) sweeps, thousands where D is large;
``diameter`` now runs policy iteration from a proper policy, evaluating each policy by a
sparse linear solve per target. This prints both values (they must agree) and both wall
times, side by side in one process, per env.

    python benchmarks/hardness_diameter.py
"""

from __future__ import annotations

import time

import numpy as np

from rlcompare.envs.hardness import _reset_chain, diameter
from rlcompare.envs.model import TabularMDP, tabular_mdp
from rlcompare.versions import cpu_model

CASES = (
    ("FrozenLake-v1", {}),
    ("FrozenLake8x8-v1", {}),
    ("CliffWalking-v1", {}),
    ("Taxi-v4", {}),
    ("rlcompare/RiverSwim-v0", {"n_states": 12}),
    ("rlcompare/DeepSea-v0", {"size": 12}),
    ("rlcompare/RandomFrozenLake-v0", {"map_size": 8}),
    ("rlcompare/SelfHealing-v0", {"fault_rate": 0.1}),
    ("rlcompare/SelfHealing-v0", {"fault_rate": 0.02}),
)


def diameter_by_value_iteration(mdp: TabularMDP, tol: float = 1e-12) -> float:
    """The reference: value iteration on all targets' hitting times at once (every pair
    reachable almost surely, as in the cases above)."""
    live = mdp.reachable & ~mdp.terminal
    n, n_actions = int(live.sum()), mdp.n_actions
    chain = _reset_chain(mdp, live)
    valid = np.asarray(mdp.valid_actions[live]).reshape(-1)
    target = np.identity(n, dtype=bool)
    times = np.zeros((n, n))
    while True:
        q = 1.0 + (chain @ times.T).T
        q = np.where(valid, q, np.inf).reshape(n, n, n_actions).min(axis=2)
        q = np.where(target, 0.0, q)
        change = float(np.max(np.abs(q - times)))
        times = q
        if change < tol * max(1.0, float(times.max())):
            return float(times.max())


def timed(fn, mdp: TabularMDP) -> tuple[float, float]:
    start = time.perf_counter()
    value = fn(mdp)
    return value, time.perf_counter() - start


def main() -> None:
    print(f"CPU: {cpu_model()}")
    print(f"{'env':<48} {'PI':>12} {'VI':>12} {'PI s':>7} {'VI s':>7} {'VI/PI':>6}")
    for env, kwargs in CASES:
        mdp = tabular_mdp(env, **kwargs)
        pi, pi_s = timed(diameter, mdp)
        vi, vi_s = timed(diameter_by_value_iteration, mdp)
        if not np.isclose(pi, vi, rtol=1e-8):
            raise SystemExit(f"{env} {kwargs}: policy iteration {pi} != value iteration {vi}")
        label = f"{env} {kwargs}" if kwargs else env
        print(f"{label:<48} {pi:>12.4f} {vi:>12.4f} {pi_s:>7.2f} {vi_s:>7.2f} {vi_s / pi_s:>6.1f}")


if __name__ == "__main__":
    main()
