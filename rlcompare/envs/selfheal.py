"""``rlcompare/SelfHealing-v0``: learning which corrective action heals a faulty service.

A service is healthy or suffers one of several hidden faults (latency degradation, memory leak,
crash loop, bad deploy, dependency outage, overload). Each step the agent sees symptoms and
picks one corrective action from ``ACTIONS``: wait, restart, roll back, scale out, clear cache,
fail over, or page the on-call (expensive, always fixes). Faults arrive at random and compound
when left alone; actions fix some faults with some probability, cost time or money, and can
make things worse (restarting during an overload). Reward is minus the cost of the step of
impaired service (by severity) minus the action's cost. Episodes never terminate; the
registered ``TimeLimit`` truncates them after ``MAX_EPISODE_STEPS`` (100) steps, so learners
must bootstrap through truncation.

State and model (details in ``rlcompare.envs.selfheal_model``): the Markov state is the symptom
tuple (error level, latency level, memory level, recent-deploy flag, acted-last-step flag), 108
states; the dynamics are defined on these tuples, with the hidden fault as a latent cause that
the symptoms identify only partly. The full model is exposed (``transition_model()``,
``tabular_mdp()``), so Q* is computable and tabular learners can be scored against it.

Two observation forms, one dynamics (``observation=`` kwarg):

- ``"discrete"``: ``Discrete(108)``, the state index itself (for tabular learners).
- ``"features"``: ``Box(0, 1, (5,), float32)``: error, latency and memory levels scaled to
  [0, 1] plus Gaussian noise (``feature_noise``), the deploy flag, and steps since the last
  corrective action / 10 (capped at 1). The noise has its own random stream, so the same seed
  gives the same hidden trajectory in both forms.

Per-step ``info``: ``impaired`` (the service was impaired during the step), ``action_cost``,
``severity``, ``state`` (the discrete state the action was taken in) and ``likely_fault`` (the
most probable cause of that state). ``episode_domain_metrics(infos)`` turns an episode's infos
into mean time to recovery, share of time impaired and action cost.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rlcompare.envs import SELFHEALING_ID, SELFHEALING_MAX_STEPS
from rlcompare.envs.model import TabularMDP, sample_index
from rlcompare.envs.selfheal_model import (
    ACTION_COSTS,
    ACTIONS,
    CLEAR_CACHE,
    FAIL_OVER,
    FAULTS,
    N_ACTIONS,
    N_STATES,
    RESTART,
    ROLL_BACK,
    SCALE_OUT,
    WAIT,
    ModelParams,
    SelfHealingModel,
    build_model,
    decode_state,
    encode_state,
)
from rlcompare.envs.selfheal_model import explain_state as _explain_index

__all__ = [
    "ACTIONS",
    "ACTION_COSTS",
    "ENV_ID",
    "FAULTS",
    "MAX_EPISODE_STEPS",
    "OBSERVATIONS",
    "SelfHealingEnv",
    "decode_features",
    "episode_domain_metrics",
    "explain_state",
    "runbook_policy",
    "runbook_policy_features",
]

ENV_ID = SELFHEALING_ID
# The registered TimeLimit: episodes are truncated after this many steps.
MAX_EPISODE_STEPS = SELFHEALING_MAX_STEPS
OBSERVATIONS = ("discrete", "features")
FEATURE_NAMES = ("error", "latency", "memory", "recent_deploy", "time_since_action")
# Steps since the last corrective action at which the feature saturates at 1.
TIME_SCALE = 10


@functools.lru_cache(maxsize=32)
def _tabular_model(params: ModelParams) -> TabularMDP:
    """The TabularMDP of the model with ``params`` (outcomes listed in next-state order)."""
    model = build_model(params)
    table = {
        s: {
            a: [
                (float(model.P[s, a, nxt]), int(nxt), float(model.R[s, a]), False)
                for nxt in np.flatnonzero(model.P[s, a])
            ]
            for a in range(N_ACTIONS)
        }
        for s in range(N_STATES)
    }
    return TabularMDP.from_transitions(
        table, model.initial, n_states=N_STATES, n_actions=N_ACTIONS, name=ENV_ID
    )


def _first_above(cdf: np.ndarray, count: int, u: float) -> int:
    """``sample_index(cdf, count, u)`` (the draw the tabular engine makes), by bisection."""
    k = int(np.searchsorted(cdf[:count], u, side="right"))
    return k if k < count else 0


class SelfHealingEnv(gym.Env):
    """A service to keep healthy with corrective actions (see the module docstring).

    Args:
        observation: ``"discrete"`` (state index) or ``"features"`` (noisy float vector).
        fault_rate: Per-step chance that a healthy service develops a fault (deploys aside).
        compound_rate: Per-step chance that an untreated fault turns into a worse one.
        deploy_rate: Per-step chance that a deploy lands (half of them bad on a healthy
            service).
        difficulty: ``"easy"``, ``"normal"`` or ``"hard"``: lower fix probabilities and
            blurrier symptoms.
        feature_noise: Standard deviation of the Gaussian noise on the scaled symptom levels
            of the features form (a level step is 0.5).
        withheld_fault: A fault kind (``FAULTS``) that never occurs, as in logs that never
            hold it (``""``: none).
        only_fault: The one fault kind that occurs, to score a policy per kind (``""``: all).
        render_mode: None or ``"ansi"`` (``render()`` returns the symptoms as text).
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        observation: str = "discrete",
        fault_rate: float = 0.1,
        compound_rate: float = 0.3,
        deploy_rate: float = 0.05,
        difficulty: str = "normal",
        feature_noise: float = 0.1,
        withheld_fault: str = "",
        only_fault: str = "",
        render_mode: str | None = None,
    ) -> None:
        if observation not in OBSERVATIONS:
            raise ValueError(
                f"observation = {observation!r} is invalid; valid: {', '.join(OBSERVATIONS)}"
            )
        if isinstance(feature_noise, bool) or not isinstance(feature_noise, (int, float)):
            raise ValueError(f"feature_noise = {feature_noise!r} is invalid; valid: a float >= 0")
        if not 0.0 <= feature_noise < float("inf"):
            raise ValueError(f"feature_noise = {feature_noise!r} is out of range; valid: >= 0")
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode = {render_mode!r} is invalid; valid: None, ansi")
        self.params = ModelParams(
            fault_rate, compound_rate, deploy_rate, difficulty, withheld_fault, only_fault
        )
        self.model: SelfHealingModel = build_model(self.params)
        self.observation_form = observation
        self.feature_noise = float(feature_noise)
        self.render_mode = render_mode
        self.action_space = spaces.Discrete(N_ACTIONS)
        if observation == "discrete":
            self.observation_space: spaces.Space = spaces.Discrete(N_STATES)
        else:
            self.observation_space = spaces.Box(0.0, 1.0, (len(FEATURE_NAMES),), np.float32)
        # Stepping draws one uniform per step through the TabularMDP's outcome lists, exactly as
        # the tabular engine simulates the same model.
        self._mdp = _tabular_model(self.params)
        self._sim = self._mdp.simulation
        self._likely_fault = tuple(FAULTS[f] for f in np.argmax(self.model.posterior, axis=1))
        self._noise_rng: np.random.Generator | None = None
        self._state = 0
        self._since_action = TIME_SCALE

    # -- the model ------------------------------------------------------------------------------
    def transition_model(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The model as read-only arrays ``(P, R, terminal, initial)``.

        Returns:
            P: (S, A, S') transition probabilities; R: (S, A) rewards; terminal: (S,) bool,
            all False; initial: (S,) initial state distribution. States are the discrete
            observations (for the features form: the hidden state behind the noisy features).
        """
        model = self.model
        return model.P, model.R, model.terminal, model.initial

    def tabular_mdp(self) -> TabularMDP:
        """The model as a TabularMDP (the one this env simulates; shared, read-only)."""
        return self._mdp

    # -- gymnasium API --------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Starts an episode at the onset of an incident (a draw from the initial distribution).

        ``options={"state": s}`` starts from state index ``s`` instead.
        """
        super().reset(seed=seed)
        if seed is not None or self._noise_rng is None:
            # A separate stream for observation noise: both forms follow the same states.
            self._noise_rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
        if options and "state" in options:
            state = int(options["state"])
            if not 0 <= state < N_STATES:
                raise ValueError(f"state = {state!r} is out of range; valid: 0..{N_STATES - 1}")
            self._state = state
        else:
            u = self.np_random.random()
            self._state = sample_index(self._sim.initial_cdf, N_STATES, u)
        self._since_action = 0 if decode_state(self._state)[4] else TIME_SCALE
        return self._observe(), {"state": self._state}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Applies one corrective action; never terminates (the TimeLimit truncates)."""
        try:
            index = operator.index(action)  # ints, numpy ints and 0-d int arrays
        except TypeError:
            index = -1
        if not 0 <= index < N_ACTIONS:
            raise ValueError(f"action = {action!r} is invalid; valid: ints 0..{N_ACTIONS - 1}")
        action = index
        state = self._state
        model = self.model
        info = {
            "impaired": bool(model.impaired[state]),
            "action_cost": float(ACTION_COSTS[action]),
            "severity": float(model.severity[state]),
            "state": state,
            "likely_fault": self._likely_fault[state],
        }
        reward = float(model.R[state, action])
        sim = self._sim
        k = _first_above(sim.cdf[state, action], sim.count[state, action], self.np_random.random())
        self._state = int(sim.next_state[state, action, k])
        self._since_action = 0 if action != WAIT else self._since_action + 1
        return self._observe(), reward, False, False, info

    def episode_metrics(self, infos: Sequence[dict[str, Any]]) -> dict[str, float]:
        """Domain metrics of one episode from its step infos (the eval protocol records them)."""
        return episode_domain_metrics(infos)

    def render(self) -> str | None:
        """The current symptoms as text when ``render_mode == "ansi"``."""
        if self.render_mode == "ansi":
            return _explain_index(self._state)
        return None

    # -- helpers --------------------------------------------------------------------------------
    def _observe(self) -> Any:
        if self.observation_form == "discrete":
            return self._state
        error, latency, memory, deploy, _ = decode_state(self._state)
        assert self._noise_rng is not None  # set by reset
        noisy = np.array([error, latency, memory]) / 2 + self._noise_rng.normal(
            0.0, self.feature_noise, 3
        )
        time = min(self._since_action, TIME_SCALE) / TIME_SCALE
        features = np.concatenate([np.clip(noisy, 0.0, 1.0), [deploy, time]])
        return features.astype(np.float32)


# -- observations in both forms ------------------------------------------------------------------
def decode_features(obs: Sequence[float] | np.ndarray) -> int:
    """The most likely state index behind a features observation (nearest symptom levels)."""
    x = np.asarray(obs, dtype=np.float64)
    if x.shape != (len(FEATURE_NAMES),):
        raise ValueError(
            f"features observation has shape {x.shape}; valid: ({len(FEATURE_NAMES)},) "
            f"with {', '.join(FEATURE_NAMES)}"
        )
    error, latency, memory = np.clip(np.rint(x[:3] * 2), 0, 2).astype(int)
    return encode_state(error, latency, memory, int(x[3] > 0.5), int(x[4] < 0.5 / TIME_SCALE))


def _state_index(obs: Any) -> int:
    """State index of an observation in either form."""
    if np.ndim(obs) == 0:
        state = int(obs)
        if not 0 <= state < N_STATES:
            raise ValueError(f"observation {obs!r} is out of range; valid: 0..{N_STATES - 1}")
        return state
    return decode_features(obs)


def explain_state(obs: Any) -> str:
    """Readable symptoms of an observation (a state index, or a features vector).

    Example: ``"error high, latency slow, memory normal, recent deploy, waited last step"``.
    """
    return _explain_index(_state_index(obs))


# -- the runbook ---------------------------------------------------------------------------------
def runbook_policy(obs: Any) -> int:
    """A hand-written SRE runbook: sensible, not optimal. Accepts either observation form.

    In order: errors after a recent deploy -> roll back; memory high or critical -> restart;
    error rate high -> fail over; latency very slow -> scale out; latency slow -> clear
    cache; errors elevated -> restart; otherwise wait. It acts at every impaired step (never
    letting the last change settle), treats every error blip as a fault and never pages.
    """
    error, latency, memory, deploy, _ = decode_state(_state_index(obs))
    if error >= 1 and deploy:
        return ROLL_BACK
    if memory >= 1:
        return RESTART
    if error == 2:
        return FAIL_OVER
    if latency == 2:
        return SCALE_OUT
    if latency == 1:
        return CLEAR_CACHE
    if error == 1:
        return RESTART
    return WAIT


# The same function serves both forms; this name reads better next to a features env.
runbook_policy_features = runbook_policy


# -- domain metrics ------------------------------------------------------------------------------
def episode_domain_metrics(infos: Sequence[dict[str, Any]]) -> dict[str, float]:
    """SRE metrics of one episode from its per-step infos (in step order).

    Args:
        infos: The ``info`` dict of every ``step`` of the episode (reset's info excluded).

    Returns:
        ``time_to_recovery``: mean length in steps of the impaired stretches (an incident
        still open at the end counts with its length so far; NaN when none occurred);
        ``impaired_share``: share of steps impaired; ``action_cost``: total action cost;
        ``incidents``: number of impaired stretches.
    """
    impaired = np.array([bool(info["impaired"]) for info in infos], dtype=bool)
    cost = float(sum(float(info["action_cost"]) for info in infos))
    if impaired.size == 0:
        return {
            "time_to_recovery": float("nan"),
            "impaired_share": float("nan"),
            "action_cost": cost,
            "incidents": 0.0,
        }
    starts = np.flatnonzero(impaired & ~np.concatenate([[False], impaired[:-1]]))
    incidents = len(starts)
    return {
        "time_to_recovery": float(impaired.sum() / incidents) if incidents else float("nan"),
        "impaired_share": float(impaired.mean()),
        "action_cost": cost,
        "incidents": float(incidents),
    }
