"""Execution stage: publishes what the native engine did with the strategy's
decisions (ticktape.agents.strategy runs the engine in memory).

One results message per input batch goes to the results topic: signals,
order events, fills, equity samples and bars, its header
(:class:`~ticktape.model.batch.ResultsHeader`) the stream's cumulative
counts for progress; or a failure report
(:class:`~ticktape.model.batch.FailureHeader`) that fails the run.
"""

from __future__ import annotations

import time

import numpy as np

from ticktape.model.batch import Batch, FailureHeader, ResultsHeader, TickHeader, encode
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
