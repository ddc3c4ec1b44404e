"""Per-(run, symbol) stage state, one changelog-backed table per stage.

Values are bytes (the stages serialize their own state); each table is
written once per batch, never per tick. Keys are ``"<run_id>|<symbol>"``.
The engine table's value starts with the 8-byte sequence number of the last
batch applied, which is how a re-delivered batch is recognised and skipped.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import faust

_SEQ = struct.Struct("<q")


@dataclass(frozen=True)
class StateTables:
    indicators: faust.Table
    strategy: faust.Table
    engine: faust.Table


def define(app: faust.App, partitions: int) -> StateTables:
    """Declare the stage tables on ``app`` (partitioned like the ticks topic)."""

    def table(name: str, help: str) -> faust.Table:
        return app.Table(
            name,
            default=None,
            partitions=partitions,
            key_type=str,
            value_type=bytes,
            help=help,
        )

    return StateTables(
        indicators=table("indicator-state", "tick validation and indicator carry state"),
        strategy=table("strategy-state", "strategy state and last signal"),
        engine=table("engine-state", "last applied batch seq + serialized native engine"),
    )


def changelog_topics(app_id: str) -> list[str]:
    """Names of the changelog topics of the tables above (for explicit creation)."""
    return [f"{app_id}-{n}-changelog" for n in ("indicator-state", "strategy-state", "engine-state")]


def key(run_id: str, symbol: str) -> str:
    return f"{run_id}|{symbol}"


def pack_engine(seq: int, state: bytes) -> bytes:
    return _SEQ.pack(seq) + state


def unpack_engine(raw: bytes) -> tuple[int, bytes]:
    (seq,) = _SEQ.unpack_from(raw, 0)
    return seq, raw[_SEQ.size :]
