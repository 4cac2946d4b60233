"""The model behind ``rlcompare/SelfHealing-v0``: symptom states, latent faults, arrays P and R.

The env's Markov state is the symptom tuple an on-call engineer sees on a dashboard::

    (error level, latency level, memory level, recent-deploy flag, acted-last-step flag)
     3 levels     3 levels       3 levels      0 / 1               0 / 1

encoded as one int (``encode_state``), ``N_STATES = 3 * 3 * 3 * 2 * 2 = 108`` states and
``N_ACTIONS = 7`` corrective actions. The dynamics are defined on these tuples directly, so the
discrete observation *is* the state and the Q* that value iteration computes from ``P`` is the
fixed point a tabular learner estimates. Time since the last action is bucketed into two
values (acted last step / waited since) because only the settling rule below depends on it;
the features form carries the exact count.

Fault semantics give the probabilities. A hidden fault (``FAULTS``: healthy, latency
degradation, memory leak, crash loop, bad deploy, dependency outage, overload) is the latent
cause of the symptoms, which identify it only partly. One step from state ``s`` under action
``a`` goes:

1. Attribute: a cause ``f`` is drawn from ``posterior(s)``, Bayes' rule with fixed base rates
   (``FAULT_PRIOR``) and per-fault symptom likelihoods. The cause does not persist beyond what
   the symptoms carry: the model is the projection of the hidden-fault process onto symptoms.
2. Act: ``a`` fixes ``f`` with ``FIX_PROB[a, f]`` (scaled by difficulty, halved when a change
   was already made the step before, because the last change has not settled yet); some
   actions make things worse (``WORSEN``: restarting an overloaded service can start a crash
   loop). Paging the on-call always fixes. An untreated fault can compound (a leak at critical
   memory becomes a crash loop, at ``compound_rate``). A healthy service develops a fault at
   ``fault_rate``.
3. Deploys land at ``deploy_rate`` (none during a roll back); half of those that land on a
   healthy service are bad.
4. New symptoms: error and latency levels are drawn from the new fault's signature
   (``ERROR_SIGNATURE``, ``LATENCY_SIGNATURE``, blurred by difficulty); memory resets on any
   action that restarts processes and grows under a leak; the deploy flag clears on a roll
   back and fades after a few steps; the acted-last-step flag records whether ``a`` was a
   corrective action (anything but wait).

Reward ``R[s, a] = -(severity(s) + ACTION_COSTS[a])``: the cost of the step of service in state
``s`` (by error and latency severity) plus the action's cost. There is no terminal state;
episodes are truncated by the registered step limit (``rlcompare.envs.selfheal.MAX_EPISODE_STEPS``),
so learners must bootstrap through truncation. Episodes start at the onset of an incident
(``initial``). The objective for Q* is the discounted return with gamma in 0.95-0.99 (an
incident plays out over a few steps, far fewer than the step limit).

Two options change the fault mix, for logs that never hold a kind and for scoring per kind:
``withheld_fault`` removes one kind and ``only_fault`` keeps one kind alone. A removed kind
leaves the onset mix, the arrivals on a healthy service (bad deploys too, for
``bad_deploy``), the base rates behind the attribution, and every worsening or compounding
into it (the fault stays as it is instead); the shares of the kinds left are renormalised, so
faults arrive at the same rate.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

ACTIONS: tuple[str, ...] = (
    "wait",
    "restart",
    "roll_back",
    "scale_out",
    "clear_cache",
    "fail_over",
    "page_oncall",
)
WAIT, RESTART, ROLL_BACK, SCALE_OUT, CLEAR_CACHE, FAIL_OVER, PAGE = range(len(ACTIONS))

# Money and toil of each action, in the same unit as a step of impaired service.
ACTION_COSTS = np.array([0.0, 1.0, 1.5, 2.0, 0.5, 3.0, 10.0])

FAULTS: tuple[str, ...] = (
    "healthy",
    "latency_degradation",
    "memory_leak",
    "crash_loop",
    "bad_deploy",
    "dependency_outage",
    "overload",
)
HEALTHY, LATENCY, LEAK, CRASH_LOOP, BAD_DEPLOY, DEPENDENCY, OVERLOAD = range(len(FAULTS))

ERROR_LEVELS = ("low", "elevated", "high")
LATENCY_LEVELS = ("normal", "slow", "very slow")
MEMORY_LEVELS = ("normal", "high", "critical")
STATE_SHAPE = (3, 3, 3, 2, 2)  # error, latency, memory, recent deploy, acted last step
N_STATES = int(np.prod(STATE_SHAPE))
N_ACTIONS = len(ACTIONS)

# Cost per step of service at each error / latency level; impaired means either is above 0.
ERROR_SEVERITY = np.array([0.0, 2.0, 5.0])
LATENCY_SEVERITY = np.array([0.0, 1.0, 3.0])

# Symptom signatures: P(error level | fault), P(latency level | fault), rows follow FAULTS.
ERROR_SIGNATURE = np.array(
    [
        [1.0, 0.0, 0.0],
        [0.8, 0.2, 0.0],
        [0.7, 0.3, 0.0],
        [0.0, 0.2, 0.8],
        [0.05, 0.55, 0.4],
        [0.0, 0.3, 0.7],
        [0.3, 0.5, 0.2],
    ]
)
LATENCY_SIGNATURE = np.array(
    [
        [1.0, 0.0, 0.0],
        [0.05, 0.75, 0.2],
        [0.5, 0.4, 0.1],
        [0.1, 0.3, 0.6],
        [0.6, 0.3, 0.1],
        [0.2, 0.6, 0.2],
        [0.0, 0.25, 0.75],
    ]
)
# Only for attributing causes (step 1): base rates and how memory / deploy flag point to causes.
FAULT_PRIOR = np.array([0.55, 0.10, 0.08, 0.05, 0.07, 0.07, 0.08])
MEMORY_LIKELIHOOD = np.array(
    [
        [0.8, 0.15, 0.05],
        [0.8, 0.15, 0.05],
        [0.2, 0.4, 0.4],
        [0.5, 0.25, 0.25],
        [0.8, 0.15, 0.05],
        [0.8, 0.15, 0.05],
        [0.8, 0.15, 0.05],
    ]
)
DEPLOY_LIKELIHOOD = np.array([[0.8, 0.2]] * 4 + [[0.0, 1.0]] + [[0.8, 0.2]] * 2)

# FIX_PROB[a, f]: chance that action a removes fault f (before difficulty and settling).
FIX_PROB = np.array(
    [
        # healthy latency leak  crash  deploy depend overload
        [0.0, 0.25, 0.0, 0.05, 0.0, 0.2, 0.1],  # wait: transient faults pass by themselves
        [0.0, 0.3, 0.6, 0.35, 0.05, 0.0, 0.1],  # restart
        [0.0, 0.1, 0.3, 0.5, 0.95, 0.0, 0.0],  # roll back (leak / crash: with recent deploy)
        [0.0, 0.6, 0.1, 0.2, 0.0, 0.0, 0.85],  # scale out
        [0.0, 0.7, 0.05, 0.0, 0.0, 0.1, 0.2],  # clear cache
        [0.0, 0.4, 0.5, 0.7, 0.3, 0.85, 0.4],  # fail over
        [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],  # page the on-call
    ]
)
# Roll back without a recent deploy has little to revert.
ROLL_BACK_NO_DEPLOY = {LEAK: 0.05, CRASH_LOOP: 0.1}
# (action, fault) -> (worse fault, probability), applied when the fix did not happen.
WORSEN: dict[tuple[int, int], tuple[int, float]] = {
    (RESTART, OVERLOAD): (CRASH_LOOP, 0.4),  # restarting under load: cold instances fall over
    (RESTART, DEPENDENCY): (OVERLOAD, 0.2),  # reconnect storm
    (CLEAR_CACHE, OVERLOAD): (CRASH_LOOP, 0.2),  # cache misses hammer the backend
}
# (fault, worse fault, share of compound_rate); the leak compounds only at critical memory.
COMPOUND = ((LEAK, CRASH_LOOP, 1.0), (LATENCY, OVERLOAD, 0.5), (OVERLOAD, CRASH_LOOP, 0.3))
# How a healthy service breaks (deploys aside), as shares of fault_rate.
ARRIVAL_SHARE = np.array([0.0, 0.3, 0.2, 0.1, 0.0, 0.15, 0.25])
BAD_DEPLOY_SHARE = 0.5
SETTLE_FACTOR = 0.5  # fix probabilities of a change made right after another change
LEAK_GROWTH = 0.5  # chance per step that a leak raises memory one level
DEPLOY_FADE = 0.25  # chance per step that a deploy stops counting as recent
PROCESS_RESTARTS = (RESTART, ROLL_BACK, FAIL_OVER, PAGE)  # actions that reset memory

for _table in (
    ACTION_COSTS,
    ERROR_SEVERITY,
    LATENCY_SEVERITY,
    ERROR_SIGNATURE,
    LATENCY_SIGNATURE,
    FAULT_PRIOR,
    MEMORY_LIKELIHOOD,
    DEPLOY_LIKELIHOOD,
    FIX_PROB,
    ARRIVAL_SHARE,
):
    _table.setflags(write=False)

# difficulty -> (multiplier of fix probabilities, blur of symptom signatures)
DIFFICULTIES: dict[str, tuple[float, float]] = {
    "easy": (1.0, 0.02),
    "normal": (0.85, 0.05),
    "hard": (0.7, 0.12),
}


@dataclass(frozen=True)
class ModelParams:
    """Knobs of the model (the env's kwargs minus the observation form).

    Attributes:
        fault_rate: Per-step chance that a healthy service develops a fault (deploys aside).
        compound_rate: Per-step chance that an untreated fault turns into a worse one.
        deploy_rate: Per-step chance that a deploy lands.
        difficulty: ``"easy"``, ``"normal"`` or ``"hard"``: lower fix probabilities and
            blurrier symptoms.
        withheld_fault: A fault kind that never occurs (``""``: none). A string, not a
            list, since sweeps read list values as settings to sweep.
        only_fault: The one fault kind that occurs (``""``: all of them).
    """

    fault_rate: float = 0.1
    compound_rate: float = 0.3
    deploy_rate: float = 0.05
    difficulty: str = "normal"
    withheld_fault: str = ""
    only_fault: str = ""

    def __post_init__(self) -> None:
        for name in ("fault_rate", "compound_rate", "deploy_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{name} = {value!r} is invalid; valid: a float in [0, 1]")
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} = {value!r} is out of range; valid: a float in [0, 1]")
        if self.difficulty not in DIFFICULTIES:
            raise ValueError(
                f"difficulty = {self.difficulty!r} is invalid; valid: {', '.join(DIFFICULTIES)}"
            )
        for name in ("withheld_fault", "only_fault"):
            value = getattr(self, name)
            if value != "" and value not in FAULTS[1:]:
                raise ValueError(
                    f"{name} = {value!r} is invalid; valid: '' (none) or one of "
                    f"{', '.join(FAULTS[1:])}"
                )
        if self.withheld_fault and self.only_fault:
            raise ValueError(
                f"withheld_fault = {self.withheld_fault!r} and only_fault = "
                f"{self.only_fault!r} are both set; valid: at most one of them"
            )

    @property
    def kinds(self) -> np.ndarray:
        """(F,) bool, the faults that occur (healthy always does)."""
        if self.only_fault:
            kinds = np.eye(len(FAULTS), dtype=bool)[FAULTS.index(self.only_fault)]
        else:
            kinds = np.ones(len(FAULTS), dtype=bool)
            if self.withheld_fault:
                kinds[FAULTS.index(self.withheld_fault)] = False
        kinds[HEALTHY] = True
        return kinds


@dataclass(frozen=True)
class SelfHealingModel:
    """The full model as arrays (read-only; shared between envs with equal params).

    Attributes:
        P: (S, A, S') transition probabilities.
        R: (S, A) rewards (deterministic given state and action).
        terminal: (S,) bool, all False: the service runs on, episodes are truncated.
        initial: (S,) initial state distribution (the onset of an incident).
        posterior: (S, F) the cause attribution of step 1, for explanations.
        impaired: (S,) bool, error or latency above its lowest level.
        severity: (S,) cost of one step of service in each state.
    """

    P: np.ndarray
    R: np.ndarray
    terminal: np.ndarray
    initial: np.ndarray
    posterior: np.ndarray
    impaired: np.ndarray
    severity: np.ndarray


def encode_state(error: int, latency: int, memory: int, deploy: int, acted: int) -> int:
    """The state index of a symptom tuple."""
    return int(np.ravel_multi_index((error, latency, memory, deploy, acted), STATE_SHAPE))


def decode_state(state: int) -> tuple[int, int, int, int, int]:
    """``(error, latency, memory, deploy, acted)`` levels of a state index."""
    return tuple(int(x) for x in np.unravel_index(int(state), STATE_SHAPE))  # type: ignore[return-value]


def explain_state(state: int) -> str:
    """Readable symptoms of a state index, e.g. ``"error high, latency slow, memory normal,
    recent deploy, acted last step"``."""
    error, latency, memory, deploy, acted = decode_state(state)
    return (
        f"error {ERROR_LEVELS[error]}, latency {LATENCY_LEVELS[latency]}, "
        f"memory {MEMORY_LEVELS[memory]}, {'recent deploy' if deploy else 'no recent deploy'}, "
        f"{'acted last step' if acted else 'waited last step'}"
    )


def _signatures(blur: float) -> tuple[np.ndarray, np.ndarray]:
    """Signatures with ``blur`` of each level's mass moved to the adjacent levels."""
    spread = np.array(
        [[1 - blur, blur, 0.0], [blur / 2, 1 - blur, blur / 2], [0.0, blur, 1 - blur]]
    )
    return ERROR_SIGNATURE @ spread, LATENCY_SIGNATURE @ spread


def _restricted(shares: np.ndarray, kinds: np.ndarray) -> np.ndarray:
    """``shares`` of the faults that occur, renormalised to the same total (unchanged, bit for
    bit, when every kind occurs; zeros when none of the shares is left)."""
    if kinds.all():
        return shares
    kept = np.where(kinds, shares, 0.0)
    return kept * (shares.sum() / kept.sum()) if kept.sum() > 0 else kept


def _posterior(blur: float, kinds: np.ndarray) -> np.ndarray:
    """(S, F) Bayes attribution of causes to symptoms (the acted flag carries no evidence),
    over the faults that occur; symptoms none of them can show (unreachable) get the prior."""
    error_sig, latency_sig = _signatures(blur)
    prior = _restricted(FAULT_PRIOR, kinds)
    post = np.empty((N_STATES, len(FAULTS)))
    for s in range(N_STATES):
        error, latency, memory, deploy, _ = decode_state(s)
        weight = (
            prior
            * error_sig[:, error]
            * latency_sig[:, latency]
            * MEMORY_LIKELIHOOD[:, memory]
            * DEPLOY_LIKELIHOOD[:, deploy]
        )
        post[s] = weight / weight.sum() if weight.sum() > 0 else prior / prior.sum()
    return post


def _fault_step(
    fault: int, action: int, memory: int, deploy: int, acted: int, p: ModelParams
) -> np.ndarray:
    """(F,) distribution of the fault after ``action`` (step 2), deploys aside."""
    nxt = np.zeros(len(FAULTS))
    kinds = p.kinds
    if fault == HEALTHY:
        arrivals = _restricted(ARRIVAL_SHARE, kinds)
        nxt += p.fault_rate * arrivals
        nxt[HEALTHY] += 1.0 - p.fault_rate * (arrivals.sum() > 0)
        return nxt
    if action == PAGE:
        nxt[HEALTHY] = 1.0
        return nxt
    fix = FIX_PROB[action, fault]
    if action == ROLL_BACK and not deploy:
        fix = ROLL_BACK_NO_DEPLOY.get(fault, fix)
    fix *= DIFFICULTIES[p.difficulty][0]
    if acted and action != WAIT:
        fix *= SETTLE_FACTOR
    nxt[HEALTHY] += fix
    rest = 1.0 - fix
    worse, p_worse = WORSEN.get((action, fault), (fault, 0.0))
    if kinds[worse]:  # a fault that never occurs is not what things turn into
        nxt[worse] += rest * p_worse
        rest *= 1.0 - p_worse
    for source, target, share in COMPOUND:
        if fault == source and kinds[target] and (source != LEAK or memory == 2):
            nxt[target] += rest * p.compound_rate * share
            rest *= 1.0 - p.compound_rate * share
    nxt[fault] += rest
    return nxt


def _symptom_dist(
    fault: int,
    landed: bool,
    action: int,
    memory: int,
    deploy: int,
    error_sig: np.ndarray,
    latency_sig: np.ndarray,
) -> np.ndarray:
    """(S,) distribution of the next symptoms given the new fault (step 4)."""
    base = 0 if action in PROCESS_RESTARTS else memory
    mem = np.zeros(3)
    if fault == LEAK:
        mem[min(base + 1, 2)] += LEAK_GROWTH
        mem[base] += 1 - LEAK_GROWTH
    else:
        mem[base] = 1.0
    dep = np.zeros(2)
    if landed or fault == BAD_DEPLOY:
        dep[1] = 1.0
    elif action == ROLL_BACK or not deploy:
        dep[0] = 1.0
    else:
        dep[:] = DEPLOY_FADE, 1 - DEPLOY_FADE
    acted = np.zeros(2)
    acted[int(action != WAIT)] = 1.0
    joint = np.einsum("i,j,k,l,m->ijklm", error_sig[fault], latency_sig[fault], mem, dep, acted)
    return joint.ravel()


def _outcomes(
    fault_dist: np.ndarray, action: int, deploy_rate: float, bad_share: float = BAD_DEPLOY_SHARE
) -> list[tuple[int, bool, float]]:
    """(new fault, deploy landed, probability) after deploys land on ``fault_dist`` (step 3);
    ``bad_share`` of those landing on a healthy service are bad."""
    land = 0.0 if action == ROLL_BACK else deploy_rate
    out = []
    for fault in np.flatnonzero(fault_dist):
        prob = fault_dist[fault]
        out.append((int(fault), False, prob * (1 - land)))
        if land > 0 and fault == HEALTHY:
            out.append((BAD_DEPLOY, True, prob * land * bad_share))
            out.append((HEALTHY, True, prob * land * (1 - bad_share)))
        elif land > 0:
            out.append((int(fault), True, prob * land))
    return out


@functools.lru_cache(maxsize=32)
def build_model(params: ModelParams) -> SelfHealingModel:
    """Enumerates the model's arrays for ``params`` (cached; the arrays are read-only)."""
    blur = DIFFICULTIES[params.difficulty][1]
    error_sig, latency_sig = _signatures(blur)
    kinds = params.kinds
    posterior = _posterior(blur, kinds)
    bad_share = BAD_DEPLOY_SHARE if kinds[BAD_DEPLOY] else 0.0
    P = np.zeros((N_STATES, N_ACTIONS, N_STATES))
    levels = np.array([decode_state(s) for s in range(N_STATES)])
    for s, (_, _, memory, deploy, acted) in enumerate(levels):
        for a in range(N_ACTIONS):
            fault_dist = sum(
                posterior[s, f] * _fault_step(f, a, memory, deploy, acted, params)
                for f in range(len(FAULTS))
            )
            for fault, landed, prob in _outcomes(fault_dist, a, params.deploy_rate, bad_share):
                if prob > 0:
                    P[s, a] += prob * _symptom_dist(
                        fault, landed, a, memory, deploy, error_sig, latency_sig
                    )
    # The onset of an incident: a fault (or a bad deploy) arrives on a healthy service.
    onset = _restricted(ARRIVAL_SHARE, kinds) * params.fault_rate
    onset[BAD_DEPLOY] = params.deploy_rate * bad_share
    if onset.sum() == 0:  # no faults ever arrive: start from the usual mix all the same
        onset = ARRIVAL_SHARE + BAD_DEPLOY_SHARE * np.eye(len(FAULTS))[BAD_DEPLOY]
        onset = np.where(kinds, onset, 0.0)
    initial = sum(
        onset[f]
        / onset.sum()
        * _symptom_dist(f, f == BAD_DEPLOY, WAIT, 0, 0, error_sig, latency_sig)
        for f in np.flatnonzero(onset)
    )
    impaired = (levels[:, 0] > 0) | (levels[:, 1] > 0)
    severity = ERROR_SEVERITY[levels[:, 0]] + LATENCY_SEVERITY[levels[:, 1]]
    R = -(severity[:, None] + ACTION_COSTS[None, :])
    arrays = (P, R, np.zeros(N_STATES, dtype=bool), initial, posterior, impaired, severity)
    for array in arrays:
        array.setflags(write=False)
    return SelfHealingModel(*arrays)
