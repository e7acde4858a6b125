"""Change points in a series: E-divisive means with a t-test on each split.

This follows the approach of Hunter and Apache Otava (Fleming et al., "Hunter:
Using Change Point Detection to Hunt for Performance Regressions", 2023), which
builds on Matteson & James' E-divisive (2014):

1. For a segment ``x[s:e]``, every split point ``tau`` is scored by the scaled
   energy distance between the two sides ``X = x[s:tau]`` (n points) and
   ``Y = x[tau:e]`` (m points)::

       Q(tau) = 2/(n+m) * sum_ij |X_i - Y_j|^p
              - 2m/((n+m)(n-1)) * sum_{i<k} |X_i - X_k|^p
              - 2n/((n+m)(m-1)) * sum_{j<k} |Y_j - Y_k|^p

   The split with the largest ``Q`` is the segment's candidate.
2. The candidate with the largest ``Q`` over all open segments is tested with
   a two-sided Student t-test between its two sides (as Otava's
   ``TTestSignificanceTester``). Because the split was *chosen* to make the sides
   differ, the raw t-test p-value is optimistic; we multiply it by the number of
   split positions that were searched (Bonferroni), so that a series without a
   change keeps its false-positive rate at or under ``alpha``. Otava instead
   relies on a very small p threshold (0.001) and a merge step.
3. A significant split divides its segment in two and both halves are searched
   again; a candidate that fails closes its segment. The search ends when no
   segment is open.

Differences from Otava: the right end of each comparison is the segment's end
(Otava also maximises over it), and there is no windowed split/merge pass; for
histories of up to about a thousand points the whole series is searched at once.

Cost: the pairwise distance matrix is built once (O(n^2) memory and time); each
split scores all positions of its segment in O(len^2) with numpy (cumulative
sums over the distance matrix), so a series of 1,000 points with a few change
points takes milliseconds. Everything is deterministic: no permutations, no
randomness.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

FloatArray = npt.NDArray[np.float64]

#: Histories longer than this are refused (the distance matrix grows as n^2).
DEFAULT_MAX_POINTS = 1_000


@dataclass(frozen=True, slots=True)
class ChangePoint:
    """A change of regime: ``index`` is the first point of the new regime."""

    index: int
    p_value: float  # t-test p-value, corrected for the number of split positions searched
    mean_before: float  # mean of the regime that ends here
    mean_after: float  # mean of the regime that starts here
    qhat: float  # the energy divergence of the split

    @property
    def change_pct(self) -> float | None:
        """Relative change of the mean in percent, or None when the mean before is 0."""
        if self.mean_before == 0:
            return None
        return (self.mean_after / self.mean_before - 1.0) * 100.0


def as_series(values: object, what: str = "values") -> FloatArray:
    """``values`` as a 1-d float64 array of finite numbers, or ValueError naming ``what``."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what}: expected a sequence of numbers ({exc})") from None
    if arr.ndim != 1:
        raise ValueError(f"{what}: expected a 1-d sequence, got shape {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise ValueError(f"{what}: value at index {int(bad[0])} is {arr[bad[0]]!r}, not finite")
    return arr


def _within_coef(k: npt.NDArray[np.int64], total: int, other: npt.NDArray[np.int64]) -> FloatArray:
    """2*other/(total*(k-1)), 0 where one side holds a single point (no pairs)."""
    out = np.zeros(k.shape, dtype=np.float64)
    ok = k > 1
    out[ok] = 2.0 * other[ok] / (total * (k[ok] - 1.0))
    return out


def divergence_profile(values: FloatArray, power: float = 1.0) -> FloatArray:
    """``Q(tau)`` for every split ``tau = 1 .. len-1`` of ``values`` (index ``tau - 1``).

    O(len^2) time and memory: one distance matrix, its upper-triangle column sums
    and row sums give the within and cross sums for every split by cumulative sums.
    """
    x = as_series(values)
    if x.size < 2:
        return np.zeros(0, dtype=np.float64)
    return _profile_from_distances(np.abs(x[:, None] - x[None, :]) ** power)


def _profile_from_distances(dist: FloatArray) -> FloatArray:
    total = dist.shape[0]
    # upper[j] = sum_{i<j} d(i, j): adding point j to the left side adds 2*upper[j]
    # to the left block's sum (the block is symmetric).
    upper = np.triu(dist, 1).sum(axis=0)
    left_block = 2.0 * np.cumsum(upper)  # left_block[n-1] = sum over [0:n, 0:n]
    row_cum = np.cumsum(dist.sum(axis=1))  # row_cum[n-1] = sum over [0:n, 0:total]
    grand = row_cum[-1]
    n = np.arange(1, total, dtype=np.int64)
    m = total - n
    xx = left_block[:-1]
    cross = row_cum[:-1] - xx
    yy = grand - xx - 2.0 * cross
    # xx and yy count every pair twice, hence the halves.
    q: FloatArray = (
        2.0 / total * cross
        - _within_coef(n, total, m) * xx / 2
        - _within_coef(m, total, n) * yy / 2
    )
    return q


def divergence_profile_naive(values: FloatArray, power: float = 1.0) -> FloatArray:
    """The same as ``divergence_profile`` from the definition, O(len^3).

    A reference for tests and the benchmark anchor; do not use it on long series.
    """
    x = as_series(values)
    total = x.size
    out = np.zeros(max(total - 1, 0), dtype=np.float64)
    for tau in range(1, total):
        left, right = x[:tau], x[tau:]
        n, m = left.size, right.size
        cross = float((np.abs(left[:, None] - right[None, :]) ** power).sum())
        within_l = float((np.abs(left[:, None] - left[None, :]) ** power).sum()) / 2
        within_r = float((np.abs(right[:, None] - right[None, :]) ** power).sum()) / 2
        q = 2.0 / total * cross
        if n > 1:
            q -= 2.0 * m / (total * (n - 1)) * within_l
        if m > 1:
            q -= 2.0 * n / (total * (m - 1)) * within_r
        out[tau - 1] = q
    return out


def _t_test(left: FloatArray, right: FloatArray) -> float:
    """Two-sided Student t-test p-value; exact answers where the variance is zero."""
    if left.size + right.size <= 2:
        return 1.0
    if np.ptp(left) == 0 and np.ptp(right) == 0:
        # No noise at all: any difference is certain, no difference is none.
        return 0.0 if left[0] != right[0] else 1.0
    result = stats.ttest_ind(left, right, equal_var=True)
    p = float(result.pvalue)
    return 1.0 if math.isnan(p) else p


@dataclass(slots=True)
class _Candidate:
    start: int
    end: int
    index: int  # absolute split index
    qhat: float
    positions: int  # split positions searched


def _best_split(
    x: FloatArray, dist: FloatArray | None, start: int, end: int, min_size: int, power: float
) -> _Candidate | None:
    length = end - start
    if length < 2 * min_size:
        return None
    if dist is None:
        profile = divergence_profile_naive(x[start:end], power)
    else:
        profile = _profile_from_distances(dist[start:end, start:end])
    # profile[tau-1] is the split with tau points on the left.
    lo, hi = min_size - 1, length - min_size  # taus min_size .. length-min_size
    window = profile[lo:hi]
    best = int(np.argmax(window))
    return _Candidate(start, end, start + lo + best + 1, float(window[best]), window.size)


def e_divisive(
    values: object,
    *,
    min_size: int = 5,
    alpha: float = 0.01,
    max_points: int = DEFAULT_MAX_POINTS,
    power: float = 1.0,
    naive: bool = False,
) -> list[ChangePoint]:
    """Change points of ``values``, in index order.

    ``min_size`` is the fewest points on either side of a split; ``alpha`` the
    significance level of the (corrected) t-test; ``power`` in (0, 2) the
    exponent of the distances (1, the usual choice, compares whole
    distributions). ``naive`` scores splits from the definition (O(n^3) per
    split): a reference for tests and benchmarks only.
    """
    if min_size < 1:
        raise ValueError(f"min_size must be at least 1, got {min_size}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not 0 < power < 2:
        raise ValueError(f"power must be in (0, 2), got {power}")
    x = as_series(values)
    if x.size > max_points:
        raise ValueError(
            f"values: {x.size} points exceed max_points={max_points}; pass the latest points only"
        )
    if x.size < 2 * min_size:
        return []
    dist = None if naive else np.abs(x[:, None] - x[None, :]) ** power

    open_candidates: list[_Candidate] = []
    first = _best_split(x, dist, 0, x.size, min_size, power)
    if first is not None:
        open_candidates.append(first)
    found: list[ChangePoint] = []
    while open_candidates:
        cand = max(open_candidates, key=lambda c: c.qhat)
        open_candidates.remove(cand)
        left, right = x[cand.start : cand.index], x[cand.index : cand.end]
        p = min(1.0, _t_test(left, right) * cand.positions)
        if p >= alpha:
            continue  # this segment holds no significant change
        found.append(
            ChangePoint(
                index=cand.index,
                p_value=p,
                mean_before=float(left.mean()),
                mean_after=float(right.mean()),
                qhat=cand.qhat,
            )
        )
        for start, end in ((cand.start, cand.index), (cand.index, cand.end)):
            sub = _best_split(x, dist, start, end, min_size, power)
            if sub is not None:
                open_candidates.append(sub)
    found.sort(key=lambda c: c.index)
    # Report the means of the final regimes on each side, not of the segment
    # that was being split when the point was found.
    bounds = [0, *(c.index for c in found), x.size]
    return [
        ChangePoint(
            index=c.index,
            p_value=c.p_value,
            mean_before=float(x[bounds[i] : c.index].mean()),
            mean_after=float(x[c.index : bounds[i + 2]].mean()),
            qhat=c.qhat,
        )
        for i, c in enumerate(found)
    ]
