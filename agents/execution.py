"""Execution stage: publishes what the native engine did with the strategy's
decisions (ticktape.agents.strategy runs the engine in memory).

One results message per input batch goes to the results topic: signals,
order events, fills, equity samples and cumulative counts for progress.
"""

from __future__ import annotations

import time

import numpy as np

from ticktape.model.batch import Batch, encode
from ticktape.stages import IndicatorState
from ticktape.tables.state import key


async def _send_acked(topics, k: str, msg: Batch) -> None:
    # force=True: publish now instead of attaching to the consumer's next
    # offset commit; waiting for the broker's ack before the caller writes
    # the stream state is what makes persisted state imply persisted results.
    fut = await topics.results.send(key=k.encode(), value=encode(msg), force=True)
    await fut


async def publish(
    topics, batch: Batch, out: dict[str, np.ndarray], ind: IndicatorState, extra: dict | None = None
) -> None:
    """Send one results message for ``batch`` and wait for the broker's ack."""
    meta = {"accepted": ind.accepted, "rejects": ind.rejects, "last_ts": ind.last_ts, **(extra or {})}
    if "sent" in batch.meta:  # for the stages' lags (ticktape.store.runs)
        meta["sent"], meta["decided"] = batch.meta["sent"], time.time()
    if batch.eos:
        meta["ticks_in"] = batch.meta["ticks_in"]
    result = Batch(
        run_id=batch.run_id,
        symbol=batch.symbol,
        seq=batch.seq,
        arrays=out,
        eos=batch.eos,
        meta=meta,
    )
    await _send_acked(topics, key(batch.run_id, batch.symbol), result)


async def report_failure(topics, batch: Batch, error: str) -> None:
    """Tell the sink that stream (run, symbol) failed at ``batch``."""
    msg = Batch(
        run_id=batch.run_id,
        symbol=batch.symbol,
        seq=batch.seq,
        arrays={},
        meta={"error": f"{batch.symbol} batch {batch.seq}: {error}"},
    )
    await _send_acked(topics, key(batch.run_id, batch.symbol), msg)
