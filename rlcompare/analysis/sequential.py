"""A group-sequential permutation test that compares several contenders at once.

After AdaStop (Mathieu et al., "AdaStop: adaptive statistical testing for sound comparisons
of deep RL agents", TMLR 2024, arXiv 2306.10882, Algorithm 1). Scores arrive interim by
interim (``n`` runs per contender still in an open comparison); at interim ``k`` the test

1. forms, for every open comparison ``(a, b)``, Welch's statistic ``T = |mean_a - mean_b| /
   sqrt(var_a / n_a + var_b / n_b)`` over all the runs so far (studentized, so that a pair
   with a wide spread does not set the boundary of every other pair);
2. builds its null distribution from permutations: within each interim's block, the scores of
   the contenders that ran in that block are pooled and re-dealt among them (one permutation
   of the whole block, so comparisons that share a contender stay dependent as in the data),
   and a permutation's statistic is the maximum over the open comparisons (a max-T test, as
   Westfall and Young, which controls the error over the whole family);
3. spends ``alpha * k / K`` of the family-wise error by interim ``k`` (the paper's linear
   spending): the boundary is the smallest permutation value whose tail, counted over the
   permutations that crossed no earlier boundary, fits in what is left to spend;
4. steps down: while the largest open statistic exceeds the boundary, that comparison is
   decided (its sign says which is better) and leaves the family, and the boundary is
   recomputed over the comparisons left.

Comparisons still open after interim ``K`` end as "no difference found".

Where this departs from the paper and the authors' ``adastop`` 0.1.3 (measured there to
reject at about twice ``alpha``):

* the observed statistic and the permutation statistics are both absolute (the package
  compares an absolute observed value against signed permutation values), and studentized
  (the paper uses raw mean differences);
* the identity permutation is always one of the permutations, so the test is exact when the
  permutations are enumerated and conservative when they are drawn;
* differences within ``TOLERANCE`` times the scores' scale are ties (statistic 0), standard
  deviations within ``VARIANCE_TOLERANCE`` times it are 0, and a statistic must exceed its
  boundary by more than a relative 1e-9: all far above float rounding, so tied scores never
  reject through rounding;
* no early acceptance (the paper's ``beta`` is 0 here): "no difference found" is only said at
  the last interim.

Permutations: where the number of distinct re-dealings of every block so far is at most
``permutations`` they are enumerated exactly; past that, ``permutations`` seeded random paths
(one random re-dealing of each block per path) are drawn.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

import numpy as np

from rlcompare.errors import SpecError, choices_text

# Decisions, from the point of view of the comparison's first contender.
BETTER, WORSE, NO_DIFFERENCE, UNDECIDED = "better", "worse", "no difference found", "undecided"
# Differences below this share of the scores' scale count as ties (float rounding is ~1e-14).
TOLERANCE = 1e-9
# Standard deviations below this share of the scale count as 0 (a constant sample).
VARIANCE_TOLERANCE = 1e-6


def check_test_parameters(alpha: float, n: int, K: int, permutations: int) -> None:
    """Refuses test parameters outside their ranges, naming the value and the valid ones."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise SpecError(f"alpha = {alpha!r} is invalid; valid: a number in (0, 1)")
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise SpecError(f"n = {n!r} is invalid; valid: an int >= 2 (runs per interim)")
    if isinstance(K, bool) or not isinstance(K, int) or K < 1:
        raise SpecError(f"K = {K!r} is invalid; valid: an int >= 1 (interims at most)")
    if isinstance(permutations, bool) or not isinstance(permutations, int) or permutations < 100:
        raise SpecError(f"permutations = {permutations!r} is invalid; valid: an int >= 100")


def comparison_pairs(
    contenders: Sequence[str], baseline: str | None = None
) -> list[tuple[str, str]]:
    """All pairs in the contenders' order, or every contender against ``baseline``."""
    if len(set(contenders)) != len(contenders) or len(contenders) < 2:
        raise SpecError(
            f"contenders = {list(contenders)!r} are invalid; valid: two or more distinct names"
        )
    if baseline is None:
        return list(itertools.combinations(contenders, 2))
    if baseline not in contenders:
        raise SpecError(f"baseline = {baseline!r} is unknown; {choices_text(contenders, baseline)}")
    return [(name, baseline) for name in contenders if name != baseline]


def _deals(sizes: Sequence[int]) -> np.ndarray:
    """Every way to deal ``sum(sizes)`` pooled positions into groups of these sizes, as rows
    of group labels; the identity deal (group 0 takes the first positions, and so on) first."""
    rows: list[np.ndarray] = []

    def fill(labels: np.ndarray, free: list[int], group: int) -> None:
        if group == len(sizes) - 1:
            labels[free] = group
            rows.append(labels)
            return
        for chosen in itertools.combinations(free, sizes[group]):
            dealt = labels.copy()
            dealt[list(chosen)] = group
            fill(dealt, [p for p in free if p not in chosen], group + 1)

    fill(np.zeros(sum(sizes), dtype=np.int64), list(range(sum(sizes))), 0)
    return np.stack(rows)


def _deal_count(sizes: Sequence[int]) -> int:
    """Multinomial ``(sum sizes)! / prod(size!)``."""
    return math.factorial(sum(sizes)) // math.prod(math.factorial(s) for s in sizes)


class SequentialComparison:
    """The test's state, fed interim by interim (the experiment driver owns the runs).

    Example:
        >>> test = SequentialComparison(["a", "b"], n=5, K=3, alpha=0.05)
        >>> while not test.finished:
        ...     test.update({name: run_n_more(name) for name in test.active})
        >>> test.decisions  # {("a", "b"): "better" | "worse" | "no difference found"}

    Args:
        contenders: Names of what is compared.
        comparisons: Pairs to decide (default: all pairs in the contenders' order).
        n: Runs per contender per interim (a mapping name -> runs gives each its own, as for
            a one-interim test on stored runs of unequal counts).
        K: Interims at most.
        alpha: Family-wise error: the chance of any wrong "better"/"worse" over all the
            comparisons, when every open pair is equal in distribution.
        higher_is_better: Direction of the score, which turns a sign into better / worse.
        permutations: Enumerate the permutations up to this many, else draw this many.
        seed: Seed of the drawn permutations.
    """

    def __init__(
        self,
        contenders: Sequence[str],
        comparisons: Sequence[tuple[str, str]] | None = None,
        *,
        n: int | Mapping[str, int] = 5,
        K: int = 5,
        alpha: float = 0.05,
        higher_is_better: bool = True,
        permutations: int = 10_000,
        seed: int = 0,
    ) -> None:
        self.contenders = list(contenders)
        self.sizes = dict(n) if isinstance(n, Mapping) else dict.fromkeys(self.contenders, n)
        if sorted(self.sizes) != sorted(self.contenders):
            raise SpecError(f"n = {n!r} must give runs for exactly {self.contenders!r}")
        for runs in self.sizes.values():
            check_test_parameters(alpha, runs, K, permutations)
        pairs = comparison_pairs(self.contenders) if comparisons is None else list(comparisons)
        for pair in pairs:
            for name in pair:
                if name not in self.contenders:
                    raise SpecError(
                        f"comparison {pair!r} names {name!r}; {choices_text(self.contenders)}"
                    )
        self.comparisons = [tuple(p) for p in pairs]
        self.K, self.alpha = K, float(alpha)
        self.higher_is_better = higher_is_better
        self.permutations = permutations
        self._rng = np.random.default_rng(seed)
        self.k = 0
        self.decisions: dict[tuple[str, str], str] = dict.fromkeys(self.comparisons, UNDECIDED)
        self.decided_at: dict[tuple[str, str], int] = {}
        self.boundaries: list[float] = []
        self.spent = 0.0
        self.scores: dict[str, list[float]] = {name: [] for name in self.contenders}
        index = {name: i for i, name in enumerate(self.contenders)}
        self._pair_index = {p: (index[p[0]], index[p[1]]) for p in self.comparisons}
        # Per permutation path: each contender's permuted sums of scores and of squared
        # scores, and whether the path is still alive (crossed no boundary so far). Path 0
        # is the identity.
        self._sums = np.zeros((1, len(self.contenders)))
        self._squares = np.zeros((1, len(self.contenders)))
        self._alive = np.ones(1, dtype=bool)
        self._enumerated = True
        self._scale = 0.0

    # ------------------------------------------------------------------ state
    @property
    def open(self) -> list[tuple[str, str]]:
        """Comparisons not decided yet."""
        return [p for p, d in self.decisions.items() if d == UNDECIDED]

    @property
    def active(self) -> list[str]:
        """Contenders in an open comparison: those that need runs at the next interim."""
        names = {name for pair in self.open for name in pair}
        return [name for name in self.contenders if name in names]

    @property
    def finished(self) -> bool:
        """Every comparison decided, or ``K`` interims done."""
        return not self.open or self.k >= self.K

    def runs(self, name: str) -> int:
        """Runs of ``name`` the test has read."""
        return len(self.scores[name])

    # ------------------------------------------------------------------ one interim
    def update(self, block: Mapping[str, Sequence[float]]) -> dict[tuple[str, str], str]:
        """Reads interim ``k + 1``: ``n`` new scores of every active contender, and decides
        what it can. Returns the decisions so far (after the last interim, the undecided
        ones read "no difference found")."""
        if self.finished:
            raise SpecError(f"the test is finished after {self.k} interim(s); nothing to update")
        active = self.active
        if sorted(block) != sorted(active):
            raise SpecError(
                f"interim {self.k + 1} needs scores of exactly {active!r}, got {sorted(block)!r}"
            )
        values = []
        for name in active:
            scores = np.asarray(block[name], dtype=float).ravel()
            if scores.size != self.sizes[name] or not np.all(np.isfinite(scores)):
                raise SpecError(
                    f"interim {self.k + 1}: {name!r} needs {self.sizes[name]} finite scores, got "
                    f"{scores.tolist()!r}"
                )
            values.append(scores)
            self.scores[name].extend(scores.tolist())
        self.k += 1
        self._scale = max(self._scale, max(float(np.abs(v).max()) for v in values), 1e-300)
        self._extend_paths(active, np.concatenate(values))
        self._decide()
        if self.k >= self.K:
            for pair in self.open:
                self.decisions[pair] = NO_DIFFERENCE
                self.decided_at[pair] = self.k
        return dict(self.decisions)

    def _extend_paths(self, active: list[str], pooled: np.ndarray) -> None:
        """Adds interim ``k``'s block to every permutation path."""
        columns = [self.contenders.index(name) for name in active]
        sizes = [self.sizes[name] for name in active]
        deals = _deal_count(sizes)
        paths = len(self._sums)
        if self._enumerated and paths * deals <= self.permutations:
            labels = _deals(sizes)  # (deals, pooled)
            parent = np.repeat(np.arange(paths), deals)
            added, squared = (
                np.tile(
                    np.stack([(x * (labels == g)).sum(1) for g in range(len(sizes))], 1), (paths, 1)
                )
                for x in (pooled, pooled**2)
            )
        else:
            size = self.permutations
            parent = (
                np.arange(size)
                if not self._enumerated
                else np.concatenate([[0], self._rng.integers(paths, size=size - 1)])
            )
            dealt = self._rng.permuted(np.tile(pooled, (size, 1)), axis=1)
            dealt[0] = pooled  # the identity path stays the identity
            starts = np.cumsum([0, *sizes[:-1]])
            added = np.add.reduceat(dealt, starts, axis=1)
            squared = np.add.reduceat(dealt**2, starts, axis=1)
            self._enumerated = False
        self._sums, self._squares = self._sums[parent], self._squares[parent]
        self._sums[:, columns] += added
        self._squares[:, columns] += squared
        self._alive = self._alive[parent]

    def _statistics(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        """Welch's ``|mean_a - mean_b| / sqrt(var_a / n_a + var_b / n_b)`` per path (rows)
        and pair (columns); row 0 is observed.

        Studentized so that pairs of different spread weigh alike in the maximum: with raw
        differences one contender's rare failures (CliffWalking returns of -1000 among -15s)
        set the boundary for every pair and hide clear differences elsewhere. A difference
        within the tolerance is a tie (0); a non-zero difference between two constant
        samples is infinite.
        """
        tolerance = TOLERANCE * self._scale
        counts = np.array([max(self.runs(name), 1) for name in self.contenders], dtype=float)
        means = self._sums / counts
        variances = (self._squares - self._sums * means) / np.maximum(counts - 1, 1)
        # sum-of-squares rounding leaves ~1e-14 * scale^2 in a constant sample's variance
        variances[variances <= (VARIANCE_TOLERANCE * self._scale) ** 2] = 0.0
        first = [self._pair_index[p][0] for p in pairs]
        second = [self._pair_index[p][1] for p in pairs]
        difference = np.abs(means[:, first] - means[:, second])
        error = np.sqrt(variances[:, first] / counts[first] + variances[:, second] / counts[second])
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(difference <= tolerance, 0.0, difference / error)
        return t

    def _boundary(self, maxima: np.ndarray, budget: float) -> float:
        """Smallest permutation value whose tail over the live paths fits in ``budget``."""
        live = np.sort(maxima[self._alive])
        allowed = math.floor(budget * len(maxima) + 1e-9)
        if allowed < 0 or live.size == 0:
            return math.inf
        above = live.size - np.searchsorted(live, live, side="right")
        fits = np.nonzero(above <= allowed)[0]
        return float(live[fits[0]]) if fits.size else math.inf

    def _decide(self) -> None:
        level = self.alpha * self.k / self.K
        boundary, maxima = math.inf, None
        while self.open:
            pairs = self.open
            stats = self._statistics(pairs)
            maxima = stats.max(axis=1)
            boundary = self._boundary(maxima, level - self.spent)
            observed = stats[0]
            top = int(np.argmax(observed))
            # The same statistic reached by another summation order differs by rounding only.
            if not observed[top] > boundary * (1 + 1e-9):
                break
            pair = pairs[top]
            i, j = self._pair_index[pair]
            counts = [self.runs(pair[0]), self.runs(pair[1])]
            a_higher = self._sums[0, i] / counts[0] > self._sums[0, j] / counts[1]
            self.decisions[pair] = BETTER if a_higher == self.higher_is_better else WORSE
            self.decided_at[pair] = self.k
            maxima = None
        self.boundaries.append(boundary)
        if maxima is not None and math.isfinite(boundary):
            crossed = self._alive & (maxima > boundary)
            self.spent += crossed.sum() / len(maxima)
            self._alive &= ~crossed
