"""``ticktape.backtest(..., depth=)``: L2 depth fed to the engine in event time."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

import ticktape
from ticktape import testing
from ticktape.backtest.run import depth_levels
from ticktape.data import synth
from ticktape.data.synth import RandomWalkConfig, generate_walk
from ticktape.errors import DataError, SpecError
from ticktape.model.spec import RunSpec
from ticktape.strategy import Strategy
from ticktape.testing import book_events, levels

S = 1_000_000_000
ENGINE = {"tick_size": 0.01, "lot_size": 1.0, "initial_cash": 1e6}


def quotes(n: int = 10) -> np.ndarray:
    """One quote a second from 1 s, 100.00 / 100.01, one lot displayed each side."""
    return testing.quotes(n, t0=S)


@dataclass(frozen=True)
class NoConfig:
    pass


class Targets(Strategy):
    """Target positions at given times (seconds), e.g. {3: 4.0}: batch-size independent."""

    name = "targets_at"
    Config = NoConfig
    at: dict[float, float]  # set by targets()

    def on_batch(self, batch, features, state):
        t = np.full(len(batch), np.nan)
        for sec, target in self.at.items():
            t[batch["ts"] == int(sec * S)] = target
        return t, state


def targets(at: dict[float, float]) -> Targets:
    s = Targets(NoConfig())
    s.at = at
    return s


BOOK = levels(
    (0.5, -1, 100.01, 2.0),
    (0.5, -1, 100.02, 3.0),
    (0.5, -1, 100.05, 10.0),
    (0.5, 1, 100.00, 5.0),
)


def fills(result) -> list[tuple[float, float, float]]:
    f = result.fills
    return list(
        zip(
            (f["ts"].astype("int64") // S).tolist(),
            f["price"].round(2).tolist(),
            f["qty"].tolist(),
            strict=True,
        )
    )


def test_a_market_order_walks_the_depth_and_never_takes_a_lot_twice():
    # decided at 3 s, released at the next tick (4 s): 2 @ 100.01 then 2 @ 100.02;
    # more at 6 s (released at 7 s): 100.01 is spent until a diff sets it again,
    # so 1 @ 100.02 (what is left of it) and 3 @ 100.05
    r = ticktape.backtest(quotes(), targets({3: 4.0, 6: 8.0}), depth=BOOK, **ENGINE)
    assert fills(r) == [(4, 100.01, 2.0), (4, 100.02, 2.0), (7, 100.02, 1.0), (7, 100.05, 3.0)]
    # with L1 only, the displayed lot at the ask is all there is per tick
    l1 = ticktape.backtest(quotes(), targets({3: 4.0, 6: 8.0}), **ENGINE)
    assert {p for _, p, _ in fills(l1)} == {100.01}


def test_a_diff_applies_with_the_first_tick_at_or_after_its_time_never_before():
    fresh = levels((7.0, -1, 100.01, 50.0))  # the level is set again at 7 s exactly
    r = ticktape.backtest(quotes(), targets({3: 4.0, 6: 8.0}), depth=np.concatenate([BOOK, fresh]), **ENGINE)
    assert fills(r)[2:] == [(7, 100.01, 4.0)]
    later = levels((7.5, -1, 100.01, 50.0))  # after the 7 s tick: not seen by its matching
    r = ticktape.backtest(quotes(), targets({3: 4.0, 6: 8.0}), depth=np.concatenate([BOOK, later]), **ENGINE)
    assert fills(r)[2:] == [(7, 100.02, 1.0), (7, 100.05, 3.0)]


def _synthetic(n: int = 6_000) -> tuple[np.ndarray, np.ndarray]:
    ticks = np.concatenate(list(generate_walk(RandomWalkConfig(symbol="X", n_ticks=n, seed=3))))
    return ticks, synth.depth_diffs(ticks, levels=5, seed=1, mean_size=3.0)


@pytest.mark.parametrize(
    "strategy, params", [("ma_crossover", {"fast": 10, "slow": 40, "size": 20.0}), ("market_maker", {})]
)
def test_results_do_not_depend_on_the_batch_size(strategy, params):
    ticks, events = _synthetic()
    runs = [
        ticktape.backtest(ticks, strategy, params, depth=events, batch_size=b, **ENGINE) for b in (1, 7, 4096)
    ]
    assert len(runs[0].fills) > 10
    for r in runs[1:]:
        pd.testing.assert_frame_equal(r.fills, runs[0].fills)
        pd.testing.assert_frame_equal(r.orders, runs[0].orders)
        assert r.metrics == pytest.approx(runs[0].metrics, nan_ok=True)


def test_depth_from_book_events_with_a_clear_and_from_a_frame():
    ev = book_events(
        (1, 10, 1, 10.0, 5.0),
        (1, 10, -1, 10.1, 6.0),
        (2, 10, 1, 9.9, 0.0),
        (3, 11, 0, 0.0, 0.0),
        (3, 10, 1, 9.8, 7.0),
    )
    lv = depth_levels(ev)
    # the clear at 3 removes what was shown then (10.0 bid, 10.1 ask), before the snapshot's level
    assert lv.tolist() == [
        (1, 1, 10.0, 5.0),
        (1, -1, 10.1, 6.0),
        (2, 1, 9.9, 0.0),
        (3, 1, 10.0, 0.0),
        (3, -1, 10.1, 0.0),
        (3, 1, 9.8, 7.0),
    ]
    frame = pd.DataFrame(
        {
            "ts": pd.to_datetime([1, 2], unit="s", utc=True),
            "side": ["bid", "ask"],
            "price": [1.0, 2.0],
            "size": [3, 0],
        }
    )
    assert depth_levels(frame).tolist() == [(S, 1, 1.0, 3.0), (2 * S, -1, 2.0, 0.0)]


@pytest.mark.parametrize(
    "depth, message",
    [
        (levels((1, 1, 100.0, 1.0), (0.5, 1, 100.0, 1.0)), r"depth: row 1: ts \d+ goes back"),
        (levels((1, 1, 100.0, -1.0)), r"depth: row 0: qty = -1.0 must be finite and >= 0"),
        (levels((1, 1, np.nan, 1.0)), r"depth: row 0: price = nan must be finite and > 0"),
        (
            pd.DataFrame({"ts": [1, 2], "side": ["bid", "up"], "price": [1.0, 1.0], "qty": [1, 1]}),
            r"depth: row 1: side = 'up' must be 1/bid/buy or -1/ask/sell",
        ),
        (pd.DataFrame({"ts": [1], "side": [1], "price": [1.0]}), r"depth: missing column 'qty'"),
        ([1, 2, 3], r"depth: depth must be a DataFrame"),
    ],
)
def test_bad_depth_is_refused_naming_the_row_and_field(depth, message):
    with pytest.raises(DataError, match=message):
        ticktape.backtest(quotes(), targets({3: 1.0}), depth=depth, **ENGINE)


def test_l3_events_and_bars_are_refused():
    ev = book_events((0, 1, 0, 0.0, 0.0))
    with pytest.raises(DataError, match=r"kinds \[1\] are order-level \(L3\)"):
        depth_levels(ev)
    bars = pd.DataFrame(
        {"open": [1.0, 2.0], "high": [1.0, 2.0], "low": [1.0, 2.0], "close": [1.0, 2.0]},
        index=pd.to_datetime(["2024-01-01", "2024-01-02"]),
    )
    with pytest.raises(DataError, match="depth: L2 depth needs tick data"):
        ticktape.backtest(bars, targets({}), depth=BOOK)


@pytest.mark.shared_data
def test_a_binance_capture_backtests_with_its_own_depth(shared_data):
    capture = shared_data("ticks/binance_spot_btcusdt_20240808_ws.gz")
    r = ticktape.backtest(
        capture,
        "ma_crossover",
        {"fast": 20, "slow": 100, "size": 0.01},
        format="binance-ws",
        tick_size=0.01,
        lot_size=1e-5,
    )
    l1 = ticktape.backtest(
        capture,
        "ma_crossover",
        {"fast": 20, "slow": 100, "size": 0.01},
        format="binance-ws",
        depth=levels(),
        tick_size=0.01,
        lot_size=1e-5,
    )
    assert r.accepted > 30_000 and len(r.fills) > 100 and r.extra["import_rejects"] == {}
    # the capture's depth lags its quotes: stale levels through the quote were hidden, and said so
    assert r.extra["engine_counts"]["depth_hidden_ticks"] > 1000
    assert l1.extra["engine_counts"]["depth_hidden_ticks"] == 0
    assert len(r.fills) != len(l1.fills) or not r.fills.equals(l1.fills)  # the depth changed the fills


def test_a_run_spec_with_depth_needs_the_store_source():
    with pytest.raises(SpecError, match="depth: only the store source carries depth"):
        RunSpec(
            strategy="ma_crossover", symbols=("X",), depth=True, source={"kind": "generator", "n_ticks": 10}
        )
    with pytest.raises(SpecError, match="depth: must be true or false"):
        RunSpec(strategy="ma_crossover", symbols=("X",), depth="yes")
    assert RunSpec.from_json(RunSpec(strategy="ma_crossover", symbols=("X",), depth=True).to_json()).depth
