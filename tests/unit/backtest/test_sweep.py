"""Parameter sweeps: one pass, many instances, each equal to its single run."""

from __future__ import annotations

import pytest

import ticktape
from ticktape.backtest.sweep import grid, parse_grid, sample, sweep
from ticktape.errors import SpecError
from ticktape.testing import market

TICKS = market(20_000, seed=9, symbol="S", trade_every=0)


def test_sweep_results_equal_separate_single_runs():
    sets = grid({"fast": [5, 10], "slow": [40, 80], "ma": ["sma", "ema"]})
    res = sweep(TICKS, "ma_crossover", sets, {"size": 7}, batch_size=3000, fee_bps=1.0)
    assert len(res.results) == 8
    for p, r in zip(sets, res.results, strict=True):
        single = ticktape.backtest(TICKS, "ma_crossover", {**p, "size": 7}, fee_bps=1.0)
        assert r.extra["raw"]["fills"].tobytes() == single.extra["raw"]["fills"].tobytes(), p
        assert r.metrics == single.metrics
    assert {"fast", "slow", "ma", "sharpe", "final_equity"} <= set(res.table().columns)
    top = res.top(3, "final_equity")
    assert len(top) == 3 and top["final_equity"].is_monotonic_decreasing


def test_grid_sample_and_parse():
    space = parse_grid(["fast=5,10", "slow=20:40:10"])
    assert space == {"fast": [5, 10], "slow": [20, 30, 40]}
    assert parse_grid(["ma=sma,ema", "k=1.5,2"]) == {"ma": ["sma", "ema"], "k": [1.5, 2]}
    assert len(grid(space)) == 6
    s = sample(space, 4, seed=1)
    assert len(s) == 4 and s == sample(space, 4, seed=1) and all(p in grid(space) for p in s)
    assert sample(space, 100) == grid(space)
    with pytest.raises(SpecError, match="--grid 'fast'"):
        parse_grid(["fast"])
    with pytest.raises(SpecError, match="STEP > 0"):
        parse_grid(["slow=40:20:10"])


def test_a_bad_parameter_set_is_refused_before_running():
    with pytest.raises(SpecError, match=r"parameter set 1 .*slow: must be > fast"):
        sweep(TICKS[:100], "ma_crossover", [{"fast": 5, "slow": 10}, {"fast": 10, "slow": 5}])
