"""``ticktape demo``: synthetic ticks -> store -> Faust pipeline -> results table.

Everything runs on the embedded broker and PostgreSQL unless
TICKTAPE_KAFKA_URL / TICKTAPE_DATABASE_URL point elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ticktape import store
from ticktape.compute import labels
from ticktape.config import Settings, mask_dsn
from ticktape.data.synth import RandomWalkConfig, generate_walk
from ticktape.errors import DemoError
from ticktape.model.spec import RunSpec
from ticktape.model.sweep import SweepRequest
from ticktape.pipeline import control, sources, topics
from ticktape.pipeline.topics import APP_ID
from ticktape.pipeline.worker import WorkerProcess
from ticktape.runtime.embedded import Runtime
from ticktape.store import session
from ticktape.strategy.catalog import check_run

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class DemoOptions:
    ticks_per_symbol: int = 600_000
    symbols: tuple[str, ...] = ("DEMO-A", "DEMO-B")
    seed: int = 7
    fast: int = 50
    slow: int = 400
    timeout_s: float = 600.0


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


async def store_demo_data(dsn: str, opts: DemoOptions, console: Console) -> None:
    """Generate the demo ticks and store them (skipped when already stored)."""
    conn = await store.connect(dsn)
    try:
        todo = []
        for sym in opts.symbols:
            if await store.count_ticks(conn, sym) != opts.ticks_per_symbol:
                todo.append(sym)
        if not todo:
            console.print(
                f"demo data already stored: {len(opts.symbols)} symbols x {opts.ticks_per_symbol:,} ticks"
            )
            return
        with _progress(console) as bar:
            task = bar.add_task("generate + store ticks", total=len(todo) * opts.ticks_per_symbol, rate="")
            t0 = time.perf_counter()
            done = 0
            for sym in todo:
                await store.delete_ticks(conn, sym)
            # one writer for every symbol: months in bulk, stored in key order (and, on
            # TimescaleDB, a day of every symbol loaded as one new chunk)
            async with store.TickWriter(conn) as writer:
                for sym in todo:
                    cfg = RandomWalkConfig(symbol=sym, n_ticks=opts.ticks_per_symbol, seed=opts.seed)
                    seq0 = 0
                    for chunk in generate_walk(cfg, chunk=200_000):
                        await writer.write(sym, chunk, seq0)
                        seq0 += len(chunk)
                        done += len(chunk)
                        rate = done / max(time.perf_counter() - t0, 1e-9)
                        bar.update(task, completed=done, rate=f"{rate:,.0f} ticks/s")
    finally:
        await conn.close()


def runs_rate(rows: Sequence[Mapping[str, Any]]) -> str:
    """Ticks/s of runs so far, for the progress bar: ticks done (``n``) over
    the runs' own time, from the first ``started_at`` to the last
    ``until`` (``finished_at``, or now while running), so that a run which
    ended between two polls shows its real rate."""
    n = sum(int(r["n"]) for r in rows)
    started = [r["started_at"] for r in rows if r["started_at"] is not None]
    wall = (max(r["until"] for r in rows) - min(started)).total_seconds() if started else 0.0
    return f"{n / wall:,.0f} ticks/s" if n and wall > 0 else "waiting for worker"


async def _send_requests(kafka_url: str, specs: list[RunSpec], request: SweepRequest | None = None) -> None:
    for spec in specs:  # (refused here, before the worker sees it)
        check_run(spec)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_url)
    await producer.start()
    try:
        if request is not None:  # one request for all the runs of a sweep
            await producer.send_and_wait(
                f"{APP_ID}.run-requests", request.to_json().encode(), key=request.sweep_id.encode()
            )
            return
        for spec in specs:
            await producer.send_and_wait(
                f"{APP_ID}.run-requests", spec.to_json().encode(), key=spec.run_id.encode()
            )
    finally:
        await producer.stop()


def not_timed(rows: Sequence[Mapping[str, Any]]) -> bool:
    """Whether a watch of these runs (``status``, ``ending``: every symbol
    done) should not count time without progress as a stall: a run is
    paused (it waits for its user), or every unfinished one is running and
    ending (computing its metrics: minutes over years of ticks)."""
    unfinished = [r for r in rows if r["status"] in store.UNFINISHED]
    return any(r["status"] == "paused" for r in unfinished) or all(
        r["status"] == "running" and r["ending"] for r in unfinished
    )


async def _watch(
    conn: asyncpg.Connection,
    ids: list[str],
    label: str,
    total: int | None,
    worker: WorkerProcess,
    console: Console,
    timeout_s: float,
    stall_s: float | None,
) -> None:
    """Follow the runs until each ended; DemoError when the worker exits, the
    time is up, a run was deleted, or (``stall_s`` not None) no tick was
    processed for ``stall_s`` seconds while a run was pending or replaying
    (not paused, not ending)."""
    deadline = time.monotonic() + timeout_s
    moved, last_n = time.monotonic(), -1
    with _progress(console) as bar:
        task = bar.add_task(label, total=total, rate="")
        while True:
            rows = await store.watch_rows(conn, ids)
            if len(rows) < len(ids):
                raise DemoError(f"{label}: {len(ids) - len(rows)} of its runs deleted while running")
            n = sum(int(r["n"]) for r in rows)
            bar.update(task, completed=n, rate=runs_rate(rows))
            if all(r["status"] in store.ENDED for r in rows):
                return
            now = time.monotonic()
            if n != last_n or not_timed(rows):
                moved, last_n = now, n
            if not worker.alive():
                raise DemoError(f"the Faust worker exited; last log lines:\n{worker.log_tail()}")
            if now > deadline:
                raise DemoError(f"{label} did not finish in {timeout_s:.0f} s; worker log: {worker.log_path}")
            if stall_s is not None and now - moved > stall_s:
                raise DemoError(
                    f"{label}: no progress for {stall_s:.0f} s at {n:,} ticks; worker log: {worker.log_path}, "
                    f"last lines:\n{worker.log_tail()}"
                )
            await asyncio.sleep(0.2)


async def _create_runs(
    dsn: str, specs: list[RunSpec], owner: str | None, sweep_id: str | None, data_range: bool
) -> None:
    conn = await store.connect(dsn)
    try:
        await store.expire_leases(conn)  # (this command looks at runs too)
        async with conn.transaction():  # all or none: a reused run id leaves no run behind
            for spec in specs:
                first, last = spec.start_ns, spec.end_ns
                if data_range and spec.source["kind"] == "store":
                    ranges = [r for r in [await store.tick_span(conn, sym) for sym in spec.symbols] if r]
                    if ranges:
                        lo, hi = min(r[0] for r in ranges), max(r[1] for r in ranges)
                        first = lo if first is None else max(first, lo)
                        last = hi if last is None else min(last, hi)
                await store.create_run(
                    conn,
                    spec.run_id,
                    spec.strategy,
                    json.loads(spec.to_json()),
                    spec.params,
                    list(spec.symbols),
                    first,
                    last,
                    sweep_id=sweep_id,
                    owner=owner,
                )
    finally:
        await conn.close()


async def _end_runs(dsn: str, ids: list[str], status: str, error: str) -> None:
    conn = await store.connect(dsn)
    try:
        await store.end_unfinished_runs(conn, ids, status, error)
    finally:
        await conn.close()


@contextlib.contextmanager
def owned_runs(
    dsn: str, specs: list[RunSpec], command: str, sweep_id: str | None = None, data_range: bool = True
) -> Iterator[list[str]]:
    """Create the runs of ``specs`` owned by this command (``ticktape
    <command>``), keep their leases while in the block, and yield their ids
    (``data_range``: note the stored ticks' range of a store-source run).

    Refuses (SpecError, nothing created) a run id that exists already. When
    the block is left by an exception (the worker exited, the time is up,
    Ctrl-C...) the runs still unfinished are marked failed (cancelled when
    interrupted) with the reason; when the command is killed, its leases run
    out and the next command or worker that looks fails them
    (:func:`ticktape.store.runs.expire_leases`).
    """
    ids = [spec.run_id for spec in specs]
    asyncio.run(_create_runs(dsn, specs, control.owner(command), sweep_id, data_range))
    with control.LeaseKeeper(dsn, ids):
        try:
            yield ids
        except BaseException as exc:
            interrupted = isinstance(exc, KeyboardInterrupt | asyncio.CancelledError)
            reason = "interrupted" if interrupted else str(exc).split("\n")[0]
            try:
                asyncio.run(
                    _end_runs(
                        dsn,
                        ids,
                        "cancelled" if interrupted else "failed",
                        f"the command watching it stopped before it ended: {reason}",
                    )
                )
            except Exception as also:  # (the database may be what failed): the first error is the one raised
                log.warning("could not mark runs %s ended: %s", ", ".join(ids), also)
            raise


def wait_ready(worker: WorkerProcess, timeout_s: float = 120.0) -> None:
    """Wait until the (started) ``worker`` is in its group (runs submitted
    before may never be consumed: tests/e2e/conftest.py); DemoError if it
    exits or is not ready in ``timeout_s``."""
    try:
        worker.wait_ready(timeout_s)
    except RuntimeError as exc:
        raise DemoError(str(exc)) from None


async def submit_and_watch_many(
    kafka_url: str,
    dsn: str,
    specs: list[RunSpec],
    total: int | None,
    worker: WorkerProcess,
    console: Console,
    timeout_s: float,
    stall_s: float = 300.0,
    request: SweepRequest | None = None,
) -> list[dict]:
    """Send the requests of the (created) runs (``request``: one sweep
    request for them all) to the ready ``worker`` and follow them, with one
    progress bar, until every one ended; return the run rows with their
    metrics. DemoError when the worker exits, the time is
    up, a run is deleted, or no tick was processed for ``stall_s`` seconds
    while a run at full speed waited to start or replayed (:func:`not_timed`;
    paced runs are not timed). Within :func:`owned_runs` (as :func:`follow`
    does) the runs are then failed with the reason."""
    conn = await store.connect(dsn)
    try:
        ids = [spec.run_id for spec in specs]
        label = f"run {ids[0][:8]}" if len(ids) == 1 else f"{len(ids)} runs"
        # a paced run may wait as long as its data's gaps, divided by its speed
        paced = any(spec.speed is not None for spec in specs)
        await _send_requests(kafka_url, specs, request)
        await _watch(conn, ids, label, total, worker, console, timeout_s, None if paced else stall_s)
        return [await store.run_with_metrics(conn, run_id) for run_id in ids]
    finally:
        await conn.close()


def follow(
    rt: Runtime,
    settings: Settings,
    specs: list[RunSpec],
    console: Console,
    timeout_s: float,
    command: str,
    sweep_id: str | None = None,
    stall_s: float = 300.0,
    request: SweepRequest | None = None,
) -> list[dict]:
    """Run ``specs`` (one run, or a sweep's parameter sets over the same
    data, ``request`` the sweep's one request) through a Faust worker of
    this command's own on ``rt`` and follow them, with one progress bar, until every one ended; return the run rows
    with their metrics.

    The runs are created first, owned by ``ticktape <command>``
    (:func:`owned_runs`: a reused run id is refused before the worker
    starts). When the watch ends before the runs do (a request could not be
    sent, the worker exited, ``timeout_s`` passed, no tick was processed for
    ``stall_s`` seconds while a run at full speed waited to start or
    replayed (:func:`not_timed`), or the command was interrupted), the
    unfinished runs are marked failed (cancelled when interrupted) with the
    reason, not left ``pending`` or ``running``.
    """
    topics.ensure(rt)  # (existing topics keep their partition count)
    per_run = sources.expected_ticks(specs[0], rt.database_url)  # (a source it cannot read: no run is made)
    total = None if per_run is None else per_run * len(specs)
    with owned_runs(rt.database_url, specs, command, sweep_id):
        env = {**rt.env(), "TICKTAPE_HOME": str(settings.home)}
        with WorkerProcess(env, settings.log_dir / "worker.log") as worker:
            wait_ready(worker)
            return asyncio.run(
                submit_and_watch_many(
                    rt.kafka_url, rt.database_url, specs, total, worker, console, timeout_s, stall_s, request
                )
            )


def results_table(run: dict) -> Table:
    """One run's figures as a two-column table (fits an 80-column terminal)."""
    m = run["metrics"]
    wall = run["wall_seconds"] or 0.0
    table = Table(title=f"run {run['run_id']}", show_header=False, caption=labels.annualization_note(m))
    table.add_column("figure")
    table.add_column("value", justify="right")
    rejected = run["ticks_rejected"] or 0
    rows = [
        ("status", run["status"]),
        (
            "ticks processed",
            f"{run['ticks_processed']:,}" + (f" (+{rejected:,} rejected)" if rejected else ""),
        ),
        ("ticks/s", f"{run['ticks_processed'] / wall:,.0f}" if wall else "-"),
        ("orders", f"{run['orders']:,}"),
        ("fills", f"{run['fills']:,}"),
        ("final PnL", f"{m.get('final_pnl', 0.0):,.2f}"),
        ("total return", labels.show("total_return", m.get("total_return"))),
        (
            # the grid the ratio is computed on goes with it (docs/metrics.md)
            f"Sharpe ({labels.grid(m.get('return_grid_ns', math.nan))}, "
            f"{labels.number(m.get('return_periods'))} returns)",
            labels.show("sharpe", m.get("sharpe")),
        ),
        ("max drawdown", f"{m.get('max_drawdown', 0.0):,.2f} ({m.get('max_drawdown_pct', 0.0):.2%})"),
        ("wall time", f"{wall:.2f} s"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


async def submit_and_watch(
    kafka_url: str,
    dsn: str,
    spec: RunSpec,
    total: int | None,
    worker: WorkerProcess,
    console: Console,
    timeout_s: float,
) -> dict:
    """Create the run (without a lease), send its request to the caller's
    ready ``worker`` and follow it to the end; return the run row, DemoError
    unless it completed (benchmarks/e2e.py, which measures that worker)."""
    await _create_runs(dsn, [spec], None, None, True)
    (run,) = await submit_and_watch_many(kafka_url, dsn, [spec], total, worker, console, timeout_s)
    return _completed(run)


def _completed(run: dict) -> dict:
    if run["status"] != "complete":
        raise DemoError(f"run {run['run_id']} {run['status']}: {run['error']}")
    return run


def execute(
    rt: Runtime,
    settings: Settings,
    spec: RunSpec,
    console: Console,
    timeout_s: float = 600.0,
    command: str = "run",
) -> dict:
    """Run ``spec`` through a managed Faust worker on ``rt`` (:func:`follow`);
    return the run row; DemoError unless it completed."""
    (run,) = follow(rt, settings, [spec], console, timeout_s, command)
    return _completed(run)


def migrate(rt: Runtime, console: Console) -> None:
    """Apply pending migrations to the runtime's database, saying which."""
    applied = session.run(store.migrate, dsn=rt.database_url, migrate=False)
    if applied:
        console.print(f"migrations applied: {', '.join(applied)}")


def sql_hint(run_id: str) -> str:
    return (
        "\nQuery it with SQL (psql or any client on TICKTAPE_DATABASE_URL):\n"
        f"  SELECT * FROM run_metrics WHERE run_id = '{run_id}';\n"
        "  SELECT time_bucket('1 minute', ts) AS minute, count(*) AS fills, sum(qty * price) AS notional\n"
        f"    FROM fills WHERE run_id = '{run_id}' GROUP BY 1 ORDER BY 1;\n"
        "Open the dashboard:  .venv/bin/ticktape dashboard   (or: make dashboard)"
    )


def run_demo(
    settings: Settings, opts: DemoOptions = DemoOptions(), console: Console | None = None
) -> list[dict]:
    """Run the whole demo; return the finished run rows."""
    console = console or Console()
    t_start = time.perf_counter()
    with Runtime(settings) as rt:
        console.print(f"broker: {rt.kafka_url}{' (embedded)' if rt.embedded_kafka else ''}")
        console.print(f"database: {mask_dsn(rt.database_url)}{' (embedded)' if rt.embedded_db else ''}")
        migrate(rt, console)
        asyncio.run(store_demo_data(rt.database_url, opts, console))
        spec = RunSpec(
            strategy="sma_crossover",
            symbols=opts.symbols,
            params={"fast": opts.fast, "slow": opts.slow, "size": 100.0},
        )
        run = execute(rt, settings, spec, console, opts.timeout_s, command="demo")
        console.print(results_table(run))
        console.print(f"demo wall time: {time.perf_counter() - t_start:.1f} s")
        console.print(sql_hint(spec.run_id), soft_wrap=True)
        return [run]
