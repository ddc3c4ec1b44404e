"""Execution stage: publishes what the native engine did with the strategy's
decisions (ticktape.agents.strategy runs the engine in memory).

One results message per input batch goes to the results topic: signals,
order events, fills, equity samples and bars, its header
(:class:`~ticktape.model.batch.ResultsHeader`) the stream's cumulative
counts for progress; or a failure report
(:class:`~ticktape.model.batch.FailureHeader`) that fails the run.

A pipeline sweep's group sends no result rows: one progress message per
tick batch (:class:`~ticktape.model.batch.SweepHeader`), for all the runs
of the group, the last with each run's metrics (:func:`publish_sweep`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ticktape.backtest.groups import SetGroup
from ticktape.model.batch import Batch, FailureHeader, ResultsHeader, SweepHeader, TickHeader, encode
from ticktape.model.sweep import SweepGroup, SweepSet
from ticktape.pipeline.topics import Topics
from ticktape.stages import IndicatorState
from ticktape.tables.state import key


def results(
    batch: Batch[TickHeader], out: dict[str, np.ndarray], ind: IndicatorState, decided_ns: int
) -> Batch[ResultsHeader]:
    """The result set of tick batch ``batch``: the arrays ``out``, the
    stream's counts ``ind`` after it, decided at wall-clock ``decided_ns``."""
    tick = batch.header
    header = ResultsHeader(
        decided_ns=decided_ns,
        accepted=ind.accepted,
        rejects=ind.rejects,
        last_ts=ind.last_ts,
        ticks_in=tick.ticks_in,
        sent_ns=tick.sent_ns,
        recv_ns=tick.recv_ns,
    )
    return Batch(
        run_id=batch.run_id, symbol=batch.symbol, seq=batch.seq, arrays=out, header=header, eos=batch.eos
    )


def failure(batch: Batch, error: str) -> Batch[FailureHeader]:
    """The report that stream (run, symbol) failed at ``batch`` with ``error``."""
    header = FailureHeader(error=f"{batch.symbol} batch {batch.seq}: {error}")
    return Batch(run_id=batch.run_id, symbol=batch.symbol, seq=batch.seq, arrays={}, header=header)


async def _send_acked(topics: Topics, msg: Batch) -> None:
    # force=True: publish now instead of attaching to the consumer's next
    # offset commit; waiting for the broker's ack before the caller writes
    # the stream state is what makes persisted state imply persisted results.
    k = key(msg.run_id, msg.symbol).encode()
    fut = await topics.results.send(key=k, value=encode(msg), force=True)
    await fut


async def publish(
    topics: Topics, batch: Batch[TickHeader], out: dict[str, np.ndarray], ind: IndicatorState
) -> None:
    """Send the results message of ``batch`` and wait for the broker's ack."""
    await _send_acked(topics, results(batch, out, ind, time.time_ns()))


async def report_failure(topics: Topics, batch: Batch, error: str) -> None:
    """Tell the sink that stream (run, symbol) failed at ``batch``."""
    await _send_acked(topics, failure(batch, error))


def sweep_progress(
    item: SweepGroup, batch: Batch[TickHeader], group: SetGroup, decided_ns: int
) -> Batch[SweepHeader]:
    """The progress message of sweep group ``item`` after tick batch ``batch``
    (one symbol's), with each set's metrics once every symbol ended."""
    ind = group.indicators[batch.symbol]
    final: dict[str, Any] = {}
    if batch.eos and group.finished:
        summaries = group.results()
        rejects: dict[str, int] = {}
        for s in group.symbols:
            for reason, n in group.indicators[s].rejects.items():
                rejects[reason] = rejects.get(reason, 0) + n
        final = {
            "metrics": {
                s.run_id: r.metrics for s, r in zip(item.sets, summaries, strict=True) if r.error is None
            },
            "totals": {
                "ticks_in": sum(group.ticks_in.values()),
                "ticks_processed": sum(i.accepted for i in group.indicators.values()),
                "ticks_rejected": sum(rejects.values()),
            },
            "all_rejects": rejects,
        }
    header = SweepHeader(
        decided_ns=decided_ns,
        runs={s.run_id: s.index for s in item.sets},
        accepted=ind.accepted,
        rejects=dict(ind.rejects),
        last_ts=ind.last_ts,
        ticks_in=group.ticks_in[batch.symbol] if batch.eos else None,
        sent_ns=batch.header.sent_ns,
        **final,
    )
    return Batch(
        run_id=item.sweep_id, symbol=batch.symbol, seq=batch.seq, arrays={}, header=header, eos=batch.eos
    )


async def publish_sweep(topics: Topics, item: SweepGroup, batch: Batch[TickHeader], group: SetGroup) -> None:
    """Send sweep group ``item``'s progress after ``batch`` (keyed by the
    group: its messages stay in order) and wait for the broker's ack."""
    msg = sweep_progress(item, batch, group, time.time_ns())
    fut = await topics.results.send(key=item.key.encode(), value=encode(msg), force=True)
    await fut


async def report_sweep_failure(
    topics: Topics, item: SweepGroup, error: str, sets: Sequence[SweepSet] | None = None
) -> None:
    """Tell the sink that the runs of ``sets`` (default: all) of sweep group
    ``item`` failed with ``error``."""
    for s in item.sets if sets is None else sets:
        header = FailureHeader(error=f"sweep group {item.group}, parameter set {s.index} {s.params}: {error}")
        await _send_acked(
            topics, Batch(run_id=s.run_id, symbol=item.spec.symbols[0], seq=0, arrays={}, header=header)
        )
