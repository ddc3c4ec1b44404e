"""ticktape.backtest: bars and ticks, both decision paths, the pipeline's functions, bad input."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

import ticktape
from ticktape.backtest.run import run_symbol
from ticktape.errors import DataError, SpecError
from ticktape.model.batch import TICK_DTYPE
from ticktape.model.spec import EngineConfig, RunSpec
from ticktape.strategy import Context, Feature, Fill, Strategy, Tick, orders
from ticktape.testing import market

TICKS = market(30_000, seed=5, symbol="S", trade_every=0)


@dataclass(frozen=True)
class NoConfig:
    """No parameters."""


class BuyAtBar(Strategy):
    """Target +10 from bar 1's close, flat from bar 3's close."""

    name = "buy_at_bar"
    Config = NoConfig

    def on_batch(self, batch, features, state):
        t = np.full(len(batch), np.nan)
        t[1], t[3] = 10.0, 0.0
        return t, state


def _bars():
    return pd.DataFrame(
        {
            "Date": pd.date_range("2020-01-01", periods=5, freq="D"),
            "Open": [10.0, 11.0, 12.0, 13.0, 14.0],
            "High": [10.5, 11.5, 12.5, 13.5, 14.5],
            "Low": [9.5, 10.5, 11.5, 12.5, 13.5],
            "Close": [10.2, 11.2, 12.2, 13.2, 14.2],
        }
    )


def test_bars_a_decision_at_the_close_fills_at_the_next_open():
    r = ticktape.backtest(_bars(), BuyAtBar, initial_cash=1000.0, tick_size=0.01)
    assert r.mode == "bars"
    assert r.fills["price"].tolist() == [12.0, 14.0]  # bar 2's open, bar 4's open
    assert r.fills["ts"].dt.date.astype(str).tolist() == ["2020-01-03", "2020-01-05"]
    assert r.fills["side"].tolist() == [1, -1]
    # one equity sample per bar, at its close
    assert len(r.equity) == 5
    assert r.final_equity == pytest.approx(1000.0 + 10 * (14.0 - 12.0))
    (trade,) = r.trades.itertuples()
    assert trade.pnl == pytest.approx(20.0) and not trade.open


def test_ticks_backtest_equals_the_pipeline_stage_functions():
    spec = RunSpec(
        strategy="sma_crossover",
        symbols=("S",),
        params={"fast": 10, "slow": 60, "size": 5},
        engine=EngineConfig(latency_ns=1_000_000, fee_bps=0.5),
    )
    piped = run_symbol(spec, [TICKS[i : i + 4096] for i in range(0, len(TICKS), 4096)])
    r = ticktape.backtest(TICKS, "sma_crossover", spec.params, engine=spec.engine, batch_size=50_000)
    assert len(piped.fills) > 20
    assert r.extra["raw"]["fills"].tobytes() == piped.fills.tobytes()
    assert r.extra["raw"]["orders"].tobytes() == piped.orders.tobytes()
    assert r.extra["raw"]["equity"].tobytes() == piped.equity.tobytes()


@dataclass(frozen=True)
class CrossConfig:
    """fast/slow windows."""

    fast: int = 10
    slow: int = 60
    size: float = 5.0


class LoopCross(Strategy):
    """The SMA crossover written as a per-tick loop (the slow path)."""

    name = "loop_cross"
    Config = CrossConfig

    def features(self):
        return [Feature("f", "sma", {"n": self.config.fast}), Feature("s", "sma", {"n": self.config.slow})]

    def on_tick(self, tick: Tick, ctx: Context) -> None:
        f, s = ctx.features["f"], ctx.features["s"]
        if f > s:
            ctx.target(self.config.size)
        elif f < s:
            ctx.target(-self.config.size)

    def on_fill(self, fill: Fill, ctx: Context) -> None:
        seen = ctx.state.setdefault("fills", [])
        assert not seen or fill.ts >= seen[-1], "fills arrive in event order"
        seen.append(fill.ts)


def test_per_tick_path_equals_the_vectorized_path():
    vec = ticktape.backtest(TICKS[:8000], "sma_crossover", {"fast": 10, "slow": 60, "size": 5})
    loop = ticktape.backtest(TICKS[:8000], LoopCross, {}, batch_size=333)
    assert len(vec.fills) > 5
    assert vec.extra["raw"]["fills"].tobytes() == loop.extra["raw"]["fills"].tobytes()


class Limits(Strategy):
    """Vectorized explicit orders: a buy limit one tick under the bid every 500 ticks, cancelled 250 later."""

    name = "limits"
    Config = NoConfig

    def on_batch(self, batch, features, state):
        n = len(batch)
        start = state.get("seen", 0)
        k = np.arange(n)
        g = start + k
        new_at, cancel_at = k[g % 500 == 0], k[g % 500 == 250]
        o = orders(len(new_at) + len(cancel_at))
        m = len(new_at)
        o["i"][:m], o["order_id"][:m] = new_at, (start + new_at) // 500 + 1
        o["action"][:m], o["side"][:m], o["type"][:m] = 0, 1, 1
        o["price"][:m] = np.round(batch["bid"][new_at] - 0.01, 2)
        o["qty"][:m] = 3
        o["i"][m:], o["order_id"][m:] = cancel_at, (start + cancel_at) // 500 + 1
        o["action"][m:], o["side"][m:], o["type"][m:], o["qty"][m:] = 1, 1, 1, 3
        o.sort(order="i", kind="stable")
        state = {"seen": start + n}
        return o, state


def test_explicit_orders_from_a_vectorized_strategy_are_batch_size_independent():
    a = ticktape.backtest(TICKS, Limits, batch_size=50_000)
    b = ticktape.backtest(TICKS, Limits, batch_size=1234)
    assert len(a.orders) > 100
    assert a.extra["raw"]["orders"].tobytes() == b.extra["raw"]["orders"].tobytes()
    assert a.extra["raw"]["fills"].tobytes() == b.extra["raw"]["fills"].tobytes()


def test_bad_data_names_the_column_and_row():
    bars = _bars().astype({"Close": object})
    bars.loc[2, "Close"] = "x"
    with pytest.raises(DataError, match=r"data: row 2: column 'Close' = 'x' is not a number"):
        ticktape.backtest(bars, "sma_crossover", {"fast": 2, "slow": 3})
    bars = _bars()
    bars.loc[3, "High"] = 1.0
    with pytest.raises(DataError, match="row 3: high/low do not contain open and close"):
        ticktape.backtest(bars, "sma_crossover", {"fast": 2, "slow": 3})
    with pytest.raises(DataError, match="missing column 'close'"):
        ticktape.backtest(_bars().drop(columns="Close"), "sma_crossover", format="bars")
    bars = _bars().astype({"Date": object})
    bars.loc[1, "Date"] = "not a date"
    with pytest.raises(DataError, match="row 1: column 'Date' = 'not a date' is not a time"):
        ticktape.backtest(bars, "sma_crossover", {"fast": 2, "slow": 3})
    with pytest.raises(DataError, match="TICK_DTYPE"):
        ticktape.backtest(np.zeros(3), "sma_crossover")
    with pytest.raises(DataError, match="no such file"):
        ticktape.backtest("/nonexistent.csv", "sma_crossover")


def test_bad_spec_names_the_field():
    with pytest.raises(SpecError, match="unknown strategy 'nope'"):
        ticktape.backtest(TICKS[:10], "nope")
    with pytest.raises(SpecError, match=r"engine\.fee: unknown engine setting"):
        ticktape.backtest(TICKS[:10], "sma_crossover", fee=1)
    with pytest.raises(SpecError, match="format"):
        ticktape.backtest(TICKS[:10], "sma_crossover", format="candles")


def test_rejected_ticks_are_counted():
    bad = TICKS[:1000].copy()
    bad["bid"][5] = np.nan
    bad["ask"][5] = np.nan
    r = ticktape.backtest(bad, "sma_crossover", {"fast": 2, "slow": 5})
    assert r.ticks_in == 1000 and r.accepted == 999 and r.rejects["bad_price"] == 1


def test_tick_frame_input():
    df = pd.DataFrame(TICKS[:2000])
    df["ts"] = pd.to_datetime(df["ts"], utc=True)
    r = ticktape.backtest(df, "sma_crossover", {"fast": 5, "slow": 50})
    assert r.mode == "ticks" and r.accepted == 2000
    assert TICK_DTYPE.names[0] == "ts"
