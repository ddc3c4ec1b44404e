"""A sweep group's progress messages: per batch for all its runs, the last with each run's metrics."""

from __future__ import annotations

import math

from ticktape.agents.execution import sweep_progress
from ticktape.backtest.groups import SetGroup
from ticktape.model.batch import Batch, SweepHeader, TickHeader, decode, encode
from ticktape.model.spec import RunSpec, new_run_id
from ticktape.model.sweep import SweepGroup, SweepSet
from ticktape.testing import market

A = market(3_000, seed=1, symbol="A", trade_every=0)
B = market(2_000, seed=2, symbol="B", trade_every=0)
B["bid"][5:8] = -1.0  # rejected


def test_progress_per_batch_then_each_runs_metrics_but_a_failed_sets_and_it_survives_the_wire():
    spec = RunSpec(strategy="ma_crossover", symbols=("A", "B"), params={"size": 5.0})
    sets = (
        SweepSet(3, new_run_id(), {"fast": 3, "slow": 20}),
        SweepSet(4, new_run_id(), {"fast": 5, "slow": 40}),
    )
    item = SweepGroup(spec, 1, sets, {"A": (0, 0), "B": (1, 0)})
    group = SetGroup(spec.strategy, spec.params, [s.params for s in sets], spec.engine, spec.symbols)
    group.failed[1] = "ZeroDivisionError: float division by zero"  # (set 4 failed earlier)
    msgs = []
    for seq, (symbol, ticks, eos) in enumerate(
        [("A", A, True), ("B", B[:1000], False), ("B", B[1000:], True)]
    ):
        group.add(symbol, ticks, eos)
        tick = Batch(
            run_id=spec.run_id,
            symbol=symbol,
            seq=seq,
            arrays={"ticks": ticks},
            eos=eos,
            header=TickHeader(spec="{}", sent_ns=10, ticks_in=len(ticks) if eos else None),
        )
        msgs.append(decode(encode(sweep_progress(item, tick, group, 25)), SweepHeader))
    first, middle, last = (m.header for m in msgs)
    assert first.runs == middle.runs == {sets[0].run_id: 3, sets[1].run_id: 4}
    assert (first.accepted, first.ticks_in, first.metrics) == (3000, 3000, None)
    assert (middle.accepted, middle.ticks_in, middle.metrics, msgs[1].eos) == (997, None, None, False)
    assert sum(middle.rejects.values()) == 3 and middle.hot_lag_s == 15e-9
    assert last.totals == {"ticks_in": 5000, "ticks_processed": 4997, "ticks_rejected": 3}
    assert last.all_rejects is not None and sum(last.all_rejects.values()) == 3
    assert last.metrics is not None and list(last.metrics) == [sets[0].run_id]  # not the failed set's
    (want,) = [r.metrics for r in group.results() if r.error is None]
    got = last.metrics[sets[0].run_id]
    assert got.keys() == want.keys() and all(
        got[k] == v or (math.isnan(got[k]) and math.isnan(v)) for k, v in want.items()
    )
