"""The native engine's InputError at run time becomes one line naming the
parameter or setting behind it, the strategy and the tick (it was a
traceback: issue 22 item 7, found by the strategy stream)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from ticktape.backtest.run import backtest
from ticktape.errors import DataError, SpecError
from ticktape.model.batch import TICK_DTYPE
from ticktape.native import Engine
from ticktape.stages import execution_step

T0 = np.datetime64("2024-01-02T09:00:00", "ns")


def quotes(n: int = 200) -> pd.DataFrame:
    mid = 100 + np.round(np.sin(np.arange(n) / 10) * 2, 2)
    return pd.DataFrame(
        {
            "ts": T0 + np.arange(n) * np.timedelta64(100, "ms"),
            "bid": mid,
            "ask": mid + 0.01,
            "bid_size": 5.0,
            "ask_size": 5.0,
        }
    )


def pair(n: int = 400) -> pd.DataFrame:
    a = 100 + np.round(np.sin(np.arange(n) / 10) * 2 + np.arange(n) * 0.01, 2)
    b = 0.01 + 0.01 * ((np.arange(n) // 50) % 3)
    ts = T0 + np.arange(n) * np.timedelta64(1, "s")
    return pd.concat(
        [
            pd.DataFrame({"ts": ts, "symbol": "A", "bid": a, "ask": a + 0.01}),
            pd.DataFrame({"ts": ts + np.timedelta64(500, "ms"), "symbol": "B", "bid": b, "ask": b + 0.01}),
        ]
    ).sort_values("ts", kind="stable")


@pytest.mark.parametrize(
    ("data", "strategy", "params", "engine", "says"),
    [
        (
            quotes,
            "market_maker",
            {"size": 0.5},
            {"lot_size": 1.0},
            r"^params\.size or engine\.lot_size: the engine refused a decision of market_maker at the tick of "
            r"2024-01-02T09:00:00\.000Z: orders\.qty\[0\] = 0\.5 is not a whole number of lots \(lot_size 1\)$",
        ),
        (
            quotes,
            "market_maker",
            {"tick_size": 0.015},
            {"tick_size": 0.01},
            r"^params\.tick_size or engine\.tick_size: .* market_maker .*: orders\.price\[0\] = 99\.975 is not on the tick grid",
        ),
        (  # the second leg's target (size x hedge x price A / price B) past 2**53 lots
            pair,
            "pairs",
            {"symbols": ["A", "B"], "n": 20, "size": 1e15},
            {"tick_size": 0.01},
            r"^params\.size or engine\.lot_size: the engine refused a decision of pairs at the tick of "
            r"2024-01-02T09:\d\d:\d\d\.\d{3}Z: target\[\d+\] = \d+ is out of range$",
        ),
    ],
)
def test_a_refused_decision_names_the_parameter(data, strategy, params, engine, says) -> None:
    with pytest.raises(SpecError) as exc:
        backtest(data(), strategy, params, engine=engine)
    assert re.search(says, str(exc.value)), str(exc.value)


def test_refused_market_data_is_a_data_error_with_its_tick() -> None:
    ticks = np.zeros(3, TICK_DTYPE)
    ticks["ts"] = T0.astype(np.int64) + np.arange(3) * 1_000_000_000
    ticks["bid"], ticks["ask"] = [100.0, 100.005, 100.0], [100.01, 100.02, 100.01]
    ticks["last"] = np.nan
    with pytest.raises(
        DataError,
        match=r"^bid: the engine refused the market data at the tick of 2024-01-02T09:00:01\.000Z: bid\[1\] = 100\.005 is not on the tick grid",
    ):
        execution_step(Engine(tick_size=0.01), ticks, np.full(3, np.nan), eos=True)
