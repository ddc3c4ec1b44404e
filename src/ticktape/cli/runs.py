"""``ticktape db`` and ``ticktape runs``: the schema, and the stored runs."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from ticktape import store
from ticktape.cli.common import console
from ticktape.store import session

db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
runs_app = typer.Typer(no_args_is_help=True, help="Stored runs.")


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply pending dbschema/ migrations."""
    applied = session.run(store.migrate, migrate=False)
    console.print(f"applied: {', '.join(applied)}" if applied else "schema is up to date")


@runs_app.command("list")
def runs_list(limit: Annotated[int, typer.Option(help="how many runs")] = 20) -> None:
    """List the latest runs."""
    rows = session.run(lambda conn: store.list_runs(conn, limit=limit))
    table = Table(title="runs")
    for col in ("run id", "status", "strategy", "symbols", "ticks", "orders", "fills", "wall s", "created"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r["run_id"]),
            r["status"],
            r["strategy"] or "",
            ",".join(r["symbols"] or []),
            f"{r['ticks_processed'] or 0:,}",
            f"{r['orders'] or 0:,}",
            f"{r['fills'] or 0:,}",
            f"{r['wall_seconds']:.1f}" if r["wall_seconds"] else "",
            str(r["created_at"])[:19],
        )
    console.print(table)


@runs_app.command("show")
def runs_show(run_id: Annotated[str, typer.Argument(help="run id")]) -> None:
    """Progress of one run: per symbol read, processed, rejected, lag (ticks not yet
    through), each stage's lag in seconds, event time, ticks/s."""
    info = session.run(lambda conn: store.run_progress(conn, run_id))
    run = info["run"]
    console.print(
        f"run {run['run_id']}  status [bold]{run['status']}[/bold]  strategy {run['strategy']}"
        + (f"  error: {run['error']}" if run["error"] else "")
    )
    table = Table()
    cols = ("symbol", "read", "processed", "rejected", "lag", "hot path lag s", "sink lag s")
    for col in (*cols, "event time", "ticks/s", "done"):
        table.add_column(col, justify="left" if col in ("symbol", "event time") else "right")

    def secs(x: float | None) -> str:
        return "-" if x is None else f"{x:.3f}"

    for s in info["symbols"]:
        table.add_row(
            s["symbol"],
            f"{s['read']:,}",
            f"{s['processed']:,}",
            f"{s['rejected']:,}",
            f"{s['lag']:,}",
            secs(s["hot_lag_s"]),
            secs(s["sink_lag_s"]),
            str(s["event_time"])[:26] if s["event_time"] else "-",
            f"{s['ticks_per_s']:,.0f}",
            "yes" if s["done"] else "",
        )
    console.print(table)


def _control(run_id: str, action: str) -> None:
    status = session.run(lambda conn: store.request_control(conn, run_id, action))
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
    """Cancel a run: the replay stops and the run is marked cancelled."""
    _control(run_id, "cancel")
