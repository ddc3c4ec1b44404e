"""Parameter sweeps: every set's metrics equal its single run, in bounded memory, over processes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ticktape
from ticktape.backtest import sweep as sweep_module
from ticktape.backtest.sweep import (
    PROCESS_BYTES,
    SET_BYTES,
    Plan,
    grid,
    parse_bytes,
    parse_grid,
    sample,
    sweep,
)
from ticktape.errors import SpecError
from ticktape.testing import market

TICKS = market(20_000, seed=9, symbol="S", trade_every=0)


def same(a: dict, b: dict) -> bool:
    """Every metric equal, NaN equal to NaN."""
    return a.keys() == b.keys() and all(
        a[k] == b[k] or (isinstance(a[k], float) and math.isnan(a[k]) and math.isnan(b[k])) for k in a
    )


def test_every_set_equals_its_single_run_and_keep_top_reruns_are_single_runs():
    sets = grid({"fast": [5, 10], "slow": [40, 80], "ma": ["sma", "ema"]})
    res = sweep(
        TICKS, "ma_crossover", sets, {"size": 7}, batch_size=3000, fee_bps=1.0, processes=1, keep_top=2
    )
    assert [s.index for s in res.sets] == list(range(8)) and not res.invalid
    singles = {}
    for s in res.sets:
        single = ticktape.backtest(TICKS, "ma_crossover", {**s.params, "size": 7}, fee_bps=1.0)
        singles[s.index] = single
        assert same(s.metrics, single.metrics), s.params
        assert (s.fills, s.orders) == (len(single.fills), len(single.orders))
        # the coarse curve: the single run's last equity sample at or before each point
        eq = single.extra["raw"]["equity"]
        j = np.searchsorted(eq["ts"], res.curve_ts, side="right") - 1
        assert np.array_equal(
            s.curve, np.where(j >= 0, eq["equity"][np.maximum(j, 0)], np.nan), equal_nan=True
        )
    best = res.top(2)["set"].tolist()
    assert sorted(res.detail) == sorted(best)
    for i in best:
        d, single = res.detail[i], singles[i]
        for k in ("fills", "orders", "equity", "signals"):
            assert d.extra["raw"][k].tobytes() == single.extra["raw"][k].tobytes(), (i, k)
        assert same(d.metrics, single.metrics)
    assert {"set", "fast", "slow", "ma", "sharpe", "final_equity", "fills"} <= set(res.table().columns)
    top = res.top(3, "final_equity")
    assert len(top) == 3 and top["final_equity"].is_monotonic_decreasing
    assert res.curves().shape == (len(res.curve_ts), 8)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fasts=st.lists(st.sampled_from([1, 3, 8, 20]), min_size=1, max_size=2, unique=True),
    slows=st.lists(st.sampled_from([10, 30, 60]), min_size=1, max_size=2, unique=True),
    batch=st.sampled_from([997, 4096, 50_000]),
    processes=st.sampled_from([1, 1, 2]),
    budget_sets=st.sampled_from([1, 2, 1000]),
    ma=st.sampled_from(["sma", "ema"]),
    flush=st.sampled_from([7, 100, sweep_module.FLUSH_SAMPLES]),
)
def test_sweep_metrics_do_not_depend_on_batches_processes_or_passes(
    fasts, slows, batch, processes, budget_sets, ma, flush
):
    ticks = TICKS[:6000]
    sets = grid({"fast": fasts, "slow": slows, "ma": [ma]})
    plan = Plan.fit(10 * 2**30, len(sets), len(ticks), 4, batch, 1)
    budget = plan.data_bytes + plan.process_bytes + budget_sets * SET_BYTES  # a pass holds budget_sets sets
    run = {"batch_size": batch, "processes": processes, "memory_budget": budget}
    if all(p["fast"] >= p["slow"] for p in sets):
        with pytest.raises(SpecError, match="no valid parameter set"):
            sweep(ticks, "ma_crossover", sets, {"size": 5}, **run)
        return
    with pytest.MonkeyPatch.context() as mp:  # (in this process: how often a set's metrics are fed)
        mp.setattr(sweep_module, "FLUSH_SAMPLES", flush)
        res = sweep(ticks, "ma_crossover", sets, {"size": 5}, **run)
    if budget_sets == 1:
        assert res.passes == len(res.sets)
    for s in res.sets:
        single = ticktape.backtest(ticks, "ma_crossover", {**s.params, "size": 5})
        assert same(s.metrics, single.metrics), (s.params, batch, processes)
    assert [s.index for s in res.sets] == [k for k, p in enumerate(sets) if p["fast"] < p["slow"]]


def test_equity_sizing_long_only_and_stops_equal_single_runs_too():
    sets = grid({"fast": [5, 12], "slow": [60], "sizing": ["equity"], "stop_loss": [0.0, 0.001]})
    sets += [{"fast": 5, "slow": 60, "long_only": True, "take_profit": 0.001}]
    with pytest.MonkeyPatch.context() as mp:  # several pieces of samples per set
        mp.setattr(sweep_module, "FLUSH_SAMPLES", 64)
        res = sweep(TICKS, "ma_crossover", sets, {"fraction": 0.5}, batch_size=5000, processes=1)
    for s in res.sets:
        single = ticktape.backtest(TICKS, "ma_crossover", {**s.params, "fraction": 0.5})
        assert same(s.metrics, single.metrics), s.params


def test_invalid_sets_are_listed_and_the_valid_ones_run():
    sets = [{"fast": 5, "slow": 10}, {"fast": 10, "slow": 5}, {"fast": 3, "slow": 30}]
    res = sweep(TICKS[:2000], "ma_crossover", sets, processes=1)
    assert [s.index for s in res.sets] == [0, 2]
    ((k, p, why),) = res.invalid
    assert (k, p) == (1, {"fast": 10, "slow": 5}) and "slow: must be > fast" in why
    with pytest.raises(
        SpecError, match=r"no valid parameter set \(1 invalid\); parameter set 0 .*slow: must be > fast"
    ):
        sweep(TICKS[:100], "ma_crossover", [{"fast": 10, "slow": 5}])
    with pytest.raises(SpecError, match="the grid has no parameter sets"):
        sweep(TICKS[:100], "ma_crossover", [])


def test_a_budget_too_small_for_one_set_names_the_figures():
    with pytest.raises(
        SpecError, match=r"memory budget 10 MB is too small for one parameter set: it needs \d+ MB"
    ):
        sweep(TICKS, "ma_crossover", [{"fast": 5, "slow": 10}], memory_budget="10M")
    with pytest.raises(SpecError, match="--memory-budget 'lots'"):
        parse_bytes("lots")
    assert parse_bytes("1.5G") == 3 * 2**29


def test_the_plan_is_bounded_by_the_budget_not_by_the_number_of_sets():
    small, many = (Plan.fit(2 * 2**30, n, 10_000_000, 65, 100_000, 2) for n in (100, 100_000))
    assert many.capacity == Plan.fit(2 * 2**30, 10**9, 10_000_000, 65, 100_000, 2).capacity
    assert small.capacity <= many.capacity and many.processes == 2
    # the calling process and its ticks, the workers' mapped copy, each worker's batch and sets
    need = (
        2 * many.data_bytes
        + PROCESS_BYTES
        + many.processes * (many.process_bytes + many.capacity * SET_BYTES)
    )
    assert need <= 2 * 2**30 < need + many.processes * SET_BYTES
    groups = many.groups(list(range(100_000)))
    assert len(groups) % 2 == 0 and max(map(len, groups)) <= many.capacity
    assert [x for g in groups for x in g] == list(range(100_000))


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


def test_a_grid_too_large_is_refused_before_it_is_listed() -> None:
    with pytest.raises(SpecError, match=r"--grid 'fast=1:1000000000:1': 1,000,000,000 values"):
        parse_grid(["fast=1:1000000000:1"])
    with pytest.raises(SpecError, match=r"grid: 1,000,000,000,000 parameter sets"):
        grid({"fast": list(range(1_000_000)), "slow": list(range(1_000_000))})
