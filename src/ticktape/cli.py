"""The ``ticktape`` command line."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Tick-level backtesting on a streaming pipeline."
)
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
runs_app = typer.Typer(no_args_is_help=True, help="Stored runs.")
app.add_typer(db_app, name="db")
app.add_typer(runs_app, name="runs")


def _add_subapps() -> None:
    from ticktape import backtest_cli, strategy_cli
    from ticktape.data_cli import data_app
    from ticktape.lobster_cli import lobster_app

    app.add_typer(data_app, name="data")
    app.add_typer(lobster_app, name="lobster")
    app.add_typer(strategy_cli.app, name="strategy")
    app.command("backtest")(backtest_cli.backtest)
    app.command("sweep")(backtest_cli.sweep)


_add_subapps()

console = Console()
#: errors: one unwrapped line on stderr
err_console = Console(stderr=True, soft_wrap=True)


def _settings():
    from ticktape.config import Settings

    return Settings.from_env()


@app.command()
def demo(
    ticks: Annotated[int, typer.Option(help="ticks per symbol")] = 600_000,
    symbols: Annotated[int, typer.Option(help="number of synthetic symbols")] = 2,
    seed: Annotated[int, typer.Option(help="generator seed")] = 7,
) -> None:
    """Generate synthetic ticks, replay them through the pipeline, print the results."""
    from ticktape.demo import DemoOptions, run_demo

    if ticks < 1 or symbols < 1:
        raise typer.BadParameter("--ticks and --symbols must be >= 1")
    names = tuple(f"DEMO-{chr(ord('A') + i)}" if i < 26 else f"DEMO-{i}" for i in range(symbols))
    run_demo(_settings(), DemoOptions(ticks_per_symbol=ticks, symbols=names, seed=seed), console)


@app.command()
def run(
    spec_file: Annotated[Path, typer.Argument(help="run spec JSON file")],
    speed: Annotated[
        str | None, typer.Option(help="'max' or a factor K: event time runs K x faster than real time")
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(
            help="where the ticks come from: store (default), parquet:FILE, generator:N[:SEED],"
            " topic:RUN_ID[:START_OFFSET[:END_OFFSET]] (overrides the spec's source)"
        ),
    ] = None,
) -> None:
    """Run one spec (JSON) through the pipeline (ticks from the store, a Parquet
    file, the generator or a recorded topic)."""
    from ticktape.demo import execute, migrate, results_table, sql_hint
    from ticktape.runtime import Runtime
    from ticktape.spec import RunSpec

    try:
        text = spec_file.read_text()
    except OSError as exc:
        raise FileNotFoundError(f"{spec_file}: cannot read the run spec ({exc.strerror})") from None
    spec = RunSpec.from_json(text)
    if speed is not None:
        spec = dataclasses.replace(spec, speed=_parse_speed(speed))
    if source is not None:
        spec = dataclasses.replace(spec, source=parse_source(source))
    settings = _settings()
    with Runtime(settings) as rt:
        migrate(rt, console)
        result = execute(rt, settings, spec, console)
    console.print(results_table(result))
    console.print(sql_hint(spec.run_id), soft_wrap=True)


@app.command()
def paper(
    spec_file: Annotated[
        Path, typer.Argument(help="run spec JSON file (strategy, symbols as the feed names them)")
    ],
    url: Annotated[
        str, typer.Option(help="websocket URL of a Binance-format feed (bookTicker/trade streams)")
    ],
    idle_timeout: Annotated[float, typer.Option(help="end the run after this many silent seconds")] = 5.0,
    max_messages: Annotated[int | None, typer.Option(help="stop after this many feed messages")] = None,
) -> None:
    """Paper-trade a spec on a live feed, through the same pipeline."""
    from ticktape.demo import migrate, results_table
    from ticktape.live import paper as run_paper
    from ticktape.runtime import Runtime
    from ticktape.spec import RunSpec

    try:
        text = spec_file.read_text()
    except OSError as exc:
        raise FileNotFoundError(f"{spec_file}: cannot read the run spec ({exc.strerror})") from None
    spec = RunSpec.from_json(text)
    settings = _settings()
    with Runtime(settings) as rt:
        migrate(rt, console)
        run, stats = run_paper(rt, settings.home, spec, url, idle_timeout, max_messages)
    console.print(f"feed messages: {stats.counts}; ticks published: {stats.ticks}")
    console.print(results_table(run))
    m = run["metrics"]
    if "tick_to_decision_p50_ms" in m:
        console.print(
            f"tick-to-decision latency: p50 {m['tick_to_decision_p50_ms']:.1f} ms,"
            f" p99 {m['tick_to_decision_p99_ms']:.1f} ms"
        )


@app.command()
def record(
    run_id: Annotated[str, typer.Argument(help="the live or replayed run whose ticks to record")],
    prefix: Annotated[str, typer.Option(help="store the ticks under PREFIX + symbol")] = "",
    idle_timeout: Annotated[
        float, typer.Option(help="stop after this many seconds without new ticks")
    ] = 10.0,
) -> None:
    """Copy a run's ticks from the ticks topic into the store (the topic keeps them)."""
    from ticktape.record import record as do_record
    from ticktape.runtime import Runtime

    with Runtime(_settings()) as rt:
        rec = asyncio.run(do_record(rt.kafka_url, rt.database_url, run_id, prefix, idle_timeout))
    for sym, n in sorted(rec.ticks.items()):
        console.print(f"{prefix}{sym}: {n:,} ticks recorded ({rec.stored.get(sym, 0):,} new in the store)")
    console.print(
        ("all streams complete" if rec.complete else "stopped before every stream ended (idle timeout)")
        + (f"; {rec.duplicates} duplicate batches skipped" if rec.duplicates else "")
    )


def parse_source(text: str) -> dict:
    """``--source`` text → a run spec's source (see ticktape.sources)."""
    from ticktape.strategy import SpecError

    kind, _, rest = text.partition(":")
    parts = rest.split(":") if rest else []
    try:
        if kind == "store" and not parts:
            return {"kind": "store"}
        if kind == "parquet" and rest:
            return {"kind": "parquet", "path": rest}
        if kind == "generator" and 1 <= len(parts) <= 2:
            return {
                "kind": "generator",
                "n_ticks": int(parts[0]),
                **({"seed": int(parts[1])} if len(parts) > 1 else {}),
            }
        if kind == "topic" and 1 <= len(parts) <= 3:
            out: dict = {"kind": "topic", "run_id": parts[0]}
            for key, value in zip(("start_offset", "end_offset"), parts[1:], strict=False):
                out[key] = int(value)
            return out
    except ValueError:
        pass
    raise SpecError(
        f"--source {text!r}: expected store, parquet:FILE, generator:N[:SEED] or topic:RUN_ID[:START[:END]]"
    )


def _parse_speed(text: str) -> float | None:
    from ticktape.strategy import SpecError

    if text == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        raise SpecError(f"speed: expected 'max' or a number > 0, got {text!r}") from None
    if not value > 0:
        raise SpecError(f"speed: expected 'max' or a number > 0, got {text!r}")
    return value


@app.command()
def worker(
    loglevel: Annotated[str, typer.Option(help="Faust log level")] = "warning",
    stages: Annotated[
        str,
        typer.Option(help="'all' or a comma-separated subset of replay,indicators,strategy,execution,sink"),
    ] = "all",
) -> None:
    """Run a Faust worker with some or all stages (until Ctrl-C / SIGTERM)."""
    from ticktape.app import parse_stages
    from ticktape.runtime import Runtime
    from ticktape.worker import run_worker

    chosen = parse_stages(stages)  # a bad list is refused before anything starts
    settings = _settings()
    with Runtime(settings) as rt:
        run_worker(rt.kafka_url, rt.database_url, settings.home / "faust", loglevel=loglevel, stages=chosen)


def _with_db(fn, migrate: bool = True):
    """Run ``await fn(conn)`` against the configured (or embedded) database,
    migrated first (a fresh store has no tables yet)."""
    from ticktape import store
    from ticktape.runtime import Runtime

    async def go(dsn: str):
        conn = await store.connect(dsn)
        try:
            if migrate:
                await store.migrate(conn)
            return await fn(conn)
        finally:
            await conn.close()

    with Runtime(_settings(), kafka=False) as rt:
        return asyncio.run(go(rt.database_url))


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply pending dbschema/ migrations."""
    from ticktape import store

    applied = _with_db(store.migrate, migrate=False)
    console.print(f"applied: {', '.join(applied)}" if applied else "schema is up to date")


@runs_app.command("list")
def runs_list(limit: Annotated[int, typer.Option(help="how many runs")] = 20) -> None:
    """List the latest runs."""
    from ticktape import store

    rows = _with_db(lambda conn: store.list_runs(conn, limit=limit))
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
    from ticktape.progress import run_progress

    info = _with_db(lambda conn: run_progress(conn, run_id))
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
    from ticktape.control import request

    status = _with_db(lambda conn: request(conn, run_id, action))
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


@app.command()
def dashboard(
    port: Annotated[int, typer.Option(help="port on 127.0.0.1")] = 8501,
) -> None:
    """Open the Streamlit dashboard on the stored runs."""

    from ticktape.runtime import (
        Runtime,
        TicktapeRuntimeError,
        port_in_use,
        spawn_child,
        terminate_process,
    )

    entry = Path(__file__).resolve().parent / "dashboards" / "app.py"
    if port_in_use(port):
        raise TicktapeRuntimeError(f"port {port} on 127.0.0.1 is already in use (choose another with --port)")
    with Runtime(_settings(), kafka=False) as rt:
        console.print(f"dashboard on http://127.0.0.1:{port}  (Ctrl-C to stop)")
        env = {**os.environ, **rt.env()}
        cmd = [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(entry),
            "--server.address",
            "127.0.0.1",
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
        ]
        proc = spawn_child(cmd, env=env)  # dies with us, even after kill -9
        try:
            proc.wait()
        finally:
            terminate_process(proc, signals=((signal.SIGTERM, 10.0),), name="streamlit")


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI; known errors become one line and exit 1."""
    from ticktape.errors import KNOWN_ERRORS
    from ticktape.runtime import keep_freed_memory

    keep_freed_memory()  # (before the first batch: workers, imports, backtests)

    def on_sigterm(signum, frame):  # unwind (stopping children) instead of dying mid-way
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        app(args=argv, standalone_mode=False)
    except KNOWN_ERRORS as exc:
        err_console.print(Text.assemble(("ticktape: error: ", "red"), str(exc)), highlight=False)
        return 1
    except KeyboardInterrupt:
        console.print("interrupted")
        return 130
    except typer.Exit as exc:
        return exc.exit_code
    except Exception as exc:  # click usage errors etc.
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            return exc.exit_code
        raise
    return 0
