"""A stored run's report sections, read from the real store: every section of
a run with trades, its numbers equal to the run's own (the final equity, the
trades, the compounded returns), and runs without fills or without anything."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ticktape import store
from ticktape.compute import labels
from ticktape.compute.accounting import trades
from ticktape.compute.metrics import portfolio_equity
from ticktape.errors import SpecError
from ticktape.report import run as run_report
from ticktape.report.build import build

pytestmark = pytest.mark.timeout(300)


def by_title(sections):
    return {s.title: s for s in sections}


async def test_a_run_with_trades_has_every_section_and_its_own_numbers(stored, conn):
    res = stored["sweep_result"]
    run_id = next(rid for s, rid in zip(res.sets, stored["sweep_runs"], strict=True) if s.index in res.detail)
    title, sections = await build(conn, run_id)
    assert title.startswith(f"Run {run_id[:8]}: sma_crossover on {stored['symbol']}")
    got = by_title(sections)
    assert list(got) == [
        "Run",
        "Metrics",
        "Equity and drawdown",
        "Hourly returns",  # (3 days of ticks: by hour)
        "Rolling Sharpe ratio",
        "Trades",
        "Exposure",
        "Parameters",
        "Data coverage",
    ]
    for name in ("Equity and drawdown", "Hourly returns", "Rolling Sharpe ratio", "Trades", "Exposure"):
        assert len(got[name].figures) == 1, name
    metrics = (await store.run_with_metrics(conn, run_id))["metrics"]
    shown = got["Metrics"].tables[0]
    assert list(zip(shown["metric"], shown["value"], strict=True)) == labels.report(metrics)
    assert "Sharpe ratio" in shown["metric"].tolist() and "sharpe" not in shown["metric"].tolist()
    equity = got["Equity and drawdown"].figures[0].data[0]
    assert len(equity.y) <= run_report.MAX_POINTS
    assert equity.y[-1] == metrics["final_equity"]  # the last bucket holds the run's last sample
    under = got["Equity and drawdown"].figures[0].data[1].y
    assert max(-np.asarray(under)) <= metrics["max_drawdown_pct"] * 100 + 1e-9  # (on fewer points: no deeper)
    assert isinstance(equity.x[0], pd.Timestamp) or str(equity.x[0]).startswith("20")  # dates, not ns
    assert "no trades" not in " ".join(got["Trades"].notes).lower()
    trades = got["Trades"].tables[0].set_index("")["value"]
    assert trades["closed trades"] == labels.number(metrics["n_trades"])


async def test_a_two_symbol_run_sums_its_symbols_and_compounds_to_its_total_return(stored, conn):
    run_id = stored["pair"]
    _, sections = await build(conn, run_id)
    got = by_title(sections)
    metrics = (await store.run_with_metrics(conn, run_id))["metrics"]
    curve = got["Equity and drawdown"].figures[0].data[0]
    assert curve.y[-1] == pytest.approx(metrics["final_equity"], rel=1e-12)
    cells = got["Hourly returns"].figures[0].data[0].z  # (8.7 days: by hour)
    r = np.asarray(cells, dtype=float).ravel() / 100
    start = 2 * 1_000_000.0  # (each symbol's engine starts with the initial cash)
    assert np.prod(1 + r[~np.isnan(r)]) * start == pytest.approx(metrics["final_equity"], rel=1e-9)
    positions = got["Exposure"].figures[0].data
    assert {t.name for t in positions[:2]} == set(stored["pair_results"])
    closed = sum(int((~t["open"]).sum()) for t in _trades(stored["pair_results"]))
    assert closed == metrics["n_trades"]
    coverage = got["Data coverage"].tables[1]
    assert coverage["symbol"].tolist() == sorted(stored["pair_results"])
    assert coverage["read"].tolist() == [
        labels.number(r.ticks_in) for _, r in sorted(stored["pair_results"].items())
    ]


def _trades(results):
    return [trades(r.fills) for r in results.values()]


async def test_a_run_without_fills_says_no_trades(stored, conn):
    _, sections = await build(conn, stored["no_fills"])
    got = by_title(sections)
    assert got["Trades"].notes == ("No trades: the run closed no round trip.",)
    assert not got["Trades"].figures
    assert got["Equity and drawdown"].figures  # (its equity is stored)


async def test_a_run_that_stored_nothing_has_its_facts_and_says_what_is_missing(stored, conn):
    _, sections = await build(conn, stored["empty"])
    got = by_title(sections)
    assert "This run is pending" in got["Run"].notes[0]
    assert got["Metrics"].notes == ("No metrics stored: a run stores them when it ends.",)
    assert got["Equity"].notes == ("No equity samples are stored for this run.",)
    assert not any(s.figures for s in sections)


async def test_a_sweep_set_not_kept_says_why_it_has_no_charts(stored, conn):
    res = stored["sweep_result"]
    (dropped,) = [
        rid for s, rid in zip(res.sets, stored["sweep_runs"], strict=True) if s.index not in res.detail
    ]
    _, sections = await build(conn, dropped)
    got = by_title(sections)
    assert "--keep-top" in got["Equity"].notes[0]
    assert got["Metrics"].tables  # (every set has its metrics)
    assert not any(s.figures for s in sections)


async def test_unknown_and_malformed_ids_are_one_line(conn):
    with pytest.raises(
        SpecError, match=r"^ID: no run, sweep or study 00000000-0000-0000-0000-000000000000 in this store"
    ):
        await build(conn, "00000000-0000-0000-0000-000000000000")
    with pytest.raises(SpecError, match=r"^ID: 'nope' is not a run, sweep or study id \(a UUID\)$"):
        await build(conn, "nope")


# ------------------------------------------------------------ the pure parts

samples = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 10_000), st.floats(50.0, 200.0)), min_size=1, max_size=60
)


def _last_per_bucket(rows, width):
    """What store.report.equity_on_grid returns for these samples."""
    frame = pd.DataFrame(rows, columns=["sym", "ts", "equity"]).drop_duplicates(["sym", "ts"], keep="last")
    frame["symbol"] = "S" + frame["sym"].astype(str)
    frame = frame.sort_values(["symbol", "ts"])
    last = frame.groupby(["symbol", frame["ts"] // width]).tail(1)
    return frame, {
        "symbol": last["symbol"].to_numpy(object),
        "ts": last["ts"].to_numpy(np.int64),
        "equity": last["equity"].to_numpy(),
        "position": np.ones(len(last)),
        "price": np.full(len(last), 2.0),
    }


@settings(max_examples=60, deadline=None)
@given(samples, st.sampled_from([1, 7, 100, 1_000]))
def test_the_portfolio_on_the_grid_is_the_portfolio_at_each_point(rows, width):
    frame, grid = _last_per_bucket(rows, width)
    curve = run_report.portfolio_curve(grid, width, 100.0)
    every = portfolio_equity(frame.rename(columns={"ts": "ts_ns"}), 100.0)
    assert len(curve.ts) == len(np.unique(frame["ts"] // width))
    assert np.allclose(curve.equity, every.loc[curve.ts].to_numpy(), rtol=1e-12)
    assert np.all(np.diff(curve.ts) > 0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 400 * 86_400), st.floats(0.5, 2.0)), min_size=1, max_size=80),
    st.sampled_from(["month", "day", "hour", "minute"]),
)
def test_period_returns_compound_to_the_total_return(points, period):
    ts = np.unique(np.array([p[0] for p in points], dtype=np.int64)) * 10**9
    equity = np.array([p[1] for p in points][: len(ts)]) * 100
    r = run_report.period_returns(ts, equity, 100.0, period)
    assert math.prod(1 + r.to_numpy()) == pytest.approx(equity[-1] / 100.0, rel=1e-9)
    assert r.index.is_monotonic_increasing and r.index.is_unique


@given(st.integers(0, 40 * 365 * 86_400 * 10**9))
def test_the_grid_is_the_narrowest_width_within_the_point_budget(span):
    w = run_report.grid_width(span)
    assert 86_400 * 10**9 % w == 0  # (every day and month starts on a bucket's edge)
    assert span // w < run_report.MAX_POINTS or w == run_report.WIDTHS_NS[-1]
    narrower = [v for v in run_report.WIDTHS_NS if v < w]
    assert all(span // v >= run_report.MAX_POINTS for v in narrower)
