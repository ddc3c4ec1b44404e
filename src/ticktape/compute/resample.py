"""Resampling maths of the Monte Carlo study (``ticktape montecarlo``): draws
of indices, the return grid's points, the path statistics of many draws at
once, and the stationary bootstrap's default block length. No I/O.

Every draw ``k`` of a study has its own generator,
``numpy.random.default_rng(numpy.random.SeedSequence(seed).spawn(n)[k])``
(:func:`draw_rngs`), so a draw is the same whichever process makes it and
however the draws are cut into chunks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "FAN_PERCENTILES",
    "FAN_POINTS",
    "STATS",
    "ResampleJob",
    "auto_block_length",
    "bootstrap_indices",
    "draw_rngs",
    "equity_paths",
    "fan_positions",
    "grid_points",
    "path_stats",
    "resample_chunk",
    "stationary_indices",
]

#: The statistics of each draw, in this order everywhere (summaries, tables, histograms).
STATS = ("final_equity", "max_drawdown_pct", "sharpe", "longest_drawdown_ns")
#: The percentile paths of the fan chart.
FAN_PERCENTILES = (5, 25, 50, 75, 95)
#: Points of each draw's equity path kept for the fan chart.
FAN_POINTS = 101


def draw_rngs(seed: int, start: int, stop: int, n: int) -> list[np.random.Generator]:
    """The generators of draws ``start .. stop - 1`` of a study of ``n`` draws.

    Examples
    --------
    >>> a = [g.integers(1000) for g in draw_rngs(7, 0, 4, 4)]
    >>> b = [g.integers(1000) for g in draw_rngs(7, 2, 4, 4)]
    >>> a[2:] == b
    True
    >>> children = np.random.SeedSequence(7).spawn(4)  # the same generators
    >>> a == [np.random.default_rng(c).integers(1000) for c in children]
    True
    """
    if not 0 <= start <= stop <= n:
        raise ValueError(f"draws {start}..{stop} are not within the study's {n}")
    # the k-th child of SeedSequence(seed).spawn(n), made directly (spawn makes all n)
    return [np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(k,))) for k in range(start, stop)]


def bootstrap_indices(rng: np.random.Generator, n: int, replace: bool = True) -> np.ndarray:
    """``n`` indices of ``0 .. n - 1``: drawn uniformly with replacement (the
    i.i.d. bootstrap), or a permutation (``replace=False``: the same values
    in another order)."""
    return rng.integers(0, n, n) if replace else rng.permutation(n)


def stationary_indices(rng: np.random.Generator, n: int, mean_block: float) -> np.ndarray:
    """``n`` indices of the stationary bootstrap (Politis & Romano 1994).

    Blocks start at a uniform index and run on (circularly: after ``n - 1``
    comes 0); each next index starts a new block with probability
    ``1 / mean_block``, so block lengths are geometric with mean
    ``mean_block`` (>= 1; 1 is the i.i.d. bootstrap).

    Examples
    --------
    >>> idx = stationary_indices(np.random.default_rng(1), 10, 4.0)
    >>> len(idx), bool(((np.diff(idx) % 10 == 1) | (np.diff(idx) != 1)).all())
    (10, True)
    """
    if not mean_block >= 1:
        raise ValueError(f"mean_block must be >= 1, got {mean_block}")
    starts = rng.integers(0, n, n)
    new = rng.random(n) < 1.0 / mean_block
    new[0] = True
    block = np.cumsum(new) - 1  # the block of each position
    first = np.flatnonzero(new)  # the position where each block starts
    offset = np.arange(n) - first[block]
    return (starts[first][block] + offset) % n


def auto_block_length(x: np.ndarray) -> float:
    """The stationary bootstrap's mean block length for the series ``x``:
    Politis & White (2004) with the correction of Patton, Politis & White
    (2009), computed as ``arch.bootstrap.optimal_block_length`` does.

    With ``n`` values, ``K = max(5, int(log10 n))`` and the significance
    bound ``2 sqrt(log10(n) / n)``: ``m`` is the first lag that starts
    ``K`` lags of insignificant autocorrelation (else
    ``ceil(sqrt n) + K``); with ``M = min(2 max(m, 1), ceil(sqrt n) + K)``,
    the flat-top window ``λ(t)`` (1 up to ``t = 1/2``, then ``2 (1 - t)``)
    and the autocovariances ``R(k)``: ``G = Σ_{k=1..M} 2 λ(k/M) k R(k)``,
    ``g = R(0) + Σ_{k=1..M} 2 λ(k/M) R(k)`` and
    ``b = (G² / g²) ** (1/3) n ** (1/3)``, at most
    ``ceil(min(3 sqrt(n), n / 3))`` and at least 1 (a series shorter than
    10, or constant: 1).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> auto_block_length(rng.standard_normal(2000)) < 3  # white noise: short blocks
    True
    >>> ar = np.zeros(2000)
    >>> for i in range(1, 2000):
    ...     ar[i] = 0.8 * ar[i - 1] + rng.standard_normal()
    >>> auto_block_length(ar) > 10  # persistent: long blocks
    True
    """
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if n < 10:
        return 1.0
    eps = x - x.mean()
    if not float(eps @ eps) > 0:
        return 1.0
    kn = max(5, int(math.log10(n)))
    m_max = math.ceil(math.sqrt(n)) + kn
    bound = 2.0 * math.sqrt(math.log10(n) / n)
    acv = np.zeros(m_max + 1)
    acorr = np.zeros(m_max + 1)
    m: int | None = None
    for i in range(m_max + 1):
        head, tail = eps[i + 1 :], eps[: -(i + 1)]
        cross = float(eps[i:] @ eps[: n - i])
        acv[i] = cross / n
        acorr[i] = abs(cross) / math.sqrt(float(head @ head) * float(tail @ tail))
        if m is None and i >= kn and (acorr[i - kn : i] < bound).all():
            m = i - kn
    big_m = min(2 * max(m, 1) if m is not None else m_max, m_max)
    k = np.arange(1, big_m + 1)
    lam = np.where(k / big_m <= 0.5, 1.0, 2.0 * (1.0 - k / big_m))
    g = float(np.sum(2.0 * lam * k * acv[1 : big_m + 1]))
    g0 = float(acv[0] + np.sum(2.0 * lam * acv[1 : big_m + 1]))
    if not g0 > 0:
        return 1.0
    b = (2.0 * g * g / (2.0 * g0 * g0)) ** (1.0 / 3.0) * n ** (1.0 / 3.0)
    return float(max(1.0, min(b, math.ceil(min(3.0 * math.sqrt(n), n / 3.0)))))


def grid_points(ts: np.ndarray, equity: np.ndarray, width: int) -> np.ndarray:
    """The equity curve's points on a return grid: the first sample, then the
    last sample of each bucket ``[k * width, (k + 1) * width)`` holding one
    (width 0: every sample); :func:`ticktape.compute.metrics.performance`
    takes its returns between consecutive points.

    Examples
    --------
    >>> ts = np.array([0, 5, 9, 12, 31]); eq = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    >>> grid_points(ts, eq, 10).tolist()  # the first, then buckets 0, 1, 3
    [1.0, 3.0, 4.0, 5.0]
    """
    ts = np.asarray(ts, dtype=np.int64)
    eq = np.asarray(equity, dtype=np.float64)
    if width == 0 or len(ts) < 2:
        return eq.copy()
    b = ts // width
    last = np.flatnonzero(np.concatenate((b[1:] != b[:-1], [True])))
    if last[0] == 0:  # the first sample closes its bucket: one point
        return eq[last]
    return np.concatenate((eq[:1], eq[last]))


def fan_positions(n_steps: int, points: int) -> np.ndarray:
    """``points`` indices into a path of ``n_steps + 1`` values (its start
    included), evenly spread from the start to the end."""
    return np.unique(np.round(np.linspace(0, n_steps, min(points, n_steps + 1))).astype(np.int64))


def path_stats(
    equity: np.ndarray, step_ns: float, periods_per_year: float, returns: np.ndarray
) -> dict[str, np.ndarray]:
    """The statistics (:data:`STATS`) of each row of ``equity``.

    Parameters
    ----------
    equity
        (draws, steps + 1): each draw's equity path, its start first.
    step_ns
        The time a step stands for (``longest_drawdown_ns`` = steps x this).
    periods_per_year
        Steps per year: the Sharpe ratio is ``mean(r) / std(r, ddof=1) *
        sqrt(periods_per_year)`` (no risk-free rate, as the run's metrics).
    returns
        (draws, steps): each step's simple return (NaN where undefined).

    Returns
    -------
    dict[str, np.ndarray]
        Per draw: ``final_equity``; ``max_drawdown_pct``, the largest
        ``(peak - E) / peak``; ``sharpe`` (NaN when undefined: fewer than two
        returns, no dispersion, or an equity <= 0 before the end);
        ``longest_drawdown_ns``, the longest stretch from a peak to the first
        value back at or above it, or to the end if never.

    Examples
    --------
    >>> eq = np.array([[100.0, 110.0, 99.0, 120.0, 115.0]])
    >>> s = path_stats(eq, 10.0, 252.0, eq[:, 1:] / eq[:, :-1] - 1)
    >>> float(s["final_equity"][0]), round(float(s["max_drawdown_pct"][0]), 4), float(s["longest_drawdown_ns"][0])
    (115.0, 0.1, 20.0)
    """
    eq = np.asarray(equity, dtype=np.float64)
    m, width = eq.shape
    peak = np.maximum.accumulate(eq, axis=1)
    frac = np.divide(peak - eq, peak, out=np.zeros_like(eq), where=peak > 0)
    at_peak = eq >= peak
    pos = np.arange(width)
    last_peak = np.maximum.accumulate(np.where(at_peak, pos, 0), axis=1)
    since = pos - last_peak  # steps since the latest peak (0 at one)
    longest = since.max(axis=1)  # to the last value below the peak...
    if width > 1:  # ... and to the first back at it, one step later
        back = at_peak[:, 1:] & ~at_peak[:, :-1]
        longest = np.maximum(longest, np.where(back, since[:, :-1] + 1, 0).max(axis=1))
    r = np.asarray(returns, dtype=np.float64)
    sharpe = np.full(m, np.nan)
    if r.shape[1] >= 2:
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = r.mean(axis=1)
            std = r.std(axis=1, ddof=1)
            noise = 64 * np.finfo(float).eps * (1.0 + np.abs(r).max(axis=1))
            ok = np.isfinite(std) & (std > noise) & (eq[:, :-1] > 0).all(axis=1)
            sharpe = np.where(ok, mean / np.where(ok, std, 1.0) * math.sqrt(periods_per_year), np.nan)
    return {
        "final_equity": eq[:, -1].copy(),
        "max_drawdown_pct": frac.max(axis=1),
        "sharpe": sharpe,
        "longest_drawdown_ns": longest.astype(np.float64) * step_ns,
    }


@dataclass(frozen=True)
class ResampleJob:
    """Draws ``start .. stop - 1`` of a study of ``n`` draws that resamples
    ``values``: trade PnL added up (``method`` "trades"), or returns
    compounded ("returns", "blocks"), from ``initial_equity``.

    A worker process runs it with :func:`resample_chunk` (this module
    imports numpy only: a worker starts at once)."""

    method: str
    values: np.ndarray
    initial_equity: float
    step_ns: float
    periods_per_year: float
    replace: bool
    block_length: float | None
    seed: int
    n: int
    start: int
    stop: int


def resample_chunk(job: ResampleJob) -> tuple[int, dict[str, np.ndarray], np.ndarray]:
    """``(start, statistics, fan rows)`` of a chunk of draws: each draw's
    :func:`path_stats` and its equity at :func:`fan_positions`.

    Draw ``k`` takes its indices from its own generator (:func:`draw_rngs`):
    :func:`stationary_indices` for "blocks", else :func:`bootstrap_indices`;
    its path is :func:`equity_paths` of the values drawn."""
    v = job.values
    steps = len(v)
    block = job.block_length if job.block_length is not None else 1.0  # (set for blocks)
    idx = np.stack(
        [
            stationary_indices(rng, steps, block)
            if job.method == "blocks"
            else bootstrap_indices(rng, steps, job.replace)
            for rng in draw_rngs(job.seed, job.start, job.stop, job.n)
        ]
    )
    eq, r = equity_paths(job.method, v[idx], job.initial_equity)
    stats = path_stats(eq, job.step_ns, job.periods_per_year, r)
    return job.start, stats, eq[:, fan_positions(steps, FAN_POINTS)]


def equity_paths(method: str, drawn: np.ndarray, initial_equity: float) -> tuple[np.ndarray, np.ndarray]:
    """``(equity, returns)`` of rows of drawn values: trade PnL added up
    (``method`` "trades"; a step's return is its PnL over the equity before
    it, NaN once that is not positive), or returns compounded.

    Examples
    --------
    >>> eq, r = equity_paths("trades", np.array([[10.0, -5.0]]), 100.0)
    >>> eq.tolist(), np.round(r, 4).tolist()
    ([[100.0, 110.0, 105.0]], [[0.1, -0.0455]])
    >>> equity_paths("returns", np.array([[0.1, -0.5]]), 100.0)[0].round(6).tolist()
    [[100.0, 110.0, 55.0]]
    """
    start = np.full((len(drawn), 1), float(initial_equity))
    if method == "trades":
        eq = np.concatenate((start, initial_equity + np.cumsum(drawn, axis=1)), axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(eq[:, :-1] > 0, drawn / eq[:, :-1], np.nan)
        return eq, r
    return np.concatenate((start, initial_equity * np.cumprod(1.0 + drawn, axis=1)), axis=1), drawn
