"""Runs: their rows, status, progress, control requests and metrics."""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from ticktape.compute.metrics import RunMetrics
from ticktape.errors import SpecError
from ticktape.model.spec import ENDED, RUN_STATUSES, UNFINISHED, parse_run_id
from ticktape.store.codec import ns_to_datetime
from ticktape.store.results import stream_fills_and_equity

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------
# runs

#: Seconds a run's lease lasts: its owner (the command following it) renews
#: it every LEASE_RENEW_S; a run whose lease ran out lost its owner and is
#: failed by the next :func:`expire_leases` (docs/architecture.md, "Progress
#: and control").
LEASE_S = 10.0
#: How often an owner renews its runs' leases.
LEASE_RENEW_S = 2.0
#: How often a worker with the replay stage, and ``ticktape dashboard``,
#: expire lapsed leases.
LEASE_CHECK_S = 2.0


def json_value(value: Any) -> Any:
    """A jsonb column value as Python: asyncpg returns jsonb as text unless a
    codec is set, so decode strings and pass anything else through."""
    if isinstance(value, (str, bytes, bytearray)):
        return json.loads(value)
    return value


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


def _ts_param(ns: int | None) -> datetime | None:
    return None if ns is None else ns_to_datetime(ns)


async def create_run(
    conn: asyncpg.Connection,
    run_id: str | uuid.UUID,
    strategy: str | None,
    spec: Mapping[str, Any] | None,
    params: Mapping[str, Any] | None,
    symbols: Sequence[str],
    data_start_ns: int | None,
    data_end_ns: int | None,
    *,
    status: str = "pending",
    sweep_id: str | None = None,
    owner: str | None = None,
    lease_s: float = LEASE_S,
) -> None:
    """Insert the ``runs`` row (``started_at`` = now when ``status`` is running;
    grouped under ``sweep_id`` when given).

    A pending run is started by the replay agent (:func:`start_run`), so the
    run's wall time does not include waiting for a worker.

    ``owner`` (the command that follows the run, with its pid and host)
    takes a lease of ``lease_s`` seconds on the run, which it must renew
    (:func:`renew_leases`) until the run ended; once it runs out, the run is
    failed by :func:`expire_leases`. Without an owner the run has no lease.

    Raises
    ------
    SpecError
        A run with this id exists already (its status named): a run id is
        never reused, so a spec copied with its ``run_id`` cannot show the
        old run's results as its own.
    """
    if status not in RUN_STATUSES:
        raise ValueError(f"unknown run status {status!r}; expected one of {RUN_STATUSES}")
    rid = parse_run_id(run_id)
    created = await conn.fetchval(
        """
        INSERT INTO runs (run_id, status, started_at, strategy, spec, params, symbols,
                          data_start, data_end, sweep_id, owner, lease_until)
        VALUES ($1, $2, CASE WHEN $2 = 'running' THEN now() END, $3,
                $4::text::jsonb, $5::text::jsonb, $6, $7, $8, $9, $10,
                CASE WHEN $10::text IS NOT NULL THEN now() + make_interval(secs => $11) END)
        ON CONFLICT (run_id) DO NOTHING
        RETURNING true
        """,
        rid,
        status,
        strategy,
        _json(dict(spec) if spec is not None else None),
        _json(dict(params) if params is not None else None),
        list(symbols),
        _ts_param(data_start_ns),
        _ts_param(data_end_ns),
        None if sweep_id is None else uuid.UUID(str(sweep_id)),
        owner,
        float(lease_s),
    )
    if created:
        return
    old = await conn.fetchrow("SELECT status, created_at FROM runs WHERE run_id = $1", rid)
    when = f", created {old['created_at']:%Y-%m-%d %H:%M:%S %Z}" if old else ""
    raise SpecError(
        f"run_id: run {rid} exists already ({old['status'] if old else 'just created'}{when}); "
        f"leave run_id out of the spec for a new run, or delete that one first (ticktape runs delete {rid})"
    )


async def start_run(conn: asyncpg.Connection, run_id: str | uuid.UUID) -> None:
    """Mark a pending run as running (sets ``started_at`` once)."""
    await conn.execute(
        "UPDATE runs SET status = 'running', started_at = coalesce(started_at, now()) "
        "WHERE run_id = $1 AND status = 'pending'",
        uuid.UUID(str(run_id)),
    )


async def update_progress(
    conn: asyncpg.Connection,
    run_id: str | uuid.UUID,
    symbol: str,
    ticks_processed: int,
    last_ts_ns: int | None,
    done: bool = False,
    *,
    ticks_in: int | None = None,
    ticks_rejected: int | None = None,
    rejects: Mapping[str, int] | None = None,
    hot_lag_s: float | None = None,
    sink_lag_s: float | None = None,
) -> None:
    """Upsert the progress of one (run, symbol); counts are cumulative.

    Never moves backwards: a replayed (older) update keeps the larger counts,
    the later timestamp, ``done`` once set, and the ``rejects`` of the most
    advanced update (by processed + rejected). ``ticks_in`` (ticks read, known
    at the end of the stream) is kept when not given. The stage lags
    (seconds: replay -> hot path's results, results -> stored) are the
    latest given.
    """
    await conn.execute(
        """
        INSERT INTO run_progress (run_id, symbol, ticks_processed, last_ts, done, updated_at,
                                  ticks_in, ticks_rejected, rejects, hot_lag_s, sink_lag_s)
        VALUES ($1, $2, $3, $4, $5, now(), $6, coalesce($7, 0), coalesce($8::text::jsonb, '{}'::jsonb),
                $9, $10)
        ON CONFLICT (run_id, symbol) DO UPDATE SET
            ticks_processed = GREATEST(run_progress.ticks_processed, EXCLUDED.ticks_processed),
            ticks_rejected = GREATEST(run_progress.ticks_rejected, EXCLUDED.ticks_rejected),
            rejects = CASE
                WHEN $8::text IS NOT NULL
                     AND EXCLUDED.ticks_processed + EXCLUDED.ticks_rejected
                         >= run_progress.ticks_processed + run_progress.ticks_rejected
                THEN EXCLUDED.rejects ELSE run_progress.rejects END,
            ticks_in = GREATEST(run_progress.ticks_in, EXCLUDED.ticks_in),
            last_ts = GREATEST(run_progress.last_ts, EXCLUDED.last_ts),
            done = run_progress.done OR EXCLUDED.done,
            hot_lag_s = coalesce(EXCLUDED.hot_lag_s, run_progress.hot_lag_s),
            sink_lag_s = coalesce(EXCLUDED.sink_lag_s, run_progress.sink_lag_s),
            updated_at = now()
        """,
        uuid.UUID(str(run_id)),
        symbol,
        int(ticks_processed),
        _ts_param(last_ts_ns),
        bool(done),
        None if ticks_in is None else int(ticks_in),
        None if ticks_rejected is None else int(ticks_rejected),
        None if rejects is None else _json({str(k): int(v) for k, v in rejects.items()}),
        None if hot_lag_s is None else float(hot_lag_s),
        None if sink_lag_s is None else float(sink_lag_s),
    )


_FINISH_FIELDS = {
    "ticks_in": int,
    "ticks_processed": int,
    "ticks_rejected": int,
    "rejects": dict,
    "orders": int,
    "fills": int,
    "wall_seconds": float,
    "error": str,
}


async def finish_run(conn: asyncpg.Connection, run_id: str | uuid.UUID, status: str, **counts: Any) -> bool:
    """Set ``status``, ``finished_at`` = now and the given counts of a run
    that has not ended yet; return whether it did so.

    A run that already ended (complete, failed, cancelled: by a ``runs
    cancel``, an expired lease, another stage's failure) is left exactly as
    it is: its first ending stands.

    ``counts``: any of ticks_in, ticks_processed, ticks_rejected, rejects
    (dict reason -> count), orders, fills, wall_seconds, error.

    Raises
    ------
    LookupError
        No run ``run_id``.
    """
    if status not in RUN_STATUSES:
        raise ValueError(f"unknown run status {status!r}; expected one of {RUN_STATUSES}")
    unknown = set(counts) - set(_FINISH_FIELDS)
    if unknown:
        raise TypeError(f"finish_run got unknown fields {sorted(unknown)}; allowed: {sorted(_FINISH_FIELDS)}")
    sets = ["status = $2", "finished_at = now()"]
    args: list[Any] = [uuid.UUID(str(run_id)), status]
    for name, value in counts.items():
        args.append(value)
        if name == "rejects":
            args[-1] = _json(dict(value) if value is not None else {})
            sets.append(f"rejects = ${len(args)}::text::jsonb")
        else:
            if value is not None:
                args[-1] = _FINISH_FIELDS[name](value)
            sets.append(f"{name} = ${len(args)}")
    args.append(list(UNFINISHED))
    status_line = await conn.execute(
        f"UPDATE runs SET {', '.join(sets)} WHERE run_id = $1 AND status = ANY(${len(args)}::text[])", *args
    )
    if status_line.endswith(" 0"):
        if await conn.fetchval("SELECT 1 FROM runs WHERE run_id = $1", args[0]) is None:
            raise LookupError(f"no run {run_id} to finish")
        return False
    return True


async def end_unfinished_runs(
    conn: asyncpg.Connection, run_ids: Sequence[str | uuid.UUID], status: str, error: str
) -> list[str]:
    """Set ``status`` (failed or cancelled) and ``error`` on those of
    ``run_ids`` still pending, running or paused; returns their ids.

    A sink completing a run locks its row and completes it only while it is
    unfinished (agents/sink.py), so the two cannot both end the same run.
    """
    if status not in ("failed", "cancelled"):
        raise ValueError(f"end_unfinished_runs: status must be failed or cancelled, got {status!r}")
    rows = await conn.fetch(
        "UPDATE runs SET status = $2, error = $3, finished_at = now()"
        " WHERE run_id = ANY($1::uuid[]) AND status = ANY($4::text[]) RETURNING run_id",
        [uuid.UUID(str(r)) for r in run_ids],
        status,
        error,
        list(UNFINISHED),
    )
    return [str(r["run_id"]) for r in rows]


async def renew_leases(
    conn: asyncpg.Connection, run_ids: Sequence[str | uuid.UUID], lease_s: float = LEASE_S
) -> int:
    """Extend the leases of those of ``run_ids`` still unfinished and leased
    to ``lease_s`` seconds from now; returns how many were renewed (an ended
    run is never brought back)."""
    status_line = await conn.execute(
        "UPDATE runs SET lease_until = now() + make_interval(secs => $2)"
        " WHERE run_id = ANY($1::uuid[]) AND lease_until IS NOT NULL AND status = ANY($3::text[])",
        [parse_run_id(r) for r in run_ids],
        float(lease_s),
        list(UNFINISHED),
    )
    return int(status_line.rsplit(" ", 1)[-1])


async def expire_leases(conn: asyncpg.Connection) -> list[dict[str, str]]:
    """Fail every unfinished run whose lease ran out, naming its owner in
    ``runs.error``; returns them (``run_id``, ``error``).

    Its owner stopped renewing (killed, crashed, stopped, or cut off from the
    database for longer than the lease), and the worker it started died with
    it: nothing would end the run. A sink completing the run holds its row
    locked (agents/sink.py); this waits for it and then leaves the completed
    run as it is.
    """
    rows = await conn.fetch(
        "UPDATE runs SET status = 'failed', finished_at = now(),"
        " error = 'the command that started it stopped (' || owner || '): its lease ran out at '"
        "         || to_char(lease_until AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC'"
        " WHERE status = ANY($1::text[]) AND lease_until < now() RETURNING run_id, error",
        list(UNFINISHED),
    )
    for r in rows:
        log.warning("run %s failed: %s", r["run_id"], r["error"])
    return [{"run_id": str(r["run_id"]), "error": r["error"]} for r in rows]


async def write_metrics(
    conn: asyncpg.Connection, run_id: str | uuid.UUID, metrics: Mapping[str, float]
) -> None:
    """Upsert ``run_metrics`` rows (name -> value) of a run."""
    if not metrics:
        return
    run = uuid.UUID(str(run_id))
    await conn.executemany(
        "INSERT INTO run_metrics (run_id, name, value) VALUES ($1, $2, $3) "
        "ON CONFLICT (run_id, name) DO UPDATE SET value = EXCLUDED.value",
        [(run, str(name), None if value is None else float(value)) for name, value in metrics.items()],
    )


async def list_runs(conn: asyncpg.Connection, limit: int = 50) -> list[dict[str, Any]]:
    """The latest runs, newest first, as dicts (run_id as str, JSON decoded)."""
    rows = await conn.fetch(
        """
        SELECT run_id, created_at, started_at, finished_at, status, strategy,
               spec::text AS spec, params::text AS params, symbols, data_start, data_end,
               ticks_in, ticks_processed, ticks_rejected, rejects::text AS rejects,
               orders, fills, wall_seconds, error
        FROM runs ORDER BY created_at DESC, run_id LIMIT $1
        """,
        int(limit),
    )
    out = []
    for row in rows:
        item = dict(row)
        item["run_id"] = str(item["run_id"])
        for key in ("spec", "params", "rejects"):
            if item[key] is not None:
                item[key] = json.loads(item[key])
        out.append(item)
    return out


# --------------------------------------------------------------------------
# deleting runs

#: The tables holding a run's rows, keyed by ``run_id`` (the run's own row last).
RUN_TABLES = (
    "signals",
    "orders",
    "fills",
    "equity",
    "run_bars",
    "run_progress",
    "run_metrics",
    "sink_batches",
    "run_recordings",
    "montecarlo_studies",
    "runs",
)


@dataclass(frozen=True)
class Deleted:
    """What :func:`delete_runs` deleted: the runs (id, the status they had;
    ``gone`` for rows left by a run deleted before) and the rows per table
    (``ticks``: the ticks recorded for them)."""

    runs: list[tuple[str, str]]
    rows: dict[str, int]


async def delete_runs(
    conn: asyncpg.Connection,
    run_ids: Sequence[str | uuid.UUID] = (),
    *,
    older_than: timedelta | None = None,
    force: bool = False,
) -> Deleted:
    """Delete runs with everything they produced, in one transaction: their
    signals, orders, fills, equity, bars, progress, metrics, sink ledger and
    the ticks ``ticktape record`` stored for them (:func:`record_recording`).

    Parameters
    ----------
    run_ids
        The runs (SpecError naming one that does not exist).
    older_than
        Instead: every run created longer ago than this.
    force
        Delete unfinished runs too (their replay stops at its next poll;
        results a pipeline still had in flight may be stored after, and a
        later ``delete`` of the same id removes them). Without it an
        unfinished run is refused and nothing is deleted.
    """
    ids = [parse_run_id(r) for r in run_ids]
    async with conn.transaction():
        if older_than is not None:
            found = await conn.fetch(
                "SELECT run_id, status FROM runs WHERE created_at < now() - $1::interval"
                " ORDER BY created_at, run_id FOR UPDATE",
                older_than,
            )
        else:
            found = await conn.fetch(
                "SELECT run_id, status FROM runs WHERE run_id = ANY($1::uuid[])"
                " ORDER BY created_at, run_id FOR UPDATE",
                ids,
            )
            known = {r["run_id"] for r in found}
            for rid in ids:
                if rid in known:
                    continue
                # rows a pipeline stored after its run was deleted (--force) are deleted too
                if not await conn.fetchval(
                    "SELECT EXISTS (SELECT 1 FROM sink_batches WHERE run_id = $1)"
                    " OR EXISTS (SELECT 1 FROM run_progress WHERE run_id = $1)",
                    rid,
                ):
                    raise SpecError(f"run_id: no run {rid}")
                found.append({"run_id": rid, "status": "gone"})
        unfinished = [r for r in found if r["status"] in UNFINISHED]
        if unfinished and not force:
            first = unfinished[0]
            more = f" (and {len(unfinished) - 1} more unfinished)" if len(unfinished) > 1 else ""
            raise SpecError(
                f"run {first['run_id']} is {first['status']}{more}: cancel it first"
                f" (ticktape runs cancel {first['run_id']}) or delete it with --force"
            )
        targets = [r["run_id"] for r in found]
        rows = {"ticks": 0}
        for rec in await conn.fetch(
            "SELECT symbol, first_ts, last_ts FROM run_recordings WHERE run_id = ANY($1::uuid[])", targets
        ):
            status_line = await conn.execute(
                "DELETE FROM ticks WHERE symbol = $1 AND ts BETWEEN $2 AND $3",
                rec["symbol"],
                rec["first_ts"],
                rec["last_ts"],
            )
            rows["ticks"] += int(status_line.rsplit(" ", 1)[-1])
        for table in RUN_TABLES:
            status_line = await conn.execute(f"DELETE FROM {table} WHERE run_id = ANY($1::uuid[])", targets)
            rows[table] = int(status_line.rsplit(" ", 1)[-1])
    for r in found:
        log.info("run %s (%s) deleted", r["run_id"], r["status"])
    return Deleted([(str(r["run_id"]), r["status"]) for r in found], rows)


async def record_recording(
    conn: asyncpg.Connection, run_id: str | uuid.UUID, symbol: str, first_ns: int, last_ns: int
) -> None:
    """Note that ``ticktape record`` stored ticks of ``run_id`` under ``symbol``
    from ``first_ns`` to ``last_ns`` (a later call widens the range), so that
    :func:`delete_runs` deletes them with the run."""
    await conn.execute(
        "INSERT INTO run_recordings (run_id, symbol, first_ts, last_ts) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (run_id, symbol) DO UPDATE SET"
        " first_ts = LEAST(run_recordings.first_ts, EXCLUDED.first_ts),"
        " last_ts = GREATEST(run_recordings.last_ts, EXCLUDED.last_ts)",
        parse_run_id(run_id),
        symbol,
        ns_to_datetime(first_ns),
        ns_to_datetime(last_ns),
    )


# --------------------------------------------------------------------------
# the end of a run


async def complete_if_done(conn: asyncpg.Connection, run_id: str, extra_metrics: dict | None = None) -> bool:
    """Finish ``run_id`` once all its symbols are done; True if it finished now.

    Several sinks (workers) may reach the ends of a run's symbols at the same
    time: the run row is locked first, so the last of them to commit its
    progress sees every symbol done.
    """
    async with conn.transaction():
        return await _complete_locked(conn, run_id, extra_metrics or {})


async def _complete_locked(conn: asyncpg.Connection, run_id: str, extra_metrics: dict) -> bool:
    run = await conn.fetchrow(
        "SELECT status, symbols, spec, extract(epoch FROM now() - started_at) AS wall"
        " FROM runs WHERE run_id = $1 FOR UPDATE",
        run_id,
    )
    if run is None or run["status"] not in UNFINISHED:
        return False
    prog = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE done) AS done, coalesce(sum(ticks_in), 0) AS ticks_in,"
        " coalesce(sum(ticks_processed), 0) AS processed, coalesce(sum(ticks_rejected), 0) AS rejected"
        " FROM run_progress WHERE run_id = $1",
        run_id,
    )
    if prog["done"] < len(run["symbols"]):
        return False
    # every result batch of every symbol is stored: seq 0 .. the end-of-stream batch's
    gaps = await conn.fetch(
        "SELECT symbol, max(seq) + 1 - count(*) AS missing FROM sink_batches"
        " WHERE run_id = $1 AND stream = 'results' GROUP BY symbol HAVING max(seq) + 1 <> count(*)",
        run_id,
    )
    rejects: dict[str, int] = {}
    for row in await conn.fetch("SELECT rejects FROM run_progress WHERE run_id = $1", run_id):
        for reason, n in (json_value(row["rejects"]) or {}).items():
            rejects[reason] = rejects.get(reason, 0) + int(n)
    orders = await conn.fetchval("SELECT count(DISTINCT order_id) FROM orders WHERE run_id = $1", run_id)
    fills = await conn.fetchval("SELECT count(*) FROM fills WHERE run_id = $1", run_id)
    spec = json_value(run["spec"])
    # fills and equity stream through RunMetrics: memory does not grow with the run's length
    acc = RunMetrics(
        run["symbols"], spec["engine"]["initial_cash"], keep_trades=False, grid=spec.get("return_grid")
    )
    # closed at once if this raises: the COPY must not hold the connection the rollback needs
    async with contextlib.aclosing(stream_fills_and_equity(conn, run_id, run["symbols"])) as pieces:
        async for fills_of, samples in pieces:
            for symbol, f in zip(acc.symbols, fills_of, strict=True):
                acc.add_fills(symbol, f)
            acc.add(*samples)
    metrics, _ = acc.result()
    metrics = {k: v for k, v in metrics.items() if isinstance(v, int | float)}
    metrics.update({"orders": orders, "fills": fills, **extra_metrics})
    lost = prog["ticks_in"] - prog["processed"] - prog["rejected"]
    status, error = "complete", None
    if lost:
        status = "failed"
        error = f"{lost} ticks read but neither processed nor rejected"
    elif gaps:
        status = "failed"
        error = "result batches missing: " + ", ".join(f"{g['symbol']} {g['missing']}" for g in gaps)
    await write_metrics(conn, run_id, metrics)
    await finish_run(
        conn,
        run_id,
        status,
        ticks_in=prog["ticks_in"],
        ticks_processed=prog["processed"],
        ticks_rejected=prog["rejected"],
        rejects=rejects,
        orders=orders,
        fills=fills,
        wall_seconds=float(run["wall"] or 0.0),
        error=error,
    )
    log.info("run %s %s", run_id, status)
    return True


async def run_with_metrics(conn: asyncpg.Connection, run_id: str | uuid.UUID) -> dict[str, Any]:
    """The ``runs`` row of ``run_id`` as a dict, with its ``metrics`` (name -> value)."""
    rid = uuid.UUID(str(run_id))
    run = dict(await conn.fetchrow("SELECT * FROM runs WHERE run_id = $1", rid))
    run["metrics"] = {
        r["name"]: r["value"]
        for r in await conn.fetch("SELECT name, value FROM run_metrics WHERE run_id = $1", rid)
    }
    return run


async def run_status(conn: asyncpg.Connection, run_id: str | uuid.UUID) -> str | None:
    """The status of ``run_id`` (None: no such run)."""
    return await conn.fetchval("SELECT status FROM runs WHERE run_id = $1", uuid.UUID(str(run_id)))


async def run_symbols(conn: asyncpg.Connection, run_id: str | uuid.UUID) -> list[str]:
    """The symbols of ``run_id`` (none: no such run)."""
    return list(
        await conn.fetchval("SELECT symbols FROM runs WHERE run_id = $1", uuid.UUID(str(run_id))) or []
    )


async def watch_rows(conn: asyncpg.Connection, run_ids: Sequence[str]) -> list[asyncpg.Record]:
    """Per run being watched: ``status``, ``n`` (ticks through the pipeline),
    ``started_at``, ``until`` (finished, or now) and ``ending`` (every symbol done)."""
    return await conn.fetch(
        "SELECT r.status, coalesce(sum(p.ticks_processed + coalesce(p.ticks_rejected, 0)), 0) AS n,"
        " r.started_at, coalesce(r.finished_at, now()) AS until,"
        " count(*) FILTER (WHERE p.done) >= max(cardinality(r.symbols)) AS ending"
        " FROM runs r LEFT JOIN run_progress p USING (run_id)"
        " WHERE r.run_id = ANY($1::uuid[]) GROUP BY r.run_id, r.status",
        list(run_ids),
    )


# --------------------------------------------------------------------------
# progress, as `ticktape runs show` and the dashboard read it


async def find_run(conn: asyncpg.Connection, run_id: str) -> asyncpg.Record:
    """The ``runs`` row of ``run_id``; SpecError naming ``run_id`` if it is not
    a UUID or no such run exists."""
    rid = parse_run_id(run_id)
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


# --------------------------------------------------------------------------
# run control: pause, resume, cancel (the CLI asks, the replay's RunGate polls)

ACTIONS = ("pause", "resume", "cancel")


async def request_control(conn: asyncpg.Connection, run_id: str, action: str) -> str:
    """Ask the replay of ``run_id`` to pause, resume or cancel; return its status.

    A cancel ends the run at once (``cancelled``): whether a replay still
    serves it or not (it finished, or its worker is gone), the request is
    never left waiting. A replay still going stops at its next poll of
    ``runs.control``; a sink leaves the ended run as it is.
    """
    if action not in ACTIONS:
        raise SpecError(f"action: expected one of {', '.join(ACTIONS)}, got {action!r}")
    run = await find_run(conn, run_id)
    rid, status = run["run_id"], run["status"]
    if status in ENDED:
        raise SpecError(f"run_id: run {run_id} is already {status}")
    if action == "cancel":
        ended = await conn.fetchval(
            "UPDATE runs SET control = 'cancel', status = 'cancelled', finished_at = now(),"
            " error = 'cancelled by request' WHERE run_id = $1 AND status = ANY($2::text[])"
            " RETURNING status",
            rid,
            list(UNFINISHED),
        )
        if ended is None:  # it ended meanwhile
            raise SpecError(f"run_id: run {run_id} is already {await run_status(conn, rid)}")
        return ended
    await conn.execute(
        "UPDATE runs SET control = $2 WHERE run_id = $1", rid, "pause" if action == "pause" else None
    )
    return status


async def read_control(conn: asyncpg.Connection, run_id: uuid.UUID) -> str | None:
    """The control request in force for a run (pause, cancel or None);
    ``cancel`` too once the run ended (cancelled, failed by an expired lease)
    or was deleted: its replay must stop."""
    row = await conn.fetchrow("SELECT control, status FROM runs WHERE run_id = $1", run_id)
    if row is None or row["status"] in ENDED:
        return "cancel"
    return row["control"]


async def record_ticks_read(conn: asyncpg.Connection, run_id: uuid.UUID, read: Mapping[str, int]) -> None:
    """Raise each symbol's ``ticks_read`` to at least the given count."""
    await conn.executemany(
        "INSERT INTO run_progress (run_id, symbol, ticks_read) VALUES ($1, $2, $3)"
        " ON CONFLICT (run_id, symbol) DO UPDATE"
        " SET ticks_read = GREATEST(run_progress.ticks_read, EXCLUDED.ticks_read)",
        [(run_id, s, n) for s, n in read.items()],
    )


async def set_replay_status(conn: asyncpg.Connection, run_id: uuid.UUID, status: str) -> None:
    """``running`` <-> ``paused`` while the replay honours a pause (never an ended run)."""
    await conn.execute(
        "UPDATE runs SET status = $2 WHERE run_id = $1 AND status IN ('running', 'paused')", run_id, status
    )
