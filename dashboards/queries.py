"""SQL behind the dashboard, run read-only: every query in a read-only
transaction logged in as the role ``ticktape_reader`` (``session.run(...,
readonly=True)``), so the server refuses any write, whatever the SQL."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
import pandas as pd

from ticktape.errors import SqlRefused
from ticktape.report.build import build
from ticktape.report.render import render
from ticktape.store import session
from ticktape.store.catalogue import tick_catalogue, tick_symbols
from ticktape.store.runs import json_value, run_progress

T = TypeVar("T")


def _read(dsn: str, op: Callable[[asyncpg.Connection], Awaitable[T]], typed: bool = False) -> T:
    """``await op(conn)`` in a read-only session of its own (the store's one session helper)."""
    return session.run(op, dsn=dsn, readonly=True, typed=typed)


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


# ------------------------------------------------------------------ the pages' queries
#: Metrics the runs table shows as columns (run_metrics names).
RUN_COLUMNS = ("total_return", "sharpe", "max_drawdown_pct", "n_trades", "return_grid_ns")


def run_row(dsn: str, run_id: str) -> dict | None:
    """One run's row (None: no such run)."""
    rows = frame(
        dsn,
        "SELECT run_id::text AS run_id, status, strategy, symbols, created_at, started_at, finished_at,"
        " data_start, data_end, ticks_processed, ticks_rejected, orders, fills, wall_seconds, error,"
        " sweep_id::text AS sweep_id, spec, (spec->'engine'->>'initial_cash')::float8 AS initial_cash"
        " FROM runs WHERE run_id = $1::uuid",
        run_id,
    )
    if rows.empty:
        return None
    row = rows.iloc[0].to_dict()
    row["spec"] = json_value(row["spec"]) or {}
    return row


def runs_overview(
    dsn: str,
    limit: int = 500,
    *,
    strategies: list[str] | None = None,
    symbols: list[str] | None = None,
    statuses: list[str] | None = None,
    sweeps: list[str] | None = None,
    since: Any = None,
) -> pd.DataFrame:
    """The latest ``limit`` runs passing the filters (each None or empty: any),
    with their headline metrics as columns: strategy, symbols, period,
    status, return, Sharpe, max drawdown, trades, ticks/s."""
    conds: list[str] = []
    args: list[Any] = [limit]
    for sql, value in (
        ("r.strategy = ANY(${})", strategies),
        ("r.symbols && ${}::text[]", symbols),
        ("r.status = ANY(${})", statuses),
        ("r.sweep_id::text = ANY(${})", sweeps),
        ("r.created_at >= ${}", since),
    ):
        if value:
            args.append(value)
            conds.append(sql.format(len(args)))
    where = f" WHERE {' AND '.join(conds)}" if conds else ""
    return frame(
        dsn,
        "SELECT r.run_id::text AS run_id, r.status, r.strategy, array_to_string(r.symbols, ',') AS symbols,"
        " r.data_start, r.data_end, r.created_at, r.sweep_id::text AS sweep_id, r.fills,"
        " CASE WHEN r.wall_seconds > 0 THEN r.ticks_processed / r.wall_seconds END AS ticks_per_s,"
        " (r.spec->'engine'->>'initial_cash')::float8 AS initial_cash,"
        " m.total_return, m.sharpe, m.max_drawdown_pct, m.n_trades, m.return_grid_ns"
        " FROM runs r LEFT JOIN LATERAL ("
        "   SELECT max(value) FILTER (WHERE name = 'total_return') AS total_return,"
        "          max(value) FILTER (WHERE name = 'sharpe') AS sharpe,"
        "          max(value) FILTER (WHERE name = 'max_drawdown_pct') AS max_drawdown_pct,"
        "          max(value) FILTER (WHERE name = 'n_trades') AS n_trades,"
        "          max(value) FILTER (WHERE name = 'return_grid_ns') AS return_grid_ns"
        "   FROM run_metrics WHERE run_id = r.run_id) m ON true"
        f"{where} ORDER BY r.created_at DESC LIMIT $1",
        *args,
    )


def run_choices(dsn: str) -> dict[str, list[str]]:
    """The values the runs' filters offer: strategies, symbols, statuses, sweeps."""

    async def op(conn: asyncpg.Connection) -> dict[str, list[str]]:
        return {
            "strategies": await conn.fetchval("SELECT array(SELECT DISTINCT strategy FROM runs ORDER BY 1)"),
            "symbols": await conn.fetchval(
                "SELECT array(SELECT DISTINCT unnest(symbols) FROM runs ORDER BY 1)"
            ),
            "statuses": await conn.fetchval("SELECT array(SELECT DISTINCT status FROM runs ORDER BY 1)"),
            "sweeps": await conn.fetchval(
                "SELECT array(SELECT DISTINCT sweep_id::text FROM runs WHERE sweep_id IS NOT NULL ORDER BY 1)"
            ),
        }

    return {k: [x for x in v if x is not None] for k, v in _read(dsn, op).items()}


def open_orders(dsn: str, run_id: str, symbol: str, at_ns: int) -> pd.DataFrame:
    """Orders of ``symbol`` still working at ``at_ns``: their latest event by
    then is neither FILLED (3), CANCELLED (4) nor REJECTED (5)."""
    return frame(
        dsn,
        "SELECT order_id, side, type, price, qty, ts AS since FROM ("
        " SELECT DISTINCT ON (order_id) order_id, side, type, event, price, qty, ts FROM orders"
        " WHERE run_id = $1::uuid AND symbol = $2 AND ts_ns <= $3 ORDER BY order_id, ts_ns DESC, event DESC"
        ") o WHERE event NOT IN (3, 4, 5) ORDER BY order_id LIMIT 200",
        run_id,
        symbol,
        int(at_ns),
    )


def ticks(dsn: str, symbol: str, start_ns: int, end_ns: int, limit: int) -> pd.DataFrame:
    """Stored ticks of ``symbol`` in ``[start_ns, end_ns]`` (at most ``limit``), with the mid."""
    return frame(
        dsn,
        "SELECT ts, bid, ask, (bid + ask) / 2 AS mid FROM ticks WHERE symbol = $1"
        " AND ts BETWEEN to_timestamp($2::float8 / 1e9) AND to_timestamp($3::float8 / 1e9)"
        " ORDER BY ts LIMIT $4",
        symbol,
        int(start_ns),
        int(end_ns),
        limit,
    )


def tick_count(dsn: str, symbol: str, start_ns: int, end_ns: int) -> int:
    """How many ticks of ``symbol`` lie in ``[start_ns, end_ns]``."""
    got = frame(
        dsn,
        "SELECT count(*) AS n FROM ticks WHERE symbol = $1"
        " AND ts BETWEEN to_timestamp($2::float8 / 1e9) AND to_timestamp($3::float8 / 1e9)",
        symbol,
        int(start_ns),
        int(end_ns),
    )
    return int(got["n"].iloc[0])


def sweeps(dsn: str) -> pd.DataFrame:
    """Stored sweeps: id, strategy, runs, created."""
    return frame(
        dsn,
        "SELECT sweep_id::text AS sweep_id, min(strategy) AS strategy, count(*) AS runs,"
        " min(created_at) AS created_at FROM runs WHERE sweep_id IS NOT NULL"
        " GROUP BY sweep_id ORDER BY min(created_at) DESC",
    )


def sweep_runs(dsn: str, sweep_id: str) -> pd.DataFrame:
    """The runs of a sweep: run id, params (a dict) and every metric as a column."""
    rows = frame(
        dsn,
        "SELECT r.run_id::text AS run_id, r.params, m.name, m.value FROM runs r"
        " LEFT JOIN run_metrics m USING (run_id) WHERE r.sweep_id = $1::uuid",
        sweep_id,
    )
    if rows.empty:
        return rows
    wide = rows.pivot_table(index="run_id", columns="name", values="value", aggfunc="first").reset_index()
    params = rows.drop_duplicates("run_id").set_index("run_id")["params"].map(lambda p: json_value(p) or {})
    wide["params"] = wide["run_id"].map(params)
    return wide


def catalogue(dsn: str) -> list[dict]:
    """Per stored symbol: first_ns, last_ns, ticks, gaps over an hour (``store.tick_catalogue``)."""
    return _read(dsn, tick_catalogue)


def coverage(dsn: str, symbol: str) -> pd.DataFrame:
    """Ticks of ``symbol`` per day (UTC)."""
    return frame(
        dsn,
        "SELECT date_trunc('day', ts) AS day, count(*) AS ticks FROM ticks WHERE symbol = $1 GROUP BY 1 ORDER BY 1",
        symbol,
    )


#: Ready queries of the SQL page (``$1`` is a run id, ``$2`` a second one).
READY = {
    "PnL by day": "SELECT date_trunc('day', ts) AS day, symbol,\n"
    "       (array_agg(equity ORDER BY ts DESC))[1] - (array_agg(equity ORDER BY ts))[1] AS pnl\n"
    "FROM equity WHERE run_id = $1::uuid GROUP BY 1, 2 ORDER BY 1, 2",
    "Fills by hour": "SELECT date_trunc('hour', ts) AS hour, count(*) AS fills, sum(qty) AS qty\n"
    "FROM fills WHERE run_id = $1::uuid GROUP BY 1 ORDER BY 1",
    "Slippage against the mid": "SELECT f.ts, f.symbol, f.side, f.price, t.mid,\n"
    "       f.side * (f.price - t.mid) / t.mid * 1e4 AS slippage_bps\n"
    "FROM fills f CROSS JOIN LATERAL (\n"
    "  SELECT (bid + ask) / 2 AS mid FROM ticks\n"
    "  WHERE symbol = f.symbol AND ts <= f.ts ORDER BY ts DESC LIMIT 1) t\n"
    "WHERE f.run_id = $1::uuid ORDER BY f.ts LIMIT 5000",
    "Fill ratio of limit orders": "SELECT count(DISTINCT order_id) FILTER (WHERE event IN (2, 3))::float8\n"
    "       / nullif(count(DISTINCT order_id), 0) AS fill_ratio, count(DISTINCT order_id) AS limit_orders\n"
    "FROM orders WHERE run_id = $1::uuid AND type = 1",
    "Drawdown periods": "WITH e AS (SELECT ts, sum(equity) OVER (PARTITION BY ts) AS eq FROM equity\n"
    "           WHERE run_id = $1::uuid),\n"
    "     p AS (SELECT DISTINCT ts, eq, max(eq) OVER (ORDER BY ts) AS peak FROM e)\n"
    "SELECT date_trunc('hour', ts) AS hour, min(eq / peak - 1) AS drawdown\n"
    "FROM p GROUP BY 1 ORDER BY 1",
    "Two runs compared fill by fill": "SELECT coalesce(a.n, b.n) AS n, a.ts AS ts_a, a.side AS side_a, a.price AS price_a,\n"
    "       b.ts AS ts_b, b.side AS side_b, b.price AS price_b\n"
    "FROM (SELECT row_number() OVER (ORDER BY ts, order_id) AS n, * FROM fills WHERE run_id = $1::uuid) a\n"
    "FULL JOIN (SELECT row_number() OVER (ORDER BY ts, order_id) AS n, * FROM fills WHERE run_id = $2::uuid) b\n"
    "USING (n) ORDER BY n LIMIT 5000",
}


def user_sql(
    dsn: str, sql: str, args: tuple = (), limit: int = 10_000, timeout_ms: int = 10_000
) -> tuple[pd.DataFrame, bool]:
    """Run SQL a user typed as the read-only role, in a read-only transaction
    with ``statement_timeout`` = ``timeout_ms``; at most ``limit`` rows.

    Returns (rows, cut: more rows than ``limit`` existed). The server refuses
    any write, DDL or COPY (read-only transaction, a role that may only
    SELECT) and a query running longer than the timeout; asyncpg refuses
    several statements in one; :class:`~ticktape.errors.SqlRefused` what
    returns no rows (COPY ... TO STDOUT, SET, ...).
    """

    async def op(conn: asyncpg.Connection) -> tuple[list, bool]:
        await conn.execute(f"SET LOCAL statement_timeout = {int(timeout_ms)}")
        stmt = await conn.prepare(sql)
        if not stmt.get_attributes():
            raise SqlRefused(
                "only a query that returns rows runs here (SELECT, WITH, VALUES, TABLE, EXPLAIN), not "
                + (sql.split() or ["nothing"])[0].upper()
            )
        rows = await (await stmt.cursor(*args)).fetch(limit + 1)
        cols = [a.name for a in stmt.get_attributes()]
        return [cols, [tuple(r) for r in rows[:limit]]], len(rows) > limit

    (cols, rows), cut = _read(dsn, op, typed=True)
    return pd.DataFrame(rows, columns=cols), cut


def metrics_of(dsn: str, run_id: str) -> dict[str, float]:
    """The run's metrics, name -> value (empty while it runs)."""
    m = metrics(dsn, run_id)
    return {} if m.empty else dict(zip(m["name"], m["value"], strict=True))


def equity_after(dsn: str, run_id: str, after_ns: int, limit: int = 20_000) -> pd.DataFrame:
    """The run's equity samples later than ``after_ns`` (what a live chart has not shown yet)."""
    return frame(
        dsn,
        "SELECT ts, ts_ns, symbol, equity, position FROM equity"
        " WHERE run_id = $1::uuid AND ts_ns > $2 ORDER BY ts_ns, symbol LIMIT $3",
        run_id,
        int(after_ns),
        limit,
    )


def symbol_spans(dsn: str) -> pd.DataFrame:
    """Each stored symbol's first and last tick time (by the (symbol, ts) key: no scan of the ticks)."""

    async def op(conn: asyncpg.Connection) -> list:
        return await conn.fetch(
            "SELECT s AS symbol, (SELECT min(ts) FROM ticks WHERE symbol = s) AS first,"
            " (SELECT max(ts) FROM ticks WHERE symbol = s) AS last FROM unnest($1::text[]) s",
            await tick_symbols(conn),
        )

    rows = _read(dsn, op)
    return pd.DataFrame([dict(r) for r in rows]) if rows else pd.DataFrame()


def fill_markers(
    dsn: str, run_id: str, symbol: str, start_ns: int, end_ns: int, most: int, width_ns: int
) -> tuple[pd.DataFrame, bool]:
    """The fills of ``symbol`` in ``[start_ns, end_ns]`` as chart markers:
    each fill (``n`` = 1) when there are at most ``most``, else each side's
    fills merged per ``width_ns``-wide time bucket: quantity summed, at the
    quantity-weighted price, stamped with the bucket's first fill, ``n`` the
    fills merged. Returns (markers, merged). Counted and merged in SQL: a
    run's 100,000s of fills never leave the server."""

    async def op(conn: asyncpg.Connection) -> tuple[list, bool]:
        where = "run_id = $1::uuid AND symbol = $2 AND ts_ns BETWEEN $3 AND $4"
        args = (run_id, symbol, int(start_ns), int(end_ns))
        n = await conn.fetchval(f"SELECT count(*) FROM fills WHERE {where}", *args)
        if n <= most:
            rows = await conn.fetch(
                f"SELECT ts, ts_ns, side, price, qty, 1 AS n FROM fills WHERE {where} ORDER BY ts_ns", *args
            )
            return rows, False
        rows = await conn.fetch(
            "SELECT min(ts) AS ts, min(ts_ns) AS ts_ns, side, sum(price * qty) / sum(qty) AS price,"
            f" sum(qty) AS qty, count(*) AS n FROM fills WHERE {where}"
            " GROUP BY (ts_ns - $3) / $5, side ORDER BY 2",
            *args,
            int(width_ns),
        )
        return rows, True

    rows, merged = _read(dsn, op)
    cols = ["ts", "ts_ns", "side", "price", "qty", "n"]
    return (pd.DataFrame([dict(r) for r in rows]) if rows else pd.DataFrame(columns=cols)), merged


def recent_fills(dsn: str, run_id: str, symbol: str, upto_ns: int, n: int = 20) -> pd.DataFrame:
    """The last ``n`` fills of ``symbol`` at or before ``upto_ns``, latest first."""
    return frame(
        dsn,
        "SELECT ts, order_id, side, price, qty, fee FROM fills"
        " WHERE run_id = $1::uuid AND symbol = $2 AND ts_ns <= $3 ORDER BY ts_ns DESC LIMIT $4",
        run_id,
        symbol,
        int(upto_ns),
        n,
    )


def report(dsn: str, ident: str, metric: str = "sharpe") -> tuple[str, str]:
    """The report on a run or a sweep, as ``ticktape report`` writes it: (title, HTML page)."""
    title, sections = _read(dsn, lambda conn: build(conn, ident, metric=metric))
    return title, render(title, sections)
