"""Execution stage: the native engine fills the strategy's decisions.

The engine's serialized state and the last applied batch sequence live in the
``engine-state`` table (one write per batch). One results message per input
batch goes to the results topic: signals, orders, fills, equity samples and
cumulative counts for progress.
"""

from __future__ import annotations

import numpy as np
from ticktape.tables.state import StateTables, key, pack_engine, unpack_engine

from ticktape.batch import Batch, encode
from ticktape.native import Engine
from ticktape.spec import RunSpec
from ticktape.stages import IndicatorState, execution_step, new_engine


def already_applied(tables: StateTables, k: str, seq: int) -> bool:
    """True when batch ``seq`` of stream ``k`` was fully applied before."""
    raw = tables.engine.get(k)
    return raw is not None and unpack_engine(raw)[0] >= seq


async def handle(
    tables: StateTables,
    topics,
    spec: RunSpec,
    batch: Batch,
    ticks: np.ndarray,
    target: np.ndarray,
    signals: np.ndarray,
    ind: IndicatorState,
) -> None:
    k = key(batch.run_id, batch.symbol)
    raw = tables.engine.get(k)
    engine = Engine.from_state(unpack_engine(raw)[1]) if raw else new_engine(spec)
    out = execution_step(engine, ticks, target, batch.eos)
    tables.engine[k] = pack_engine(batch.seq, engine.get_state())
    meta = {
        "accepted": ind.accepted,
        "rejects": ind.rejects,
        "last_ts": ind.last_ts,
    }
    if batch.eos:
        meta["ticks_in"] = batch.meta["ticks_in"]
    result = Batch(
        run_id=batch.run_id,
        symbol=batch.symbol,
        seq=batch.seq,
        arrays={"signals": signals, **out},
        eos=batch.eos,
        meta=meta,
    )
    await topics.results.send(key=k.encode(), value=encode(result))


async def report_failure(topics, batch: Batch, error: str) -> None:
    """Tell the sink that stream (run, symbol) failed at ``batch``."""
    k = key(batch.run_id, batch.symbol)
    msg = Batch(
        run_id=batch.run_id,
        symbol=batch.symbol,
        seq=batch.seq,
        arrays={},
        meta={"error": f"{batch.symbol} batch {batch.seq}: {error}"},
    )
    await topics.results.send(key=k.encode(), value=encode(msg))
