"""The stage functions: determinism across batch sizes, counts, signals, specs."""

import time
import uuid

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ticktape.agents.replay import cut_by_event_time
from ticktape.backtest.run import run_symbol
from ticktape.compute.metrics import max_drawdown, portfolio_equity, summarize
from ticktape.data.synth import RandomWalkConfig, generate_walk
from ticktape.errors import SpecError
from ticktape.model.batch import TICK_DTYPE
from ticktape.model.spec import EngineConfig, RunSpec, new_run_id
from ticktape.pipeline.app import parse_stages
from ticktape.stages import StrategyState, strategy_step
from ticktape.strategy import build
from ticktape.strategy.catalog import check_run

TICKS = np.concatenate(list(generate_walk(RandomWalkConfig(symbol="S", n_ticks=6_000, seed=11))))
SPEC = RunSpec(
    strategy="sma_crossover",
    symbols=("S",),
    params={"fast": 5, "slow": 30, "size": 3},
    engine=EngineConfig(latency_ns=2_000_000, fee_bps=1.0),
)


def _split(ticks, size):
    return (ticks[i : i + size] for i in range(0, len(ticks), size))


def _same(a, b):
    for k in ("signals", "fills", "orders", "equity"):
        assert getattr(a, k).tobytes() == getattr(b, k).tobytes(), k
    assert (a.ticks_in, a.accepted, a.rejects) == (b.ticks_in, b.accepted, b.rejects)


def test_results_do_not_depend_on_batch_size():
    whole = run_symbol(SPEC, [TICKS])
    assert len(whole.fills) > 10 and len(whole.signals) > 10
    for size in (1, 7, 4096):
        _same(run_symbol(SPEC, _split(TICKS, size)), whole)


@settings(max_examples=30, deadline=None)
@given(cuts=st.lists(st.integers(0, len(TICKS)), max_size=6))
def test_results_do_not_depend_on_where_batches_are_cut(cuts):
    parts = np.split(TICKS, sorted(cuts))
    _same(run_symbol(SPEC, parts), run_symbol(SPEC, [TICKS]))


def test_every_tick_is_processed_or_rejected():
    bad = TICKS.copy()
    bad["bid"][[10, 20]] = -1.0
    bad["ts"][30] = bad["ts"][0]  # out of order
    r = run_symbol(SPEC, _split(bad, 1000))
    assert r.ticks_in == len(bad)
    assert r.accepted + sum(r.rejects.values()) == len(bad)
    assert r.rejects == {"bad_price": 2, "crossed": 0, "bad_size": 0, "out_of_order": 1}


def test_empty_stream():
    r = run_symbol(SPEC, [])
    assert r.ticks_in == 0 and len(r.fills) == 0


def test_signals_are_decision_changes_only():
    strat = build("sma_crossover", {"fast": 2, "slow": 3})
    t = np.zeros(4, TICK_DTYPE)
    t["ts"] = [1, 2, 3, 4]
    feats = {"ma_fast": np.array([np.nan, 2.0, 2.0, 1.0]), "ma_slow": np.array([np.nan, 1.0, 1.0, 2.0])}
    dec, sig, state = strategy_step(strat, t, feats, StrategyState())
    target = dec.target
    assert np.isnan(target[0]) and target[1:].tolist() == [100.0, 100.0, -100.0]
    assert sig["ts"].tolist() == [2, 4] and sig["value"].tolist() == [100.0, -100.0]
    _, sig2, _ = strategy_step(strat, t[3:], {k: v[3:] for k, v in feats.items()}, state)
    assert len(sig2) == 0  # unchanged across the batch boundary


@pytest.mark.parametrize(
    "doc, field",
    [
        ({"strategy": "nope", "symbols": ["A"]}, "strategy"),
        ({"strategy": "sma_crossover", "symbols": []}, "symbols"),
        ({"strategy": "sma_crossover", "symbols": ["A"], "params": {"fast": "x"}}, "params.fast"),
        ({"strategy": "sma_crossover", "symbols": ["A"], "params": {"bogus": 1}}, "params.bogus"),
        ({"strategy": "sma_crossover", "symbols": ["A"], "engine": {"tick_size": 0}}, "engine.tick_size"),
        ({"strategy": "sma_crossover", "symbols": ["A"], "colour": 1}, "colour"),
    ],
)
def test_bad_spec_names_the_field(doc, field):
    with pytest.raises(SpecError, match=rf"^{field}"):
        check_run(RunSpec.from_dict(doc))


def test_spec_round_trips_through_json():
    assert RunSpec.from_json(SPEC.to_json()) == SPEC


def test_run_ids_are_uuid7_in_creation_order():
    """Result tables index run_id: ids that grow with time append at the
    index's right edge and keep one run's rows together (docs/architecture.md)."""

    ids = [uuid.UUID(new_run_id()) for _ in range(5_000)]  # many in one millisecond
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids), "ids of one process must increase"
    assert {u.version for u in ids} == {7} and {u.variant for u in ids} == {uuid.RFC_4122}
    ms = int.from_bytes(ids[-1].bytes[:6], "big")
    assert abs(ms - time.time_ns() // 10**6) < 60_000
    assert uuid.UUID(RunSpec(strategy="sma_crossover", symbols=("S",)).run_id).version == 7


def test_metrics_worked_example():
    assert max_drawdown(np.array([100.0, 120.0, 90.0, 130.0, 125.0])) == (30.0, 0.25)

    samples = pd.DataFrame({"ts_ns": [1, 2, 3], "symbol": ["A", "B", "A"], "equity": [110.0, 90.0, 95.0]})
    total = portfolio_equity(samples, 100.0)
    assert total.tolist() == [210.0, 200.0, 185.0]  # B starts at its initial cash
    m = summarize(samples, 100.0, 2)
    assert m["final_pnl"] == -15.0 and m["max_drawdown"] == 25.0


def test_cut_by_event_time_keeps_every_tick_and_one_slot_per_piece():
    t0 = int(TICKS["ts"][0])
    width = 3 * 10**9
    pieces = cut_by_event_time(TICKS, t0, width)
    assert np.concatenate(pieces).tobytes() == TICKS.tobytes()
    slots = [set(((p["ts"] - t0) // width).tolist()) for p in pieces]
    assert all(len(s) == 1 for s in slots)
    assert [next(iter(s)) for s in slots] == sorted(next(iter(s)) for s in slots)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("all", ("replay", "indicators", "strategy", "execution", "sink")),
        ("sink, replay", ("replay", "sink")),
        ("execution,indicators,strategy", ("indicators", "strategy", "execution")),
    ],
)
def test_worker_stages(text, expected):
    assert parse_stages(text) == expected


@pytest.mark.parametrize(
    "text, message", [("replay,bogus", "unknown stage"), ("indicators,sink", "same worker")]
)
def test_bad_worker_stages_are_refused(text, message):
    with pytest.raises(SpecError, match=message):
        parse_stages(text)
