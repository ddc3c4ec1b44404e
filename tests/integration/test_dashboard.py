"""The dashboard renders the stored runs and one run's charts (Streamlit's
own headless app runner against the real database)."""

import asyncio
import base64
import json
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import ticktape.dashboards
from ticktape import store
from ticktape.compute.metrics import portfolio_equity
from ticktape.dashboards import queries
from ticktape.data.synth import RandomWalkConfig, generate_walk
from ticktape.model.batch import DTYPES

pytestmark = pytest.mark.timeout(120)


def _plotted(values) -> list[float]:
    """A trace's values as plotly sends them (a list, or numpy bytes in base64)."""
    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), values["dtype"]).tolist()
    return list(values)


async def _seed(dsn, symbol, run_id, with_bars):
    ticks = np.concatenate(list(generate_walk(RandomWalkConfig(symbol=symbol, n_ticks=5_000))))
    conn = await store.connect(dsn)
    try:
        await store.write_ticks(conn, symbol, ticks, 0)
        await store.create_run(
            conn,
            run_id,
            "sma_crossover",
            {"engine": {"initial_cash": 1e6}},
            {},
            [symbol],
            int(ticks["ts"][0]),
            int(ticks["ts"][-1]),
        )
        fills = np.zeros(2, DTYPES["fills"])
        fills["ts"] = ticks["ts"][[100, 2000]]
        fills["side"] = [1, -1]
        fills["price"] = ticks["ask"][[100, 2000]]
        fills["qty"] = 10
        eq = np.zeros(50, DTYPES["equity"])
        eq["ts"] = ticks["ts"][::100]
        eq["equity"] = 1e6 + np.arange(50)
        results = {"fills": fills, "equity": eq}
        if with_bars:  # the run's own bars; without them the page reads the ticks
            bars = np.zeros(3, DTYPES["bars"])
            bars["ts"] = ticks["ts"][0] // 60_000_000_000 * 60_000_000_000 + np.arange(3) * 60_000_000_000
            bars["open"] = bars["high"] = bars["low"] = bars["close"] = ticks["ask"][:3]
            results["bars"] = bars
        await store.write_result_set(conn, run_id, symbol, 0, results)
        await store.write_metrics(conn, run_id, {"final_pnl": 49.0})
        await store.update_progress(
            conn, run_id, symbol, len(ticks), None, True, hot_lag_s=0.5, sink_lag_s=0.25
        )
        await store.finish_run(conn, run_id, "complete", ticks_processed=len(ticks), fills=2)
        return ticks["ask"][:3].tolist()
    finally:
        await conn.close()


@pytest.mark.parametrize("with_bars", [False, True])
def test_monitor_shows_the_runs_bars_or_the_ticks_bars_fills_and_progress(db_url, monkeypatch, with_bars):
    symbol, run_id = f"DASH{uuid.uuid4().hex[:6]}", str(uuid.uuid4())
    first_asks = asyncio.run(_seed(db_url, symbol, run_id, with_bars))
    monkeypatch.setenv("TICKTAPE_DATABASE_URL", db_url)
    at = AppTest.from_string(
        "from ticktape.dashboards import common, monitor, nav\nnav.register()\ncommon.guarded(monitor.page)()\n",
        default_timeout=60,
    )
    at.query_params["run"] = run_id
    at.run()
    assert not at.exception, at.exception
    charts = at.get("plotly_chart")
    assert len(charts) == 1  # price + fills, position, equity, drawdown in one figure
    (candles,) = [t for t in json.loads(charts[0].proto.spec)["data"] if t["type"] == "candlestick"]
    if with_bars:  # the run's own three bars (5,000 ticks are more than a chart shows)
        assert _plotted(candles["open"]) == first_asks
    else:  # bars of the stored ticks' mids
        assert len(_plotted(candles["open"])) > 3
    assert any(m.label == "Final PnL" and m.value == "49.00" for m in at.metric)
    progress = at.dataframe[0].value  # per symbol, each stage's lag included
    assert progress["symbol"].tolist() == [symbol] and progress["processed"].tolist() == [5_000]
    assert progress[["hot path lag s", "sink lag s"]].values.tolist() == [[0.5, 0.25]]
    assert at.expander[0].label == "progress (complete)"


def test_dashboard_without_database_url_says_how_to_start(monkeypatch):
    monkeypatch.delenv("TICKTAPE_DATABASE_URL", raising=False)
    app = Path(ticktape.dashboards.__file__).parent / "app.py"
    at = AppTest.from_file(str(app), default_timeout=30)
    at.run()
    assert "ticktape dashboard" in at.error[0].value


def test_equity_chart_gets_the_last_sample_of_each_time_bucket(db_url):
    run_id, n = str(uuid.uuid4()), 10_000
    rng = np.random.default_rng(3)
    stored = {}

    async def seed():
        conn = await store.connect(db_url)
        try:
            await store.create_run(conn, run_id, "sma_crossover", {}, {}, ["A", "B"], None, None)
            for k, sym in enumerate(("A", "B")):
                eq = np.zeros(n, DTYPES["equity"])
                eq["ts"] = 1_700_000_000_000_000_000 + np.sort(rng.choice(10**9, n, replace=False)) * 1000 + k
                eq["equity"] = 5e5 + rng.normal(0, 100, n).cumsum()
                stored[sym] = eq
                await store.write_result_set(conn, run_id, sym, 0, {"equity": eq})
        finally:
            await conn.close()

    asyncio.run(seed())
    full = queries.equity(db_url, run_id, points=10**9)
    assert len(full) == 2 * n
    few = queries.equity(db_url, run_id, points=100)
    assert few["ts_ns"].is_monotonic_increasing
    for sym, eq in stored.items():
        mine = few[few["symbol"] == sym]
        assert 50 <= len(mine) <= 100
        assert set(mine["ts_ns"]) <= set(eq["ts"].tolist())  # stored samples, not averages
        assert mine["ts_ns"].iloc[-1] == eq["ts"][-1] and mine["equity"].iloc[-1] == eq["equity"][-1]
    assert portfolio_equity(few, 1e6).iloc[-1] == portfolio_equity(full, 1e6).iloc[-1]


def test_price_chart_merges_the_runs_own_bars(db_url):
    run_id, t0 = str(uuid.uuid4()), 1_700_000_100 * 10**9 // 300 * 300  # on a 5-minute boundary
    bars = np.zeros(10, DTYPES["bars"])
    bars["ts"] = t0 + np.arange(10) * 60 * 10**9  # ten 1-minute bars: two 5-minute ones
    bars["open"] = np.arange(10) + 100.0
    bars["close"] = bars["open"] + 0.5
    bars["high"] = bars["open"] + [1, 3, 1, 1, 1, 1, 1, 1, 4, 1]
    bars["low"] = bars["open"] - [1, 1, 2, 1, 1, 1, 1, 1, 1, 1]
    bars["ticks"] = 7

    async def seed():
        conn = await store.connect(db_url)
        try:
            await store.create_run(conn, run_id, "sma_crossover", {}, {}, ["A"], None, None)
            await store.write_result_set(conn, run_id, "A", 0, {"bars": bars})
        finally:
            await conn.close()

    asyncio.run(seed())
    got = queries.run_bars(db_url, run_id, "A", "5 minutes")
    assert got[["open", "high", "low", "close"]].values.tolist() == [
        [100.0, 105.0, 99.0, 104.5],
        [105.0, 112.0, 104.0, 109.5],
    ]
    assert got["bucket"].iloc[0].timestamp() * 10**9 == t0
    assert len(queries.run_bars(db_url, run_id, "A", "1 minute")) == 10
    assert queries.run_bars(db_url, run_id, "B", "1 minute").empty  # no bars: the page reads ticks


def test_equity_of_a_run_still_being_written_reads_in_one_pass(fresh_db):
    """While a run is written its rows are newer than the table's statistics,
    which then put them at one row: the planner must still not recompute the
    run's time span once per sample (that took minutes for 20k samples and
    held the dashboard of a running run)."""

    earlier, run_id, n = str(uuid.uuid4()), str(uuid.uuid4()), 10_000

    async def samples(conn, run, k):
        for sym in ("A", "B"):
            eq = np.zeros(n, DTYPES["equity"])
            eq["ts"] = 1_700_000_000_000_000_000 + np.arange(n) * 1_000_000 + k
            eq["equity"] = 1e6
            await store.write_result_set(conn, run, sym, 0, {"equity": eq})

    async def seed():
        await store.migrate(fresh_db)
        conn = await store.connect(fresh_db)
        try:
            for run in (earlier, run_id):
                await store.create_run(conn, run, "sma_crossover", {}, {}, ["A", "B"], None, None)
            await samples(conn, earlier, 0)
            await conn.execute("ANALYZE equity")  # statistics that know only the earlier run
            await samples(conn, run_id, 1)
        finally:
            await conn.close()

    asyncio.run(seed())
    t0 = time.perf_counter()
    few = queries.equity(fresh_db, run_id, points=100)
    assert len(few) == 200
    assert time.perf_counter() - t0 < 5.0  # a correctness bound (minutes before), not a benchmark
