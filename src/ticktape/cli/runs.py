"""``ticktape db`` and ``ticktape runs``: the schema, and the stored runs.

Every ``runs`` command first fails the runs whose lease ran out (their
command died: docs/architecture.md, "Progress and control"), so what it
shows is what is true now.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.table import Table

from ticktape.cli.common import console, fitted_table, settings
from ticktape.errors import CommandError
from ticktape.model.spec import parse_run_id

if TYPE_CHECKING:
    import asyncpg

# (the store is imported by the commands: a bad argument is refused at once)

T = TypeVar("T")

db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
runs_app = typer.Typer(no_args_is_help=True, help="Stored runs.")


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply pending dbschema/ migrations (and, with TICKTAPE_READER_PASSWORD,
    give the read-only role ticktape_reader that password)."""
    from ticktape import store
    from ticktape.store import session
    from ticktape.store.schema import READER_ROLE, set_reader_password

    password = settings().reader_password

    async def go(conn: asyncpg.Connection) -> list[str]:
        applied = await store.migrate(conn)
        if password:
            await set_reader_password(conn, password)
        return applied

    applied = session.run(go, migrate=False)
    console.print(f"applied: {', '.join(applied)}" if applied else "schema is up to date")
    if password:
        console.print(f"{READER_ROLE} may log in with TICKTAPE_READER_PASSWORD's password")


def _look(fn: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """``fn(conn)`` in a session, after failing the runs whose lease ran out."""
    from ticktape import store
    from ticktape.store import session

    async def go(conn: asyncpg.Connection) -> T:
        await store.expire_leases(conn)
        return await fn(conn)

    return session.run(go)


@runs_app.command("list")
def runs_list(limit: Annotated[int, typer.Option(help="how many runs")] = 20) -> None:
    """List the latest runs."""
    if limit < 1:
        raise CommandError(f"--limit: must be >= 1, got {limit}")
    from ticktape import store

    rows = _look(lambda conn: store.list_runs(conn, limit=limit))
    shown = [
        {
            "run id": str(r["run_id"]),
            "status": r["status"],
            "strategy": r["strategy"] or "",
            "symbols": ",".join(r["symbols"] or []),
            "ticks": f"{r['ticks_processed'] or 0:,}",
            "orders": f"{r['orders'] or 0:,}",
            "fills": f"{r['fills'] or 0:,}",
            "wall s": f"{r['wall_seconds']:.1f}" if r["wall_seconds"] else "",
            "created": str(r["created_at"])[:16],
        }
        for r in rows
    ]
    # on a narrow terminal the least needed columns go, never a cut run id
    table = fitted_table(
        "runs",
        shown,
        drop_first=["wall s", "orders", "symbols", "created", "ticks", "fills", "strategy"],
        right=("ticks", "orders", "fills", "wall s"),
    )
    console.print(table)


@runs_app.command("show")
def runs_show(run_id: Annotated[str, typer.Argument(help="run id")]) -> None:
    """Progress of one run: per symbol read, processed, rejected, lag (ticks not yet
    through), each stage's lag in seconds, event time, ticks/s."""
    from ticktape import store
    from ticktape.compute import labels  # (pandas: loaded by the commands that print metrics)

    parse_run_id(run_id)  # (refused before anything starts)

    async def look(conn: asyncpg.Connection) -> tuple[dict, dict]:
        info = await store.run_progress(conn, run_id)
        return info, (await store.run_with_metrics(conn, info["run"]["run_id"]))["metrics"]

    info, metrics = _look(look)
    run = info["run"]
    console.print(
        f"run {run['run_id']}  status [bold]{run['status']}[/bold]  strategy {run['strategy']}"
        + (f"  error: {run['error']}" if run["error"] else "")
    )
    # one column per symbol, one row per figure: a run of a few symbols reads
    # whole in an 80-column terminal (ten columns per symbol did not)
    table = Table(title="progress")
    table.add_column("")
    for s in info["symbols"]:
        table.add_column(s["symbol"], justify="right")

    def secs(x: float | None) -> str:
        return "-" if x is None else f"{x:.3f}"

    figures_of = {
        "read": lambda s: f"{s['read']:,}",
        "processed": lambda s: f"{s['processed']:,}",
        "rejected": lambda s: f"{s['rejected']:,}",
        "lag (ticks)": lambda s: f"{s['lag']:,}",
        "hot path lag s": lambda s: secs(s["hot_lag_s"]),
        "sink lag s": lambda s: secs(s["sink_lag_s"]),
        "event time": lambda s: str(s["event_time"])[:19] if s["event_time"] else "-",
        "ticks/s": lambda s: f"{s['ticks_per_s']:,.0f}",
        "done": lambda s: "yes" if s["done"] else "no",
    }
    for name, figure in figures_of.items():
        table.add_row(name, *(figure(s) for s in info["symbols"]))
    console.print(table)
    if metrics:  # a finished run's figures, labelled, in their units, with the return grid
        figures = Table(title="metrics", show_header=False, caption=labels.annualization_note(metrics))
        figures.add_column("metric")
        figures.add_column("value", justify="right")
        for name, value in labels.report(metrics):
            figures.add_row(name, value)
        console.print(figures)


def _control(run_id: str, action: str) -> None:
    from ticktape import store

    parse_run_id(run_id)  # (refused before anything starts)
    status = _look(lambda conn: store.request_control(conn, run_id, action))
    console.print(f"run {run_id}: {action} requested (status {status})")


@runs_app.command("pause")
def runs_pause(run_id: Annotated[str, typer.Argument(help="run id")]) -> None:
    """Pause a running run (the replay holds; resume continues it)."""
    _control(run_id, "pause")


@runs_app.command("resume")
def runs_resume(run_id: Annotated[str, typer.Argument(help="run id")]) -> None:
    """Resume a paused run."""
    _control(run_id, "resume")


@runs_app.command("cancel")
def runs_cancel(run_id: Annotated[str, typer.Argument(help="run id")]) -> None:
    """Cancel a run: it is marked cancelled at once, and its replay, if one
    still runs, stops."""
    _control(run_id, "cancel")


def parse_age(text: str) -> timedelta:
    """``--older-than``'s age: a span as walk-forward windows take it
    (``30d``, ``12h``, ``90min``, ``2w``, ``6m`` = six calendar months, ``1y``;
    :func:`ticktape.backtest.walkforward.parse_span`), as the time from that
    long before now to now; a SpecError naming the option otherwise.

    >>> parse_age("30d")
    datetime.timedelta(days=30)
    """
    from ticktape.backtest.walkforward import parse_span

    now = time.time_ns()
    return timedelta(microseconds=(now - parse_span(text, "--older-than").before(now)) // 1000)


@runs_app.command("delete")
def runs_delete(
    run_ids: Annotated[list[str] | None, typer.Argument(help="run ids", show_default=False)] = None,
    older_than: Annotated[
        str | None,
        typer.Option(
            help="instead: every run created longer ago than this (30d, 12h, 90min, 2w, 6m = months)"
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="delete unfinished runs too")] = False,
) -> None:
    """Delete runs and everything they produced (signals, orders, fills,
    equity, bars, progress, metrics, the sink's ledger and the ticks
    recorded for them) in one transaction; an unfinished run only with --force."""
    if bool(run_ids) == (older_than is not None):
        raise CommandError("runs delete: give run ids or --older-than AGE (one of the two)")
    age = parse_age(older_than) if older_than is not None else None
    ids = [str(parse_run_id(r)) for r in run_ids or []]  # (refused before anything starts)
    from ticktape import store

    gone = _look(lambda conn: store.delete_runs(conn, ids, older_than=age, force=force))
    shown = ", ".join(f"{r} ({status})" for r, status in gone.runs[:10])
    more = f" and {len(gone.runs) - 10} more" if len(gone.runs) > 10 else ""
    console.print(
        f"deleted {len(gone.runs)} run{'' if len(gone.runs) == 1 else 's'}"
        + (f": {shown}{more}" if shown else "")
    )
    rows = ", ".join(
        f"{n:,} {'recorded ticks' if table == 'ticks' else table}" for table, n in gone.rows.items() if n
    )
    console.print(f"rows deleted: {rows or 'none'}")
