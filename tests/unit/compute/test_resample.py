"""The resampling maths of Monte Carlo studies (ticktape.compute.resample)."""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ticktape.compute import metrics
from ticktape.compute.resample import (
    FAN_POINTS,
    ResampleJob,
    auto_block_length,
    bootstrap_indices,
    draw_rngs,
    grid_points,
    path_stats,
    resample_chunk,
    stationary_indices,
)

HOUR = 3_600 * 10**9


def _curve(seed: int, n: int) -> pd.Series:
    rng = np.random.default_rng(seed)
    ts = np.cumsum(rng.integers(1, 3 * HOUR // 60, n)) * 60  # uneven spacing, empty buckets too
    eq = 1e6 * np.cumprod(1 + rng.normal(0.0002, 0.004, n))
    return pd.Series(eq, index=ts.astype(np.int64))


@pytest.mark.parametrize("grid", ["hour", "minute", "samples"])
def test_grid_returns_give_the_runs_sharpe(grid):
    """The returns between grid_points are the ones performance() takes:
    their Sharpe is the curve's."""
    curve = _curve(1, 3_000)
    m = metrics.performance(curve, grid=grid)
    pts = grid_points(curve.index.to_numpy(), curve.to_numpy(), int(m["return_grid_ns"]))
    r = pts[1:] / pts[:-1] - 1
    assert len(r) == m["return_periods"]
    assert r.mean() / r.std(ddof=1) * math.sqrt(m["periods_per_year"]) == pytest.approx(m["sharpe"], rel=1e-9)


@given(st.lists(st.floats(-0.05, 0.05), min_size=2, max_size=60), st.floats(1, 1e6))
@settings(max_examples=150, deadline=None)
def test_path_stats_match_performance(rs, step):
    """Drawdown and its longest stretch of a path are performance()'s on the
    same curve sampled every ``step`` ns."""
    eq = 100.0 * np.cumprod(np.concatenate(([1.0], 1 + np.asarray(rs))))
    ts = (np.arange(len(eq)) * int(step)).astype(np.int64) + 1
    m = metrics.performance(pd.Series(eq, index=ts), grid="samples", periods_per_year=252)
    s = path_stats(eq[None, :], float(int(step)), 252.0, (eq[1:] / eq[:-1] - 1)[None, :])
    assert s["final_equity"][0] == eq[-1]
    assert s["max_drawdown_pct"][0] == pytest.approx(m["max_drawdown_pct"], abs=1e-12)
    assert s["longest_drawdown_ns"][0] == m["max_drawdown_duration_ns"]
    if math.isnan(m["sharpe"]):
        assert math.isnan(s["sharpe"][0])
    else:
        assert s["sharpe"][0] == pytest.approx(m["sharpe"], rel=1e-9)


def test_draws_do_not_depend_on_the_chunk():
    whole = [bootstrap_indices(g, 50) for g in draw_rngs(5, 0, 10, 10)]
    parts = [bootstrap_indices(g, 50) for a, b in ((0, 3), (3, 10)) for g in draw_rngs(5, a, b, 10)]
    assert all(np.array_equal(x, y) for x, y in zip(whole, parts, strict=True))


def test_without_replacement_is_a_permutation():
    (g,) = draw_rngs(1, 0, 1, 1)
    assert sorted(bootstrap_indices(g, 100, replace=False).tolist()) == list(range(100))


@given(st.integers(2, 400), st.floats(1, 50), st.integers(0, 2**32))
@settings(max_examples=100, deadline=None)
def test_stationary_blocks_run_on_circularly(n, mean_block, seed):
    idx = stationary_indices(np.random.default_rng(seed), n, mean_block)
    assert len(idx) == n and idx.min() >= 0 and idx.max() < n


def test_stationary_block_lengths_are_geometric():
    """Mean block length: a new block starts with probability 1/L (a run of
    consecutive indices may join two blocks by chance, rarely for n large)."""
    n, mean_block = 200_000, 8.0
    idx = stationary_indices(np.random.default_rng(3), n, mean_block)
    breaks = np.count_nonzero(np.diff(idx) % n != 1) + 1
    assert n / breaks == pytest.approx(mean_block, rel=0.03)


def test_auto_block_length_grows_with_persistence():
    rng = np.random.default_rng(0)
    lengths = []
    for phi in (0.0, 0.5, 0.9):
        x = np.zeros(5_000)
        e = rng.standard_normal(5_000)
        for i in range(1, 5_000):
            x[i] = phi * x[i - 1] + e[i]
        lengths.append(auto_block_length(x))
    assert lengths[0] < 3 < lengths[1] < lengths[2] <= math.ceil(3 * math.sqrt(5_000))
    assert auto_block_length(np.ones(100)) == 1.0 and auto_block_length(np.arange(5.0)) == 1.0


@given(
    st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=40),
    st.sampled_from(["trades", "returns", "blocks"]),
    st.booleans(),
    st.integers(0, 2**32),
)
@settings(max_examples=100, deadline=None)
def test_a_chunk_of_draws_keeps_its_invariants(values, method, replace, seed):
    """Reordering keeps the final PnL; drawdowns are fractions of the peak;
    a drawdown lasts at most the whole path; the fan starts at the initial
    equity and ends at each draw's final equity."""
    v = np.asarray(values) / (1e3 if method != "trades" else 1.0)  # returns within (-1, 1)
    replace = replace or method == "blocks"
    job = ResampleJob(
        method, v, 1e4, 10.0, 252.0, replace, 3.0 if method == "blocks" else None, seed, 8, 2, 7
    )
    start, stats, fan = resample_chunk(job)
    assert start == 2 and fan.shape == (5, min(FAN_POINTS, len(v) + 1))
    assert (fan[:, 0] == 1e4).all() and np.array_equal(fan[:, -1], stats["final_equity"])
    if not replace:
        expected = 1e4 + v.sum() if method == "trades" else 1e4 * np.prod(1 + v)
        assert np.allclose(stats["final_equity"], expected, rtol=1e-9, atol=1e-6)
    dd = stats["max_drawdown_pct"]
    assert ((dd >= 0) & ((dd <= 1) | (stats["final_equity"] < 0) | (fan.min(axis=1) < 0))).all()
    assert (stats["longest_drawdown_ns"] <= 10.0 * len(v)).all()
