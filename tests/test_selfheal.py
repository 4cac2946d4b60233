"""rlcompare/SelfHealing-v0: the model, the simulation, the gymnasium contract, the runbook."""

from __future__ import annotations

import hashlib
import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import rlcompare
from rlcompare.envs.make import make_env, success_fn
from rlcompare.envs.planning import policy_evaluation, value_iteration
from rlcompare.envs.selfheal import (
    ACTIONS,
    ENV_ID,
    FAULTS,
    MAX_EPISODE_STEPS,
    SelfHealingEnv,
    decode_features,
    episode_domain_metrics,
    explain_state,
    runbook_policy,
)
from rlcompare.envs.selfheal_model import (
    N_ACTIONS,
    N_STATES,
    PAGE,
    RESTART,
    ROLL_BACK,
    SCALE_OUT,
    WAIT,
    ModelParams,
    build_model,
    decode_state,
    encode_state,
)
from rlcompare.errors import SpecError

GAMMA = 0.95
# Q-learning with Robbins-Monro step sizes 1 / n(s, a)^0.6: a constant step size leaves Q
# too noisy in this very stochastic env for the greedy policy to settle (regret ~5-15 at 0.1).
QL_STEPS = 600_000
QL_HPARAMS = {"gamma": GAMMA, "alpha_schedule": "visit", "omega": 0.6, "epsilon": 0.1}
LEVELS = np.array([decode_state(s) for s in range(N_STATES)])  # (S, 5)
# sha256[:16] of the default model's arrays (rounded to 1e-12) before the fault mix options.
EXPECTED_DIGESTS = {
    "P": "2c0f6dcfd9f699e2",
    "R": "89f1a0e736af177e",
    "initial": "6760989d3c829d2a",
    "posterior": "48b49ad0c36f7725",
}


def _runbook_actions() -> np.ndarray:
    return np.array([runbook_policy(s) for s in range(N_STATES)])


def test_the_id_and_step_limit_are_the_registered_ones() -> None:
    assert ENV_ID == "rlcompare/SelfHealing-v0"  # the public id notebooks and users type
    assert gym.spec(ENV_ID).max_episode_steps == MAX_EPISODE_STEPS == 100
    env = gym.make(ENV_ID)
    env.reset(seed=0)
    steps, truncated = 0, False
    while not truncated:  # the service never terminates: only the time limit ends it
        _, _, terminated, truncated, _ = env.step(0)
        assert not terminated
        steps += 1
    assert steps == MAX_EPISODE_STEPS
    assert success_fn(ENV_ID) is None  # no goal: an episode is never a success


# -- the model -----------------------------------------------------------------------------------


def test_model_is_a_well_formed_mdp():
    P, R, terminal, initial = SelfHealingEnv().transition_model()
    assert P.shape == (N_STATES, N_ACTIONS, N_STATES) and R.shape == (N_STATES, N_ACTIONS)
    assert N_STATES == 108 and len(ACTIONS) == N_ACTIONS == 7
    assert P.min() >= 0 and np.allclose(P.sum(axis=-1), 1.0)
    assert initial.min() >= 0 and math.isclose(initial.sum(), 1.0)
    assert not terminal.any()
    assert not P.flags.writeable  # shared, cached arrays
    # Episodes start at an incident; every state can be reached.
    assert initial @ (LEVELS[:, 0] + LEVELS[:, 1] > 0) > 0.9
    reach = initial > 0
    for _ in range(10):
        reach = reach | (reach @ P.max(axis=1) > 0)
    assert reach.all()


def test_model_follows_the_fault_semantics():
    P, R, _, _ = SelfHealingEnv().transition_model()
    memory, deploy, acted = LEVELS[:, 2], LEVELS[:, 3], LEVELS[:, 4]
    # Restarting processes clears memory (a surviving leak regrows at most one level).
    for action in (RESTART, ROLL_BACK, PAGE):
        assert P[:, action][:, memory == 2].sum() == 0
    # The acted flag records whether the last action was corrective.
    assert P[:, WAIT][:, acted == 1].sum() == 0 and P[:, RESTART][:, acted == 0].sum() == 0
    # A roll back clears the deploy flag unless it failed on a bad deploy.
    bad_deploy = encode_state(2, 0, 0, 1, 0)
    assert P[bad_deploy, ROLL_BACK] @ deploy < 0.2 < 0.9 < P[bad_deploy, WAIT] @ deploy
    # Overload: restarting makes things worse than scaling out.
    overload = encode_state(1, 2, 0, 0, 0)
    severity = -R[:, WAIT]
    assert P[overload, RESTART] @ severity > P[overload, SCALE_OUT] @ severity + 1
    # Paging always fixes: only a fresh fault or bad deploy can leave errors high.
    assert np.max(P[:, PAGE] @ (LEVELS[:, 0] == 2)) < 0.05
    assert np.min(P[:, PAGE] @ (severity == 0)) > 0.75
    # Costs: waiting in a healthy state is free, paging costs the most.
    healthy = encode_state(0, 0, 0, 0, 0)
    assert R[healthy, WAIT] == 0 and R[healthy].argmin() == PAGE


def test_tabular_mdp_is_the_model():
    env = gym.make(ENV_ID)
    P, R, terminal, initial = env.unwrapped.transition_model()
    mdp = rlcompare.tabular_mdp(env)
    assert mdp is rlcompare.tabular_mdp(ENV_ID) and (mdp.n_states, mdp.n_actions) == (108, 7)
    assert np.allclose(mdp.transitions, P) and np.allclose(mdp.rewards, R)
    assert np.array_equal(mdp.terminal, terminal) and np.allclose(mdp.initial, initial)
    assert mdp.reachable.all()
    features = rlcompare.tabular_mdp(ENV_ID, observation="features")
    assert np.allclose(features.transitions, P)
    # Q* satisfies the Bellman optimality equation on the dense arrays.
    solution = value_iteration(mdp, GAMMA)
    assert np.allclose(solution.q, R + GAMMA * P @ solution.v, atol=1e-8)


def test_kwargs_change_the_model_and_bad_ones_name_the_valid_values():
    base = SelfHealingEnv().transition_model()[0]
    for kwargs in ({"fault_rate": 0.3}, {"compound_rate": 0.0}, {"difficulty": "hard"}):
        assert not np.allclose(SelfHealingEnv(**kwargs).transition_model()[0], base)
    with pytest.raises(SpecError, match="easy, normal, hard"):
        make_env(ENV_ID, {"difficulty": "brutal"})
    with pytest.raises(SpecError, match="discrete, features"):
        make_env(ENV_ID, {"observation": "pixels"})
    with pytest.raises(SpecError, match=r"fault_rate.*\[0, 1\]"):
        make_env(ENV_ID, {"fault_rate": 1.5})


# -- fault mix options ---------------------------------------------------------------------------
KINDS = FAULTS[1:]


@pytest.mark.parametrize("option", ["withheld_fault", "only_fault"])
@pytest.mark.parametrize("kind", KINDS)
def test_fault_mix_options_keep_a_model_without_the_kinds_left_out(option: str, kind: str):
    model = build_model(ModelParams(**{option: kind}))
    assert np.allclose(model.P.sum(axis=-1), 1.0) and model.P.min() >= 0
    assert math.isclose(model.initial.sum(), 1.0) and np.allclose(model.posterior.sum(axis=1), 1.0)
    kinds = ModelParams(**{option: kind}).kinds
    occurring = {FAULTS[f] for f in np.flatnonzero(kinds)}
    assert occurring == ({*FAULTS} - {kind} if option == "withheld_fault" else {"healthy", kind})
    # Attribution never names a kind that does not occur, so the dynamics never draw it.
    assert (model.posterior[:, ~kinds] == 0).all()


def test_a_withheld_leak_never_shows_in_episodes():
    env = SelfHealingEnv(withheld_fault="memory_leak")
    seen = set()
    for seed in range(20):
        state, _ = env.reset(seed=seed)
        for _ in range(100):
            # Memory rises only under a leak; waiting never restarts the processes to hide it.
            assert decode_state(state)[2] == 0
            state, _, _, _, info = env.step(WAIT)
            seen.add(info["likely_fault"])
    assert "memory_leak" not in seen and len(seen) >= 4
    only = SelfHealingEnv(only_fault="overload")
    only.reset(seed=0)
    assert {only.step(WAIT)[4]["likely_fault"] for _ in range(300)} <= {"healthy", "overload"}


def test_empty_fault_mix_options_leave_the_model_unchanged():
    default = build_model(ModelParams())
    assert build_model(ModelParams(withheld_fault="", only_fault="")) is default
    # Rounded so that a platform's last bit does not matter (bit for bit where written).
    digests = {
        name: hashlib.sha256(np.round(getattr(default, name), 12).tobytes()).hexdigest()[:16]
        for name in ("P", "R", "initial", "posterior")
    }
    assert digests == EXPECTED_DIGESTS
    withheld = build_model(ModelParams(withheld_fault="memory_leak"))
    assert not np.allclose(withheld.P, default.P)


def test_fault_mix_options_name_the_valid_values():
    with pytest.raises(SpecError, match="withheld_fault = 'gremlins' is invalid.*memory_leak"):
        make_env(ENV_ID, {"withheld_fault": "gremlins"})
    with pytest.raises(SpecError, match="only_fault = 'healthy' is invalid"):
        make_env(ENV_ID, {"only_fault": "healthy"})
    with pytest.raises(SpecError, match="both set; valid: at most one"):
        make_env(ENV_ID, {"withheld_fault": "overload", "only_fault": "memory_leak"})


# -- simulation ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("state", "action"),
    [
        (encode_state(0, 0, 0, 0, 0), WAIT),
        (encode_state(1, 2, 0, 0, 0), RESTART),
        (encode_state(2, 1, 0, 1, 1), ROLL_BACK),
        (encode_state(0, 1, 2, 0, 0), SCALE_OUT),
    ],
)
def test_simulation_matches_the_model(state: int, action: int):
    env = SelfHealingEnv()
    env.reset(seed=state * 10 + action)
    samples = 20_000
    counts = np.zeros(N_STATES)
    for _ in range(samples):
        env.reset(options={"state": state})
        counts[env.step(action)[0]] += 1
    expected = env.transition_model()[0][state, action]
    assert np.max(np.abs(counts / samples - expected)) < 0.02
    assert counts[expected == 0].sum() == 0


def test_initial_distribution_matches_the_model():
    env = SelfHealingEnv()
    env.reset(seed=1)
    counts = np.bincount([env.reset()[0] for _ in range(20_000)], minlength=N_STATES)
    assert np.max(np.abs(counts / 20_000 - env.transition_model()[3])) < 0.02


@pytest.mark.parametrize("observation", ["discrete", "features"])
def test_passes_gymnasium_check_env(observation: str):
    env = gym.make(ENV_ID, observation=observation, render_mode="ansi")
    check_env(env.unwrapped, skip_render_check=False)
    assert isinstance(env.unwrapped.render(), str)


def _rollout(env: gym.Env, seed: int, steps: int = 150) -> tuple[list, list, list]:
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    observations, rewards, states = [obs], [], []
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(int(rng.integers(N_ACTIONS)))
        observations.append(obs)
        rewards.append(reward)
        states.append(info["state"])
        if terminated or truncated:
            obs, _ = env.reset()
    return observations, rewards, states


def test_seeded_runs_repeat_and_both_forms_share_the_dynamics():
    first = _rollout(gym.make(ENV_ID), seed=3)
    assert first == _rollout(gym.make(ENV_ID), seed=3)
    assert first != _rollout(gym.make(ENV_ID), seed=4)
    features = _rollout(gym.make(ENV_ID, observation="features"), seed=3)
    again = _rollout(gym.make(ENV_ID, observation="features"), seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(features[0], again[0], strict=True))
    # Same seed, same hidden states and rewards; the features are noisy views of them.
    assert features[1:] == first[1:]
    decoded = [decode_features(obs) for obs in features[0]]
    assert np.mean(np.array(decoded) == np.array(first[0])) > 0.8


def test_never_terminates_and_truncates_at_100_with_the_model_reward():
    env = gym.make(ENV_ID)
    assert env.spec.max_episode_steps == 100
    P, R, _, _ = env.unwrapped.transition_model()
    obs, _ = env.reset(seed=0)
    for t in range(1, 101):
        action = t % N_ACTIONS
        next_obs, reward, terminated, truncated, info = env.step(action)
        assert not terminated and truncated == (t == 100)
        assert info["state"] == obs and reward == R[obs, action] == -(
            info["severity"] + info["action_cost"]
        )
        assert info["impaired"] == (info["severity"] > 0)
        obs = next_obs


# -- runbook, metrics, explanations ----------------------------------------------------------------
@pytest.mark.parametrize("gamma", [GAMMA, 0.99])
def test_runbook_is_better_than_random_and_worse_than_optimal(gamma: float):
    mdp = rlcompare.tabular_mdp(ENV_ID)
    v_star = mdp.initial @ value_iteration(mdp, gamma).v
    v_runbook = mdp.initial @ policy_evaluation(mdp, _runbook_actions(), gamma)
    uniform = np.full((N_STATES, N_ACTIONS), 1 / N_ACTIONS)
    v_random = mdp.initial @ policy_evaluation(mdp, uniform, gamma)
    # At gamma 0.95: V* = -32.8, runbook -39.5, random -83.0 (wait-only: -49.9).
    assert v_random + 10 < v_runbook < v_star - 2


def test_runbook_demonstrations_on_both_forms():
    data = rlcompare.collect_demonstrations(runbook_policy, ENV_ID, episodes=3, seed=0)
    assert len(data) == 300 and data.truncated.sum() == 3 and not data.terminated.any()
    assert data.actions.tolist() == [runbook_policy(s) for s in data.observations]
    features = rlcompare.collect_demonstrations(
        runbook_policy, ENV_ID, episodes=2, seed=0, env_kwargs={"observation": "features"}
    )
    assert features.observations.shape == (200, 5) and features.observations.dtype == np.float32
    assert -1000 < features.mean_return < 0 and -1000 < data.mean_return < 0


def test_episode_domain_metrics_by_hand():
    impaired = [False, True, True, False, True, True, True, True]
    infos = [{"impaired": i, "action_cost": 1.0 if i else 0.0} for i in impaired]
    metrics = episode_domain_metrics(infos)
    assert metrics == {
        "time_to_recovery": 3.0,
        "impaired_share": 0.75,
        "action_cost": 6.0,
        "incidents": 2.0,
    }
    quiet = episode_domain_metrics([{"impaired": False, "action_cost": 0.0}] * 4)
    assert math.isnan(quiet["time_to_recovery"]) and quiet["impaired_share"] == 0.0


def test_domain_metrics_of_real_episodes_rank_the_runbook_above_waiting():
    env = gym.make(ENV_ID)
    shares = {}
    for name, policy in (("runbook", runbook_policy), ("wait", lambda obs: WAIT)):
        obs, _ = env.reset(seed=0)
        episodes = []
        for _ in range(20):
            infos, done = [], False
            while not done:
                obs, _, terminated, truncated, info = env.step(policy(obs))
                infos.append(info)
                done = terminated or truncated
            episodes.append(episode_domain_metrics(infos))
            obs, _ = env.reset()
        shares[name] = {key: np.mean([m[key] for m in episodes]) for key in episodes[0]}
    assert shares["runbook"]["impaired_share"] < shares["wait"]["impaired_share"]
    assert shares["runbook"]["time_to_recovery"] < shares["wait"]["time_to_recovery"]
    assert shares["wait"]["action_cost"] == 0 < shares["runbook"]["action_cost"]


def test_explain_state_and_runbook_read_both_forms():
    state = encode_state(2, 1, 0, 1, 0)
    assert explain_state(state) == (
        "error high, latency slow, memory normal, recent deploy, waited last step"
    )
    features = np.array([1.0, 0.48, 0.1, 1.0, 0.3], dtype=np.float32)
    assert decode_features(features) == state and explain_state(features) == explain_state(state)
    assert ACTIONS[runbook_policy(state)] == ACTIONS[runbook_policy(features)] == "roll_back"
    with pytest.raises(ValueError, match="0..107"):
        explain_state(N_STATES)


# -- learning ------------------------------------------------------------------------------------
def test_q_learning_reaches_near_optimal_regret():
    """600k steps (~0.3 s in the compiled engine): regret 0.27-0.97 over seeds 0-4."""
    spec = rlcompare.RunSpec(
        "q_learning",
        ENV_ID,
        0,
        steps=QL_STEPS,
        hparams=QL_HPARAMS,
        eval_episodes=1,
    )
    frame = rlcompare.run(spec).frame
    regret = frame[frame["metric"] == "policy_regret"].sort_values("step")["value"].to_numpy()
    mdp = rlcompare.tabular_mdp(ENV_ID)
    v_star = mdp.initial @ value_iteration(mdp, GAMMA).v
    runbook_regret = v_star - mdp.initial @ policy_evaluation(mdp, _runbook_actions(), GAMMA)
    assert regret[0] > runbook_regret  # the greedy policy of the initial Q is poor
    assert regret[-1] < 0.25 * runbook_regret
