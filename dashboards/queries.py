"""SQL behind the dashboard, run read-only: every query in a read-only
transaction as the role ``ticktape_reader`` (``session.run(...,
readonly=True)``), so the server refuses any write, whatever the SQL."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
import pandas as pd

from ticktape.store import session
from ticktape.store.runs import run_progress

T = TypeVar("T")


def _read(dsn: str, op: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """``await op(conn)`` in a read-only session of its own (the store's one session helper)."""
    return session.run(op, dsn=dsn, readonly=True)


def readonly_note(dsn: str) -> str | None:
    """Why the queries on ``dsn`` could not run as the read-only role (None: they do)."""
    return session.readonly_note(dsn)


def frame(dsn: str, sql: str, *args: Any) -> pd.DataFrame:
    """Run ``sql`` and return its rows as a DataFrame."""
    rows = _read(dsn, lambda conn: conn.fetch(sql, *args))
    return pd.DataFrame([dict(r) for r in rows]) if rows else pd.DataFrame()


def runs(dsn: str, limit: int = 200) -> pd.DataFrame:
    return frame(
        dsn,
        "SELECT run_id::text AS run_id, status, strategy, symbols, created_at, ticks_processed,"
        " ticks_rejected, orders, fills, wall_seconds, error,"
        " (spec->'engine'->>'initial_cash')::float8 AS initial_cash FROM runs ORDER BY created_at DESC LIMIT $1",
        limit,
    )


def progress(dsn: str, run_id: str) -> tuple[str, pd.DataFrame]:
    """A run's status and its progress per symbol (``ticktape runs show``'s):
    ticks read, processed, rejected, lag, each stage's lag in seconds, event
    time, ticks/s."""
    info = _read(dsn, lambda conn: run_progress(conn, run_id))
    return info["run"]["status"], pd.DataFrame(info["symbols"])


def metrics(dsn: str, run_id: str) -> pd.DataFrame:
    return frame(dsn, "SELECT name, value FROM run_metrics WHERE run_id = $1::uuid ORDER BY name", run_id)


def price_bars(dsn: str, symbol: str, start: Any, end: Any, bucket: str) -> pd.DataFrame:
    """Mid-price bars of ``symbol`` between ``start`` and ``end``."""
    return frame(
        dsn,
        "SELECT time_bucket($4::text::interval, ts) AS bucket, (array_agg((bid + ask) / 2 ORDER BY ts))[1] AS open,"
        " max((bid + ask) / 2) AS high, min((bid + ask) / 2) AS low,"
        " (array_agg((bid + ask) / 2 ORDER BY ts DESC))[1] AS close"
        " FROM ticks WHERE symbol = $1 AND ts BETWEEN $2 AND $3 GROUP BY 1 ORDER BY 1",
        symbol,
        start,
        end,
        bucket,
    )


def run_bars(dsn: str, run_id: str, symbol: str, bucket: str) -> pd.DataFrame:
    """The run's own event-time bars of ``symbol`` (``run_bars``, the mid,
    ``spec.bar_ns`` wide: what the run saw), merged into ``bucket``-wide
    bars; empty when the run recorded none (``bar_ns`` null)."""
    return frame(
        dsn,
        "SELECT time_bucket($3::text::interval, ts) AS bucket, (array_agg(open ORDER BY ts))[1] AS open,"
        " max(high) AS high, min(low) AS low, (array_agg(close ORDER BY ts DESC))[1] AS close"
        " FROM run_bars WHERE run_id = $1::uuid AND symbol = $2 GROUP BY 1 ORDER BY 1",
        run_id,
        symbol,
        bucket,
    )


def fills(dsn: str, run_id: str, symbol: str) -> pd.DataFrame:
    return frame(
        dsn,
        "SELECT ts, order_id, side, price, qty, fee FROM fills WHERE run_id = $1::uuid AND symbol = $2 ORDER BY ts",
        run_id,
        symbol,
    )


def equity(dsn: str, run_id: str, points: int = 2_000) -> pd.DataFrame:
    """The run's equity samples, at most ``points`` per symbol: its time span
    cut into ``points`` equal buckets, the last sample of each symbol in each
    (a 20M-tick run has a million samples, more than a chart can show or a
    browser hold). The last sample of every symbol is always there, so the
    final portfolio equity is exact. Ordered by time.

    The span is computed once (a materialized CTE): for a run still being
    written the statistics put its samples at one row, and the planner then
    recomputed the span for every sample (57 s for 20k samples)."""
    return frame(
        dsn,
        "WITH s AS MATERIALIZED (SELECT min(ts_ns) AS lo, (max(ts_ns) - min(ts_ns)) / $2 + 1 AS step"
        "                        FROM equity WHERE run_id = $1::uuid)"
        " SELECT ts, ts_ns, symbol, equity, position FROM ("
        " SELECT DISTINCT ON (e.symbol, (e.ts_ns - s.lo) / s.step) e.ts, e.ts_ns, e.symbol, e.equity, e.position"
        " FROM equity e, s"
        " WHERE e.run_id = $1::uuid ORDER BY e.symbol, (e.ts_ns - s.lo) / s.step, e.ts_ns DESC"
        ") last ORDER BY ts_ns, symbol",
        run_id,
        int(points),
    )
