"""Risk metrics on a stated return grid: the grid's choice, its points, and
the demo's Sharpe against empyrical's on the same equity resampled by pandas."""

from __future__ import annotations

import math
import re
from pathlib import Path

import empyrical  # empyrical-reloaded, in the test extra
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ticktape.backtest.run import backtest
from ticktape.compute import labels, metrics
from ticktape.compute.metrics import DAY_NS, GRIDS, MIN_PERIODS, YEAR_NS, performance, run_metrics
from ticktape.data.synth import RandomWalkConfig, generate_walk
from ticktape.errors import SpecError
from ticktape.model.spec import RunSpec
from ticktape.pipeline.demo import DemoOptions

R = pytest.approx
DOCS = Path(__file__).resolve().parents[3] / "docs" / "metrics.md"


def grid_returns(equity: pd.Series, width_ns: int) -> pd.Series:
    """The documented grid, by pandas: the first sample and the last sample of
    each bucket [k * width, (k + 1) * width) holding one; their returns."""
    ts = equity.index.as_unit("ns").asi8 if isinstance(equity.index, pd.DatetimeIndex) else equity.index
    bucket = pd.Series(np.asarray(ts) // width_ns, index=equity.index)
    last = bucket.ne(bucket.shift(-1))
    last.iloc[0] = True
    return equity[last.to_numpy()].pct_change().dropna()


def empyrical_sharpe(returns: pd.Series, ppy: float) -> float:
    """empyrical.sharpe_ratio (risk_free 0): mean / std(ddof=1) * sqrt(annualization)."""
    return float(empyrical.sharpe_ratio(returns, risk_free=0.0, annualization=ppy))


def test_the_demos_sharpe_is_empyricals_on_the_minute_grid():
    opts = DemoOptions()
    equity, fills = {}, {}
    for sym in opts.symbols:  # the demo's ticks and run, in process (the pipeline's metrics equal these)
        ticks = np.concatenate(
            list(generate_walk(RandomWalkConfig(symbol=sym, n_ticks=opts.ticks_per_symbol)))
        )
        res = backtest(ticks, "sma_crossover", {"fast": opts.fast, "slow": opts.slow, "size": 100.0})
        equity[sym], fills[sym] = res.extra["raw"]["equity"], res.extra["raw"]["fills"]
    m, _ = run_metrics(equity, fills, 1_000_000.0)
    # 600,000 ticks at 20/s: 8.3 hours, so 9 hourly returns are too few; 500 by the minute
    assert m["return_grid_ns"] == GRIDS["minute"]
    assert m["periods_per_year"] == YEAR_NS / GRIDS["minute"]
    samples = pd.DataFrame(
        {
            "ts_ns": np.concatenate([equity[s]["ts"] for s in sorted(equity)]),
            "symbol": np.repeat(sorted(equity), [len(equity[s]) for s in sorted(equity)]),
            "equity": np.concatenate([equity[s]["equity"] for s in sorted(equity)]),
        }
    )
    total = metrics.portfolio_equity(samples, 1_000_000.0)
    r = grid_returns(total, GRIDS["minute"])
    assert m["return_periods"] == len(r) > MIN_PERIODS
    assert m["sharpe"] == R(empyrical_sharpe(r, m["periods_per_year"]), rel=1e-9)
    assert m["volatility"] == R(r.std(ddof=1) * math.sqrt(m["periods_per_year"]), rel=1e-9)
    # (-313.3 by the minute, -313.4 over the 1 s samples: the strategy crosses the spread on 7,968
    # fills and loses about the same every minute, so the ratio is real, not an annualization artefact)


def test_the_grid_is_the_coarsest_with_enough_returns_not_finer_than_the_samples():
    def grid_of(index: pd.DatetimeIndex) -> tuple[float, float]:
        m = performance(pd.Series(np.linspace(100, 120, len(index)), index=index))
        return m["return_grid_ns"], m["periods_per_year"]

    assert grid_of(pd.bdate_range("2024-01-01", periods=60)) == (DAY_NS, 252.0)  # weekdays
    assert grid_of(pd.date_range("2024-01-01", periods=60, freq="D")) == (DAY_NS, 365.25)  # every day
    assert grid_of(pd.date_range("2024-01-01", periods=60 * 24, freq="h")) == (DAY_NS, 365.25)
    assert grid_of(pd.date_range("2024-01-01", periods=100, freq="h")) == (3_600e9, YEAR_NS / 3_600e9)
    assert grid_of(pd.date_range("2024-01-01", periods=100, freq="s")) == (1e9, YEAR_NS / 1e9)
    # every other weekday: the day grid would leave half its buckets empty -> every sample, 126 a year
    assert grid_of(pd.bdate_range("2024-01-01", periods=60, freq="2B")) == (0.0, 126.0)
    # 20 samples: too few for any grid -> every sample
    assert grid_of(pd.date_range("2024-01-01", periods=20, freq="h"))[0] == 0.0


def test_a_stated_grid_is_used_whatever_the_count():
    eq = pd.Series(np.linspace(100, 110, 600), index=pd.date_range("2024-01-01", periods=600, freq="min"))
    m = performance(eq, grid="hour")
    assert (m["return_grid_ns"], m["return_periods"], m["periods_per_year"]) == (
        3_600e9,
        10.0,
        YEAR_NS / 3_600e9,
    )
    assert m["sharpe"] == R(empyrical_sharpe(grid_returns(eq, 3_600 * 10**9), YEAR_NS / 3_600e9), rel=1e-12)
    every = performance(eq, grid="samples")
    assert every["return_periods"] == 599.0 and every["return_grid_ns"] == 0.0
    assert performance(eq, grid=300 * 10**9)["return_periods"] == 120.0
    with pytest.raises(ValueError, match="grid = 'weekly' must be"):
        performance(eq, grid="weekly")


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    n=st.integers(2, 400),
    step_s=st.sampled_from([1, 7, 60, 599, 3_600, 86_400]),
    grid=st.sampled_from(["day", "hour", "minute", "second", 90 * 10**9]),
    cuts=st.lists(st.integers(1, 399), max_size=6),
)
def test_grid_returns_in_pieces_equal_pandas_resampling(seed, n, step_s, grid, cuts):
    rng = np.random.default_rng(seed)
    gaps = rng.integers(1, 3, n) * step_s * 10**9  # irregular: some buckets empty
    ts = 1_704_186_000 * 10**9 + np.cumsum(gaps)
    eq = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    width = metrics.grid_ns(grid)
    stream = metrics.PerformanceStream(grid=grid)
    for a, b in zip([0, *sorted(set(cuts))], [*sorted(set(cuts)), n], strict=True):
        stream.add(ts[a:b], eq[a:b])
    m = stream.result()
    r = grid_returns(pd.Series(eq, index=ts), width)
    assert m["return_periods"] == len(r)
    if len(r) >= 2 and r.std(ddof=1) > 1e-12:
        assert m["sharpe"] == R(r.mean() / r.std(ddof=1) * math.sqrt(m["periods_per_year"]), rel=1e-9)


def test_every_performance_key_has_a_label_and_is_documented():
    eq = pd.Series([100.0, 101.0, 99.0], index=pd.date_range("2024-01-01", periods=3))
    keys = set(performance(eq)) | {"final_equity", "final_pnl"}
    assert keys <= set(labels.METRICS)
    documented = set(re.findall(r"^\| `([a-z_]+)`", DOCS.read_text(), flags=re.M))
    documented |= {k for line in DOCS.read_text().splitlines() for k in re.findall(r"`([a-z_]+)`", line[:80])}
    assert set(performance(eq)) <= documented


def test_a_run_spec_states_its_grid_and_refuses_an_unknown_one():
    spec = RunSpec(strategy="sma_crossover", symbols=("A",), return_grid="hour")
    assert RunSpec.from_json(spec.to_json()).return_grid == "hour"
    assert RunSpec(strategy="sma_crossover", symbols=("A",), return_grid=60 * 10**9).return_grid == 60 * 10**9
    for bad in ("weekly", 0, -5, True, 1.5):
        with pytest.raises(SpecError, match="return_grid: must be auto, samples, day, hour, minute, second"):
            RunSpec(strategy="sma_crossover", symbols=("A",), return_grid=bad)
