"""Performance metrics: worked examples by hand, edge cases, properties, and backtesting.py."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ticktape.compute import metrics
from ticktape.compute.accounting import RoundTrips, equity_curve, trades
from ticktape.compute.metrics import (
    DAY_NS,
    YEAR_NS,
    PerformanceStream,
    RunMetrics,
    infer_periods_per_year,
    max_drawdown,
    performance,
    portfolio_equity,
    run_metrics,
    summarize,
)
from ticktape.model.batch import EQUITY_DTYPE, FILL_DTYPE

R = pytest.approx


def daily(values: list[float], start: str = "2024-01-01") -> pd.Series:
    """Values on consecutive calendar days (2024-01-01 is a Monday)."""
    return pd.Series(values, index=pd.date_range(start, periods=len(values), freq="D"))


# ---------------------------------------------------------------- worked example
def test_worked_example_returns_risk_and_drawdown():
    # equity 100 -> 110 -> 99 -> 118.8 -> 106.92 on Mon..Fri 2024-01-01..05
    # returns r = +0.10, -0.10, +0.20, -0.10 (110/100, 99/110, 118.8/99, 106.92/118.8)
    eq = daily([100.0, 110.0, 99.0, 118.8, 106.92])
    m = performance(eq)
    # weekdays, median spacing 1 day -> 252 trading days
    assert m["periods_per_year"] == 252.0
    # total 106.92 / 100 - 1
    assert m["total_return"] == R(0.0692, rel=1e-12)
    # annualized: 1.0692 ** (252 / 4) - 1 (4 periods)
    assert m["annualized_return"] == R(1.0692 ** (252 / 4) - 1, rel=1e-12)
    # CAGR: 4 calendar days elapsed -> 1.0692 ** (365.25 / 4) - 1
    assert m["cagr"] == R(1.0692 ** (365.25 / 4) - 1, rel=1e-12)
    # mean r = 0.1 / 4 = 0.025; deviations 0.075, -0.125, 0.175, -0.125;
    # squares sum 0.005625 + 0.015625 + 0.030625 + 0.015625 = 0.0675; / (4 - 1) = 0.0225; std 0.15
    assert m["volatility"] == R(0.15 * math.sqrt(252), rel=1e-12)
    # Sharpe = 0.025 / 0.15 * sqrt(252)
    assert m["sharpe"] == R(0.025 / 0.15 * math.sqrt(252), rel=1e-12)
    # downside: min(r, 0) = 0, -0.1, 0, -0.1 -> sqrt((0.01 + 0.01) / 4) = sqrt(0.005)
    assert m["sortino"] == R(0.025 / math.sqrt(0.005) * math.sqrt(252), rel=1e-12)
    # peaks 100, 110, 110, 118.8, 118.8; falls 0, 0, 11, 0, 11.88 -> 11.88 absolute,
    # fractions 11 / 110 = 0.1 and 11.88 / 118.8 = 0.1
    assert m["max_drawdown"] == R(11.88, rel=1e-12)
    assert m["max_drawdown_pct"] == R(0.1, rel=1e-12)
    # underwater Jan 3 (peak Jan 2, back above it Jan 4: 2 days) and Jan 5 (peak Jan 4, never
    # recovered, to the end Jan 5: 1 day) -> 2 days
    assert m["max_drawdown_duration_ns"] == 2 * DAY_NS
    # Calmar = CAGR / 0.1
    assert m["calmar"] == R(m["cagr"] / 0.1, rel=1e-12)
    # nothing given for trades / positions
    for key in ("n_trades", "win_rate", "profit_factor", "exposure", "turnover"):
        assert math.isnan(m[key]), key


def test_risk_free_rate_is_annual_and_subtracted_per_period():
    eq = daily([100.0, 110.0, 99.0, 118.8, 106.92])
    m = performance(eq, periods_per_year=252, risk_free=0.05)
    rf = 1.05 ** (1 / 252) - 1  # per period
    # Sharpe: mean(r - rf) / std(r - rf) * sqrt(252); the std is unchanged by a constant: 0.15
    assert m["sharpe"] == R((0.025 - rf) / 0.15 * math.sqrt(252), rel=1e-12)
    # Sortino target rf: min(r - rf, 0) = 0, -0.1 - rf, 0, -0.1 - rf
    dd = math.sqrt(2 * (0.1 + rf) ** 2 / 4)
    assert m["sortino"] == R((0.025 - rf) / dd * math.sqrt(252), rel=1e-12)
    # the return figures do not depend on it
    assert m["total_return"] == R(0.0692, rel=1e-12)


def test_explicit_periods_per_year_is_used_and_returned():
    eq = daily([100.0, 110.0, 99.0, 118.8, 106.92])
    m = performance(eq, periods_per_year=12)
    assert m["periods_per_year"] == 12.0
    assert m["annualized_return"] == R(1.0692 ** (12 / 4) - 1, rel=1e-12)
    assert m["sharpe"] == R(0.025 / 0.15 * math.sqrt(12), rel=1e-12)
    assert m["cagr"] == R(1.0692 ** (365.25 / 4) - 1, rel=1e-12)  # calendar time, unchanged


def test_cagr_by_calendar_time_and_integer_ns_index():
    # doubling over exactly two years of 365.25 days: CAGR sqrt(2) - 1
    eq = pd.Series([50.0, 80.0, 100.0], index=[0, YEAR_NS, 2 * YEAR_NS])
    m = performance(eq)
    assert m["cagr"] == R(math.sqrt(2) - 1, rel=1e-12)
    # spacing of one year -> 1 period per year; annualized (2) ** (1 / 2) - 1 as well
    assert m["periods_per_year"] == R(1.0, rel=1e-12)
    assert m["annualized_return"] == R(math.sqrt(2) - 1, rel=1e-12)


def test_drawdown_fraction_and_absolute_come_from_different_falls():
    # falls: 10 -> 5 (5 = 50%) and 1000 -> 900 (100 = 10%)
    eq = pd.Series([10.0, 5.0, 1000.0, 900.0], index=[0, 10, 20, 30])
    m = performance(eq, periods_per_year=1)  # 30 ns elapsed: CAGR overflows -> NaN, not inf
    assert math.isnan(m["cagr"]) and math.isnan(m["calmar"])
    assert (m["max_drawdown"], m["max_drawdown_pct"]) == (100.0, 0.5)
    # the legacy helper keeps its meaning: the largest absolute fall and its own fraction
    assert max_drawdown(eq.to_numpy()) == (100.0, 0.1)
    # durations: 0 -> 20 (peak 10 at 0, recovered at 20) and 20 -> 30 (open at the end)
    assert m["max_drawdown_duration_ns"] == 20.0
    # Calmar uses the fractional one: over 3 years, CAGR = 90 ** (1 / 3) - 1
    m = performance(pd.Series(eq.to_numpy(), index=[0, YEAR_NS, 2 * YEAR_NS, 3 * YEAR_NS]))
    assert m["calmar"] == R((90 ** (1 / 3) - 1) / 0.5, rel=1e-12)


def test_drawdown_recovery_at_exactly_the_peak_ends_the_spell():
    eq = pd.Series([100.0, 90.0, 100.0, 95.0, 96.0, 97.0, 98.0], index=[0, 1, 2, 3, 10, 20, 40])
    m = performance(eq, periods_per_year=1)
    # spell 1: 0 -> 2 (back at 100); spell 2: peak at 2, never back, runs to 40 -> 38
    assert m["max_drawdown_duration_ns"] == 38.0
    assert (m["max_drawdown"], m["max_drawdown_pct"]) == (10.0, 0.1)


# ---------------------------------------------------------------- trades, exposure, turnover
def hand_trades() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "net_pnl": [10.0, -5.0, 20.0, 0.0, -15.0, 100.0],
            "return_pct": [0.1, -0.05, 0.2, 0.0, -0.15, 1.0],
            "notional": [200.0, 100.0, 400.0, 50.0, 250.0, 1000.0],
            "open": [False, False, False, False, False, True],
        }
    )


def test_trade_statistics_by_hand():
    eq = pd.Series([1000.0, 1000.0], index=[0, 2 * YEAR_NS])
    m = performance(eq, trades=hand_trades(), periods_per_year=1)
    # closed: +10, -5, +20, 0, -15; the open trade counts only in n_open_trades
    assert (m["n_trades"], m["n_open_trades"]) == (5.0, 1.0)
    assert m["win_rate"] == 2 / 5  # 10 and 20; 0 is not a win
    assert m["profit_factor"] == (10 + 20) / (5 + 15)  # 1.5
    assert m["expectancy"] == (10 - 5 + 20 + 0 - 15) / 5  # 2.0
    assert m["avg_trade_return"] == R((0.1 - 0.05 + 0.2 + 0 - 0.15) / 5)  # 0.02
    assert (m["avg_win"], m["avg_loss"]) == (15.0, -10.0)
    # turnover: notional of every trade, open included: 2000; mean equity 1000; 2 years -> 1.0
    assert m["turnover"] == R(2000 / 1000 / 2, rel=1e-12)


def test_trade_statistics_without_losers_or_trades_are_nan_not_inf():
    eq = pd.Series([1000.0, 1010.0], index=[0, DAY_NS])
    winners = pd.DataFrame({"net_pnl": [1.0, 2.0], "return_pct": [0.01, 0.02], "notional": [1.0, 1.0]})
    m = performance(eq, trades=winners)
    assert m["win_rate"] == 1.0 and math.isnan(m["profit_factor"]) and math.isnan(m["avg_loss"])
    empty = trades(np.empty(0, dtype=FILL_DTYPE))
    m = performance(eq, trades=empty)
    assert m["n_trades"] == 0.0 and m["turnover"] == 0.0
    for key in ("win_rate", "profit_factor", "expectancy", "avg_trade_return", "avg_win", "avg_loss"):
        assert math.isnan(m[key]), key


def test_exposure_is_time_weighted():
    eq = pd.Series([100.0, 101.0, 102.0, 101.0, 103.0], index=[0, 10, 20, 30, 40])
    # position 1 on [5, 15), 0 on [15, 25), -2 on [25, 40]: exposed 10 + 15 = 25 of 40
    pos = pd.Series([1.0, 0.0, -2.0], index=[5, 15, 25])
    assert performance(eq, positions=pos)["exposure"] == 25 / 40
    # positions before the start count from the start: long from -100 to 15 -> 15 of 40
    pos = pd.Series([3.0, 0.0], index=[-100, 15])
    assert performance(eq, positions=pos)["exposure"] == 15 / 40


def test_exposure_from_the_engine_style_equity_samples():
    f = np.array([(10, 1, 1, 10.0, 1.0, 0.0), (30, 2, -1, 11.0, 1.0, 0.0)], dtype=FILL_DTYPE)
    curve = equity_curve(f, [0, 10, 20, 30, 40], [10.0] * 5, 100.0)
    m = performance(curve["equity"], trades=trades(f), positions=curve["position"], periods_per_year=1)
    # long on [10, 30) of [0, 40]
    assert m["exposure"] == 0.5
    assert m["n_trades"] == 1.0 and m["expectancy"] == 1.0


# ---------------------------------------------------------------- edge cases
def test_single_sample_is_nan_not_an_exception():
    m = performance(
        pd.Series([100.0], index=[5]), trades=hand_trades(), positions=pd.Series([1.0], index=[5])
    )
    assert m["total_return"] == 0.0 and m["max_drawdown"] == 0.0 and m["max_drawdown_duration_ns"] == 0.0
    for key in (
        "periods_per_year",
        "annualized_return",
        "cagr",
        "volatility",
        "sharpe",
        "sortino",
        "calmar",
        "exposure",
        "turnover",
    ):
        assert math.isnan(m[key]), key
    assert m["n_trades"] == 5.0  # trade statistics do not need time


def test_flat_equity_has_no_volatility_and_no_ratios():
    m = performance(daily([100.0] * 10))
    assert m["total_return"] == 0.0 and m["max_drawdown"] == 0.0 and m["max_drawdown_duration_ns"] == 0.0
    for key in ("volatility", "sharpe", "sortino", "calmar"):
        assert math.isnan(m[key]), key


def test_constant_growth_is_zero_volatility_despite_rounding():
    # r = 1% every day: the computed returns differ in the last bits only
    eq = daily(list(100.0 * 1.01 ** np.arange(30)))
    m = performance(eq)
    assert math.isnan(m["volatility"]) and math.isnan(m["sharpe"])
    assert math.isnan(m["sortino"])  # no period below the target
    # every calendar day (weekends too) -> 365.25 periods a year: 1.01 ** 365.25 - 1
    assert m["periods_per_year"] == 365.25
    assert m["annualized_return"] == R(1.01**365.25 - 1, rel=1e-9)


def test_wiped_out_account():
    eq = daily([100.0, 50.0, 0.0])
    m = performance(eq)
    assert m["total_return"] == -1.0 and m["cagr"] == -1.0 and m["annualized_return"] == -1.0
    assert m["max_drawdown_pct"] == 1.0
    eq = daily([100.0, 0.0, 50.0])  # a return from 0 is undefined
    m = performance(eq)
    assert math.isnan(m["sharpe"]) and math.isnan(m["volatility"])


@pytest.mark.parametrize(
    ("series", "kwargs", "message"),
    [
        (pd.Series([], dtype=float), {}, "no samples"),
        (pd.Series([1.0, np.nan], index=[0, 1]), {}, r"equity\[1\] = nan"),
        (pd.Series([1.0, 2.0, 3.0], index=[0, 2, 2]), {}, r"equity.index\[2\] = 2 is not after"),
        (pd.Series([1.0, 2.0], index=[0.5, 1.5]), {}, "equity.index must be int64 ns"),
        (pd.Series([1.0, 2.0], index=[0, 1]), {"periods_per_year": 0}, "periods_per_year = 0"),
        (pd.Series([1.0, 2.0], index=[0, 1]), {"risk_free": -1.0}, "risk_free"),
        (
            pd.Series([1.0, 2.0], index=[0, 1]),
            {"trades": pd.DataFrame({"pnl": [1.0]})},
            "no column 'net_pnl'",
        ),
        (
            pd.Series([1.0, 2.0], index=[0, 1]),
            {"positions": pd.Series([1.0, 0.0], index=[5, 4])},
            r"positions.index\[1\]",
        ),
    ],
)
def test_bad_input_names_the_field(series, kwargs, message):
    with pytest.raises(ValueError, match=message):
        performance(series, **kwargs)


def test_timezone_aware_index_is_converted_to_utc():
    idx = pd.date_range("2024-01-01", periods=3, freq="D", tz="America/New_York")
    m = performance(pd.Series([1.0, 2.0, 4.0], index=idx))
    assert m["cagr"] == R(4.0 ** (365.25 / 2) - 1, rel=1e-12)


# ---------------------------------------------------------------- annualization rule
@pytest.mark.parametrize(
    ("index", "expected"),
    [
        (pd.bdate_range("2024-01-01", periods=60), 252.0),  # weekdays
        (pd.date_range("2024-01-01", periods=60, freq="D"), 365.25),  # every day (crypto)
        (pd.bdate_range("2024-01-01", periods=60, freq="2B"), 126.0),  # every other weekday... median 2 days
        (pd.date_range("2024-01-01", periods=20, freq="7D"), 52.0),
        (pd.date_range("2024-01-01 09:30", periods=100, freq="min"), 365.25 * 24 * 60),
        (pd.date_range("2024-01-01", periods=100, freq="250ms"), 365.25 * 86_400 * 4),
    ],
)
def test_periods_per_year_inference(index, expected):
    ts = index.as_unit("ns").asi8
    assert infer_periods_per_year(ts) == R(expected, rel=1e-12)
    assert performance(pd.Series(np.linspace(1, 2, len(ts)), index=index))["periods_per_year"] == R(expected)


@pytest.mark.parametrize(
    ("freq", "expected"),
    [("ME", 12.0), ("MS", 12.0), ("QE", 4.0), ("YE", 1.0), ("W-FRI", 52.0), ("14D", 365.25 / 14)],
)
def test_calendar_bars_get_their_usual_counts(freq, expected):
    idx = pd.date_range("2019-01-01", periods=40, freq=freq)
    assert infer_periods_per_year(idx.as_unit("ns").asi8) == R(expected, rel=1e-12)


# ---------------------------------------------------------------- properties
def naive_duration(values: np.ndarray, ts: np.ndarray) -> float:
    """From every running high, the time to the next sample back at or above it (or to the end)."""
    longest = 0
    for i in range(len(values)):
        if values[i] < values[: i + 1].max():
            continue  # not a high
        j = i + 1
        while j < len(values) and values[j] < values[i]:
            j += 1
        if j > i + 1:  # a spell below this high
            longest = max(longest, int(ts[min(j, len(values) - 1)] - ts[i]))
    return float(longest)


def naive_metrics(values: np.ndarray, ppy: float) -> dict[str, float]:
    """Straightforward pandas / brute-force versions of the same definitions."""
    s = pd.Series(values)
    r = s.pct_change().dropna()
    with np.errstate(divide="ignore", invalid="ignore"):  # compared only where ours is defined
        out = {"sharpe": r.mean() / r.std() * math.sqrt(ppy), "vol": r.std() * math.sqrt(ppy)}
        out["sortino"] = r.mean() / math.sqrt((r.clip(upper=0) ** 2).mean()) * math.sqrt(ppy)
    best_abs = best_pct = 0.0
    for i in range(len(values)):
        for j in range(i, len(values)):
            best_abs = max(best_abs, values[i] - values[j])
            best_pct = max(best_pct, (values[i] - values[j]) / values[i])
    out["dd"], out["dd_pct"] = best_abs, best_pct
    return out


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.floats(1.0, 1e6, allow_nan=False), min_size=1, max_size=40),
    gaps=st.lists(st.integers(1, 10**12), min_size=40, max_size=40),
    ppy=st.one_of(st.none(), st.floats(0.5, 1e6)),
    scale=st.floats(0.01, 100.0),
)
def test_metrics_agree_with_a_naive_implementation_and_never_return_inf(values, gaps, ppy, scale):
    ts = np.cumsum(gaps[: len(values)])
    eq = pd.Series(values, index=ts)
    m = performance(eq, periods_per_year=ppy)
    assert all(not math.isinf(v) for v in m.values()), m
    p = m["periods_per_year"]
    ref = naive_metrics(np.array(values), p)
    assert m["max_drawdown"] == R(ref["dd"], rel=1e-12, abs=1e-9)
    assert m["max_drawdown_pct"] == R(ref["dd_pct"], rel=1e-12, abs=1e-12)
    assert 0.0 <= m["max_drawdown_pct"] < 1.0
    assert m["max_drawdown_duration_ns"] == naive_duration(np.array(values), ts)
    if not math.isnan(m["sharpe"]):
        assert m["sharpe"] == R(ref["sharpe"], rel=1e-9)
        assert m["volatility"] == R(ref["vol"], rel=1e-9)
    if not math.isnan(m["sortino"]):
        assert m["sortino"] == R(ref["sortino"], rel=1e-9)
    # scale invariance: a bigger account has the same returns and ratios
    m2 = performance(eq * scale, periods_per_year=ppy)
    for key in ("total_return", "sharpe", "sortino", "max_drawdown_pct", "cagr"):
        if math.isnan(m[key]):
            continue
        assert m2[key] == R(m[key], rel=1e-9, abs=1e-12), key


# ---------------------------------------------------------------- legacy helpers still work
def test_summarize_and_max_drawdown_unchanged():
    assert max_drawdown(np.array([100.0, 120.0, 90.0, 130.0, 125.0])) == (30.0, 0.25)
    samples = pd.DataFrame({"ts_ns": [1, 2, 2], "symbol": ["a", "a", "b"], "equity": [100.0, 90.0, 95.0]})
    m = summarize(samples, 100.0, 2)
    # totals: ts 1: 100 + 100, ts 2: 90 + 95 = 185 -> pnl -15, drawdown 15 of 200
    assert (m["final_pnl"], m["max_drawdown"], m["max_drawdown_pct"]) == (-15.0, 15.0, 0.075)


# ---------------------------------------------------------------- against backtesting.py
def test_cross_check_with_backtesting_py():
    """backtesting.py 0.6 on a fixed price series: same equity, trades, drawdown, CAGR.

    Conventions that differ (so compared through their own definitions):
    its Sharpe is (annualized geometric return - rf) / its annualized
    volatility; its Sortino puts the annualized geometric return over the
    same downside deviation; its Calmar uses the annualized return, not CAGR.
    """
    bt_mod = pytest.importorskip("backtesting")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # it uses pandas APIs deprecated in pandas 3

        class Cross(bt_mod.Strategy):
            def init(self):
                self.fast = self.I(lambda x: pd.Series(x).rolling(5).mean(), self.data.Close)
                self.slow = self.I(lambda x: pd.Series(x).rolling(20).mean(), self.data.Close)

            def next(self):
                if self.fast[-1] > self.slow[-1] and not self.position:
                    self.buy(size=10)
                elif self.fast[-1] < self.slow[-1] and self.position:
                    self.position.close()

        rng = np.random.default_rng(7)
        n = 300
        idx = pd.bdate_range("2020-01-01", periods=n)
        close = 100 * np.exp(np.cumsum(rng.normal(0.0003, 0.015, n)))
        open_ = np.r_[close[0], close[:-1]] * (1 + rng.normal(0, 0.002, n))
        df = pd.DataFrame(
            {
                "Open": open_,
                "High": np.maximum(open_, close) * 1.003,
                "Low": np.minimum(open_, close) * 0.997,
                "Close": close,
                "Volume": 1000.0,
            },
            index=idx,
        )
        stats = bt_mod.Backtest(df, Cross, cash=10_000, commission=0.001, finalize_trades=True).run()
    theirs = stats["_trades"]
    assert len(theirs) >= 5
    rows = []
    for t in theirs.itertuples():
        side, size = int(np.sign(t.Size)), float(abs(t.Size))
        rows.append((t.EntryTime.value, side, t.EntryPrice, size, 0.001 * size * t.EntryPrice))
        rows.append((t.ExitTime.value, -side, t.ExitPrice, size, 0.001 * size * t.ExitPrice))
    rows.sort(key=lambda r: r[0])
    fills = np.array([(ts, i, s, p, q, f) for i, (ts, s, p, q, f) in enumerate(rows)], dtype=FILL_DTYPE)
    marks_ts = idx.as_unit("ns").asi8

    # the same equity curve (fills at the bar's open, marked at its close) and the same trades
    curve = equity_curve(fills, marks_ts, close, 10_000.0)
    np.testing.assert_allclose(
        curve["equity"].to_numpy(), stats["_equity_curve"]["Equity"].to_numpy(), rtol=1e-13
    )
    ours = trades(fills, marks_ts, close)
    np.testing.assert_allclose(ours["net_pnl"], theirs["PnL"], rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(ours["fees"], theirs["Commission"], rtol=1e-12)
    np.testing.assert_allclose(ours["return_pct"], theirs["ReturnPct"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(ours["entry_price"], theirs["EntryPrice"], rtol=1e-15)

    m = performance(stats["_equity_curve"]["Equity"], trades=ours)
    assert m["periods_per_year"] == 252.0
    assert m["total_return"] * 100 == R(stats["Return [%]"], rel=1e-12)
    assert m["annualized_return"] * 100 == R(stats["Return (Ann.) [%]"], rel=1e-9)
    assert m["cagr"] * 100 == R(stats["CAGR [%]"], rel=1e-9)
    assert -m["max_drawdown_pct"] * 100 == R(stats["Max. Drawdown [%]"], rel=1e-12)
    assert pd.Timedelta(int(m["max_drawdown_duration_ns"]), "ns") == stats["Max. Drawdown Duration"]
    assert m["n_trades"] == stats["# Trades"]
    assert m["win_rate"] * 100 == R(stats["Win Rate [%]"], rel=1e-12)
    assert m["avg_trade_return"] * 100 == R(stats["Expectancy [%]"], rel=1e-12)  # mean ReturnPct
    # the downside deviation is the same: ours = mean(r) * sqrt(252) / sortino,
    # theirs = annualized return / (Sortino * sqrt(252))
    r = np.diff(curve["equity"].to_numpy()) / curve["equity"].to_numpy()[:-1]
    dd_ours = r.mean() * math.sqrt(252) / m["sortino"]
    dd_theirs = stats["Return (Ann.) [%]"] / 100 / (stats["Sortino Ratio"] * math.sqrt(252))
    assert dd_ours == R(dd_theirs, rel=1e-9)
    assert stats["Calmar Ratio"] == R(m["annualized_return"] / m["max_drawdown_pct"], rel=1e-9)
    # Sharpe: same sign, same ballpark, different convention (see the docstring)
    assert np.sign(m["sharpe"]) == np.sign(stats["Sharpe Ratio"])
    assert m["sharpe"] == R(stats["Sharpe Ratio"], rel=0.05)


def test_run_metrics_portfolio_equals_the_pandas_definition():
    rng = np.random.default_rng(3)
    equity = {}
    for s, n in (("B", 300), ("A", 200)):
        e = np.zeros(n, EQUITY_DTYPE)
        e["ts"] = np.sort(rng.choice(10**6, n, replace=False)) * 10**6
        e["equity"] = 1000.0 + rng.normal(0, 5, n).cumsum()
        e["position"] = rng.integers(-3, 4, n)
        e["price"] = 10.0
        equity[s] = e
    fills = {s: np.zeros(0, FILL_DTYPE) for s in equity}
    m, _ = run_metrics(equity, fills, 1000.0)
    samples = pd.DataFrame(
        [(int(t), s, float(v)) for s, e in equity.items() for t, v in zip(e["ts"], e["equity"], strict=True)],
        columns=["ts_ns", "symbol", "equity"],
    )
    total = portfolio_equity(samples, 1000.0)
    assert m["final_equity"] == float(total.iloc[-1])
    assert m["total_return"] == float(total.iloc[-1] / total.iloc[0] - 1)


# ---------------------------------------------------------------- streaming (bounded memory)
def _run_data(seed: int, n: int, k: int) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    equity, fills = {}, {}
    for j in range(k):
        m = n + int(rng.integers(0, n // 2 + 1))
        e = np.zeros(m, EQUITY_DTYPE)
        e["ts"] = np.cumsum(rng.integers(1, 3, m)) * 10**9  # symbols share some sample times
        e["equity"] = 1e6 + np.cumsum(rng.normal(0, 100, m))
        e["position"] = rng.integers(-2, 3, m)
        e["price"] = np.where(rng.random(m) < 0.05, np.nan, 100 + np.cumsum(rng.normal(0, 0.01, m)))
        nf = 1 + m // 20
        f = np.zeros(nf, FILL_DTYPE)
        f["ts"] = np.sort(rng.choice(e["ts"], nf))
        f["order_id"] = np.arange(1, nf + 1)
        f["side"] = rng.choice([-1, 1], nf)
        f["price"] = 100 + rng.normal(0, 1, nf)
        f["qty"] = rng.integers(1, 4, nf)
        equity[f"S{k - j}"], fills[f"S{k - j}"] = e, f  # keys not in sorted order
    return equity, fills


def _feed_in_pieces(equity: dict, fills: dict, cuts: list[int]):
    acc = RunMetrics(list(fills), 1e6)
    order = sorted(equity)
    rows = np.concatenate([equity[s] for s in order])
    sym = np.repeat(np.arange(len(order)), [len(equity[s]) for s in order])
    at = np.lexsort((sym, rows["ts"]))
    bounds = sorted({0, len(at), *(c % (len(at) + 1) for c in cuts)})
    given = dict.fromkeys(order, 0)  # fills given so far per symbol
    for a, b in itertools.pairwise(bounds):
        sl = at[a:b]
        for s in order:  # each symbol's fills up to the piece's last time, before the piece
            upto = int(np.searchsorted(fills[s]["ts"], rows["ts"][sl][-1], side="right"))
            acc.add_fills(s, fills[s][given[s] : upto])
            given[s] = max(given[s], upto)
        acc.add(rows["ts"][sl], sym[sl], rows["equity"][sl], rows["position"][sl], rows["price"][sl])
    for s in order:
        acc.add_fills(s, fills[s][given[s] :])
    return acc.result()


def _same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key, value in a.items():
        assert value == b[key] or (math.isnan(value) and math.isnan(b[key])), key


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    n=st.integers(1, 300),
    k=st.integers(1, 3),
    cuts=st.lists(st.integers(0, 10**6), max_size=12),
)
def test_run_metrics_do_not_depend_on_how_the_samples_were_cut(seed, n, k, cuts):
    equity, fills = _run_data(seed, n, k)
    whole, whole_trades = run_metrics(equity, fills, 1e6)
    pieces, piece_trades = _feed_in_pieces(equity, fills, cuts)
    _same(whole, pieces)
    pd.testing.assert_frame_equal(whole_trades, piece_trades)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(2, 400), block=st.integers(2, 50))
def test_blocks_merge_to_the_whole_array_statistics(seed, n, block):
    equity, fills = _run_data(seed, n, 2)
    one, _ = metrics.run_metrics(equity, fills, 1e6, periods_per_year=252.0)
    saved, metrics.BLOCK = metrics.BLOCK, block  # many blocks: partial sums merged
    try:
        many, _ = metrics.run_metrics(equity, fills, 1e6, periods_per_year=252.0)
    finally:
        metrics.BLOCK = saved
    exact = ("max_drawdown", "max_drawdown_pct", "max_drawdown_duration_ns", "exposure", "total_return")
    for key in one:
        a, b = one[key], many[key]
        if math.isnan(a):
            assert math.isnan(b), key
        elif key in exact or key.startswith(("n_", "final", "win", "avg", "expectancy", "profit")):
            assert a == b, key
        else:
            assert b == R(a, rel=1e-9, abs=1e-12), key


def test_marks_in_pieces_give_the_trades_of_all_marks():
    equity, fills = _run_data(7, 500, 1)
    (e,), (f,) = equity.values(), fills.values()
    rt = RoundTrips(f)
    for a in range(0, len(e), 37):
        rt.mark(e["ts"][a : a + 37], e["price"][a : a + 37])
    pd.testing.assert_frame_equal(rt.frame(), trades(f, e["ts"], e["price"]))
    with pytest.raises(ValueError, match=r"marks_ts\[\d+\] = \d+ goes backwards"):
        rt.mark(e["ts"][:1], e["price"][:1])


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(1, 300), cuts=st.lists(st.integers(0, 10**6), max_size=10))
def test_fills_and_marks_in_pieces_settled_along_the_way_give_the_trades_of_all(seed, n, cuts):
    """Fills and marks given in time pieces (a piece's fills before its
    marks), the settled trades taken after every piece: together with the
    frame at the end they are the trades of everything at once, and what is
    held is only the trades not settled."""

    equity, fills = _run_data(seed, n, 1)
    (e,), (f,) = equity.values(), fills.values()
    times = np.unique(np.concatenate((e["ts"], f["ts"])))
    bounds = sorted({int(times[c % len(times)]) for c in cuts} | {int(times[-1])})
    rt, parts, lo = RoundTrips(), [], None
    for hi in bounds:
        fin = (f["ts"] <= hi) if lo is None else (f["ts"] > lo) & (f["ts"] <= hi)
        ein = (e["ts"] <= hi) if lo is None else (e["ts"] > lo) & (e["ts"] <= hi)
        rt.add_fills(f[fin])
        rt.mark(e["ts"][ein], e["price"][ein])
        part = rt.settled()
        assert not part["open"].any()
        parts.append(part)
        lo = hi
    parts.append(rt.frame())
    want = trades(f, e["ts"], e["price"])
    pd.testing.assert_frame_equal(pd.concat(parts), want)
    assert len(parts[-1]) <= 1  # marked to the end: at most the trade the last fill left open


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    n=st.integers(1, 300),
    k=st.integers(1, 3),
    block=st.integers(1, 8),
    cuts=st.lists(st.integers(0, 10**6), max_size=12),
)
def test_trade_statistics_over_many_blocks_do_not_depend_on_the_pieces(seed, n, k, block, cuts):
    """With blocks of a few trades, the trade statistics from fills and
    samples in pieces (the sink's way) equal those of everything at once
    and those of the trades frame, and are the plain ones up to rounding."""

    saved = metrics.TRADE_BLOCK
    metrics.TRADE_BLOCK = block
    try:
        equity, fills = _run_data(seed, n, k)
        whole, whole_trades = metrics.run_metrics(equity, fills, 1e6)
        pieces, _ = _feed_in_pieces(equity, fills, cuts)
        of_frame = metrics.TradeStats.of(whole_trades).result()
    finally:
        metrics.TRADE_BLOCK = saved
    _same(whole, pieces)
    _same({k: whole[k] for k in of_frame}, of_frame)
    for s in sorted(fills):  # each symbol's trades, marked at its samples, once
        mine = whole_trades[whole_trades["symbol"] == s].drop(columns="symbol").reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, trades(fills[s], equity[s]["ts"], equity[s]["price"]))
    closed = whole_trades[~whole_trades["open"]]
    net = closed["net_pnl"].to_numpy()
    assert whole["n_trades"] == len(closed)
    if len(closed):
        assert whole["expectancy"] == pytest.approx(net.mean(), rel=1e-9, abs=1e-9)
        assert whole["avg_trade_return"] == pytest.approx(closed["return_pct"].mean(), rel=1e-9, abs=1e-12)


def test_fills_after_a_mark_of_their_time_or_going_backwards_are_refused():
    f = np.zeros(3, FILL_DTYPE)
    f["ts"], f["side"], f["price"], f["qty"] = [1, 2, 5], [1, -1, 1], 10.0, 1.0
    rt = RoundTrips(f[:2])
    with pytest.raises(ValueError, match=r"fills.ts\[2\] = 1 goes backwards \(previous 2\)"):
        rt.add_fills(f[:1])
    with pytest.raises(ValueError, match=r"fills.price\[3\] = -1.0 must be finite and > 0"):
        bad = f[2:].copy()
        bad["price"] = -1.0
        rt.add_fills(np.concatenate((f[2:], bad)))
    rt.mark(np.array([5]), np.array([11.0]))
    with pytest.raises(ValueError, match=r"fills.ts\[2\] = 5 comes after a mark at 5"):
        rt.add_fills(f[2:])


def test_performance_stream_errors_name_the_sample_in_the_whole_series():
    s = PerformanceStream()
    s.add(np.array([1, 2, 3]), np.array([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match=r"equity\[4\] = nan must be finite"):
        s.add(np.array([4, 5]), np.array([1.0, np.nan]))
    s = PerformanceStream()
    s.add(np.array([1, 2, 3]), np.array([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match=r"equity.index\[3\] = 3 is not after the previous 3"):
        s.add(np.array([3]), np.array([1.0]))
    with pytest.raises(ValueError, match="no samples"):
        PerformanceStream().result()
