"""The hot path's pure functions, as the indicators agent chains them: one
tick batch at a time from the stream's stored state, and the results
message built from what they return."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ticktape.agents.execution import failure, results
from ticktape.agents.indicators import process
from ticktape.backtest.run import run_symbol
from ticktape.data.synth import RandomWalkConfig, generate_walk
from ticktape.model.batch import Batch, FailureHeader, ResultsHeader, TickHeader, decode, empty, encode
from ticktape.model.spec import RunSpec
from ticktape.tables.state import StreamState

SPEC = RunSpec(strategy="sma_crossover", symbols=("A",), params={"fast": 5, "slow": 30, "size": 3})
TICKS = np.concatenate(list(generate_walk(RandomWalkConfig(symbol="A", n_ticks=3_000, seed=4))))


def _stream(cuts: list[int], header: TickHeader) -> list[Batch[TickHeader]]:
    """The ticks cut at ``cuts``, then the end of stream, as replay sends them."""
    parts = np.split(TICKS, sorted(cuts))
    out = [
        Batch(run_id=SPEC.run_id, symbol="A", seq=i, arrays={"ticks": p}, header=header)
        for i, p in enumerate(parts)
    ]
    end = Batch(
        run_id=SPEC.run_id,
        symbol="A",
        seq=len(out),
        arrays={"ticks": empty("ticks")},
        header=replace(header, ticks_in=len(TICKS)),
        eos=True,
    )
    return [*out, end]


@settings(max_examples=15, deadline=None)
@given(cuts=st.lists(st.integers(0, len(TICKS)), max_size=6))
def test_batch_by_batch_from_stored_state_gives_the_in_process_results(cuts) -> None:
    """Whatever the batch boundaries, chaining process() through the state
    as the table stores it gives what the in-process run gives."""
    state = StreamState()
    got: dict[str, list[np.ndarray]] = {"fills": [], "orders": [], "equity": []}
    sent = None
    for offset, batch in enumerate(_stream(cuts, TickHeader(spec=SPEC.to_json(), sent_ns=7))):
        out, state = process(batch, StreamState.from_bytes(state.to_bytes()), offset)
        sent = decode(encode(results(batch, out, state.indicators, decided_ns=9)), ResultsHeader)
        for k, parts in got.items():
            parts.append(sent.get(k))
    want = run_symbol(SPEC, [TICKS])
    for k, parts in got.items():
        assert np.concatenate(parts).tobytes() == getattr(want, k).tobytes(), k
    assert (state.seq, state.offset) == (len(cuts) + 1, len(cuts) + 1)
    assert sent.eos and sent.header.ticks_in == len(TICKS)
    assert sent.header.accepted == want.accepted == len(TICKS)
    assert sent.header.hot_lag_s == 2e-9 and sent.header.latency_ns is None


def test_results_carry_the_tick_batchs_stamps_and_the_streams_counts() -> None:
    batch = _stream([], TickHeader(spec=SPEC.to_json(), sent_ns=1_000, recv_ns=400))[0]
    out, state = process(batch, StreamState(), 12)
    r = results(batch, out, state.indicators, decided_ns=3_000)
    assert (r.run_id, r.symbol, r.seq, r.eos) == (SPEC.run_id, "A", 0, False)
    assert r.header == ResultsHeader(
        decided_ns=3_000,
        accepted=len(TICKS),
        rejects=state.indicators.rejects,
        last_ts=int(TICKS["ts"][-1]),
        sent_ns=1_000,
        recv_ns=400,
    )
    assert r.header.latency_ns == 2_600 and r.header.hot_lag_s == 2e-6
    assert set(r.arrays) == {"signals", "bars", "fills", "orders", "equity"}


def test_a_failure_names_the_symbol_and_the_batch() -> None:
    f = failure(_stream([10], TickHeader(spec="{}"))[1], "ValueError: boom")
    assert decode(encode(f), FailureHeader).header.error == "A batch 1: ValueError: boom"
    assert not f.eos and f.arrays == {}
