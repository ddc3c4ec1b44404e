"""What ``ticktape report`` reads: which kind of result an id names, a run's
equity on a time grid (resampled by the server, never every sample), and a
sweep's sets with their metrics."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import numpy as np

from ticktape.store.runs import json_value


async def id_kind(conn: asyncpg.Connection, ident: uuid.UUID) -> str | None:
    """What ``ident`` names: ``"run"`` (a run id), ``"sweep"`` (the
    ``sweep_id`` of stored runs), ``"study"`` (a walk-forward study), or None
    (nothing stored)."""
    return await conn.fetchval(
        "SELECT CASE WHEN EXISTS (SELECT 1 FROM runs WHERE run_id = $1) THEN 'run'"
        " WHEN EXISTS (SELECT 1 FROM runs WHERE sweep_id = $1) THEN 'sweep'"
        " WHEN EXISTS (SELECT 1 FROM studies WHERE study_id = $1) THEN 'study' END",
        ident,
    )


async def equity_span(conn: asyncpg.Connection, run_id: uuid.UUID) -> tuple[int, int, int]:
    """(first ts_ns, last ts_ns, samples) of a run's equity samples ((0, 0, 0): none)."""
    row = await conn.fetchrow(
        "SELECT min(ts_ns) AS lo, max(ts_ns) AS hi, count(*) AS n FROM equity WHERE run_id = $1", run_id
    )
    return (int(row["lo"]), int(row["hi"]), int(row["n"])) if row["n"] else (0, 0, 0)


async def equity_on_grid(conn: asyncpg.Connection, run_id: uuid.UUID, width_ns: int) -> dict[str, np.ndarray]:
    """Each symbol's last equity sample in each ``width_ns``-wide bucket of
    time (``[k * width, (k + 1) * width)``, UTC), ordered by symbol then time.

    Returns arrays ``symbol`` (object), ``ts`` (int64 ns), ``equity``,
    ``position``, ``price`` (float64, NULL as NaN). Of several samples of a
    symbol at one time, the last in the order
    :func:`~ticktape.store.results.stream_fills_and_equity` gives them (the
    one the run's metrics end on), so the last bucket's values are the run's
    final ones.
    """
    rows = await conn.fetch(
        "SELECT DISTINCT ON (symbol, ts_ns / $2) symbol, ts_ns,"
        " coalesce(equity, 'NaN'::float8) AS equity, coalesce(position, 'NaN'::float8) AS position,"
        " coalesce(price, 'NaN'::float8) AS price"
        " FROM equity WHERE run_id = $1"
        " ORDER BY symbol, ts_ns / $2, ts_ns DESC, cash DESC, position DESC, price DESC, equity DESC",
        run_id,
        int(width_ns),
    )
    return {
        "symbol": np.array([r["symbol"] for r in rows], dtype=object),
        "ts": np.array([r["ts_ns"] for r in rows], dtype=np.int64),
        "equity": np.array([r["equity"] for r in rows], dtype=np.float64),
        "position": np.array([r["position"] for r in rows], dtype=np.float64),
        "price": np.array([r["price"] for r in rows], dtype=np.float64),
    }


async def sweep_sets(conn: asyncpg.Connection, sweep_id: uuid.UUID) -> list[dict[str, Any]]:
    """The runs of a sweep, in the order they were stored: ``run_id`` (str),
    ``status``, ``strategy``, ``symbols``, ``data_start``, ``data_end``,
    ``spec`` and ``params`` (dicts), ``detail`` (its signals, orders, fills
    and equity are stored: a set the sweep kept) and ``metrics`` (name ->
    value)."""
    rows = await conn.fetch(
        "SELECT r.run_id, r.status, r.strategy, r.symbols, r.data_start, r.data_end, r.created_at,"
        " r.spec::text AS spec, r.params::text AS params,"
        " EXISTS (SELECT 1 FROM equity e WHERE e.run_id = r.run_id) AS detail,"
        " coalesce((SELECT jsonb_object_agg(m.name, m.value) FROM run_metrics m WHERE m.run_id = r.run_id),"
        " '{}'::jsonb)::text AS metrics"
        " FROM runs r WHERE r.sweep_id = $1 ORDER BY r.created_at, r.run_id",
        sweep_id,
    )
    out = []
    for r in rows:
        item = dict(r)
        item["run_id"] = str(item["run_id"])
        for key in ("spec", "params", "metrics"):
            item[key] = json_value(item[key]) or {}
        item["metrics"] = {k: (np.nan if v is None else float(v)) for k, v in item["metrics"].items()}
        out.append(item)
    return out
