"""A pipeline sweep's group of parameter sets: each set's metrics are its
single run's, whatever the group, the batches or the order the symbols arrive in."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ticktape
from ticktape.backtest.groups import SetGroup
from ticktape.backtest.run import run_symbol
from ticktape.backtest.sweep import FLUSH_SAMPLES
from ticktape.compute.metrics import RunMetrics
from ticktape.model.spec import EngineConfig, RunSpec
from ticktape.model.sweep import split
from ticktape.testing import market

A = market(6_000, seed=3, symbol="A", trade_every=0)
B = market(5_000, seed=4, symbol="B", trade_every=0)
B["ts"] += 7_000_000  # B's ticks fall between A's
B["ts"][2000:2100] = B["ts"][1999]  # and some share a time
SETS = [{"fast": f, "slow": s, "size": 7} for f in (3, 10) for s in (30, 60)]
ENGINE = EngineConfig(fee_bps=1.0)


def same(a: dict, b: dict) -> bool:
    """Every metric of ``b`` equal in ``a``, NaN equal to NaN."""
    return all(
        k in a and (a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])))
        for k in b
        if isinstance(b[k], float)
    )


def batches(ticks: np.ndarray, size: int) -> list[np.ndarray]:
    return [ticks[i : i + size] for i in range(0, len(ticks), size)] or [ticks[:0]]


def feed(group: SetGroup, data: dict[str, np.ndarray], size: int, order: list[int]) -> None:
    """Each symbol's batches in order, the symbols interleaved as ``order`` picks, then in turn."""
    queues = {s: batches(t, size) for s, t in data.items()}
    picks = iter(order)
    turn = 0
    while live := [s for s in data if queues[s]]:
        turn += 1
        s = live[next(picks, turn) % len(live)]
        group.add(s, queues[s].pop(0), eos=not queues[s])


def single_pipeline_metrics(params: dict, data: dict[str, np.ndarray]) -> dict[str, float]:
    """What the sink stores for a single pipeline run: its symbols run alone
    (run_symbol), their fills and equity samples into RunMetrics in the
    store's order (time, then symbol, then the columns), in one piece."""
    spec = RunSpec(strategy="ma_crossover", symbols=tuple(data), params=params, engine=ENGINE)
    order = sorted(data)
    res = {s: run_symbol(spec, batches(data[s], 4000)) for s in order}
    acc = RunMetrics(order, ENGINE.initial_cash, keep_trades=False)
    for s in order:
        f = res[s].fills
        acc.add_fills(s, f[np.lexsort([f[k] for k in ("fee", "qty", "price", "side", "order_id", "ts")])])
    eq = np.concatenate([res[s].equity for s in order])
    sym = np.concatenate([np.full(len(res[s].equity), j) for j, s in enumerate(order)])
    o = np.lexsort([eq["equity"], eq["price"], eq["position"], eq["cash"], sym, eq["ts"]])
    acc.add(eq["ts"][o], sym[o], eq["equity"][o], eq["position"][o], eq["price"][o])
    metrics, _ = acc.result()
    ids = np.unique(np.concatenate([res[s].orders["order_id"] for s in order]))
    return {**metrics, "orders": float(len(ids)), "fills": float(sum(len(res[s].fills) for s in order))}


def test_one_symbol_every_set_equals_its_single_backtest():
    group = SetGroup("ma_crossover", {}, SETS, ENGINE, ["A"])
    feed(group, {"A": A}, 1500, [])
    for p, r in zip(SETS, group.results(), strict=True):
        single = ticktape.backtest(A, "ma_crossover", p, engine=ENGINE)
        assert same(r.metrics, single.metrics), p
        assert r.fills == len(single.fills) and r.metrics["fills"] == r.fills


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    groups=st.integers(1, 4),
    size=st.sampled_from([499, 1500, 10_000]),
    order=st.lists(st.integers(0, 1), max_size=12),
    flush=st.sampled_from([1, 50, 400, FLUSH_SAMPLES]),
)
def test_two_symbols_every_set_equals_its_single_run_whatever_group_batches_or_arrival(
    groups, size, order, flush
):
    data = {"B": B, "A": A}
    for part in split(len(SETS), groups):
        sets = [SETS[i] for i in part]
        group = SetGroup("ma_crossover", {}, sets, ENGINE, list(data), flush=flush)
        feed(group, data, size, order)
        for p, r in zip(sets, group.results(), strict=True):
            want = single_pipeline_metrics(p, data)
            assert same(r.metrics, want), (p, {k: (r.metrics.get(k), v) for k, v in want.items()})
            assert r.metrics.keys() == want.keys()
            assert r.orders == want["orders"] and r.fills == want["fills"] > 0


def test_a_set_that_raises_fails_alone_in_one_line_and_the_others_go_on():
    group = SetGroup("ma_crossover", {}, [SETS[1], SETS[0]], ENGINE, ["A", "B"])

    def broken(*args):  # the strategy's own code raising, on one set only
        raise ZeroDivisionError("float division by zero")

    group.strats[0].on_batch = broken  # type: ignore[method-assign]
    feed(group, {"A": A, "B": B}, 1000, [])
    failed, ok = group.results()
    assert (failed.error, failed.metrics, group.failed) == (
        "ZeroDivisionError: float division by zero",
        {},
        {0: "ZeroDivisionError: float division by zero"},
    )
    assert ok.error is None and same(ok.metrics, single_pipeline_metrics(SETS[0], {"A": A, "B": B}))


def test_a_group_refuses_a_batch_after_the_end_and_results_before_it():
    group = SetGroup("ma_crossover", {}, SETS[:1], ENGINE, ["A", "B"])
    group.add("A", A, eos=True)
    with pytest.raises(ValueError, match="not ended yet: \\['B'\\]"):
        group.results()
    with pytest.raises(ValueError, match="A: a batch after its end of stream"):
        group.add("A", A[:0], eos=True)


def test_split_cuts_consecutive_groups_within_one_of_each_other():
    for n in range(1, 30):
        for g in range(1, 8):
            parts = split(n, g)
            assert [i for p in parts for i in p] == list(range(n))
            assert len(parts) == min(n, g) and max(map(len, parts)) - min(map(len, parts)) <= 1
