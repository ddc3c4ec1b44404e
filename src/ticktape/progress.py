"""Progress of a run, as `ticktape runs show` and the dashboard read it."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from ticktape.strategy import SpecError


async def find_run(conn: asyncpg.Connection, run_id: str) -> asyncpg.Record:
    """The ``runs`` row of ``run_id``; SpecError naming ``run_id`` if it is not
    a UUID or no such run exists."""
    try:
        rid = uuid.UUID(str(run_id))
    except ValueError:
        raise SpecError(f"run_id: {run_id!r} is not a run id (a UUID)") from None
    run = await conn.fetchrow("SELECT * FROM runs WHERE run_id = $1", rid)
    if run is None:
        raise SpecError(f"run_id: no run {run_id}")
    return run


async def run_progress(conn: asyncpg.Connection, run_id: str) -> dict[str, Any]:
    """The run row and, per symbol: ticks read by the replay, processed,
    rejected, lag (read but not yet through the pipeline), event-time
    position, ticks/s since the run started, and each stage's lag in seconds
    as of the latest result set stored (``hot_lag_s``: from the replay
    publishing a batch to the hot path publishing its results, the wait in
    the ticks topic included; ``sink_lag_s``: from then until stored; None
    before the first)."""
    run = await find_run(conn, run_id)
    rid = run["run_id"]
    rows = await conn.fetch(
        "SELECT p.symbol, p.ticks_read, p.ticks_processed, p.ticks_rejected, p.last_ts, p.done,"
        " p.hot_lag_s, p.sink_lag_s,"
        " extract(epoch FROM p.updated_at - r.started_at) AS secs"
        " FROM run_progress p JOIN runs r USING (run_id) WHERE run_id = $1 ORDER BY p.symbol",
        rid,
    )
    symbols = []
    for r in rows:
        through = r["ticks_processed"] + r["ticks_rejected"]
        # (the replay records its count every 0.25 s, the sink as it stores:
        # what is through was read, recorded or not)
        read = max(r["ticks_read"], through)
        secs = float(r["secs"] or 0.0)
        symbols.append(
            {
                "symbol": r["symbol"],
                "read": read,
                "processed": r["ticks_processed"],
                "rejected": r["ticks_rejected"],
                "lag": read - through,
                "event_time": r["last_ts"],
                "ticks_per_s": through / secs if secs > 0 else 0.0,
                "done": r["done"],
                "hot_lag_s": r["hot_lag_s"],
                "sink_lag_s": r["sink_lag_s"],
            }
        )
    return {"run": dict(run), "symbols": symbols}
