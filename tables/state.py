"""Per-(run, symbol) pipeline state in one changelog-backed table.

Key ``"<run_id>|<symbol>"``; value: the sequence number and ticks-topic
offset of the last batch applied, the indicators and strategy state (JSON)
and the serialized native engine. All stages of a stream are written in ONE
table update per batch, so a crash can never persist one stage's state
without the others': after a restart the stream resumes exactly at a batch
boundary.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any

import faust
import numpy as np
from faust.types import FutureMessage

from ticktape.model.batch import LEVEL_DTYPE
from ticktape.stages import IndicatorState, StrategyState

TABLE = "stream-state"
_HEAD = struct.Struct("<qI")


@dataclass
class StreamState:
    """Everything the pipeline carries for one (run, symbol) between batches."""

    seq: int = -1  # last batch applied; -1 = none yet
    indicators: IndicatorState = field(default_factory=IndicatorState)
    strategy: StrategyState = field(default_factory=StrategyState)
    engine: bytes | None = None  # Engine.get_state(); None = not created yet
    #: depth updates received after the last accepted tick (LEVEL_DTYPE rows), for the next batch
    depth_carry: list = field(default_factory=list)
    #: offset in the ticks topic of the last batch applied; -1 = unknown
    offset: int = -1

    def carry(self) -> np.ndarray:
        return np.array([tuple(r) for r in self.depth_carry], dtype=LEVEL_DTYPE)

    def to_bytes(self) -> bytes:
        doc = json.dumps(
            {
                "indicators": self.indicators.__dict__,
                "strategy": self.strategy.__dict__,
                "depth_carry": self.depth_carry,
                "offset": self.offset,
            }
        )
        head = doc.encode()
        return _HEAD.pack(self.seq, len(head)) + head + (self.engine or b"")

    @classmethod
    def from_bytes(cls, raw: bytes | None) -> StreamState:
        if not raw:
            return cls()
        seq, n = _HEAD.unpack_from(raw, 0)
        doc = json.loads(raw[_HEAD.size : _HEAD.size + n])
        engine = bytes(raw[_HEAD.size + n :]) or None
        return cls(
            seq,
            IndicatorState(**doc["indicators"]),
            StrategyState(**doc["strategy"]),
            engine,
            doc.get("depth_carry", []),
            doc.get("offset", -1),  # stored before 2026-12-04: unknown
        )


class StateTable(faust.Table):
    """A table that keeps the changelog record of its last update, so that
    :func:`save` can wait for the broker to have it."""

    last_sent: FutureMessage | None = None

    def send_changelog(self, *args: Any, **kwargs: Any) -> FutureMessage:
        self.last_sent = super().send_changelog(*args, **kwargs)
        return self.last_sent


def define(app: faust.App, partitions: int) -> StateTable:
    """Declare the state table on ``app`` (partitioned like the ticks topic)."""
    table = StateTable(
        app,
        name=TABLE,
        default=None,
        beacon=app.tables.beacon,
        partitions=partitions,
        key_type=str,
        value_type=bytes,
        help="per (run, symbol): last batch seq + indicator, strategy and engine state",
    )
    app.tables.add(table)
    return table


async def save(table: StateTable, k: str, state: StreamState) -> None:
    """Write ``state`` under ``k`` and wait until the broker has acknowledged
    its changelog record.

    A plain table write only queues the record, and Faust's flush before an
    offset commit gives up after 0.1 s without a send: the source batch's
    offset could be committed while its state was still in this process, and
    a worker killed then resumed after batches its recovered state never saw.
    Called before the source event is acknowledged, this keeps "offset
    committed" implying "state on the broker".
    """
    table[k] = state.to_bytes()
    assert table.last_sent is not None  # (the write just sent it)
    await table.last_sent


def changelog_topics(app_id: str) -> list[str]:
    """Names of the changelog topics (for explicit creation)."""
    return [f"{app_id}-{TABLE}-changelog"]


def key(run_id: str, symbol: str) -> str:
    return f"{run_id}|{symbol}"
