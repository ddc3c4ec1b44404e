"""What the store holds: symbols, time ranges, counts and gaps; bars views and instruments."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import asyncpg

from ticktape.store.codec import datetime_to_ns, ns_to_datetime
from ticktape.store.connection import has_timescale
from ticktape.store.tickread import chunk_cuts

#: The bar views of 0003 (continuous aggregates on TimescaleDB).
BAR_VIEWS = ("bars_1s", "bars_1m", "bars_1h")
#: Bucket width of each bar view, ns.
_BAR_WIDTH_NS = {"bars_1s": 10**9, "bars_1m": 60 * 10**9, "bars_1h": 3_600 * 10**9}
#: Buckets per refresh batch of each bar aggregate on TimescaleDB: a day, a
#: week, a month (what dbschema/0031 gives the refresh policies). Since 2.19
#: a refresh works in batches of 10 buckets, one transaction each, and a
#: manual refresh too: on 2.28.3, refreshing ``bars_1s`` over the 11.8 days of
#: 1,000 imported ticks took 279 s (101,700 batches), 0.18 s with a day each.
_BAR_BUCKETS_PER_BATCH = {"bars_1s": 86_400, "bars_1m": 10_080, "bars_1h": 720}


async def refresh_bars(
    conn: asyncpg.Connection,
    start_ns: int | None = None,
    end_ns: int | None = None,
    *,
    wait: float = 300.0,
) -> int:
    """Materialise the bar continuous aggregates over ``[start_ns, end_ns)``.

    Call after importing history: with TimescaleDB, ticks older than an
    aggregate's materialisation watermark show in its bars only once that
    range is refreshed (the policies do it within their schedule). No-op on
    plain PostgreSQL (plain views). Must not run inside a transaction.

    Parameters
    ----------
    start_ns, end_ns
        Window in int64 ns since the epoch (UTC); None leaves that side open.
        Each aggregate is refreshed over every one of its buckets that the
        window touches (TimescaleDB refreshes only the buckets wholly
        inside the window it is given, and rejects a window that holds
        none: "refresh window too small"), so a window of two minutes
        refreshes the hour that holds it in ``bars_1h``.
    wait
        Seconds to keep retrying a refresh that TimescaleDB (>= 2.27)
        rejects because its window overlaps one in progress on the same
        aggregate (SQLSTATE 55P03: a refresh policy or another import);
        retried with back-off from 50 ms to 2 s, then the
        ``asyncpg.LockNotAvailableError`` is raised.

    Returns
    -------
    int
        Aggregates refreshed (0 on plain PostgreSQL).
    """
    if not await has_timescale(conn):
        return 0
    batched = await conn.fetchval(  # (TimescaleDB >= 2.19: the refresh takes options)
        "SELECT EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'refresh_continuous_aggregate' "
        "AND 'options' = ANY(proargnames))"
    )
    call = "CALL refresh_continuous_aggregate($1::regclass, $2::timestamptz, $3::timestamptz" + (
        ", options => jsonb_build_object('buckets_per_batch', $4::int))" if batched else ")"
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    for view in BAR_VIEWS:
        width = _BAR_WIDTH_NS[view]  # (buckets of at most an hour: aligned to the epoch)
        lo_ns = None if start_ns is None else int(start_ns) // width * width
        hi_ns = None if end_ns is None else -(-int(end_ns) // width) * width
        if lo_ns is not None and hi_ns is not None and hi_ns <= lo_ns:
            hi_ns = lo_ns + width
        lo = None if lo_ns is None else ns_to_datetime(lo_ns)
        hi = None if hi_ns is None else ns_to_datetime(hi_ns)
        pause = 0.05
        while True:
            try:
                await conn.execute(call, view, lo, hi, *([_BAR_BUCKETS_PER_BATCH[view]] if batched else []))
                break
            except asyncpg.LockNotAvailableError:
                if loop.time() + pause > deadline:
                    raise
                await asyncio.sleep(pause)
                pause = min(2 * pause, 2.0)
    return len(BAR_VIEWS)


async def tick_symbols(conn: asyncpg.Connection) -> list[str]:
    """The symbols with stored ticks, sorted (by the database's collation).

    On TimescaleDB with more than :data:`READ_CHUNKS` chunks, one query per
    window of that many chunks (as :func:`read_ticks`).
    """
    cuts = await chunk_cuts(conn, None, None)
    found: set[str] = set()
    for w in range(len(cuts) + 1):
        conds = []
        if w > 0:
            conds.append(f"ts >= {cuts[w - 1]}")
        if w < len(cuts):
            conds.append(f"ts < {cuts[w]}")
        where = f"WHERE {' AND '.join(conds)}" if conds else ""
        found.update(r["symbol"] for r in await conn.fetch(f"SELECT DISTINCT symbol FROM ticks {where}"))
    return list(
        await conn.fetchval("SELECT array(SELECT s FROM unnest($1::text[]) s ORDER BY s)", list(found))
    )


async def tick_catalogue(
    conn: asyncpg.Connection, *, gap_ns: int = 3_600 * 10**9, symbols: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Per symbol: first_ns, last_ns, ticks, and the gaps longer than ``gap_ns``.

    ``gaps`` is a list of ``(from_ns, to_ns)`` (consecutive ticks further apart
    than ``gap_ns``), at most 20 per symbol, longest first; ``n_gaps`` counts all.

    On TimescaleDB with more than :data:`READ_CHUNKS` chunks, one query per
    window of that many chunks (as :func:`read_ticks`), merged here.
    """
    gap = timedelta(microseconds=gap_ns // 1000)
    args: list[Any] = [gap]
    if symbols is not None:
        args.append(list(symbols))
    cuts = await chunk_cuts(conn, None, None)
    found: dict[str, dict[str, Any]] = {}
    for w in range(len(cuts) + 1):
        conds = [] if symbols is None else ["symbol = ANY($2::text[])"]
        if w > 0:
            conds.append(f"ts >= {cuts[w - 1]}")
        if w < len(cuts):
            conds.append(f"ts < {cuts[w]}")
        where = f"WHERE {' AND '.join(conds)}" if conds else ""
        rows = await conn.fetch(
            f"""
            WITH t AS (
                SELECT symbol, ts, lag(ts) OVER (PARTITION BY symbol ORDER BY ts, seq) AS prev
                FROM ticks {where}
            ), s AS (
                SELECT symbol, min(ts) AS first, max(ts) AS last, count(*) AS n,
                       count(*) FILTER (WHERE ts - prev > $1) AS n_gaps
                FROM t GROUP BY symbol
            ), g AS (
                SELECT symbol, prev, ts,
                       row_number() OVER (PARTITION BY symbol ORDER BY ts - prev DESC, ts) AS r
                FROM t WHERE ts - prev > $1
            )
            SELECT s.symbol, s.first, s.last, s.n, s.n_gaps,
                   coalesce(array_agg(g.prev ORDER BY g.prev) FILTER (WHERE g.r IS NOT NULL), '{{}}') AS gap_from,
                   coalesce(array_agg(g.ts ORDER BY g.prev) FILTER (WHERE g.r IS NOT NULL), '{{}}') AS gap_to
            FROM s LEFT JOIN g ON g.symbol = s.symbol AND g.r <= 20
            GROUP BY s.symbol, s.first, s.last, s.n, s.n_gaps
            ORDER BY s.symbol
            """,
            *args,
        )
        for r in rows:
            gaps = list(zip(r["gap_from"], r["gap_to"], strict=True))
            cat = found.get(r["symbol"])
            if cat is None:
                found[r["symbol"]] = {
                    "first": r["first"],
                    "last": r["last"],
                    "n": r["n"],
                    "n_gaps": r["n_gaps"],
                    "gaps": gaps,
                }
                continue
            if r["first"] - cat["last"] > gap:  # the gap between two windows
                cat["n_gaps"] += 1
                cat["gaps"].append((cat["last"], r["first"]))
            cat["last"] = r["last"]
            cat["n"] += r["n"]
            cat["n_gaps"] += r["n_gaps"]
            cat["gaps"].extend(gaps)
    order = list(found)  # (one window: the query's order)
    if cuts:
        order = await conn.fetchval("SELECT array(SELECT s FROM unnest($1::text[]) s ORDER BY s)", order)
    out = []
    for symbol in order:
        cat = found[symbol]
        longest = sorted(cat["gaps"], key=lambda g: (-(g[1] - g[0]), g[1]))[:20]
        out.append(
            {
                "symbol": symbol,
                "first_ns": datetime_to_ns(cat["first"]),
                "last_ns": datetime_to_ns(cat["last"]),
                "ticks": int(cat["n"]),
                "n_gaps": int(cat["n_gaps"]),
                "gaps": [(datetime_to_ns(a), datetime_to_ns(b)) for a, b in sorted(longest)],
            }
        )
    return out


async def write_instrument(
    conn: asyncpg.Connection,
    symbol: str,
    *,
    tick_size: float | None = None,
    lot_size: float | None = None,
    currency: str | None = None,
) -> None:
    """Upsert one ``instruments`` row; fields given as None keep their stored value."""
    await conn.execute(
        """
        INSERT INTO instruments (symbol, tick_size, lot_size, currency) VALUES ($1, $2, $3, $4)
        ON CONFLICT (symbol) DO UPDATE SET
            tick_size = coalesce(EXCLUDED.tick_size, instruments.tick_size),
            lot_size = coalesce(EXCLUDED.lot_size, instruments.lot_size),
            currency = coalesce(EXCLUDED.currency, instruments.currency)
        """,
        symbol,
        tick_size,
        lot_size,
        currency,
    )
